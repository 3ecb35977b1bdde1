"""The native scan through the binding, on small logs: what it takes, what it learns,
and where it hands back (the Rust tests cover every case; these check the values
cross the ABI intact)."""

from __future__ import annotations

import dataclasses
from array import array
from collections.abc import Iterator
from itertools import chain
from typing import Any

import pytest

from kexecwatch.native import (
    STOP_END,
    STOP_HANDBACK,
    STOP_LIVE,
    STOP_VERDICT,
    NativeError,
    NativeLib,
    NativeSession,
    QuietState,
)

T0 = 1_700_000_000_000
EXEC = 1 | 4  # LEARN exec, EVALUATED
FORK = 2


def session(lib: NativeLib, **options: Any) -> NativeSession:
    settings: dict[str, Any] = {
        "window_ms": 5000,
        "max_entries": 65536,
        "max_args_bytes": 8 << 20,
        "max_lateness_ms": 5000,
        "since_ms": None,
        "until_ms": None,
        "live": False,
        "single_types": ["USER_CMD"],
        "fault_on": None,
    }
    settings.update(options)
    return lib.new_session(**settings)


@pytest.fixture
def native(native_lib: NativeLib) -> Iterator[NativeSession]:
    s = session(native_lib)
    yield s
    s.close()


def quiet(**changes: Any) -> QuietState:
    state = QuietState(
        present=T0, elapsed=0, expected=100, last_time_ms=T0, ahead=[], done_ceiling=-1
    )
    for name, value in changes.items():
        setattr(state, name, value)
    return state


def eid(time_ms: int, serial: int) -> str:
    return f"{time_ms // 1000}.{time_ms % 1000:03d}:{serial}"


def syscall(
    time_ms: int, serial: int, nr: int, pid: int, ppid: int, comm: str, exit: int = 0
) -> str:
    return (
        f"type=SYSCALL msg=audit({eid(time_ms, serial)}): arch=c000003e syscall={nr} "
        f"success=yes exit={exit} a0=1 a1=2 a2=3 a3=0 items=1 ppid={ppid} pid={pid} "
        "auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 "
        f'fsgid=1000 tty=pts0 ses=3 comm="{comm}" exe="/usr/bin/{comm}" key=(null)'
        '\x1dARCH=x86_64 SYSCALL=execve AUID="alice"\n'
    )


def exec_run(time_ms: int, serial: int, pid: int, ppid: int, comm: str) -> str:
    tag = eid(time_ms, serial)
    return (
        syscall(time_ms, serial, 59, pid, ppid, comm)
        + f'type=EXECVE msg=audit({tag}): argc=2 a0="{comm}" a1="-l"\n'
        + f'type=CWD msg=audit({tag}): cwd="/root"\n'
        + f'type=PATH msg=audit({tag}): item=0 name="/usr/bin/{comm}" inode=77 dev=08:01\n'
        + f"type=PROCTITLE msg=audit({tag}): proctitle=6C73\n"
    )


def key(nr: int, comm: str) -> bytes:
    return f'arch=c000003e syscall={nr}\0yes\0"{comm}"\0"/usr/bin/{comm}"'.encode()


def test_a_run_is_taken_once_its_verdict_is_known(native: NativeSession) -> None:
    log = (
        exec_run(T0 + 5, 100, 200, 1, "ls") + f"type=EOE msg=audit({eid(T0 + 5, 100)}): \n"
    ).encode()
    first = native.scan(log, 0, quiet())
    assert (first.stop, first.end, first.events) == (STOP_VERDICT, 0, 0)
    assert first.key == key(59, "ls")
    native.set_verdict(key(59, "ls"), EXEC)
    result = native.scan(log, 0, quiet())
    assert (result.stop, result.end) == (STOP_END, len(log))
    assert (result.lines, result.records, result.events, result.process_events) == (6, 6, 1, 1)
    assert result.last_time_ms == T0 + 5
    assert list(result.done) == [T0 // 1000, 5, 100, 5]
    assert result.lost == []
    state = result.state
    assert (state.present, state.elapsed, state.expected, state.last_time_ms) == (
        T0 + 5,
        5,
        101,
        T0 + 5,
    )
    entry = native.table_latest(200)
    assert entry == (
        200,
        1,
        b'"ls"',
        True,
        b'"/usr/bin/ls"',
        True,
        b'argc=2 a0="ls" a1="-l"',
        T0 + 5,
        eid(T0 + 5, 100),
        "event",
        b"auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 "
        b"fsgid=1000 tty=pts0 ses=3",
    )


def test_a_fork_child_copies_its_parents_argv(native: NativeSession) -> None:
    native.set_verdict(key(59, "sh"), EXEC)
    native.set_verdict(key(56, "sh"), FORK)
    log = (
        exec_run(T0, 100, 200, 1, "sh")
        + syscall(T0 + 1, 101, 56, 200, 1, "sh", exit=201)
        + f"type=PROCTITLE msg=audit({eid(T0 + 1, 101)}): proctitle=7368\n"
    ).encode()
    result = native.scan(log, 0, quiet())
    assert (result.stop, result.events, result.process_events) == (STOP_END, 2, 1)
    child = native.table_latest(201)
    parent = native.table_latest(200)
    assert child is not None and parent is not None
    assert (child[1], child[6], child[7], child[8]) == (200, parent[6], T0 + 1, parent[8])


def test_gaps_come_back_as_lost_reports_and_ahead_rows(native: NativeSession) -> None:
    native.set_verdict(key(59, "ls"), EXEC)
    log = (exec_run(T0, 102, 200, 1, "ls") + exec_run(T0 + 3000, 104, 201, 1, "ls")).encode()
    result = native.scan(log, 0, quiet())
    assert result.events == 2
    assert result.state.ahead == [(102, T0 // 1000, 0, 0), (104, T0 // 1000 + 3, 0, 3000)]
    assert result.state.expected == 100
    more = exec_run(T0 + 5001, 105, 202, 1, "ls").encode()
    after = native.scan(more, 0, result.state)
    # 102 was seen more than a window ago: 100-101 are lost; 103 may still come.
    assert after.lost == [(100, 101, T0 // 1000, 0, 102)]
    assert after.state.expected == 103
    assert after.state.ahead == [(104, T0 // 1000 + 3, 0, 3000), (105, T0 // 1000 + 5, 1, 5001)]


def test_hand_backs_leave_the_state_alone(native: NativeSession) -> None:
    native.set_verdict(key(59, "ls"), EXEC)
    log = (
        "# a comment\n"
        + exec_run(T0, 100, 200, 1, "ls").replace("type=SYSCALL", "node=h type=SYSCALL")
    ).encode()
    result = native.scan(log, 0, quiet())
    assert (result.stop, result.end, result.lines, result.events) == (STOP_HANDBACK, 12, 1, 0)
    assert result.state == quiet()
    assert native.table_len() == 0


def test_live_mode_asks_for_the_parent(native_lib: NativeLib) -> None:
    live = session(native_lib, live=True)
    try:
        live.set_verdict(key(59, "ls"), EXEC)
        log = exec_run(T0, 100, 200, 4242, "ls").encode()
        result = live.scan(log, 0, quiet())
        assert (result.stop, result.end, result.ppid, result.time_ms) == (STOP_LIVE, 0, 4242, T0)
        live.table_mark_unreadable(4242)
        assert live.scan(log, 0, quiet()).stop == STOP_END
    finally:
        live.close()


def test_single_records_and_inodes(native: NativeSession) -> None:
    native.set_verdict(key(59, "ls"), EXEC | 64)  # INODE_ALWAYS
    log = (
        f"type=USER_CMD msg=audit({eid(T0, 100)}): cmd=6C73\n" + exec_run(T0, 101, 200, 1, "ls")
    ).encode()
    assert native.scan(log, 0, quiet()).stop == STOP_END  # no inodes known: nothing to hand back
    native.set_inodes([77, -5, 2**70])
    result = native.scan(log, 0, quiet())
    assert (result.stop, result.events, result.records) == (STOP_HANDBACK, 1, 1)
    native.set_inodes([])
    native.clear_verdicts()
    assert native.scan(log, 0, quiet()).stop == STOP_VERDICT


def test_states_beyond_int64_are_handed_back_untouched(native: NativeSession) -> None:
    state = quiet(expected=2**64)
    result = native.scan(b"# x\n", 0, state)
    assert (result.stop, result.end, result.lines, result.state) == (STOP_HANDBACK, 0, 0, state)
    ahead = quiet(ahead=[(2**70, 1, 2, 3)])
    assert native.scan(b"# x\n", 0, ahead).stop == STOP_HANDBACK


def test_a_start_outside_the_buffer_is_an_error(native: NativeSession) -> None:
    with pytest.raises(NativeError, match="outside the buffer"):
        native.scan(b"abc\n", 5, quiet())
    assert native.scan(b"abc\n", 4, quiet()).stop == STOP_END


def test_the_done_store_keeps_what_scans_took_between_calls(native: NativeSession) -> None:
    """With done_keep on, each scan's taken events stay in the session (done_kept), in
    order, across calls; the assembler's calls see them and drop them from the front."""
    native.set_verdict(key(59, "ls"), EXEC)
    first = native.scan(exec_run(T0, 100, 200, 1, "ls").encode(), 0, quiet())
    assert (first.events, first.done_kept) == (1, 0)  # not kept until asked
    native.done_keep(True)
    log = (exec_run(T0 + 1, 101, 201, 1, "ls") + exec_run(T0 + 9, 102, 202, 1, "ls")).encode()
    second = native.scan(log, 0, quiet(expected=101))
    assert (second.events, second.done_kept) == (2, 2)
    third = native.scan(exec_run(T0 + 20, 103, 203, 1, "ls").encode(), 0, second.state)
    assert third.done_kept == 1
    assert native.done_len() == 3
    assert list(native.done_rows(0, 9)) == [
        *(T0 // 1000, 1, 101, 1),
        *(T0 // 1000, 9, 102, 9),
        *(T0 // 1000, 20, 103, 20),
    ]
    assert list(native.done_rows(2, 1)) == [T0 // 1000, 20, 103, 20]
    assert native.done_contains(T0 // 1000, 9, 102)
    assert not native.done_contains(T0 // 1000, 0, 100)  # taken before keeping began
    assert not native.done_contains(T0 // 1000, 9, 2**70)
    assert native.done_max_serial(0, [103]) == 102
    assert native.done_max_serial(104, []) == -1
    # One forced, then the stale ones (elapsed below 20); the front is then 103's.
    assert native.done_drop(3, 1, 20) == (2, 20)
    assert not native.done_contains(T0 // 1000, 9, 102)
    native.done_keep(False)
    assert native.done_len() == 0
    assert native.done_drop(5, 5, 2**70) == (0, 2**63 - 1)


def test_serials_ahead_kept_in_the_session_need_not_cross_again(
    native: NativeSession, native_lib: NativeLib
) -> None:
    """After a scan the session keeps its serials ahead: a state with ahead_kept sends
    none, and each result says what changed (ahead_delta) instead of all of them."""
    native.set_verdict(key(59, "ls"), EXEC)
    log = (exec_run(T0, 102, 200, 1, "ls") + exec_run(T0 + 3000, 104, 201, 1, "ls")).encode()
    first = native.scan(log, 0, quiet())
    rows = [(102, T0 // 1000, 0, 0), (104, T0 // 1000 + 3, 0, 3000)]
    # The rows added come flat, (serial, sec, ms, seen) each: no tuple per row.
    assert first.ahead_delta == ([], array("q", chain.from_iterable(rows)))
    assert first.state.ahead == rows
    kept = dataclasses.replace(first.state, ahead=[], ahead_kept=True)
    after = native.scan(exec_run(T0 + 5001, 105, 202, 1, "ls").encode(), 0, kept)
    # As with the rows sent (test_gaps_come_back_as_lost_reports_and_ahead_rows).
    assert after.lost == [(100, 101, T0 // 1000, 0, 102)]
    assert after.state.expected == 103
    assert after.ahead_delta == ([102], array("q", [105, T0 // 1000 + 5, 1, 5001]))
    assert after.state.ahead == [] and after.state.ahead_kept
    fresh = session(native_lib)
    with pytest.raises(NativeError, match="no serials ahead kept"):
        fresh.scan(b"# x\n", 0, quiet(ahead_kept=True))
    fresh.close()


def test_held_changes_to_the_serials_ahead_cross_only_when_pulled(
    native: NativeSession,
) -> None:
    """With ahead_hold, scans that keep the serials ahead return no delta: the session
    merges their changes, and a pull hands over only what is left of them (a serial
    that went ahead and came back in between never crosses)."""
    native.set_verdict(key(59, "ls"), EXEC)
    first = native.scan(exec_run(T0, 102, 200, 1, "ls").encode(), 0, quiet())
    assert first.ahead_delta == ([], array("q", [102, T0 // 1000, 0, 0]))
    assert not first.ahead_held
    native.ahead_hold(True)
    state = dataclasses.replace(first.state, ahead=[], ahead_kept=True)
    for serial, at in ((104, 1000), (106, 2000), (103, 3000), (100, 3200), (101, 3500)):
        result = native.scan(exec_run(T0 + at, serial, 300 + serial, 1, "ls").encode(), 0, state)
        assert result.ahead_held and result.ahead_delta == ([], array("q"))
        state = dataclasses.replace(result.state, ahead=[], ahead_kept=True)
    # 100 and 101 filled the gap: 102 went (Python holds it), 103 and 104 came and
    # went (they never cross); only 106 is still ahead.
    assert state.expected == 105
    assert native.ahead_pull() == ([102], array("q", [106, T0 // 1000 + 2, 0, 2000]))
    assert native.ahead_pull() == ([], array("q"))
    # Python's own changes may follow a pull, never come over changes not pulled.
    after = native.scan(
        exec_run(T0 + 4000, 108, 408, 1, "ls").encode(),
        0,
        dataclasses.replace(state, ahead_ops=[1, 106, 0, 0, 0]),
    )
    assert after.ahead_held and after.state.expected == 105
    with pytest.raises(NativeError, match="not pulled"):
        native.scan(b"# x\n", 0, dataclasses.replace(after.state, ahead_ops=[1, 108, 0, 0, 0]))
