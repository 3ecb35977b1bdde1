"""Many-rules floor (issue 15): the Python work every rule needs, whatever the scanner.

Issue 15's goal is that every loadable rule of a detection-rules checkout together costs
at most 3x the default rules on the 315 MB benchmark log. Python keeps the meaning: with
either scanner, every event that one rule's prefilter accepts is built into a process
event, completed from the process table and shown to the rules in Python. The native
scanner only decides, faster, which events those are. So what those events cost in Python,
plus what loading every rule costs, is a floor under the every-rule time of any scanner
that keeps the rules' meaning in Python.

What it measures, each run in its own process, interleaved over rounds (medians of CPU
seconds, user + system):

1. ``kexecwatch replay`` with the default rules, and with every rule of ``--rules-dir``,
   for each scanner that runs: the goal's ratio.
2. Start-up: the same two rule sets on an empty log (rule loading included).
3. Once per scanner, every rule, instrumented in-process: how many events were shown to
   the rules, and the seconds spent building their process events
   (``process_event_of_run``, ``Detector._process_event``) and completing and matching
   them (``Detector._on_process``: the table, the lineage, the document, the rules and the
   sequences). The wrappers add two ``perf_counter`` calls per call.

It prints, per scanner, the budget ``3 x default`` and the floor
``default + (every-rule start-up - default start-up) + needed-event seconds``: a scanner
whose floor is above its budget cannot meet the goal however fast it finds the events,
unless fewer events reach the rules or the rules' meaning leaves Python.

Usage::

    python bench/manyrules_floor.py --rules-dir ../shared/detection-rules
    python bench/manyrules_floor.py --rules-dir DIR --log /path/to/audit.log --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.run import SCANNERS, kexecwatch_cmd, log_for, scanner_problem, timed_cpu
from kexecwatch.rules import load_rules

#: Issue 15's goal: every rule together costs at most this many times the default rules.
GOAL = 3.0

# Runs kexecwatch's own entry point with the builders and the rule stage timed; writes
# {"events": shown to the rules, "build": s, "match": s} as JSON to argv[1].
INSTRUMENTED = r"""
import json, sys, time
from kexecwatch.core.detect import detector as D
spent = {"build": 0.0, "match": 0.0}
shown = [0]
clock = time.perf_counter

def timed(name, fn):
    def wrapper(*args, **kwargs):
        start = clock()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[name] += clock() - start
    return wrapper

D.process_event_of_run = timed("build", D.process_event_of_run)
D.Detector._process_event = timed("build", D.Detector._process_event)
D.Detector._on_process = timed("match", D.Detector._on_process)
match = D.Detector._match

def counted(self, *args, **kwargs):
    shown[0] += 1
    return match(self, *args, **kwargs)

D.Detector._match = counted
out = sys.argv[1]
sys.argv = ["kexecwatch", *sys.argv[2:]]
from kexecwatch.program import main
code = 0
try:
    code = main()
except SystemExit as exc:
    code = exc.code
with open(out, "w") as f:
    json.dump({"events": shown[0], "exit": code, **spent}, f)
"""


def instrumented(cmd: list[str], scanner: str) -> dict[str, float]:
    """Run ``cmd`` (a ``kexecwatch`` command line) in-process with the timers."""
    env = {**os.environ, "KEXECWATCH_SCANNER": scanner}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "spent.json"
        subprocess.run(
            [sys.executable, "-c", INSTRUMENTED, str(out), *cmd[1:]],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            check=False,
        )
        if not out.exists():
            raise SystemExit(f"manyrules_floor.py: the instrumented run ({scanner}) failed")
        data: dict[str, float] = json.loads(out.read_text())
    if data["exit"] not in (0, 1):  # 1: alerts found
        raise SystemExit(
            f"manyrules_floor.py: {' '.join(cmd[1:])} exits {data['exit']} ({scanner})"
        )
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rules-dir", required=True, help="a detection-rules checkout")
    parser.add_argument("--log", type=Path, help="the audit log (default: run.py's classic)")
    parser.add_argument("--size", default="300M", help="the generated log's size")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    if not load_rules([args.rules_dir], builtin=False):
        raise SystemExit(f"manyrules_floor.py: no rule of {args.rules_dir} loads")
    log = args.log or log_for(args.size, args.seed, "classic")
    every = ["--no-builtin-rules", "--rule", args.rules_dir]
    scanners = [s for s in SCANNERS if scanner_problem(s) is None]
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty.log"
        empty.write_bytes(b"")
        cases = {
            "default": kexecwatch_cmd(log),
            "every": kexecwatch_cmd(log, *every),
            "default start-up": kexecwatch_cmd(empty),
            "every start-up": kexecwatch_cmd(empty, *every),
        }
        cpu: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.rounds):
            for scanner in scanners:
                env = {**os.environ, "KEXECWATCH_SCANNER": scanner}
                for name, cmd in cases.items():
                    cpu.setdefault((scanner, name), []).append(timed_cpu(cmd, env)[1])
        spent = {s: instrumented(cases["every"], s) for s in scanners}
    print(f"log: {log} ({log.stat().st_size / 1e6:.0f} MB); rules: {args.rules_dir}")
    print(f"CPU seconds, median of {args.rounds}; goal: every rule <= {GOAL:g}x default\n")
    head = (
        f"{'scanner':8} {'default':>8} {'every':>8} {'ratio':>6} {'budget':>7} "
        f"{'start+':>7} {'shown':>9} {'build':>6} {'match':>6} {'floor':>6} {'floor/budget':>12}"
    )
    print(head)
    for scanner in scanners:
        med = {name: statistics.median(cpu[(scanner, name)]) for name in cases}
        got = spent[scanner]
        extra_start = med["every start-up"] - med["default start-up"]
        floor = med["default"] + extra_start + got["build"] + got["match"]
        budget = GOAL * med["default"]
        print(
            f"{scanner:8} {med['default']:8.2f} {med['every']:8.2f} "
            f"{med['every'] / med['default']:5.2f}x {budget:7.2f} {extra_start:7.2f} "
            f"{int(got['events']):9,} {got['build']:6.2f} {got['match']:6.2f} {floor:6.2f} "
            f"{floor / budget:11.2f}x"
        )
    print(
        "\nstart+: every-rule start-up less default start-up; shown: events shown to the"
        " rules;\nbuild/match: seconds making and matching them (instrumented run);"
        "\nfloor: default + start+ + build + match."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
