"""The native process table through the binding: entries round-trip exactly, and the
table follows ProcessTable's rules (compared operation by operation)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

from kexecwatch.core.process.table import ProcessTable
from kexecwatch.native import NativeError, NativeLib, NativeSession, RawEntry


def session(lib: NativeLib, **options: Any) -> NativeSession:
    settings: dict[str, Any] = {
        "window_ms": 5000,
        "max_entries": 65536,
        "max_args_bytes": 8 << 20,
        "max_lateness_ms": 5000,
        "since_ms": None,
        "until_ms": None,
        "live": False,
        "single_types": (),
        "fault_on": None,
    }
    settings.update(options)
    return lib.new_session(**settings)


@pytest.fixture
def table(native_lib: NativeLib) -> Iterator[NativeSession]:
    s = session(native_lib)
    yield s
    s.close()


ENTRIES: list[RawEntry] = [
    (1, None, None, False, None, False, None, 0, None, "procfs", None),
    (5, 1, b"sh", False, b"/bin/sh", False, (b"sh", b"-c", b""), 1000, "1.000:2", "procfs", None),
    (6, 5, b'"ls"', True, b"2F62696E2F6C73", True, b"argc=1 a0=ls", 2000, "2.000:3", "event", b""),
    (7, 6, b"", False, b"\x00\xff\n", False, (), 3000, None, "event", b"auid=0 uid=0"),
    (2**100, -(2**90), None, False, None, False, b"", -(2**120), "x", "other", b"\x1d"),
]


@pytest.mark.parametrize("entry", ENTRIES)
def test_an_entry_round_trips_exactly(table: NativeSession, entry: RawEntry) -> None:
    table.table_store(entry)
    assert table.table_latest(entry[0]) == entry
    assert table.table_contains(entry[0])
    assert table.table_rows(1) == [entry]
    assert table.table_entry_at(entry[0], entry[7]) == entry


def test_argv_bytes_are_counted_as_proctable_sizes_them(table: NativeSession) -> None:
    table.table_store(ENTRIES[1])  # 2 + 2 + 0 bytes, 3 items
    assert table.table_args_bytes() == 4 + 3 * 8
    table.table_store(ENTRIES[2])  # raw bodies: their length
    assert table.table_args_bytes() == 28 + len(b"argc=1 a0=ls")


def test_misses_are_none(table: NativeSession) -> None:
    assert table.table_latest(42) is None
    assert table.table_entry_at(42, 0) is None
    assert not table.table_contains(42)
    assert not table.table_contains(2**200)
    assert table.table_latest(-(2**200)) is None
    assert table.table_rows(0) == []
    assert table.table_rows(10) == []
    assert table.table_len() == 0


def test_unreadable_pids_are_a_fifo_of_4096(table: NativeSession) -> None:
    for pid in range(4097):
        table.table_mark_unreadable(pid)
    assert not table.table_is_unreadable(0)
    assert table.table_is_unreadable(1)
    assert table.table_is_unreadable(4096)
    assert not table.table_is_unreadable(2**200)


def _python_entry(raw: RawEntry) -> tuple[Any, ...]:
    pid, ppid, comm, _, exe, _, args, since, exec_id, source, extra = raw
    return (pid, ppid, comm, exe, args, since, exec_id, source, extra, None)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize(
    ("max_entries", "max_args_bytes", "lateness"),
    [
        (65536, 8 << 20, 5000),
        (7, 60, 300),
        (3, 1000, None),
    ],
)
def test_the_rules_are_proctables(
    native_lib: NativeLib,
    seed: int,
    max_entries: int,
    max_args_bytes: int,
    lateness: int | None,
) -> None:
    """Random stores and lookups, on ProcessTable and on the native table: the same
    entries, order, byte count and time walks after every step."""
    rng = random.Random(seed)
    native = session(
        native_lib,
        max_entries=max_entries,
        max_args_bytes=max_args_bytes,
        max_lateness_ms=lateness,
    )
    python = ProcessTable(
        max_entries=max_entries, max_args_bytes=max_args_bytes, max_lateness_ms=lateness
    )
    try:
        for step in range(400):
            pid = rng.randrange(12)
            args: bytes | tuple[bytes, ...] | None = rng.choice(
                [None, b"a" * rng.randrange(30), tuple(b"x" * rng.randrange(5) for _ in range(3))]
            )
            raw: RawEntry = (
                pid,
                rng.choice([None, rng.randrange(12)]),
                b"c%d" % step,
                False,
                None,
                False,
                args,
                rng.randrange(10_000),
                None,
                "event",
                rng.choice([None, b"auid=%d" % step]),
            )
            native.table_store(raw)
            python._store(_python_entry(raw))
            assert native.table_len() == len(python)
            assert native.table_args_bytes() == python.args_bytes
            rows = native.table_rows(10**6)
            assert [r[0] for r in rows] == list(python._entries)
            assert [_python_entry(r)[:8] for r in rows] == [e[:8] for e in python._entries.values()]
            for _ in range(3):
                probe, at = rng.randrange(12), rng.randrange(-100, 10_100)
                mine = native.table_entry_at(probe, at)
                theirs = python._entry_at(probe, at)
                assert (None if mine is None else _python_entry(mine)[:9]) == (
                    None if theirs is None else theirs[:9]
                )
    finally:
        native.close()


def test_a_closed_session_refuses_every_call(native_lib: NativeLib) -> None:
    s = session(native_lib)
    s.close()
    s.close()  # twice is fine
    with pytest.raises(NativeError, match="closed"):
        s.table_len()
    with pytest.raises(NativeError, match="closed"):
        s.table_store(ENTRIES[0])


def test_values_beyond_the_table_are_refused_in_one_line(table: NativeSession) -> None:
    huge: RawEntry = (2**130, None, None, False, None, False, None, 0, None, "event", None)
    with pytest.raises(NativeError, match="beyond") as caught:
        table.table_store(huge)
    assert "\n" not in str(caught.value)
    with pytest.raises(NativeError, match="out of range"):
        table.set_verdict(b"k", 256)  # bits 0-7 (bit 7: NEEDLE_IF_RELEVANT, ABI 4)


def test_a_native_panic_is_a_native_error(table: NativeSession) -> None:
    with pytest.raises(NativeError, match="panicked: self-test panic"):
        table.selftest_panic()
    table.table_store(ENTRIES[1])  # and the library goes on
    assert table.table_len() == 1


def test_a_negative_window_is_refused(native_lib: NativeLib) -> None:
    with pytest.raises(NativeError, match="window_ms must be >= 0"):
        session(native_lib, window_ms=-1)
