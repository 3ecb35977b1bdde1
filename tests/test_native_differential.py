"""Differential tests: the native scanner gives what the Python scanner gives.

On the recorded fixtures, the malformed-input files, every shape of bench/generate.py,
and damaged logs (random byte flips, truncations, huge lines), fed in any chunking, both
scanners must return the same alerts, process events (``--events``), lost-event reports
and parse issues, in the same order, with the same counters and the same checkpoint state
(``Detector.to_state``). A bounded hypothesis campaign on the boundary (budget:
``KEXECWATCH_FUZZ_SECONDS``, default 60) looks for a crash, a hang or a difference.

They skip, with the reason, only when the library cannot be loaded and
``KEXECWATCH_SCANNER`` is not ``native`` (tests/nativelib.py).
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.generate import SHAPES, Generator
from kexecwatch.core.audit.nativeapi import (
    STOP_DUE,
    STOP_HANDBACK,
    NativeLib,
    QuietState,
    ScanResult,
)
from kexecwatch.core.detect.detector import DetectionRule, Detector, DetectorOptions
from kexecwatch.core.scan.nativescan import NativeScanner
from kexecwatch.core.text import jsontext
from kexecwatch.rules import load_builtin_rules
from tests.builders import exec_lines, feed_in_pieces, join
from tests.core.detect.rule.test_sequence_detector import sequence_rule
from tests.core.detect.test_detector import fingerprint
from tests.core.scan.test_fast_pair import eoe, eoe_log, eoe_pair, reference_lines
from tests.core.scan.test_fast_path import assert_same as assert_fast_is_reference
from tests.nativelib import native_lib

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "audit"
UPSTREAM = load_builtin_rules("upstream")
ALL_RULES = load_builtin_rules("all")
FUZZ_SECONDS = float(os.environ.get("KEXECWATCH_FUZZ_SECONDS", "60"))


def outcome(
    data: bytes,
    native: NativeLib | None,
    rules: Sequence[DetectionRule],
    cuts: Sequence[int] = (),
    **options: Any,
) -> tuple[list[str], dict[str, int], dict[str, Any]]:
    det = Detector(
        copy.deepcopy(list(rules)),
        host_name="h",
        options=DetectorOptions(**options),
        native=native,
    )
    out = feed_in_pieces(det, data, cuts)
    state = det.to_state()
    # The daemon's checkpoint writes the table as its text (natively with native): the
    # same bytes.
    written = jsontext.ascii_compact_with(det.to_state(table_text=True))
    assert written == jsontext.ascii_compact(state), "checkpoint text differs"
    return fingerprint(out), det.stats.as_dict(), state


def assert_same(
    data: bytes,
    rules: Sequence[DetectionRule] = ALL_RULES,
    cuts: Sequence[int] = (),
    **options: Any,
) -> list[str]:
    lib = native_lib()
    python = outcome(data, None, rules, cuts, **options)
    native = outcome(data, lib, rules, cuts, **options)
    assert native[0] == python[0], "outputs differ"
    assert native[1] == python[1], "counters differ"
    assert native[2] == python[2], "checkpoint state differs"
    return python[0]


def generated(shape: str, n: int = 3000, seed: int = 5) -> bytes:
    gen = Generator(seed=seed, **SHAPES[shape])  # type: ignore[arg-type]
    return b"".join((line + "\n").encode() for _, line in zip(range(n), gen.lines(), strict=False))


def fixture_files() -> list[Path]:
    return sorted(FIXTURES.rglob("*.log"))


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: str(p.relative_to(FIXTURES)))
def test_recorded_and_malformed_fixtures(path: Path) -> None:
    data = path.read_bytes()
    assert_same(data, UPSTREAM)
    assert_same(data, ALL_RULES, cuts=(len(data) // 2,))
    assert_same(data, ALL_RULES, emit_events=True)


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_generated_shape(shape: str) -> None:
    data = generated(shape)
    assert_same(data, ALL_RULES, cuts=(len(data) // 3, 2 * len(data) // 3))
    assert_same(data, UPSTREAM, emit_events=True)
    assert_same(data, ALL_RULES, since_ms=1717000141500, until_ms=1717000143000)
    assert_same(data, ALL_RULES, window_ms=0, max_inflight=1)


def test_lost_events_and_parse_issues_are_the_same() -> None:
    gen = Generator(seed=9, interleave=0.3, lose_every=30, gap_max=5, kexec_every=40)
    data = b"".join(
        (line + "\n").encode() for _, line in zip(range(4000), gen.lines(), strict=False)
    )
    damaged = data.replace(b"type=CWD", b"type=CWD\x00", 3).replace(b"audit(", b"audit(x", 2)
    keys = assert_same(damaged)
    assert any(k.startswith("alert ") for k in keys)
    assert any(k.startswith("EventsLost(") for k in keys)
    assert any(k.startswith("ParseIssue(") for k in keys)


BASE = generated("mixed", n=1200, seed=11)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(0, len(BASE)), max_size=12))
def test_every_chunking(cuts: list[int]) -> None:
    assert_same(BASE, ALL_RULES, cuts=cuts)


def mutate(data: bytes, edits: list[tuple[str, int, int]]) -> bytes:
    """Byte flips, truncations, huge lines and duplicated spans, at given places."""
    out = bytearray(data)
    for kind, where, value in edits:
        at = where % max(len(out), 1)
        if kind == "flip" and out:
            out[at] ^= 1 << (value % 8)
        elif kind == "byte" and out:
            out[at] = value % 256
        elif kind == "cut":
            del out[at : at + value % 400]
        elif kind == "huge":
            out[at:at] = b"type=EXECVE msg=audit(1717000141.000:1): a0=" + b"A" * (value * 997)
        elif kind == "dup":
            out[at:at] = out[at : at + value % 2000]
        elif kind == "truncate":
            del out[at:]
    return bytes(out)


EDITS = st.lists(
    st.tuples(
        st.sampled_from(["flip", "byte", "cut", "huge", "dup", "truncate"]),
        st.integers(0, 1 << 30),
        st.integers(0, 255),
    ),
    max_size=6,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EDITS, st.lists(st.integers(0, 1 << 30), max_size=4))
def test_damaged_logs(edits: list[tuple[str, int, int]], cuts: list[int]) -> None:
    data = mutate(BASE, edits)
    assert_same(data, ALL_RULES, cuts=[c % (len(data) + 1) for c in cuts], max_line=4096)


def test_fuzz_the_boundary_within_the_budget() -> None:
    """A bounded campaign: mutated logs of every shape, both scanners, until the budget is
    spent (``KEXECWATCH_FUZZ_SECONDS``); any difference, exception or hang fails."""
    native_lib()
    deadline = time.monotonic() + FUZZ_SECONDS
    bases = [generated(shape, n=600, seed=13) for shape in sorted(SHAPES)]
    runs = 0

    @settings(
        max_examples=10,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.sampled_from(range(len(bases))), EDITS, st.lists(st.integers(0, 1 << 30), max_size=3))
    def campaign(which: int, edits: list[tuple[str, int, int]], cuts: list[int]) -> None:
        nonlocal runs
        data = mutate(bases[which], edits)
        assert_same(data, ALL_RULES, cuts=[c % (len(data) + 1) for c in cuts], max_line=8192)
        runs += 1

    started = time.monotonic()
    while time.monotonic() < deadline:
        campaign()  # ten new inputs a round (no example database: new ones each time)
    assert runs > 0
    print(f"boundary fuzz: {runs} inputs in {time.monotonic() - started:.0f} s")


def test_an_execve_record_with_an_empty_body() -> None:
    """Its argv is empty (not unknown) in both tables, as in the full parse."""
    lines = []
    for s in range(1, 6):
        for written in exec_lines(s, t=f"1700000000.{s:03d}", pid=100 + s, ppid=99 + s):
            line = written.replace(b" exit=0 items=", b" exit=0 a0=1 a1=2 a2=3 a3=4 items=")
            if line.startswith(b"type=EXECVE"):
                line = b"type=EXECVE msg=audit(1700000000.%03d:%d):" % (s, s)
            lines.append(line)
    data = join(lines)
    assert_same(data, [])
    assert_same(data, [], emit_events=True)
    python = outcome(data, None, [])
    assert [row[4] for row in python[2]["processes"]] == [[]] * 5
    reference = outcome(data, None, [], fast_path=False)
    assert reference[2]["processes"] == python[2]["processes"]


def test_pairs_with_eoe_lines_are_taken_whole_by_native() -> None:
    """Interleaved pairs with an EOE after each event (audisp plugins, forwarders):
    native takes every pair with both EOE lines, A's passed over inside the pair and
    B's right after it; nothing goes line by line. Python reads only the first event
    (before any clock, native may not run) with its EOE, and an EOE of A after B's
    end, up to the next SYSCALL line. The results are the Python scanner's."""
    log, after = eoe_log()
    assert reference_lines(native_lib(), log) == [after[0], *after[-2:]]
    assert_same(log)
    assert_same(log, window_ms=0)
    assert_same(log, max_inflight=1)


# -- shapes native takes whole (issue 11: "the speed must hold for logs of other shapes") --


def privileged_execs(n: int, seed: int = 7) -> list[list[bytes]]:
    """``n`` whole execs with a ``BPRM_FCAPS`` record between ``SYSCALL`` and ``EXECVE``,
    as the kernel writes a set-user-ID or file-capability exec."""
    gen = Generator(seed=seed, interleave=0.0, lose_every=0, kexec_every=0, fcaps_share=1.0)
    out: list[list[bytes]] = []
    while len(out) < n:
        out.append([line.encode() for line in gen.privileged_exec()])
    return out


def handbacks(log: bytes, rules: Sequence[DetectionRule] = ALL_RULES, **options: Any) -> int:
    """How many times the native scan hands a unit of ``log`` back to Python."""
    return [stop for stop, _ in stops_of(log, rules, **options)].count(STOP_HANDBACK)


def test_execs_with_bprm_fcaps_first_are_taken_whole() -> None:
    """The kernel writes an exec's BPRM_FCAPS before its EXECVE; both fast paths take such
    an event whole (native: in the scan; Python: no line by line), alone, with its EOE,
    and in an interleaved pair. Before, each went line by line, a native hand-back each."""
    events = privileged_execs(12)
    assert all(e[1].startswith(b"type=BPRM_FCAPS") and b"EXECVE" in e[2] for e in events)
    a, b = events[10], events[11]
    lines = [line for e in events[:6] for line in e]
    lines += [*events[6], eoe(events[6]), *events[7]]
    lines += eoe_pair(events[8], events[9], 2, 3)
    lines += a[:1] + b[:2] + a[1:] + b[2:]  # A's BPRM_FCAPS after B's first records
    log = join(lines)
    assert handbacks(log) == 0
    assert reference_lines(native_lib(), log) == []
    # The Python scanner reads the EOE after a run or a pair line by line (absorbed).
    assert reference_lines(None, log) == [eoe(events[6]), eoe(events[9])]
    assert_same(log)
    assert_same(log, emit_events=True)
    assert_same(log, window_ms=0)
    assert_same(log, max_inflight=1)
    assert_same(log, [], cuts=[len(log) // 2])
    assert_fast_is_reference(log, ALL_RULES)
    assert_fast_is_reference(log, ALL_RULES, emit_events=True)


FCAPS = generated("fcaps", n=1500, seed=21)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(0, len(FCAPS)), max_size=10))
def test_every_chunking_of_the_fcaps_shape(cuts: list[int]) -> None:
    assert_same(FCAPS, ALL_RULES, cuts=cuts)


def sessions_log(n: int = 2500, seed: int = 23, **options: Any) -> bytes:
    """Service and user-session records between execs, nothing interleaved, no gaps; at
    least ``n`` lines, ending between whole events."""
    gen = Generator(seed=seed, interleave=0.0, lose_every=0, session_share=0.3, **options)
    lines: list[str] = []
    for batch in gen.batches():
        lines += batch
        if len(lines) >= n and gen.whole:
            return b"".join((line + "\n").encode() for line in lines)
    raise AssertionError("the generator never ends")


def test_a_login_with_its_syscall_after_it_is_taken_by_native() -> None:
    """pam_loginuid's LOGIN record and the write syscall's SYSCALL and PROCTITLE (and EOE)
    under the same id: two events (the LOGIN complete at once, then the syscall's own),
    taken by native at once. Before, each LOGIN was handed back and its syscall read line
    by line."""
    log = sessions_log()
    assert log.count(b"type=LOGIN ") > 20
    assert handbacks(log) == 0
    assert assert_same(log) == assert_same(log, cuts=[len(log) // 3])
    assert_same(log, emit_events=True)
    assert_same(log, window_ms=0)
    assert_same(log, max_inflight=1)
    data = sessions_log(eoe=True)
    assert handbacks(data) == 0
    assert_same(data)


def test_logins_alone_do_not_make_a_later_syscall_differ() -> None:
    """4,096 LOGIN records alone (unaudited tasks), then a LOGIN with its syscall (native
    takes it at once), then the first LOGIN's own syscall records: Python keeps every lead
    whose event is still done, so both scanners make the last records its event. (When
    it kept the last 4,096 leads, the LOGIN Python read evicted the first one's lead, and
    the scanners differed: late records in one, an event in the other.)"""
    first = (
        b"type=LOGIN msg=audit(1700000000.000:7): pid=2083 uid=0 subj=unconfined "
        b"old-auid=4294967295 auid=0 tty=(none) old-ses=4294967295 ses=2 res=1"
    )
    syscall, proctitle = (
        line.replace(b"exit=0 items=", b"exit=4 a0=3 a1=4 a2=4 a3=0 items=").replace(
            b"syscall=59", b"syscall=1"
        )
        for line in exec_lines(7, t="1700000000.000", pid=2083, ppid=598)
        if line.startswith((b"type=SYSCALL", b"type=PROCTITLE"))
    )
    lone = [first.replace(b"000:7)", b"%03d:%d)" % (n % 1000, 8 + n)) for n in range(4095)]
    unit = [
        line.replace(b"000:7)", b"999:9000)").replace(b"pid=2083", b"pid=3000")
        for line in (first, syscall, proctitle)
    ]
    # An exec between: Python reads up to a SYSCALL line after a hand-back, native the rest.
    ls = [
        line.replace(b"exit=0 items=", b"exit=0 a0=1 a1=2 a2=3 a3=4 items=")
        for line in exec_lines(8500, t="1700000000.998", pid=2900, comm="ls", exe="/usr/bin/ls")
    ]
    log = join([first, *lone, *ls, *unit, syscall, proctitle])
    keys = assert_same(log, [])
    assert not any(k.startswith("ParseIssue(") for k in keys)
    # Native: the first LOGIN's syscall (its serial is done); the lone LOGINs (named
    # in the result as leads), the exec and the unit are its own. (Before the lone
    # LOGINs were taken: 2, the first lone LOGIN too, Python reading on from there.)
    assert handbacks(log, []) == 1


SESSIONS = generated("sessions", n=1500, seed=29)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(0, len(SESSIONS)), max_size=10))
def test_every_chunking_of_the_sessions_shape(cuts: list[int]) -> None:
    assert_same(SESSIONS, ALL_RULES, cuts=cuts)


def test_the_eoe_of_a_taken_event_inside_the_next_one_is_passed_over_by_native() -> None:
    """An event, then the next one's first records, the first one's EOE, the rest of the
    next one (a forwarder delivering records of two CPUs): push() drops the late EOE of
    a done event, so native takes the second event whole and counts the EOE's line.
    Before, each such event was handed back and read line by line."""
    # One command (one verdict): the library remembers the events of its own call only.
    events = [
        [
            line.replace(b" exit=0 items=", b" exit=0 a0=1 a1=2 a2=3 a3=4 items=")
            for line in exec_lines(
                100 + n, t=f"1700000000.{n:03d}", pid=500 + n, comm="ls", exe="/usr/bin/ls"
            )
        ]
        for n in range(16)
    ]
    lines: list[bytes] = []
    for n, (a, b) in enumerate(zip(events[::2], events[1::2], strict=True)):
        cut = 1 + n % 3  # after the SYSCALL line, after the EXECVE line, after CWD
        lines += [*a, *b[:cut], eoe(a), *b[cut:], eoe(b)]
    log = join(lines)
    # Only the first pair's: its first event went to Python (no clock yet), and the
    # library knows only the events it took itself.
    assert handbacks(log) == 1
    assert_same(log)
    assert_same(log, emit_events=True)
    assert_same(log, window_ms=0)
    assert_same(log, [], cuts=[len(log) // 2])


def plain_exec(serial: int, t: str, comm: str, pid: int) -> list[bytes]:
    """An exec whose SYSCALL record has the canonical layout the native scan reads."""
    return [
        line.replace(b"exit=0 items=", b"exit=0 a0=1 a1=2 a2=3 a3=4 items=")
        for line in exec_lines(
            serial, t=t, pid=pid, comm=comm, exe=f"/usr/bin/{comm}", args=(comm,)
        )
    ]


def stamp(ms: int) -> str:
    return f"{ms // 1000}.{ms % 1000:03d}"


def stops_of(log: bytes, rules: Sequence[DetectionRule], **options: Any) -> list[tuple[int, bytes]]:
    """Each native scan call's stop, with the line it stopped at (its first 16 bytes)."""
    det = Detector(
        copy.deepcopy(list(rules)),
        host_name="h",
        options=DetectorOptions(**options),
        native=native_lib(),
    )
    scanner = det._scanner
    assert isinstance(scanner, NativeScanner)
    session = scanner.session
    scan = session.scan
    stops: list[tuple[int, bytes]] = []

    def counted(buf: bytes, start: int, state: QuietState, due_ms: int | None = None) -> ScanResult:
        result = scan(buf, start, state, due_ms)
        stops.append((result.stop, buf[result.end : result.end + 16]))
        return result

    session.scan = counted  # type: ignore[method-assign]
    feed_in_pieces(det, log)
    return stops


LOGIN_ALONE = (
    b"type=LOGIN msg=audit(%s:%d): pid=%d uid=0 subj=unconfined old-auid=4294967295 "
    b"auid=0 tty=(none) old-ses=4294967295 ses=%d res=1"
)


def lone_logins_log(n: int = 300) -> tuple[bytes, list[bytes]]:
    """Execs with cron-style lone LOGIN records between them (a LOGIN with no syscall
    run of its own after it), ENRICHED tails on some; one LOGIN's own syscall records
    come later, after an exec; and the lines of that LOGIN's syscall."""
    t0 = 1_700_000_000_000
    lines: list[bytes] = []
    serial = 100
    late: list[bytes] = []
    for i in range(n):
        t = stamp(t0 + 40 * i)
        lines += plain_exec(serial, t, "ls", 2000 + i)
        serial += 1
        if i % 3 == 0:
            login = LOGIN_ALONE % (t.encode(), serial, 3000 + i, i)
            if i % 2:
                login += b'\x1dUID="root" OLD-AUID="unset" AUID="root"'
            lines.append(login)
            if i == 150:
                # Its syscall (a write to /proc/self/loginuid) after the next exec.
                late = [
                    line.replace(b"syscall=59", b"syscall=1")
                    for line in plain_exec(serial, t, "cron", 3000 + i)
                    if line.startswith((b"type=SYSCALL", b"type=PROCTITLE"))
                ]
                serial += 1
                lines += plain_exec(serial, t, "ls", 5000 + i)
                lines += late
            serial += 1
    return join(lines), late


def test_lone_logins_are_taken_by_native_and_remembered_as_leads() -> None:
    """A LOGIN with no syscall run right after it (cron, su: pam_loginuid on a task the
    rules do not audit) is a single-record event; the assembler remembers it as a lead
    in case its syscall's records follow under the same id. Native takes it now and
    names it in the scan result, so both scanners make the late syscall records one
    event (no late-record issue) and agree on every output. Before, every lone LOGIN
    was handed back (101 here) and Python read on to the next SYSCALL line."""
    log, late = lone_logins_log()
    assert log.count(b"type=LOGIN ") == 100 and late
    keys = assert_same(log)
    assert not any(k.startswith("ParseIssue(") for k in keys)
    stops = stops_of(log, ALL_RULES)
    handed = [line for stop, line in stops if stop == STOP_HANDBACK]
    # Only the LOGIN's own syscall, whose serial is done: Python's (a lead).
    assert handed == [late[0][:16]]
    assert_same(log, cuts=[len(log) // 3, len(log) // 2])
    assert_same(log, emit_events=True)
    assert_same(log, window_ms=0)
    assert_same(log, max_inflight=1)
    assert_same(log, since_ms=1_700_000_004_000, until_ms=1_700_000_008_000)


LONE, _ = lone_logins_log(120)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(0, len(LONE)), max_size=10))
def test_every_chunking_of_lone_logins(cuts: list[int]) -> None:
    assert_same(LONE, ALL_RULES, cuts=cuts)


def test_the_mixed_and_sessions_shapes_hand_no_login_back() -> None:
    for shape in ("mixed", "sessions"):
        log = generated(shape, n=6000, seed=31)
        assert log.count(b"type=LOGIN ") > 5
        stops = stops_of(log, ALL_RULES)
        assert [s for s in stops if s == (STOP_HANDBACK, b"type=LOGIN msg=a")] == [], shape
        assert_same(log)


TRAILING = sequence_rule(
    "sequence by host.name, user.id with maxspan=5s\n"
    '  [process where process.name == "id"]\n'
    '  ![process where process.name == "whoami"]'
)


def due_log(rounds: int = 1) -> bytes:
    """``id`` (the TRAILING rule's first stage), then ``ls`` every 200 ms for 24 s with
    three serials lost at 4 s and at 20 s; ``rounds`` times, a minute apart."""
    lines: list[bytes] = []
    serial = 1
    for r in range(rounds):
        t0 = 1_700_000_000_000 + 60_000 * r
        lines += plain_exec(serial, stamp(t0), "id", 900)
        serial += 1
        for i in range(1, 120):
            if i in (20, 100):
                serial += 3  # three events lost
            lines += plain_exec(serial, stamp(t0 + 200 * i), "ls", 1000 + i)
            serial += 1
    return join(lines)


def test_a_due_sequence_is_matched_at_the_event_where_it_came_due() -> None:
    """A sequence rule's deadline passes in the middle of a stretch native takes, with
    serial gaps before and after it: the alert comes between the two lost-event
    reports, as with the Python scanner, and the sequence state is the same. Before,
    native matched what fell due at the end of its batch (the alert after both gaps'
    reports), and the README said so."""
    log = due_log()
    keys = assert_same(log, [TRAILING])
    order = [k.split("(")[0].split(" ")[0] for k in keys]
    assert order == ["EventsLost", "alert", "EventsLost"], keys
    stops = [stop for stop, _ in stops_of(log, [TRAILING])]
    assert STOP_DUE in stops
    assert_same(log, [TRAILING, *ALL_RULES], cuts=[len(log) // 2])
    assert_same(log, [TRAILING], window_ms=1000)


DUE = due_log(rounds=3)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(0, len(DUE)), max_size=8))
def test_every_chunking_of_a_log_with_sequence_deadlines(cuts: list[int]) -> None:
    assert_same(DUE, [TRAILING, *ALL_RULES], cuts=cuts)


def test_the_eoe_of_a_lone_login_inside_the_next_run_is_python_s() -> None:
    """A lone LOGIN, then an exec whose records hold the LOGIN's bare EOE, then the
    LOGIN's own syscall records: the EOE ends the lead in the assembler (its syscall's
    records are then late), so native must not pass over it as the late EOE of the
    event it took last; both scanners report the same."""
    t = stamp(1_700_000_000_000)
    login = LOGIN_ALONE % (t.encode(), 100, 3000, 1)
    run = plain_exec(101, t, "ls", 2000)
    eoe_line = b"type=EOE msg=audit(%s:100): " % t.encode()
    syscall = [
        line.replace(b"syscall=59", b"syscall=1")
        for line in plain_exec(100, t, "cron", 3000)
        if line.startswith((b"type=SYSCALL", b"type=PROCTITLE"))
    ]
    after = plain_exec(102, t, "ls", 2001)
    before = [line for n in range(97, 100) for line in plain_exec(n, t, "ls", 1900 + n)]
    log = join([*before, login, run[0], eoe_line, *run[1:], *syscall, *after])
    keys = assert_same(log)
    assert any(k.startswith("ParseIssue(") for k in keys)
