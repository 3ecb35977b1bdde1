"""Replay benchmark: kexecwatch against the auparse loop, ausearch and grep, side by side.

Generates (once, seeded) the logs it needs under ``bench/out/``, then runs every reader
on the same file, interleaved, several times each, and prints medians of MB/s and
records/s, the ratios, and peak RSS from ``/usr/bin/time -v``.

Usage::

    python bench/run.py                 # 300 MB log, 5 rounds, RSS at 100 MB/300 MB/1 GB
    python bench/run.py --size 100M --rounds 3 --no-rss

Needs the system Python with Debian's ``python3-audit`` (``/usr/bin/python3``),
``ausearch`` (package ``auditd``) and ``/usr/bin/time`` (package ``time``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
SYSTEM_PYTHON = "/usr/bin/python3"
UPSTREAM_RULE_ID = "4d4c35f4-414e-4d0c-bb7e-6db7c80a6957"

sys.path.insert(0, str(HERE.parent))
from bench.generate import generate, parse_size  # noqa: E402

AUPARSE_LOOP = """
import sys, auparse
au = auparse.AuParser(auparse.AUSOURCE_FILE, sys.argv[1])
n = 0
while au.parse_next_event():
    while True:
        if au.get_type_name() == "SYSCALL" and au.find_field("comm"):
            au.get_field_str()
            n += 1
        if not au.next_record():
            break
print(n)
"""


def log_for(size: str, seed: int) -> Path:
    """The generated log of ``size`` (made once, reused)."""
    path = OUT / f"audit-{size}-seed{seed}.log"
    if not path.exists() or not Path(str(path) + ".expected.json").exists():
        OUT.mkdir(parents=True, exist_ok=True)
        print(f"generating {path} ...", file=sys.stderr)
        generate(path, parse_size(size), seed=seed)
    return path


def kexecwatch_cmd(path: Path, *extra: str) -> list[str]:
    exe = shutil.which("kexecwatch", path=str(Path(sys.executable).parent)) or "kexecwatch"
    return [exe, "replay", str(path), "--quiet", "--progress", "never", *extra]


def readers(path: Path) -> dict[str, list[str]]:
    return {
        "kexecwatch": kexecwatch_cmd(path),
        "kexecwatch --events": kexecwatch_cmd(path, "--events", "--format", "json"),
        "auparse loop": [SYSTEM_PYTHON, "-c", AUPARSE_LOOP, str(path)],
        "ausearch": ["ausearch", "-if", str(path), "-c", "kexec", "--raw"],
        # GNU grep stops at the first match when its output is /dev/null: give it a pipe.
        "grep -c": ["sh", "-c", 'grep -c kexec "$1" | cat', "sh", str(path)],
    }


def timed(cmd: list[str]) -> float:
    """Wall seconds of one run, output to /dev/null."""
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def peak_rss_mb(cmd: list[str]) -> float:
    """Maximum resident set size of one run, from /usr/bin/time -v."""
    done = subprocess.run(
        ["/usr/bin/time", "-v", *cmd],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    return int(m.group(1)) / 1024 if m else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="kexecwatch replay benchmark")
    parser.add_argument("--size", default="300M", help="log size for the speed table")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-rss", action="store_true", help="skip RSS at 100M/300M/1G")
    args = parser.parse_args(argv)

    path = log_for(args.size, args.seed)
    expected = json.loads(Path(str(path) + ".expected.json").read_text())
    size_mb = path.stat().st_size / 1e6
    records = expected["records"]
    cmds = readers(path)
    times: dict[str, list[float]] = {name: [] for name in cmds}
    timed(["cat", str(path)])  # warm the page cache
    for round_no in range(args.rounds):
        for name, cmd in cmds.items():  # interleaved: one of each per round
            times[name].append(timed(cmd))
        print(f"round {round_no + 1}/{args.rounds} done", file=sys.stderr)

    med = {name: statistics.median(ts) for name, ts in times.items()}
    print(
        f"\nfile: {path} ({size_mb:.0f} MB, {records} records, seed {args.seed}), "
        f"{args.rounds} interleaved rounds, medians\n"
    )
    print("| reader | MB/s | records/s | seconds |")
    print("|---|---:|---:|---:|")
    for name, secs in med.items():
        print(f"| {name} | {size_mb / secs:.0f} | {records / secs / 1e6:.2f} M | {secs:.2f} |")
    kw = med["kexecwatch"]
    print(f"\nkexecwatch / auparse loop: {med['auparse loop'] / kw:.2f}x (target >= 1.5x)")
    print(f"kexecwatch / ausearch:     {med['ausearch'] / kw:.2f}x (target >= 3x)")
    print(
        "kexecwatch --events / auparse loop: "
        f"{med['auparse loop'] / med['kexecwatch --events']:.2f}x"
    )

    if not args.no_rss:
        print("\n| log | kexecwatch peak RSS | auparse loop | ausearch |")
        print("|---|---:|---:|---:|")
        for size in ("100M", "300M", "1G"):
            p = log_for(size, args.seed)
            rss = [
                peak_rss_mb(c)
                for c in (kexecwatch_cmd(p), readers(p)["auparse loop"], readers(p)["ausearch"])
            ]
            print(f"| {size} | {rss[0]:.0f} MB | {rss[1]:.0f} MB | {rss[2]:.0f} MB |")
    alerts = subprocess.run(kexecwatch_cmd(path), capture_output=True, check=False).stdout
    docs = [json.loads(line) for line in alerts.splitlines()]
    # The generator knows what the upstream rule must raise; the other built-in rules
    # are checked against a full parse by tests/test_fast_path.py.
    found = sorted(d["auditd"]["id"] for d in docs if d["rule"]["id"] == UPSTREAM_RULE_ID)
    print(
        f"\nalerts: {len(docs)} in all; upstream rule {len(found)}, "
        f"{len(expected['alerts'])} expected by the generator: "
        f"{'identical' if found == sorted(expected['alerts']) else 'DIFFERENT'}"
    )
    return 0


if __name__ == "__main__":
    os.nice(0)
    sys.exit(main())
