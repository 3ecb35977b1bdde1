"""The native scan takes nothing the Python fast path would read differently.

Every stretch the library takes is walked again with ``kexecwatch.core.scan.fastpath``'s own
readers (``SYSCALL_HEAD``, ``run_end``, ``split_pair``, ``parse_record``): each unit must be
one they accept, with the same extent, the same events in the same order, and the same
table entry (raw comm and exe, EXECVE bodies as ``parse_record`` gives them, the raw id,
the credentials text). On the recorded fixtures, and on thousands of seeded mutations of
them (line ends, NULs, carriage returns, lines moved, doubled or cut, ids changed).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from kexecwatch.core.audit.msgtypes import (
    TELEMETRY_TYPES,
    TYPE_NUMBERS,
    is_daemon_record,
    is_single_record,
)
from kexecwatch.core.audit.record import AuditRecord, parse_record
from kexecwatch.core.scan.fastpath import PAIR_MAX_LINES, SYSCALL_HEAD, run_end, split_pair
from kexecwatch.native import (
    STOP_END,
    STOP_HANDBACK,
    STOP_VERDICT,
    NativeLib,
    NativeSession,
    QuietState,
    RawEntry,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "audit"
LOGS = sorted(FIXTURES.glob("raw/*.log")) + sorted(FIXTURES.glob("enriched/*.log"))
SINGLE_TYPES = sorted(
    t
    for t in TYPE_NUMBERS
    if is_single_record(t) and not is_daemon_record(t) and t not in TELEMETRY_TYPES
)
LEARN_EXEC = 1

Expected = tuple[list[tuple[int, int, int]], dict[int, RawEntry]]


def _session(lib: NativeLib) -> NativeSession:
    return lib.new_session(
        window_ms=2**62,  # every time is plain: the acceptance of shapes is under test
        max_entries=2**20,
        max_args_bytes=2**40,
        max_lateness_ms=None,
        since_ms=None,
        until_ms=None,
        live=False,
        single_types=SINGLE_TYPES,
        fault_on=None,
    )


def _entry(pbuf: bytes, m: Any, execve_lines: list[bytes]) -> RawEntry:
    line = pbuf[m.start() + 1 : pbuf.index(b"\n", m.end())]
    bodies = []
    for text in execve_lines:
        record = parse_record(text)
        assert isinstance(record, AuditRecord)
        bodies.append(record.body)
    return (
        int(m["pid"]),
        int(m["ppid"]),
        m["comm"],
        True,
        m["exe"],
        True,
        b"\n".join(bodies) if bodies else None,
        int(m["sec"]) * 1000 + int(m["ms"]),
        m["id"].decode(),
        "event",
        line[line.index(b" auid=") + 1 : line.index(b" comm=")],
    )


def _ids(m: Any) -> tuple[int, int, int]:
    return int(m["sec"]), int(m["ms"]), int(m["serial"])


def _part(part: bytes) -> tuple[Any, list[bytes]]:
    """A split_pair part as the detector reads it: its head and EXECVE lines."""
    head = SYSCALL_HEAD.match(part)
    assert head is not None, "native took a pair whose part is no SYSCALL_HEAD"
    run = run_end(part, head)
    assert run is not None, "native took a pair whose part is no whole run"
    execve = part[run[2] : run[0]]
    return head, execve[:-1].split(b"\n") if execve else []


def _login_run(pbuf: bytes, nl: int) -> Any:
    """The SYSCALL_HEAD match of the whole run after the LOGIN record ending at ``nl``
    (the line before it), when that run is its syscall's (same id); else None."""
    start = pbuf.rfind(b"\n", 0, nl) + 1
    record = parse_record(pbuf[start:nl])
    if not isinstance(record, AuditRecord) or record.type != "LOGIN":
        return None
    m = SYSCALL_HEAD.match(pbuf, nl)
    if m is None or run_end(pbuf, m) is None or _ids(m) != tuple(record.id):
        return None
    return m


def _without_late_eoe(pbuf: bytes, m: Any, last: tuple[int, int, int]) -> tuple[bytes, int] | None:
    """The run whose SYSCALL_HEAD match is ``m`` with one bare EOE of the event ``last``
    (the one taken before) among its lines left out, as push() drops the late EOE of a
    done event: the run's lines (led by a newline) and where it ends in ``pbuf``."""
    tag = b" msg=audit(" + m["id"] + b"):"
    pos = m.start() + 1
    kept: list[bytes] = []
    late = False
    for _ in range(PAIR_MAX_LINES):
        nl = pbuf.find(b"\n", pos)
        space = pbuf.find(b" ", pos, nl)
        if nl < 0 or space < 0:
            return None
        line = pbuf[pos:nl]
        record = parse_record(line)
        if line.startswith(b"type=") and pbuf.startswith(tag, space):
            kept.append(line)
            if line.startswith(b"type=PROCTITLE"):
                part = b"\n" + b"\n".join(kept) + b"\n"
                head = SYSCALL_HEAD.match(part)
                run = None if head is None else run_end(part, head)
                return (part, nl + 1) if late and run is not None and run[1] == len(part) else None
        elif (
            not late
            and isinstance(record, AuditRecord)
            and record.type == "EOE"
            and tuple(record.id) == last
            and not record.body
            and line.endswith((b"):", b"): "))
        ):
            late = True
        else:
            return None
        pos = nl + 1
    return None


def python_reads(buf: bytes, start: int, end: int) -> Expected:
    """The events and table entries the Python fast path makes of ``buf[start:end]``,
    failing if any unit there is one it would not take whole."""
    pbuf = b"\n" + buf
    events: list[tuple[int, int, int]] = []
    entries: dict[int, RawEntry] = {}
    pos = start + 1
    while pos < end + 1:
        nl = pbuf.index(b"\n", pos)
        line = pbuf[pos:nl]
        if not line or line[0] == 0x23 or line.isspace():
            pos = nl + 1
            continue
        m = SYSCALL_HEAD.match(pbuf, pos - 1)
        login = _login_run(pbuf, nl) if m is None else None
        if login is not None:
            # LOGIN, then its syscall's whole run: two events of one id (push() makes
            # them so, the done set sees the id once); its "other" entry is no exec's.
            events.append(_ids(login))
            pos = run_end(pbuf, login)[1]  # type: ignore[index]
            eoe = b"type=EOE msg=audit(" + login["id"] + b"):"
            if pbuf.startswith(eoe, pos) and pos < end + 1:
                pos = pbuf.index(b"\n", pos) + 1
            continue
        if m is None:
            record = parse_record(line)
            assert isinstance(record, AuditRecord), f"native took a non-record: {line!r}"
            assert record.type in SINGLE_TYPES, f"native took a {record.type} record alone"
            assert b"\r" not in line
            events.append((record.id.sec, record.id.msec, record.id.serial))
            pos = nl + 1
            continue
        run = run_end(pbuf, m)
        late = None if run is not None or not events else _without_late_eoe(pbuf, m, events[-1])
        if late is not None:
            part, after = late
            head, execve_lines = _part(part)
            events.append(_ids(head))
            entries[int(head["pid"])] = _entry(part, head, execve_lines)
            pos = after
            eoe = b"type=EOE msg=audit(" + head["id"] + b"):"
            if pbuf.startswith(eoe, pos) and pos < end + 1:
                pos = pbuf.index(b"\n", pos) + 1
            continue
        if run is not None:
            execve = pbuf[run[2] : run[0]]
            events.append(_ids(m))
            entries[int(m["pid"])] = _entry(pbuf, m, execve[:-1].split(b"\n") if execve else [])
            pos = run[1]
            eoe = b"type=EOE msg=audit(" + m["id"] + b"):"
            if pbuf.startswith(eoe, pos) and pos < end + 1:
                pos = pbuf.index(b"\n", pos) + 1
            continue
        pair = split_pair(pbuf, m)
        assert pair is not None, f"native took a run the fast path refuses: {line[:80]!r}"
        for part in pair[:2]:
            head, execve_lines = _part(part)
            events.append(_ids(head))
            entries[int(head["pid"])] = _entry(part, head, execve_lines)
        pos = pair[2]
        # B's EOE right after: absorbed, as after a single run.
        eoe = b"type=EOE msg=audit(" + head["id"] + b"):"
        if pbuf.startswith(eoe, pos) and pos < end + 1:
            pos = pbuf.index(b"\n", pos) + 1
    assert pos == end + 1, "a unit native took ends elsewhere for the fast path"
    return events, entries


def check(lib: NativeLib, buf: bytes) -> int:
    """Scan all of ``buf`` (skipping a line at each hand-back, as if Python read it),
    comparing every taken stretch with the Python fast path. Returns the events taken."""
    session = _session(lib)
    state = QuietState(present=0, elapsed=0, expected=0, last_time_ms=0, ahead=[], done_ceiling=-1)
    pos = 0
    taken = 0
    learned: dict[int, RawEntry] = {}
    try:
        while pos < len(buf):
            result = session.scan(buf, pos, state)
            if result.stop == STOP_VERDICT:
                assert result.key is not None
                session.set_verdict(result.key, LEARN_EXEC)
                continue
            events, entries = python_reads(buf, pos, result.end)
            done = list(result.done)
            assert [tuple(done[i : i + 3]) for i in range(0, len(done), 4)] == events
            learned.update(entries)
            taken += result.events
            state = result.state
            if result.stop == STOP_END:
                break
            assert result.stop == STOP_HANDBACK
            # Python would read this unit; here it is only stepped over.
            nl = buf.find(b"\n", result.end)
            pos = len(buf) if nl < 0 else nl + 1
        for pid, entry in learned.items():
            assert session.table_latest(pid) == entry
    finally:
        session.close()
    return taken


@pytest.mark.parametrize("log", LOGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_recorded_logs(native_lib: NativeLib, log: Path) -> None:
    buf = log.read_bytes()
    taken = check(native_lib, buf)
    # With node= on every line (the enriched recordings) there is nothing to take.
    assert (taken > 0) == (b"\ntype=SYSCALL " in b"\n" + buf)


def _mutate(rng: random.Random, lines: list[bytes]) -> bytes:
    lines = list(lines)
    for _ in range(rng.randrange(1, 5)):
        at = rng.randrange(len(lines))
        kind = rng.randrange(8)
        text = lines[at]
        if kind == 0:
            lines.insert(rng.randrange(len(lines)), text)  # doubled elsewhere
        elif kind == 1:
            del lines[at]
        elif kind == 2 and at + 1 < len(lines):
            lines[at], lines[at + 1] = lines[at + 1], text  # two lines swapped
        elif kind == 3:
            cut = rng.randrange(len(text) + 1)
            lines[at] = (
                text[:cut] + rng.choice([b"\r", b"\x00", b" ", b'"', b"\x1d", b"#"]) + text[cut:]
            )
        elif kind == 4:
            lines[at] = text.replace(b":", b":1", 1)  # another serial
        elif kind == 5:
            lines[at] = text.replace(b".", b".0", 1)  # a 4-digit ms
        elif kind == 6:
            lines[at] = b"type=EOE" + text[text.find(b" msg=") :] if b" msg=" in text else text
        else:
            lines.insert(at, b"")
    return b"\n".join(lines) + b"\n"


@pytest.mark.parametrize("log", LOGS[:6], ids=lambda p: f"{p.parent.name}/{p.name}")
def test_mutated_logs(native_lib: NativeLib, log: Path) -> None:
    lines = log.read_bytes().split(b"\n")[:-1]
    rng = random.Random(log.name)
    for _ in range(40):
        start = rng.randrange(max(1, len(lines) - 40))
        check(native_lib, _mutate(rng, lines[start : start + 40]))


@pytest.mark.parametrize("shape", ["mixed", "eoe"])
def test_generated_logs(native_lib: NativeLib, tmp_path: Path, shape: str) -> None:
    """bench/generate.py's shapes: ENRICHED tails, interleaved pairs, EOE lines, fcaps,
    sessions, lost serials; most of each log is taken."""
    from bench.generate import generate

    log = tmp_path / f"{shape}.log"
    generate(log, 400_000, seed=3, shape=shape)
    buf = log.read_bytes()
    assert check(native_lib, buf) > buf.count(b"type=PROCTITLE") // 2
