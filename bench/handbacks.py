"""What the native scanner leaves to Python, per log: calls, stops and hand-backs by kind.

Replays a log in this process (the built-in rules, or ``--ruleset``) with the native
scanner, in the chunks ``kexecwatch replay`` reads (cut between events,
:func:`~kexecwatch.adapters.replay.whole_events`), and counts:

- the library's scan calls and how each ended (end of chunk, hand-back, verdict, live);
- each hand-back by the unit at the position handed back: its record type, and for a
  ``SYSCALL`` line whether the Python fast path reads a whole run there (then a verdict
  or an inode sent it to Python), two interleaved runs, or neither;
- what Python then did: whole runs and pairs its fast path took, lines it read one by
  one (the reference path), by record type;
- for each whole run Python's fast path read (not in a pair), the reason: which prefilter part of
  its verdict key (:meth:`~kexecwatch.core.scan.scanner._Accepting.split`) keeps it out
  of the native scan, and whether Python then needed the run in full or only learned
  from it (``--rules-dir``: the many-rules case of issue 15).

Every hand-back is a round trip through ctypes and Python's per-event work; a log shape
that is slow with the native scanner shows here why. The figures are counts, not times,
so they are the same on a loaded machine.

Usage::

    python bench/handbacks.py bench/out/audit-mixed-100M-seed1.log
    python bench/handbacks.py LOG --ruleset upstream --json
    python bench/handbacks.py LOG --rules-dir ../shared/detection-rules
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from kexecwatch.adapters.replay import whole_events  # noqa: E402
from kexecwatch.adapters.sources import CHUNK_SIZE  # noqa: E402
from kexecwatch.core.audit.nativeapi import STOP_HANDBACK  # noqa: E402
from kexecwatch.core.detect.detector import Detector, DetectorOptions  # noqa: E402
from kexecwatch.core.scan.fastpath import SYSCALL_HEAD, run_end, split_pair  # noqa: E402
from kexecwatch.core.scan.nativescan import NativeScanner  # noqa: E402
from kexecwatch.core.scan.scanner import in_window  # noqa: E402
from kexecwatch.native.binding import load  # noqa: E402
from kexecwatch.rules import load_builtin_rules, load_rules  # noqa: E402

STOPS = {0: "end", 1: "handback", 2: "verdict", 3: "live", 4: "due", 5: "render", 6: "plain"}


def unit_kind(buf: bytes, pos: int) -> str:
    """What the unit at line start ``pos`` of ``buf`` (led by a newline) is."""
    space = buf.find(b" ", pos, pos + 64)
    if not buf.startswith(b"type=", pos) or space < 0:
        return "other line"
    kind = buf[pos + 5 : space].decode("ascii", "replace")
    if kind != "SYSCALL":
        return kind
    m = SYSCALL_HEAD.match(buf, pos - 1)
    if m is None:
        return "SYSCALL (not canonical)"
    if run_end(buf, m) is not None:
        return "SYSCALL (whole run: verdict or inode)"
    pair = split_pair(buf, m)
    if pair is not None and all(
        (head := SYSCALL_HEAD.match(part)) is not None and run_end(part, head) is not None
        for part in pair[:2]
    ):
        return "SYSCALL (interleaved pair)"
    return f"SYSCALL (not a run: {layout(buf, pos, m.group('id'))})"


def layout(buf: bytes, pos: int, event_id: bytes, most: int = 12) -> str:
    """The record types of the lines from ``pos`` on, ``*`` for another event's, ``+``
    for a repeated type, up to this event's PROCTITLE or EOE (at most ``most`` lines)."""
    tag = b" msg=audit(" + event_id + b"):"
    out: list[str] = []
    for _ in range(most):
        nl = buf.find(b"\n", pos)
        space = buf.find(b" ", pos, pos + 64)
        if nl < 0 or space < 0:
            break
        kind = buf[pos + 5 : space].decode("ascii", "replace")
        name = kind if buf.startswith(tag, space) else "*"
        if not out or out[-1].rstrip("+") != name:
            out.append(name)
        elif not out[-1].endswith("+"):
            out[-1] += "+"
        if name in ("PROCTITLE", "EOE"):
            break
        pos = nl + 1
    return ",".join(out)


#: What a rule test that reads no command line reads (``argtest.Reads``, in order).
PLAIN_READS = (
    "parent name/exe",
    "cwd",
    "ids",
    "capabilities",
    "parent command line",
)


def run_reason(scanner: NativeScanner, buf: bytes, m: Any, run: Any) -> str:
    """Why the whole run ``m`` heads (``run_end``) went to Python: the parts of its
    verdict key's prefilters that keep it there. Ends with what Python then made of it:
    ``needed`` (an event in full) or ``learned only``."""
    key = m.group("call", "success", "comm", "exe")
    verdict = scanner.verdicts.get(key) or scanner.verdict(key)
    syscall, _, _, _, evaluated, for_rules, for_others = verdict
    time_ms = int(m["sec"]) * 1000 + int(m["ms"])
    parts: list[str] = []
    if for_others:
        parts.append("other consumer")
    if evaluated and in_window(time_ms, scanner.since_ms, scanner.until_ms):
        if for_rules is True:
            parts.append("rule: static")
        elif for_rules:
            _gate, gated, plain, others = for_rules.split()
            if others:
                kinds = sorted(
                    {
                        "record types"
                        if p.record_types is not None
                        else "inodes"
                        if p.path_items is not None
                        else "command lines beyond own needles"
                        for p in others
                    }
                )
                parts.append("rule others: " + "+".join(kinds))
            if any(p is not False for p in plain):
                read = [n for n, on in zip(PLAIN_READS, for_rules.plain_reads, strict=True) if on]
                parts.append("rule plain: " + ("+".join(read) or "always"))
            if gated:
                parts.append("rule needles")
    outcome = scanner.fast_verdict(key, buf, m.start() + 1, run, time_ms, extra=m["extra"])
    done = "needed" if outcome is None else "learned only"
    return f"{syscall}: {', '.join(parts) or 'nothing'} -> {done}"


class Counts:
    """The counts of one replay (see the module docstring)."""

    def __init__(self) -> None:
        self.calls = 0
        self.stops: Counter[str] = Counter()
        self.handbacks: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self.python_runs = 0
        self.python_pair_events = 0
        self.reference_lines: Counter[str] = Counter()

    def as_dict(self) -> dict[str, Any]:
        """The counts as plain data."""
        return {
            "calls": self.calls,
            "stops": dict(self.stops),
            "handbacks": dict(self.handbacks.most_common()),
            "reasons": dict(self.reasons.most_common()),
            "python_runs": self.python_runs,
            "python_pair_events": self.python_pair_events,
            "reference_lines": dict(self.reference_lines.most_common()),
        }


def count(det: Detector, chunks: Any) -> Counts:
    """Feed ``chunks`` to ``det`` (native) with spies on its scanner; the counts."""
    scanner = det._scanner
    if not isinstance(scanner, NativeScanner):
        raise SystemExit("handbacks.py: the detector does not run the native scanner")
    counts = Counts()
    session = scanner.session
    real_scan = session.scan

    def scan(buf: bytes, start: int, state: Any, due_ms: int | None = None) -> Any:
        result = real_scan(buf, start, state, due_ms)
        counts.calls += 1
        counts.stops[STOPS.get(result.stop, str(result.stop))] += 1
        if result.stop == STOP_HANDBACK:
            counts.handbacks[unit_kind(buf, result.end)] += 1
        return result

    session.scan = scan  # type: ignore[method-assign]
    real_event = scanner.fast_event

    def fast_event(*args: Any, **kwargs: Any) -> bool:
        if not kwargs.get("taken", len(args) > 5 and args[5]):
            counts.reasons[run_reason(scanner, *args[:3])] += 1
        taken = real_event(*args, **kwargs)
        if taken and kwargs.get("taken", len(args) > 5 and args[5]):
            counts.python_pair_events += 1
        elif taken:
            counts.python_runs += 1
        return taken

    scanner.fast_event = fast_event  # type: ignore[method-assign]
    host = scanner._host
    real_line = host.line

    def line(raw: bytes, *rest: Any) -> None:
        counts.reference_lines[unit_kind(b"\n" + raw + b"\n", 1)] += 1
        real_line(raw, *rest)

    host.line = line  # type: ignore[method-assign]
    for chunk in whole_events(chunks):
        det.feed(chunk, framed=True)
    det.flush()
    return counts


def read_chunks(path: Path) -> Any:
    """The file in replay's chunk size."""
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_SIZE):
            yield chunk


def main(argv: list[str] | None = None) -> int:
    """Command line: ``handbacks.py LOG [--ruleset all|upstream|kexecwatch]
    [--rules-dir DIR]... [--json]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", type=Path)
    parser.add_argument("--ruleset", default="all", help="built-in rule set (default all)")
    parser.add_argument(
        "--rules-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="rule files or directories instead of the built-in rules (as replay's "
        "--no-builtin-rules --rule DIR); repeatable",
    )
    parser.add_argument("--json", action="store_true", help="print the counts as JSON")
    args = parser.parse_args(argv)
    rules = (
        load_rules(args.rules_dir, builtin=False)
        if args.rules_dir
        else load_builtin_rules(args.ruleset)
    )
    det = Detector(
        rules,
        host_name="bench",
        options=DetectorOptions(),
        native=load(),
    )
    counts = count(det, read_chunks(args.log))
    if args.json:
        print(json.dumps({"log": str(args.log), **counts.as_dict()}))
        return 0
    stats = det.stats
    print(f"{args.log.name}: {stats.lines:,} lines, {stats.events:,} events")
    print(f"native scan calls: {counts.calls:,}  stops: {dict(counts.stops)}")
    print("hand-backs by the unit handed back:")
    for kind, n in counts.handbacks.most_common():
        print(f"  {n:>9,}  {kind}")
    print("whole runs Python read, by reason (syscall: prefilter parts -> Python's use):")
    for reason, n in counts.reasons.most_common():
        print(f"  {n:>9,}  {reason}")
    runs, pairs = counts.python_runs, counts.python_pair_events
    print(f"Python fast path: {runs:,} runs, {pairs:,} pair events")
    print("lines read one by one (reference path), by type:")
    for kind, n in counts.reference_lines.most_common():
        print(f"  {n:>9,}  {kind}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
