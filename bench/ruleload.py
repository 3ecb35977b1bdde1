"""What loading a rule directory costs a whole ``kexecwatch replay``, with the rule cache
cold, warm and off.

Replays a log of one audit record (so the run is all start-up and rule loading) with the
built-in rules alone (the floor), then with ``--rule DIR`` added: ``--no-rule-cache``, a
cold cache (a new, empty ``$XDG_CACHE_HOME`` each round) and a warm one. The variants run
interleaved, ROUNDS times each; each run's CPU time (user + system, the operating system's
accounting of the finished child) is read with ``wait4``. Prints the median of each and,
for the rule directory, its cost above the floor. Every variant must print the same
output: the script checks it. With ``--baseline EXE`` another installed kexecwatch (one
without the cache, say) runs ``--rule DIR`` in the same rounds.

Usage::

    python bench/ruleload.py ../shared/detection-rules
    python bench/ruleload.py ../shared/detection-rules --rounds 9 --kexecwatch /path/to/kexecwatch
    python bench/ruleload.py ../shared/detection-rules --baseline OTHER/bin/kexecwatch
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ONE_RECORD = (
    b"type=SYSCALL msg=audit(1700000000.000:1): arch=c000003e syscall=59 success=yes exit=0 "
    b"a0=1 a1=2 a2=3 a3=4 items=1 ppid=1 pid=2 auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 "
    b'egid=0 sgid=0 fsgid=0 tty=(none) ses=1 comm="true" exe="/usr/bin/true" key=(null)\n'
)


def cpu_seconds(argv: list[str], env: dict[str, str]) -> tuple[float, bytes]:
    """User + system seconds of one run of ``argv``, and what it printed."""
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        return usage.ru_utime + usage.ru_stime, out.read()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rules", help="a rule directory, such as a detection-rules checkout")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--kexecwatch",
        default=None,
        help="the kexecwatch executable (default: this Python's -m kexecwatch)",
    )
    parser.add_argument(
        "--baseline", metavar="EXE", help="another kexecwatch, timed with --rule DIR too"
    )
    args = parser.parse_args()
    base = [args.kexecwatch] if args.kexecwatch else [sys.executable, "-m", "kexecwatch"]
    work = Path(tempfile.mkdtemp(prefix="kw-ruleload-"))
    try:
        log = work / "one.log"
        log.write_bytes(ONE_RECORD)
        replay = [*base, "replay", "--quiet", "--host-name", "h"]
        rules = ["--rule", args.rules]
        variants = {
            "built-in rules alone (floor)": (replay, False),
            "--rule DIR --no-rule-cache": ([*replay, *rules, "--no-rule-cache"], False),
            "--rule DIR, cache cold": ([*replay, *rules], True),
            "--rule DIR, cache warm": ([*replay, *rules], False),
        }
        if args.baseline:
            variants["baseline --rule DIR"] = ([args.baseline, *replay[len(base) :], *rules], True)
        times: dict[str, list[float]] = {name: [] for name in variants}
        outputs: dict[str, set[bytes]] = {name: set() for name in variants}
        warm_home = work / "warm"
        for round_no in range(args.rounds + 1):  # round 0 warms the cache and the OS
            for name, (argv, cold) in variants.items():
                home = work / f"cold-{round_no}" if cold else warm_home
                env = {**os.environ, "XDG_CACHE_HOME": str(home)}
                env.pop("PYTHONDONTWRITEBYTECODE", None)
                seconds, output = cpu_seconds([*argv, str(log)], env)
                if cold:
                    shutil.rmtree(home, ignore_errors=True)
                if round_no:
                    times[name].append(seconds)
                    outputs[name].add(output)
        floor = statistics.median(times["built-in rules alone (floor)"])
        print(f"{args.rounds} interleaved rounds, CPU seconds (user + system), median:")
        for name, values in times.items():
            median = statistics.median(values)
            extra = "" if median == floor else f"  (rules: {median - floor:.3f} s above the floor)"
            print(f"  {name:32} {median:.3f} s{extra}")
        dir_outputs = set().union(*(outputs[n] for n in variants if "DIR" in n))
        if len(dir_outputs) != 1:
            print("ruleload.py: the --rule DIR variants printed different output", file=sys.stderr)
            return 1
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
