"""The native process table, through NativeProcessTable, answers as ProcessTable does.

Both are driven with the same operations (hypothesis), on small bounds so that eviction,
history cuts and the lateness walk all happen; parents, ancestry, sizes and snapshots
must be equal after every step.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kexecwatch.core.audit.record import EventId
from kexecwatch.core.process.nativetable import NativeProcessTable
from kexecwatch.core.process.table import LiveProcess, ProcessTable, ProcessTableLike
from kexecwatch.core.scan.fastpath import argv_of_execve_bodies
from kexecwatch.native.binding import NativeSession
from tests.nativelib import native_lib

LATENESS = 100
PIDS = st.integers(1, 9)
TIMES = st.integers(1_000_000, 1_000_400)
ARGS = st.one_of(
    st.none(),
    st.lists(st.sampled_from([b"sh", b"-c", b"x" * 30, b""]), max_size=3).map(tuple),
    st.sampled_from([b'argc=1 a0="ls"', b'argc=2 a0="sh" a1="-c"', b"argc=1 a0=" + b"41" * 20]),
)
NAMES = st.sampled_from([None, b"sh", b"kexec", b"\xff\xfe"])
EXTRA = st.sampled_from(
    [None, b"auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=3"]
)

ops = st.lists(
    st.one_of(
        st.tuples(st.just("exec"), PIDS, PIDS, NAMES, ARGS, TIMES, st.integers(1, 99), EXTRA),
        st.tuples(
            st.just("learn"),
            st.sampled_from(["execve", "clone", "fork", "openat", None]),
            st.booleans(),
            PIDS,
            PIDS,
            NAMES,
            st.sampled_from([None, -1, 0, 3, 7, 12]),
            ARGS,
            TIMES,
            EXTRA,
        ),
        st.tuples(st.just("live"), PIDS, PIDS, NAMES, ARGS, TIMES, EXTRA),
        st.tuples(st.just("remember"), PIDS, TIMES),
        st.tuples(st.just("parent_at"), PIDS, TIMES),
    ),
    max_size=40,
)


def lookup(pid: int) -> LiveProcess | None:
    """A stand-in /proc: odd pids are readable, started at a time that depends on them."""
    if pid % 2 == 0:
        return None
    return LiveProcess(pid, 1, b"live%d" % pid, b"/bin/live", (b"live",), 1_000_000 + 50 * pid)


def apply(table: ProcessTableLike, op: tuple[Any, ...]) -> Any:
    kind = op[0]
    if kind == "exec":
        _, pid, ppid, comm, args, t, serial, extra = op
        # Odd serials spelled with leading zeros, as a log may write them: snapshots
        # spell every id as str(EventId) does.
        spelling = b"%d.%03d:%03d" if serial % 2 else b"%d.%03d:%d"
        raw_id = spelling % (t // 1000, t % 1000, serial)
        table.learn_exec(pid, ppid, comm, b"/bin/x", args, t, raw_id, extra)
        return None
    if kind == "learn":
        _, syscall, success, pid, ppid, comm, exit_code, args, t, extra = op
        table.learn(
            syscall=syscall,
            success=success,
            pid=pid,
            ppid=ppid,
            comm=comm,
            exe=None if comm is None else b"/usr/bin/" + comm,
            exit_code=exit_code,
            args=args,
            event_id=EventId(t // 1000, t % 1000, 5),
            extra=extra,
        )
        return None
    if kind == "live":
        _, pid, ppid, comm, args, t, extra = op
        decoded = argv_of_execve_bodies(args) if isinstance(args, bytes) else args
        table.add_live(LiveProcess(pid, ppid, comm, b"/proc/exe", decoded, t, extra))
        return None
    if kind == "remember":
        table.remember_live(op[1], op[2])
        return None
    return table.parent_at(op[1], op[2])


def observe(table: ProcessTableLike) -> Any:
    return (
        len(table),
        table.args_bytes,
        table.to_state(),
        [table.ancestry(pid, t) for pid in range(1, 10) for t in (1_000_000, 1_000_200, 1_000_400)],
    )


def small_session(live: bool) -> NativeSession:
    """A native session whose table is as small as the Python one it is compared with."""
    return native_lib().new_session(
        window_ms=LATENESS,
        max_entries=5,
        max_args_bytes=90,
        max_lateness_ms=LATENESS,
        since_ms=None,
        until_ms=None,
        live=live,
        single_types=(),
        fault_on=None,
    )


@settings(max_examples=120, deadline=None)
@given(ops, st.booleans())
def test_native_table_answers_as_the_python_table(steps: list[Any], live: bool) -> None:
    session = small_session(live)
    try:
        native = NativeProcessTable(
            session, lookup=lookup if live else None, decode=argv_of_execve_bodies
        )
        python = ProcessTable(
            max_entries=5,
            max_args_bytes=90,
            lookup=lookup if live else None,
            decode=argv_of_execve_bodies,
            max_lateness_ms=LATENESS,
        )
        for step in steps:
            assert apply(native, step) == apply(python, step), step
            assert observe(native) == observe(python), step
        # Both load their snapshots the same.
        copy = small_session(False)
        try:
            native_again = NativeProcessTable(copy, decode=argv_of_execve_bodies)
            native_again.restore(native.to_state())
            python_again = ProcessTable(
                max_entries=5, max_args_bytes=90, decode=argv_of_execve_bodies
            )
            python_again.restore(python.to_state())
            assert native_again.to_state() == python_again.to_state()
        finally:
            copy.close()
    finally:
        session.close()


@pytest.mark.parametrize(
    "row",
    [
        [1 << 63, 1, "sh", "/bin/sh", None, 1_000_000, None, "event"],
        [5, -(1 << 63) - 1, "sh", "/bin/sh", None, 1_000_000, None, "event"],
        [5, int("9" * 41), "sh", "/bin/sh", None, 1_000_000, None, "event"],
        [5, 1, "sh", "/bin/sh", None, 1 << 64, None, "event"],
    ],
)
def test_both_tables_refuse_a_snapshot_row_beyond_the_long_range(row: list[Any]) -> None:
    # A hostile checkpoint is refused as corrupt (ValueError), by either table alike:
    # the native one holds at most 128 bits and must not fail in its own way.
    session = small_session(False)
    try:
        edge = [(1 << 63) - 1, -(1 << 63), "sh", "/bin/sh", None, 1_000_000, None, "event"]
        for table in (
            NativeProcessTable(session, decode=argv_of_execve_bodies),
            ProcessTable(max_entries=5, max_args_bytes=90, decode=argv_of_execve_bodies),
        ):
            with pytest.raises(ValueError, match="beyond the long range"):
                table.restore([row])
            table.restore([edge])
            assert table.to_state()[-1][:2] == edge[:2]
    finally:
        session.close()
