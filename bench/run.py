"""Replay benchmark: kexecwatch's two scanners against the auparse loop, ausearch and grep.

Generates (once, seeded) the logs it needs under ``bench/out/`` (``bench/generate.py``,
one log per shape and size), then runs every reader on the same file, interleaved (one run
of each reader per round), ROUNDS times, and prints the medians of MB/s and records/s,
the ratios against the targets of issue 11, peak RSS at 100 MB, 300 MB and 1 GB, and
whether the alerts equal the generator's expectations and are the same bytes for both
scanners.

The readers, per scanner (``KEXECWATCH_SCANNER=python`` and ``=native``, side by side):
``kexecwatch replay`` with the default rules, with ``--ruleset upstream``, with
``--events --format json``, and with ``--no-builtin-rules --rule DIR`` for each
``--rules-dir``; then the auparse loop (Debian's ``python3-audit`` under
``/usr/bin/python3``, reading each SYSCALL's ``comm``), ``ausearch -if FILE -c kexec
--raw`` and ``grep -c``; with ``--baseline EXE``, the default-rules and upstream readers of
another installed kexecwatch (say, the code before the native path) for the "no slower
than today" check.

Usage::

    python bench/run.py                                   # mixed shape, 300 MB, 3 rounds, RSS
    python bench/run.py --shape classic --size 300M --no-rss
    python bench/run.py --shape all --size 100M --no-rss  # every shape
    python bench/run.py --rules-dir ../shared/detection-rules/rules --no-rss
    python bench/run.py --baseline /tmp/kw-before/.venv/bin/kexecwatch

Needs the system Python with Debian's ``python3-audit`` (``/usr/bin/python3``),
``ausearch`` (package ``auditd``) and ``/usr/bin/time`` (package ``time``). The figures
are wall time: on a shared machine other work slows every reader of a round alike, which
is why the rounds interleave and the medians are shown; the load average is printed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
EMPTY_LOG = Path(os.devnull)  # replay of it imports everything, then exits 2
SYSTEM_PYTHON = "/usr/bin/python3"
UPSTREAM_RULE_ID = "4d4c35f4-414e-4d0c-bb7e-6db7c80a6957"
SCANNERS = ("python", "native")
#: Issue 11's targets: replay >= 1.5x the auparse loop and >= 3x ausearch (default rules
#: and --ruleset upstream); --events --format json >= 10x the 5 MB/s measured before.
AUPARSE_TARGET = 1.5
AUSEARCH_TARGET = 3.0
EVENTS_BEFORE_MBS = 5.0
EVENTS_TARGET = 10.0
RSS_TARGET_MB = 64.0
#: Issue 15's goal: every rule of a checkout together costs at most 3x the default rules.
RULES_DIR_TARGET = 3.0

#: The kexecwatch readers per scanner: name in the tables, extra arguments.
VARIANTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "default": ("default rules", ()),
    "upstream": ("--ruleset upstream", ("--ruleset", "upstream")),
    "events": ("--events --format json", ("--events", "--format", "json")),
}

sys.path.insert(0, str(HERE.parent))
from bench.generate import SHAPES, Generator, generate, parse_size  # noqa: E402

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


@dataclass(frozen=True)
class Reader:
    """One timed program.

    Attributes:
        name: label in the tables (for kexecwatch: what it runs, without the scanner).
        cmd: the command.
        scanner: ``KEXECWATCH_SCANNER`` for kexecwatch readers; ``""`` for the others.
    """

    name: str
    cmd: tuple[str, ...]
    scanner: str = ""

    @property
    def label(self) -> str:
        return f"{self.name} [{self.scanner}]" if self.scanner else self.name

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("KEXECWATCH_SCANNER", None)
        # An installed kexecwatch has its bytecode compiled (pip, the .deb); a checkout
        # run with PYTHONDONTWRITEBYTECODE would compile every module at every start
        # (0.3 s here), which no deployment pays.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        if self.scanner and self.scanner != "baseline":
            env["KEXECWATCH_SCANNER"] = self.scanner
        return env


def log_for(size: str, seed: int, shape: str = "mixed") -> Path:
    """The generated log of ``shape`` and ``size`` (made once, reused)."""
    path = OUT / f"audit-{shape}-{size}-seed{seed}.log"
    exp = Path(str(path) + ".expected.json")
    if path.exists() and exp.exists() and json.loads(exp.read_text()).get("shape") == shape:
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(OUT).free
    if free < parse_size(size) * 1.2:
        raise SystemExit(f"run.py: {OUT}: {free / 1e9:.1f} GB free, not enough for {size}")
    print(f"generating {path} ...", file=sys.stderr)
    generate(path, parse_size(size), seed=seed, shape=shape)
    return path


def kexecwatch_exe() -> str:
    """The kexecwatch of the interpreter running this script (the project's .venv)."""
    return shutil.which("kexecwatch", path=str(Path(sys.executable).parent)) or "kexecwatch"


def kexecwatch_cmd(path: Path, *extra: str, exe: str | None = None) -> list[str]:
    return [exe or kexecwatch_exe(), "replay", str(path), "--quiet", "--progress", "never", *extra]


def scanner_problem(
    scanner: str, cmd: Sequence[str] = (), env: dict[str, str] | None = None
) -> str | None:
    """None when kexecwatch runs with ``scanner``; else why it cannot, in one line.

    ``cmd`` is the kexecwatch to ask (default: this interpreter's), ``env`` its environment
    (default: this one); ``KEXECWATCH_SCANNER`` is set to ``scanner`` in it.
    """
    env = {**(os.environ if env is None else env), "KEXECWATCH_SCANNER": scanner}
    done = subprocess.run(
        [*(cmd or [kexecwatch_exe()]), "--version"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    said = (done.stdout + done.stderr).strip().splitlines()
    if done.returncode != 0:
        return said[-1] if said else f"kexecwatch --version: exit {done.returncode}"
    text = " ".join(said)
    m = re.search(r"\(scanner: (\w+)", text)  # "kexecwatch 0.1.0 (scanner: native 0.1.0)"
    if m is None:
        # A kexecwatch from before the scanner choice: it has the python scanner only.
        return None if scanner == "python" else f"no scanner choice in {text!r}"
    return None if m.group(1) == scanner else f"--version says {text!r}"


def rules_dir_problem(rules_dirs: Sequence[str]) -> str | None:
    """None when ``replay --rule DIR`` loads every directory; else its error line."""
    with tempfile.TemporaryDirectory() as tmp:
        tiny = Path(tmp) / "tiny.log"
        gen = Generator(seed=1)
        tiny.write_text(
            "".join(line + "\n" for _, line in zip(range(40), gen.lines(), strict=False))
        )
        for rules in rules_dirs:
            cmd = kexecwatch_cmd(tiny, "--no-builtin-rules", "--rule", rules)
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode not in (0, 1):
                lines = done.stderr.strip().splitlines() or [f"exit {done.returncode}"]
                return f"{rules}: {lines[-1]}"
    return None


def readers(
    path: Path,
    scanners: Sequence[str] = ("python",),
    rules_dirs: Sequence[str] = (),
    baseline: str | None = None,
    chosen: Sequence[str] = ("default", "upstream", "events"),
) -> list[Reader]:
    """Every reader, in the order each round runs them."""
    out: list[Reader] = []
    variants = [VARIANTS[v] for v in chosen]
    for scanner in scanners:
        for name, extra in variants:
            out.append(Reader(name, tuple(kexecwatch_cmd(path, *extra)), scanner))
        for rules in rules_dirs:
            cmd = kexecwatch_cmd(path, "--no-builtin-rules", "--rule", rules)
            out.append(Reader(f"--rule {rules}", tuple(cmd), scanner))
    if baseline:  # its --events is the 5 MB/s of the target: not timed again
        for name, extra in [v for v in variants if v[0] != VARIANTS["events"][0]]:
            out.append(Reader(name, tuple(kexecwatch_cmd(path, *extra, exe=baseline)), "baseline"))
    out += [
        Reader("auparse loop", (SYSTEM_PYTHON, "-c", AUPARSE_LOOP, str(path))),
        Reader("ausearch -c kexec --raw", ("ausearch", "-if", str(path), "-c", "kexec", "--raw")),
        # GNU grep stops at the first match when its output is /dev/null: give it a pipe.
        Reader("grep -c", ("sh", "-c", 'grep -c kexec "$1" | cat', "sh", str(path))),
    ]
    return out


def timed(cmd: Sequence[str], env: dict[str, str] | None = None) -> float:
    """Wall seconds of one run, output to /dev/null."""
    return timed_cpu(cmd, env)[0]


def timed_cpu(cmd: Sequence[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, with its children) of one run.

    On a shared machine the wall time also holds the time the run waited for a core;
    the CPU time does not, so it is the steadier of the two.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def peak_rss_mb(cmd: Sequence[str], env: dict[str, str] | None = None) -> float:
    """Maximum resident set size of one run, from /usr/bin/time -v."""
    done = subprocess.run(
        ["/usr/bin/time", "-v", *cmd],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        check=False,
    )
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    return int(m.group(1)) / 1024 if m else float("nan")


@dataclass
class Figures:
    """The medians of one shape's runs."""

    shape: str
    path: Path
    expected: dict[str, object]
    seconds: dict[str, float] = field(default_factory=dict)
    rounds: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    cpu_rounds: dict[str, list[float]] = field(default_factory=dict)

    @property
    def mb(self) -> float:
        return self.path.stat().st_size / 1e6


def measure(shape: str, args: argparse.Namespace, scanners: Sequence[str]) -> Figures:
    path = log_for(args.size, args.seed, shape)
    expected = json.loads(Path(str(path) + ".expected.json").read_text())
    all_readers = readers(path, scanners, args.rule_dir, args.baseline, args.variants)
    figs = Figures(shape, path, expected, rounds={r.label: [] for r in all_readers})
    timed(["cat", str(path)])  # warm the page cache
    for reader in all_readers:  # and the bytecode caches
        if reader.scanner:
            timed(kexecwatch_cmd(EMPTY_LOG, exe=reader.cmd[0]), reader.env)
    for round_no in range(args.rounds):
        for reader in all_readers:  # interleaved: one run of each per round
            wall, cpu = timed_cpu(reader.cmd, reader.env)
            figs.rounds[reader.label].append(wall)
            figs.cpu_rounds.setdefault(reader.label, []).append(cpu)
        print(f"{shape}: round {round_no + 1}/{args.rounds} done", file=sys.stderr)
    figs.seconds = {name: statistics.median(ts) for name, ts in figs.rounds.items()}
    figs.cpu = {name: statistics.median(ts) for name, ts in figs.cpu_rounds.items()}
    return figs


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def report(figs: Figures, scanners: Sequence[str], args: argparse.Namespace) -> None:
    """The speed table, the ratios against the targets, and the alert checks."""
    exp = figs.expected
    records = int(exp["records"])  # type: ignore[call-overload]
    med = figs.seconds
    load = os.getloadavg()
    print(
        f"\n### shape `{figs.shape}`: {figs.path.name} ({figs.mb:.0f} MB, {records:,} records, "
        f"{exp['events']:,} exec events, seed {args.seed}); {args.rounds} interleaved rounds, "
        f"medians; {os.cpu_count()} CPUs, load average {load[0]:.1f} after the runs\n"
    )
    print("| reader | scanner | MB/s | records/s | wall s (median) | each round | CPU s |")
    print("|---|---|---:|---:|---:|---|---:|")
    for label, secs in med.items():
        name, _, scanner = label.partition(" [")
        each = ", ".join(f"{t:.2f}" for t in figs.rounds[label])
        print(
            f"| {name} | {scanner.rstrip(']')} | {figs.mb / secs:.0f} | "
            f"{records / secs / 1e6:.2f} M | {secs:.2f} | {each} | {figs.cpu[label]:.2f} |"
        )
    ausearch_label = "ausearch -c kexec --raw"
    auparse, ausearch = med["auparse loop"], med[ausearch_label]
    print(f"\n| figure ({figs.shape}) | " + " | ".join(scanners) + " | target |")
    print("|---|" + "---:|" * len(scanners) + "---|")

    def row(title: str, target: str, value: dict[str, str]) -> None:
        print(f"| {title} | " + " | ".join(value.get(s, "—") for s in scanners) + f" | {target} |")

    for name in ("default rules", "--ruleset upstream"):
        if f"{name} [{scanners[0]}]" not in med:
            continue
        for other, secs, target in (
            ("auparse loop", auparse, AUPARSE_TARGET),
            ("ausearch", ausearch, AUSEARCH_TARGET),
        ):
            value = {}
            cpu_other = figs.cpu["auparse loop" if other == "auparse loop" else ausearch_label]
            for s in scanners:
                ratio = secs / med[f"{name} [{s}]"]
                by_cpu = cpu_other / figs.cpu[f"{name} [{s}]"]
                value[s] = f"{ratio:.2f}x ({verdict(ratio >= target)}; CPU time {by_cpu:.2f}x)"
            row(f"{name}: speed / {other}", f">= {target}x", value)
    value = {}
    for s in scanners if f"--events --format json [{scanners[0]}]" in med else ():
        mbs = figs.mb / med[f"--events --format json [{s}]"]
        value[s] = f"{mbs:.0f} MB/s = {mbs / EVENTS_BEFORE_MBS:.1f}x"
        value[s] += f" ({verdict(mbs >= EVENTS_BEFORE_MBS * EVENTS_TARGET)})"
    if value:
        row("--events --format json / 5 MB/s", f">= {EVENTS_TARGET:.0f}x", value)
    for rules in args.rule_dir:
        value = {}
        for s in scanners:
            ratio = med[f"--rule {rules} [{s}]"] / med.get(f"default rules [{s}]", float("nan"))
            value[s] = f"{ratio:.2f}x the time ({verdict(ratio <= RULES_DIR_TARGET)})"
        row(f"--rule {rules}: time / default rules", f"<= {RULES_DIR_TARGET:.0f}x", value)
    if args.baseline and "python" in scanners:
        for name in ("default rules", "--ruleset upstream"):
            if f"{name} [baseline]" not in med:
                continue
            ratio = med[f"{name} [python]"] / med[f"{name} [baseline]"]
            by_cpu = figs.cpu[f"{name} [python]"] / figs.cpu[f"{name} [baseline]"]
            row(
                f"{name}: python scanner time / baseline",
                "<= 1.0x (no slower)",
                {"python": f"{ratio:.2f}x ({verdict(ratio <= 1.05)}; CPU time {by_cpu:.2f}x)"},
            )
    check_alerts(figs, scanners)


def run_output(cmd: Sequence[str], env: dict[str, str]) -> bytes:
    return subprocess.run(cmd, capture_output=True, env=env, check=False).stdout


def check_alerts(figs: Figures, scanners: Sequence[str]) -> None:
    """The upstream rule's alerts against the generator's list; both scanners' bytes."""
    expected = sorted(figs.expected["alerts"])  # type: ignore[call-overload]
    digests: dict[str, set[str]] = {}
    for s in scanners:
        env = Reader("", (), s).env
        for name, extra in (
            ("default rules", ()),
            ("--ruleset upstream", ("--ruleset", "upstream")),
        ):
            out = run_output(kexecwatch_cmd(figs.path, *extra), env)
            digests.setdefault(name, set()).add(hashlib.sha256(out).hexdigest())
            if name != "default rules":
                continue
            docs = [json.loads(line) for line in out.splitlines()]
            found = sorted(d["auditd"]["id"] for d in docs if d["rule"]["id"] == UPSTREAM_RULE_ID)
            same = "identical" if found == expected else "**DIFFERENT**"
            print(
                f"\nalerts [{s}]: {len(docs)} with the default rules; the upstream rule's "
                f"{len(found)} against the {len(expected)} the generator expects: {same}"
            )
    if len(scanners) > 1:
        for name, ds in digests.items():
            same = "yes" if len(ds) == 1 else "**NO**"
            print(f"{name}: same output bytes for every scanner: {same}")


def rss_table(args: argparse.Namespace, scanners: Sequence[str]) -> None:
    shape = args.shapes[0]
    print(f"\n### peak RSS, shape `{shape}` (default rules; /usr/bin/time -v)\n")
    print(
        "| log | "
        + " | ".join(f"kexecwatch [{s}]" for s in scanners)
        + " | auparse loop | ausearch |"
    )
    print("|---|" + "---:|" * (len(scanners) + 2))
    worst = {s: 0.0 for s in scanners}
    for size in args.rss_sizes:
        p = log_for(size, args.seed, shape)
        cells = []
        for s in scanners:
            mb = peak_rss_mb(kexecwatch_cmd(p), Reader("", (), s).env)
            worst[s] = max(worst[s], mb)
            cells.append(f"{mb:.0f} MB")
        others = {r.name: r for r in readers(p)}
        cells.append(f"{peak_rss_mb(others['auparse loop'].cmd):.0f} MB")
        cells.append(f"{peak_rss_mb(others['ausearch -c kexec --raw'].cmd):.0f} MB")
        print(f"| {p.stat().st_size / 1e6:.0f} MB | " + " | ".join(cells) + " |")
    for s in scanners:
        print(
            f"[{s}] largest peak RSS {worst[s]:.0f} MB (target <= {RSS_TARGET_MB:.0f} MB: "
            f"{verdict(worst[s] <= RSS_TARGET_MB)})"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="kexecwatch replay benchmark")
    parser.add_argument("--size", default="300M", help="log size for the speed tables")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--shape",
        dest="shapes",
        action="append",
        choices=[*SHAPES, "all"],
        help="log shape (bench/generate.py; repeatable; all: every shape; default mixed)",
    )
    parser.add_argument(
        "--scanner",
        dest="scanners",
        action="append",
        choices=SCANNERS,
        help="KEXECWATCH_SCANNER values to measure (repeatable; default both)",
    )
    parser.add_argument(
        "--rules-dir",
        dest="rule_dir",
        action="append",
        default=[],
        metavar="DIR",
        help="also time --no-builtin-rules --rule DIR (a detection-rules checkout; repeatable)",
    )
    parser.add_argument(
        "--baseline", metavar="EXE", help="another kexecwatch to time the same way (no scanner)"
    )
    parser.add_argument(
        "--variants",
        default="default,upstream,events",
        help="kexecwatch readers timed per scanner: default, upstream, events (default all)",
    )
    parser.add_argument("--no-rss", action="store_true", help="skip the peak RSS table")
    parser.add_argument(
        "--rss-sizes",
        default="100M,300M,1G",
        help="log sizes of the RSS table (default 100M,300M,1G)",
    )
    args = parser.parse_args(argv)
    args.shapes = list(SHAPES) if "all" in (args.shapes or []) else (args.shapes or ["mixed"])
    args.rss_sizes = args.rss_sizes.split(",")
    args.variants = args.variants.split(",")
    if not set(args.variants) <= set(VARIANTS):
        parser.error(f"--variants: each of {', '.join(VARIANTS)}")

    wanted = args.scanners or list(SCANNERS)
    scanners = []
    for s in wanted:
        problem = scanner_problem(s)
        if problem is None:
            scanners.append(s)
        elif args.scanners:  # asked for by name: a clear error
            parser.error(f"--scanner {s}: {problem}")
        else:
            print(f"run.py: the {s} scanner is not measured: {problem}", file=sys.stderr)
    if not scanners:
        parser.error("no scanner can run")
    if args.rule_dir:
        problem = rules_dir_problem(args.rule_dir)
        if problem:
            print(
                f"run.py: --rules-dir: this kexecwatch cannot replay with --rule DIR "
                f"(issue 15): {problem}",
                file=sys.stderr,
            )
            return 2
    if args.baseline and not shutil.which(args.baseline):
        parser.error(f"--baseline {args.baseline}: not an executable")

    print(
        f"kexecwatch: {kexecwatch_exe()}; scanners measured: {', '.join(scanners)}; "
        f"load average before: {os.getloadavg()[0]:.1f}"
    )
    for shape in args.shapes:
        report(measure(shape, args, scanners), scanners, args)
    if not args.no_rss:
        rss_table(args, scanners)
    return 0


if __name__ == "__main__":
    sys.exit(main())
