"""The process table's snapshot rows written natively (``kw_table_state``, the daemon's
checkpoint): byte for byte what ``json.dumps`` writes of the rows Python makes, for
entries of every kind; the rows the native side is not sure of are made by Python."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kexecwatch.core.process.nativetable import NativeProcessTable
from kexecwatch.core.scan.fastpath import argv_of_execve_bodies
from kexecwatch.native import NativeLib, NativeSession, RawEntry
from tests.native.test_table import ENTRIES, session


@pytest.fixture
def table(native_lib: NativeLib) -> Iterator[NativeSession]:
    with_options = session(native_lib)
    yield with_options
    with_options.close()


def written(rows: object) -> bytes:
    """The checkpoint's writer: ``json.dumps(..., separators=(",", ":"), ensure_ascii=True)``."""
    return json.dumps(rows, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def state_text(s: NativeSession) -> tuple[bytes, bytes]:
    """The native text of the table's rows, and the standard library's text of them."""
    nt = NativeProcessTable(s, decode=argv_of_execve_bodies)
    return nt.state_text().text, written(nt.to_state())


def kernel_arg(index: int, value: bytes, how: str, chunk: int) -> list[bytes]:
    """The fields the kernel writes for argument ``index``: quoted, hex, or split."""
    name = b"a%d" % index
    if how == "quoted":
        return [name + b'="' + value + b'"']
    if how == "hex":
        return [name + b"=" + value.hex().upper().encode()]
    pieces = [value[i : i + chunk] for i in range(0, len(value), chunk)] or [b""]
    quoted = how == "split-quoted"
    fields = [name + b"_len=%d" % (len(value) * (1 if quoted else 2))]
    for k, piece in enumerate(pieces):
        text = b'"' + piece + b'"' if quoted else piece.hex().upper().encode()
        fields.append(name + b"[%d]=" % k + text)
    return fields


PRINTABLE = st.binary(max_size=12).map(
    lambda b: bytes(c for c in b if 0x21 <= c <= 0x7E and c != 0x22)
)


@st.composite
def execve_bodies(draw: st.DrawFn) -> bytes:
    """EXECVE bodies joined by ``\\n``: the kernel's layout, or something off it."""
    args = draw(st.lists(st.tuples(st.binary(max_size=10), PRINTABLE), max_size=5))
    fields = [b"argc=%d" % len(args)]
    for i, (raw, text) in enumerate(args):
        how = draw(st.sampled_from(["quoted", "hex", "split-quoted", "split-hex"]))
        value = text if how.endswith("quoted") else raw
        fields += kernel_arg(i, value, how, draw(st.integers(1, 4)))
    damage = draw(st.sampled_from(["none", "none", "drop", "null", "junk"]))
    if damage == "drop" and len(fields) > 1:
        del fields[draw(st.integers(1, len(fields) - 1))]
    elif damage == "null" and len(fields) > 1:
        fields[-1] = fields[-1].split(b"=")[0] + b"=(null)"
    elif damage == "junk":
        fields.append(draw(st.binary(max_size=8)).replace(b"\n", b""))
    bodies: list[list[bytes]] = [[]]
    for field in fields:
        if bodies[-1] and draw(st.booleans()):
            bodies.append([])
        bodies[-1].append(field)
    return b"\n".join(b" ".join(body) for body in bodies)


TEXT = st.one_of(
    st.binary(max_size=10),
    PRINTABLE.map(lambda t: b'"' + t + b'"'),
    st.binary(max_size=6).map(lambda b: b.hex().upper().encode()),
    st.sampled_from([b"(null)", b"(none)", b'"', b""]),
)
IDS = st.one_of(
    st.none(),
    st.tuples(st.integers(0, 2**40), st.integers(0, 999), st.integers(0, 2**40)).map(
        lambda t: f"{t[0]}.{t[1]:03d}:{t[2]}"
    ),
    st.sampled_from(["01.123:7", "1.123:07", "1.1:2", "1.0001:2"]),
)
ENTRY: st.SearchStrategy[RawEntry] = st.tuples(
    st.integers(-(2**127), 2**127 - 1),
    st.none() | st.integers(-(2**127), 2**127 - 1),
    st.none() | TEXT,
    st.booleans(),
    st.none() | TEXT,
    st.booleans(),
    st.one_of(st.none(), st.lists(st.binary(max_size=8), max_size=4).map(tuple), execve_bodies()),
    st.integers(-(2**127), 2**127 - 1),
    IDS,
    st.sampled_from(["event", "procfs", "événement", 'q"\\']),
    st.none() | st.binary(max_size=10),
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(entries=st.lists(ENTRY, max_size=12))
def test_native_rows_are_the_standard_librarys_bytes(
    table: NativeSession, entries: list[RawEntry]
) -> None:
    for pid in range(-2, 40):  # what an earlier example stored
        table.table_store((pid, None, None, False, None, False, None, 0, None, "procfs", None))
    for entry in entries:
        table.table_store(entry)
    native, stdlib = state_text(table)
    assert native == stdlib


@pytest.mark.parametrize("entry", ENTRIES[:4])
def test_ordinary_entries_are_written_natively(table: NativeSession, entry: RawEntry) -> None:
    table.table_store(entry)
    table.table_store((9, *entry[1:]))  # a second row: both in one segment
    parts = table.table_state(10)
    assert len(parts) == 1 and isinstance(parts[0], memoryview)
    assert b"[" + parts[0] + b"]" == state_text(table)[1]


def test_unsure_entries_are_handed_to_python_in_their_place(table: NativeSession) -> None:
    odd_id = (3, 1, b"sh", False, None, False, None, 5, "01.000:7", "event", None)
    off_layout = (4, 1, b"sh", False, None, False, b"argc=2 a0=sh", 6, None, "event", None)
    utf8_source = (8, 1, None, False, None, False, None, 7, None, "événement", None)
    unsure = [odd_id, off_layout, utf8_source]
    for entry in (ENTRIES[1], odd_id, ENTRIES[2], off_layout, utf8_source, ENTRIES[3]):
        table.table_store(entry)
    parts = table.table_state(10)
    expected: list[object] = []  # each unsure entry in its place, runs of others as one
    for row in table.table_rows(10):
        if row in unsure:
            expected.append(row)
        elif not expected or expected[-1] is not bytes:
            expected.append(bytes)
    assert len(expected) >= 5
    assert [p if isinstance(p, tuple) else bytes for p in parts] == expected
    assert all(isinstance(p, tuple | memoryview) for p in parts)
    native, stdlib = state_text(table)
    assert native == stdlib
    assert table.table_state(2) == parts[-1:]  # the last two rows: one run
    assert table.table_state(0) == []
