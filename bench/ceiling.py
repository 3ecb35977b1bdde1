"""Ceiling benchmark: how fast can *any* CPython reader see every exec of an audit log?

Issue 6 asks ``kexecwatch replay`` for >= 1.5x the throughput of a loop over Debian's C
parser auparse and >= 3x ``ausearch``, while every execve SYSCALL record still reaches the
process table. This script measures, on the same generated ENRICHED log as
``bench/run.py``, idealised programs that do a strict subset of that work, each as a
separate subprocess of this interpreter (so start-up counts, as it does for kexecwatch),
interleaved over rounds, and prints medians next to the budget the targets allow.

What each probe bounds:

1. ``python -c pass``: interpreter start-up, paid by any Python design.
2. kexecwatch start-up: ``kexecwatch replay`` of an empty file (every rule loaded, nothing
   read); what kexecwatch pays before its first byte.
3. read floor: 8 MiB reads and ``chunk.count(b"\\n")``, the cheapest full pass over the
   file: reading it costs at least this.
4. literal prefilter: 8 MiB reads and ``chunk.count(b'comm="kexec"')``, what a rule-literal
   prefilter costs by itself. It counts rather than tests ``in``: ``in`` stops at the first
   hit, and with a few kexec execs per 8 MiB it would time only part of the scan.
5. idealised "see every exec", regex: per chunk (completed to a whole line with
   ``readline``, led by a newline so the first record matches too), one ``re.findall`` of a
   minimal SYSCALL pattern capturing (event id, ppid, pid, comm) and one
   ``dict.update(zip(pids, rows))``. No validation, no assembler, no rules: a lower bound
   for any design that finds exec records with ``re``. ``re`` is a backtracking engine
   written in C that scans a few ns per byte; the lazy ``[^\\n]*?`` runs cost more than
   finding the literal prefix.
6. idealised "see every exec", bytes methods: per chunk, ``split(b" ppid=")``, then
   ``map(methodcaller("split", b" ", 2), pieces)`` and one ``dict.update`` of pid -> ppid
   pairs (``itemgetter(1, 0)``; the key keeps its ``pid=`` prefix, and comm is not even
   read). Bytes methods run at memchr speed, but each exec still costs several
   Python-level objects (a piece, a list, its items, a tuple, a dict slot): a lower bound
   for any design built on bytes methods.
7. the auparse loop and ``ausearch`` exactly as ``bench/run.py`` runs them, and the full
   ``kexecwatch replay`` (default rules) with each scanner that runs
   (``KEXECWATCH_SCANNER=python`` and ``=native``).
8. the native floor: reads of replay's own size
   (``kexecwatch.adapters.sources.CHUNK_SIZE``, 256 KiB:
   larger fresh ``bytes`` cost more in page faults and copies than they save in calls)
   handed to the native library through its ctypes binding
   (``kexecwatch.native.binding``), which splits lines, recognises whole events, tracks
   serial gaps and keeps the process table of every exec, with the verdicts of no rule
   at all (each new verdict key answered by what the table must learn, nothing else);
   a line the library hands back is skipped, not parsed (its serial counted as seen).
   What replay with the native scanner costs at least, whatever the rules: the distance
   from it to probe 7's native figure is what the Python side (rules, handed-back
   events, output) adds; the count of units handed back shows how much Python still
   reads.

A design that keeps the process table exact must touch every exec record, so it costs at
least start-up plus probe 5 or probe 6. The script prints the target wall time,
``min(auparse loop / 1.5, ausearch / 3)``, each probe's share of it, and whether probes 5
and 6 alone (less their own interpreter start-up, already in kexecwatch's) exceed what is
left of it after kexecwatch's start-up. The count column is what each program saw (lines,
literal hits, SYSCALL records, exec events, alerts), so the readers can be checked to have
done comparable work.

Usage::

    python bench/ceiling.py                      # mixed 300 MB log, 3 rounds
    python bench/ceiling.py --shape classic --size 100M --rounds 5

Needs what ``bench/run.py`` needs (``/usr/bin/python3`` with ``python3-audit``, ``ausearch``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.generate import SHAPES
from bench.run import (
    SCANNERS,
    SYSTEM_PYTHON,
    Reader,
    kexecwatch_cmd,
    log_for,
    readers,
    scanner_problem,
    timed,
)
from kexecwatch.adapters.sources import CHUNK_SIZE

# Occurrences of sys.argv[2] in 8 MiB reads: the read floor (newlines) and the prefilter.
COUNT_IN_CHUNKS = """
import sys
needle = sys.argv[2].encode()
n = 0
with open(sys.argv[1], "rb", buffering=0) as f:
    while chunk := f.read(1 << 23):
        n += chunk.count(needle)
print(n)
"""

# Chunks are completed with readline() rather than cut at the last newline with the rest
# carried: same whole-line chunks, one copy fewer per chunk, so a lower bound stays low.
REGEX_EXECS = r"""
import re, sys
from operator import itemgetter
SYSCALL = re.compile(
    rb"\ntype=SYSCALL msg=audit\(([0-9.:]+)\): [^\n]*? ppid=([0-9]+) pid=([0-9]+) "
    rb"[^\n]*? comm=(\"[^\"\n]*\"|[0-9A-F]+) "
)
pid = itemgetter(2)
table = {}
n = 0
with open(sys.argv[1], "rb") as f:
    while chunk := f.read(1 << 23):
        rows = SYSCALL.findall(b"".join((b"\n", chunk, f.readline())))
        n += len(rows)
        table.update(zip(map(pid, rows), rows))
print(n)
"""

BYTES_EXECS = """
import sys
from itertools import islice
from operator import itemgetter, methodcaller
split3 = methodcaller("split", b" ", 2)
pid_ppid = itemgetter(1, 0)
table = {}
n = 0
with open(sys.argv[1], "rb") as f:
    while chunk := f.read(1 << 23):
        pieces = (chunk + f.readline()).split(b" ppid=")
        n += len(pieces) - 1
        table.update(map(pid_ppid, map(split3, islice(pieces, 1, None))))
print(n)
"""

# The native floor: read, native scan and table, through the binding; no rule, no Python
# parse (a handed-back line is skipped). Reads sys.argv[2] bytes at a time (replay's
# CHUNK_SIZE, passed in: importing kexecwatch.adapters.sources would time gzip's import too).
# Prints events taken, then lines handed back.
NATIVE_FLOOR = r"""
import sys
from kexecwatch.core.audit.msgtypes import TYPE_NUMBERS, is_daemon_record, is_single_record
from kexecwatch.core.process.table import DEFAULT_MAX_ARGS_BYTES, DEFAULT_MAX_ENTRIES
from kexecwatch.core.audit.syscalls import EXEC_SYSCALLS, FORK_SYSCALLS, syscall_name
from kexecwatch.core.audit.msgtypes import TELEMETRY_TYPES
from kexecwatch.native.binding import QuietState, load

# The table's types and the common user-space ones (unknown names are single records).
USERSPACE = (
    "USER_AUTH USER_ACCT USER_MGMT CRED_ACQ CRED_DISP USER_START USER_END USER_CHAUTHTOK "
    "USER_ERR CRED_REFR USYS_CONFIG USER_LOGIN USER_LOGOUT ADD_USER DEL_USER ADD_GROUP "
    "DEL_GROUP USER_ROLE_CHANGE USER_CMD USER_TTY SERVICE_START SERVICE_STOP SYSTEM_BOOT "
    "SYSTEM_SHUTDOWN SYSTEM_RUNLEVEL GRP_MGMT CRYPTO_KEY_USER CRYPTO_SESSION USER_AVC"
).split()
singles = [
    t for t in sorted({*TYPE_NUMBERS, *USERSPACE})
    if is_single_record(t) and not is_daemon_record(t) and t not in TELEMETRY_TYPES
]
session = load().new_session(
    window_ms=5000, max_entries=DEFAULT_MAX_ENTRIES, max_args_bytes=DEFAULT_MAX_ARGS_BYTES,
    max_lateness_ms=None, since_ms=None, until_ms=None, live=False, single_types=singles,
    fault_on=None,
)

def learn(key):
    call, success = key.split(b"\0")[:2]
    arch, number = (f.split(b"=")[1].decode() for f in call.split())
    name = syscall_name(arch, int(number))
    if success == b"yes" and name in EXEC_SYSCALLS:
        return 1
    if success == b"yes" and name in FORK_SYSCALLS:
        return 2
    return 3

state = None
taken = handed = 0
with open(sys.argv[1], "rb") as f:
    carry = b""
    while chunk := f.read(int(sys.argv[2])):
        buf = carry + chunk
        cut = buf.rfind(b"\n") + 1
        buf, carry = buf[:cut], buf[cut:]
        if state is None:  # what Python learns from the first event: clock and serial
            head = buf[buf.index(b"msg=audit(") + 10 : buf.index(b"):")]
            stamp, serial = head.split(b":")
            sec, ms = stamp.split(b".")
            now = int(sec) * 1000 + int(ms)
            state = QuietState(now, 0, int(serial), now, [], -1)
        start = 0
        while start < len(buf):
            r = session.scan(buf, start, state)
            state, taken = r.state, taken + r.events
            if r.stop == 2:
                session.set_verdict(r.key, learn(r.key))
                start = r.end
            elif r.stop == 1:
                # Python would handle this unit: skip its line, its serial counted as seen
                # (else the gap tracker would wait for it, unlike in a real replay).
                handed += 1
                start = buf.index(b"\n", r.end) + 1
                at = buf.find(b"msg=audit(", r.end, start)
                end = buf.find(b"):", at, start)
                serial = buf[buf.find(b":", at, end) + 1 : end]
                if at >= 0 and end >= 0 and serial.isdigit() and int(serial) >= state.expected:
                    state.expected = int(serial) + 1
                    state.ahead = [a for a in state.ahead if a[0] > int(serial)]
            else:
                start = r.end if r.end > start else len(buf)
print(handed)
print(taken)
"""

NATIVE = "8. native floor (read + scan + table, no rules)"
IDEALISED = ("5. idealised execs, regex", "6. idealised execs, bytes methods")

Done = subprocess.CompletedProcess[str]
Counter = Callable[[Done], str]


def printed(what: str) -> Counter:
    """Reads the count a probe program prints last."""
    return lambda done: f"{int(done.stdout.split()[-1]):,} {what}"


def _syscall_records(done: Done) -> str:
    n = sum(line.startswith("type=SYSCALL") for line in done.stdout.splitlines())
    return f"{n:,} kexec SYSCALL records"


def _native_floor(done: Done) -> str:
    handed, taken = (int(n) for n in done.stdout.split()[-2:])
    return f"{taken:,} events taken natively, {handed:,} units handed back (skipped)"


def _kexecwatch(done: Done) -> str:
    m = re.search(r"(\d+) process events", done.stderr)
    events = f"{int(m.group(1)):,}" if m else "?"
    return f"{events} process events, {len(done.stdout.splitlines())} alerts"


@dataclass(frozen=True, slots=True)
class Probe:
    """One timed program and how to read what it saw.

    Attributes:
        name: label in the tables.
        cmd: the command timed.
        reads_log: whether it reads the log (MB/s is shown only then).
        counter: what it saw, read from a run of ``count_cmd``; None: nothing to count.
        count_cmd: the command run once for the count (default: ``cmd``).
        scanner: ``KEXECWATCH_SCANNER`` for a kexecwatch probe.
    """

    name: str
    cmd: tuple[str, ...]
    reads_log: bool = True
    counter: Counter | None = None
    count_cmd: tuple[str, ...] | None = None
    scanner: str = ""

    @property
    def env(self) -> dict[str, str]:
        return Reader("", (), self.scanner).env


def probes(path: Path, empty: Path, scanners: list[str]) -> list[Probe]:
    """Every probe, in table order."""
    py = sys.executable
    log = str(path)
    rd = {r.name: r.cmd for r in readers(path)}
    out = [
        Probe("1. python -c pass", (py, "-c", "pass"), reads_log=False),
        Probe("2. kexecwatch start-up (empty file)", tuple(kexecwatch_cmd(empty)), False),
        Probe("3. read floor", (py, "-c", COUNT_IN_CHUNKS, log, "\n"), True, printed("lines")),
        Probe(
            "4. literal prefilter",
            (py, "-c", COUNT_IN_CHUNKS, log, 'comm="kexec"'),
            True,
            printed("hits"),
        ),
        Probe(
            "5. idealised execs, regex",
            (py, "-c", REGEX_EXECS, log),
            True,
            printed("SYSCALL records"),
        ),
        Probe(
            "6. idealised execs, bytes methods",
            (py, "-c", BYTES_EXECS, log),
            True,
            printed("ppid= fields"),
        ),
        Probe("7. auparse loop", rd["auparse loop"], True, printed("SYSCALL records")),
        Probe("7. ausearch", rd["ausearch -c kexec --raw"], True, _syscall_records),
    ]
    kw = rd["default rules"]
    for scanner in scanners:
        out.append(
            Probe(
                f"7. kexecwatch replay [{scanner}]",
                kw,
                True,
                _kexecwatch,
                tuple(c for c in kw if c != "--quiet"),
                scanner,
            )
        )
    floor = (py, "-c", NATIVE_FLOOR, log, str(CHUNK_SIZE))
    out.append(Probe(NATIVE, floor, True, _native_floor))
    return out


def count(probe: Probe) -> str:
    """What the probe saw, from one untimed run; raises RuntimeError when it failed."""
    if probe.counter is None:
        return ""
    done = subprocess.run(
        probe.count_cmd or probe.cmd, capture_output=True, text=True, env=probe.env, check=False
    )
    lines = done.stderr.strip().splitlines() or [f"exit {done.returncode}"]
    if done.returncode not in (0, 1):  # 1: kexecwatch found alerts
        raise RuntimeError(lines[-1])
    try:
        return probe.counter(done)
    except (ValueError, IndexError):  # a Python probe that died prints no count
        raise RuntimeError(lines[-1]) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="CPython ceiling for kexecwatch replay")
    parser.add_argument("--size", default="300M", help="log size")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--shape", choices=list(SHAPES), default="mixed", help="log shape")
    args = parser.parse_args(argv)

    path = log_for(args.size, args.seed, args.shape)
    expected = json.loads(Path(str(path) + ".expected.json").read_text())
    size_mb = path.stat().st_size / 1e6
    scanners = [s for s in SCANNERS if scanner_problem(s) is None]
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty.log"
        empty.touch()
        all_probes = probes(path, empty, scanners)
        timed(["cat", str(path)])  # warm the page cache
        counts: dict[str, str] = {}
        for p in list(all_probes):
            try:
                counts[p.name] = count(p)
            except RuntimeError as exc:
                print(f"ceiling.py: {p.name}: not measured: {exc}", file=sys.stderr)
                all_probes.remove(p)
        times: dict[str, list[float]] = {p.name: [] for p in all_probes}
        for round_no in range(args.rounds):
            for p in all_probes:  # interleaved: one of each per round
                times[p.name].append(timed(list(p.cmd), p.env))
            print(f"round {round_no + 1}/{args.rounds} done", file=sys.stderr)

    med = {name: statistics.median(ts) for name, ts in times.items()}
    print(
        f"\nfile: {path} ({size_mb:.0f} MB, shape {args.shape}, {expected['records']:,} "
        f"records, {expected['events']:,} exec events, seed {args.seed}), {args.rounds} "
        f"interleaved rounds, medians; probes under {sys.executable}, auparse under "
        f"{SYSTEM_PYTHON}; load average {os.getloadavg()[0]:.1f} after the runs\n"
    )
    print("| probe | seconds | MB/s | count |")
    print("|---|---:|---:|---|")
    reads_log = {p.name: p.reads_log for p in all_probes}
    for name, secs in med.items():
        rate = f"{size_mb / secs:.0f}" if reads_log[name] else "—"
        print(f"| {name} | {secs:.2f} | {rate} | {counts[name]} |")

    auparse, ausearch = med["7. auparse loop"], med["7. ausearch"]
    budget = min(auparse / 1.5, ausearch / 3)
    startup = med["2. kexecwatch start-up (empty file)"]
    left = budget - startup
    print(
        f"\ntarget wall time = min(auparse loop / 1.5, ausearch / 3) = "
        f"min({auparse:.2f} / 1.5, {ausearch:.2f} / 3) = {budget:.2f} s "
        f"({size_mb / budget:.0f} MB/s)\n"
    )
    print("| probe | share of the target |")
    print("|---|---:|")
    for name, secs in med.items():
        print(f"| {name} | {secs / budget:.0%} |")
    print(f"\nleft after kexecwatch start-up: {budget:.2f} - {startup:.2f} = {left:.2f} s")
    # Both sides include an interpreter start: count it once, on kexecwatch's side.
    work = {name: med[name] - med["1. python -c pass"] for name in IDEALISED}
    for name, secs in work.items():
        verdict = "more than" if secs > left else "within"
        print(
            f"{name}: {secs:.2f} s beyond interpreter start-up = {secs / left:.0%} of that: "
            f"{verdict} what is left"
        )
    rest = left - work[IDEALISED[1]]
    events = int(expected["events"])
    print(
        f"after probe 6: {rest:.2f} s for {events:,} exec events, {rest / events * 1e6:.1f} us "
        "an event, for all it skips (ids, comm, exe, argv, record checks, assembly, lost "
        "events, the rules)"
    )
    if NATIVE in med:
        floor = med[NATIVE]
        print(
            f"native floor: {floor:.2f} s = {floor / budget:.0%} of the target wall time "
            f"({'within' if floor <= budget else 'more than'} it)"
        )
        for scanner in scanners:
            name = f"7. kexecwatch replay [{scanner}]"
            print(f"{name}: {med[name]:.2f} s = {med[name] / floor:.1f}x the native floor")
    return 0


if __name__ == "__main__":
    sys.exit(main())
