"""The scanner stage (kexecwatch.core.scan.scanner): the window test and what the fast
path stores."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.generate import generate
from kexecwatch.core.audit.record import AuditRecord, EventId, parse_record
from kexecwatch.core.detect.detector import Detector, DetectorOptions
from kexecwatch.core.scan.fastpath import SYSCALL_HEAD, execve_bodies, records_of, run_end
from kexecwatch.core.scan.scanner import in_window
from tests.builders import exec_lines, join


@pytest.mark.parametrize(
    ("time_ms", "since", "until", "inside"),
    [
        (5, None, None, True),
        (5, 5, None, True),  # since is inclusive
        (4, 5, None, False),
        (5, None, 5, False),  # until is exclusive
        (4, None, 5, True),
        (5, 5, 6, True),
        (6, 5, 6, False),
        (-(2**70), None, 0, True),
        (2**70, 0, None, True),
    ],
)
def test_in_window_is_since_inclusive_until_exclusive(
    time_ms: int, since: int | None, until: int | None, inside: bool
) -> None:
    assert in_window(time_ms, since, until) is inside


def _shaped(line: bytes, shape: str, n: int) -> bytes:
    # The kernel's canonical SYSCALL layout, which the fast path recognises.
    line = line.replace(b" exit=0 items=", b" exit=0 a0=1 a1=2 a2=3 a3=4 items=")
    if shape == "plain":
        return line
    tail = b'\x1dARCH=x86_64 SYSCALL=execve AUID="user"'
    if shape == "enriched":
        return line + tail
    if shape == "enriched-crlf":
        return line + tail + b"\r"
    if shape == "spaces":  # odd but valid: parse_record strips the body's spaces
        return line.replace(b"): ", b"):   ", 1) + b"  " if n % 2 else line
    raise AssertionError(shape)


def _log(shape: str) -> tuple[bytes, int]:
    """Exec events of ``shape``, and the argv bytes their raw EXECVE bodies hold."""
    lines: list[bytes] = []
    raw = 0
    for serial in range(1, 7):
        args = ("sh", "-c", f"echo {serial}", "x" * serial)
        event = [
            _shaped(line, shape, serial)
            for line in exec_lines(
                serial, t=f"1700000000.{serial:03d}", pid=100 + serial, args=args
            )
        ]
        bodies = []
        for line in event:
            record = parse_record(line)
            assert isinstance(record, AuditRecord)
            if record.type == "EXECVE":
                bodies.append(record.body)
        raw += len(b"\n".join(bodies))
        lines += event
    return join(lines), raw


@pytest.mark.parametrize("shape", ["plain", "enriched", "enriched-crlf", "spaces"])
def test_the_fast_path_stores_raw_execve_bodies_as_parse_record_gives_them(shape: str) -> None:
    """Same args and byte accounting as the reference path's raw bodies (and as the native
    table stores them): before, ENRICHED lines were stored decoded, plain ones with the
    space after the header."""
    log, raw = _log(shape)
    fast = Detector([], host_name="h")
    fast.feed(log)
    fast.flush()
    assert fast._scanner.verdicts, "the events should be taken by the fast path"
    assert fast.table.args_bytes == raw
    reference = Detector([], host_name="h", options=DetectorOptions(fast_path=False))
    reference.feed(log)
    reference.flush()
    assert fast.table.to_state() == reference.table.to_state()


_BODY_BYTES = st.sampled_from([b"a", b"=", b" ", b'"', b"\x1d", b"\r", b"0", b"x=1"])


@given(
    st.lists(
        st.tuples(
            st.sampled_from([b"", b" ", b"  "]),
            st.lists(_BODY_BYTES, max_size=8).map(b"".join),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_execve_bodies_equal_parse_record_bodies(parts: list[tuple[bytes, bytes]]) -> None:
    """Whatever the spaces, separators and carriage returns, the bodies are parse_record's."""
    header = b"type=EXECVE msg=audit(1.002:3):"
    lines = [header + gap + body for gap, body in parts]
    expected = []
    for line in lines:
        record = parse_record(line)
        assert isinstance(record, AuditRecord)
        expected.append(record.body)
    assert execve_bodies(join(lines), b"1.002:3") == b"\n".join(expected)


_RUN_TAILS = st.sampled_from([b"", b"\r", b"  ", b'\x1dOUID="root"', b" \x1d", b"\x1d\x1d"])


@given(
    st.sampled_from([b"", b'\x1dARCH=x86_64 UID="root"']),
    st.lists(_RUN_TAILS, min_size=5, max_size=5),
    st.integers(1, 10**6),
)
def test_records_of_a_run_read_by_its_id_as_parse_record_reads_them(
    first: bytes, others: list[bytes], line_no: int
) -> None:
    # records_of with the run's id skips the header's regular expression on each line:
    # every field of every record (type, body, ENRICHED tail, line number) stays the same.
    lines = [
        line.replace(b" exit=0 items=", b" exit=0 a0=1 a1=2 a2=3 a3=4 items=") + tail
        for line, tail in zip(exec_lines(7, t="1700000000.123"), [first, *others], strict=False)
    ]
    run = join(lines)
    m = SYSCALL_HEAD.match(b"\n" + run)
    assert m is not None
    bounds = run_end(b"\n" + run, m)
    assert bounds is not None
    event_id = EventId(int(m["sec"]), int(m["ms"]), int(m["serial"]))
    by_id = records_of(run, line_no, event_id)
    assert by_id == records_of(run, line_no)
    assert len(by_id) == len(lines)


@pytest.mark.parametrize("shape", ["classic", "mixed", "fcaps", "eoe"])
def test_run_end_counts_the_lines_of_the_run(shape: str, tmp_path: Path) -> None:
    """The scan takes a run's line count from run_end (no second pass over its bytes):
    it must be the number of newlines from the SYSCALL line to the PROCTITLE line's."""
    path = tmp_path / "log"
    generate(path, 150_000, seed=3, shape=shape)
    buf = b"\n" + path.read_bytes()
    runs = 0
    for m in SYSCALL_HEAD.finditer(buf):
        run = run_end(buf, m)
        if run is None:
            continue
        runs += 1
        assert run[3] == buf.count(b"\n", m.start() + 1, run[1]), buf[m.start() : run[1]]
    assert runs > 50
