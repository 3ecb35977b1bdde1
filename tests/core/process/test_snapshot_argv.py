"""Snapshots decode a command line once while it stays in them (the daemon's checkpoint).

The daemon snapshots the process table every few seconds (4,096 rows); decoding every
row's command line each time was most of a checkpoint's CPU on a log of varied commands.
Both tables keep the last snapshot's decoded command lines for the next one, and only
those: the rows stay the same.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from kexecwatch.core.process.nativetable import NativeProcessTable
from kexecwatch.core.process.table import ArgvMemo, ProcessTable, ProcessTableLike
from kexecwatch.core.scan.fastpath import argv_of_execve_bodies
from tests.nativelib import native_lib


class CountingDecode:
    """argv_of_execve_bodies, counting its calls per command line."""

    def __init__(self) -> None:
        self.calls: Counter[bytes] = Counter()

    def __call__(self, raw: bytes) -> tuple[bytes, ...] | None:
        self.calls[raw] += 1
        return argv_of_execve_bodies(raw)


def body(n: int) -> bytes:
    return b'argc=2 a0="cmd%d" a1="-x"' % n


def python_table(decode: CountingDecode) -> Iterator[ProcessTableLike]:
    yield ProcessTable(decode=decode)


def native_table(decode: CountingDecode) -> Iterator[ProcessTableLike]:
    session = native_lib().new_session(
        window_ms=1000,
        max_entries=65_536,
        max_args_bytes=8 << 20,
        max_lateness_ms=None,
        since_ms=None,
        until_ms=None,
        live=False,
        single_types=(),
        fault_on=None,
    )
    try:
        yield NativeProcessTable(session, decode=decode)
    finally:
        session.close()


@pytest.mark.parametrize("make", [python_table, native_table])
def test_a_snapshot_decodes_only_command_lines_the_last_one_did_not_have(
    make: Callable[[CountingDecode], Iterator[ProcessTableLike]],
) -> None:
    decode = CountingDecode()
    for table in make(decode):
        for pid in range(100, 400):  # 300 processes, 3 command lines
            table.learn_exec(pid, 1, b"c", b"/bin/c", body(pid % 3), 1_000 + pid, b"1.000:%d" % pid)
        first = table.to_state()
        assert decode.calls == {body(0): 1, body(1): 1, body(2): 1}
        table.learn_exec(500, 1, b"c", b"/bin/c", body(7), 2_000, b"2.000:500")
        second = table.to_state()
        # Only the new command line was decoded; the rows are the same as before.
        assert decode.calls == {body(0): 1, body(1): 1, body(2): 1, body(7): 1}
        assert second[:-1] == first
        assert second[-1][4] == ["cmd7", "-x"]


def test_the_memo_holds_the_last_snapshot_s_command_lines_only() -> None:
    decode = CountingDecode()
    memo = ArgvMemo(decode)
    memo.start()
    assert memo.argv(body(1)) == (b"cmd1", b"-x")
    assert memo.argv(body(2)) == (b"cmd2", b"-x")
    memo.finish()
    memo.start()  # a snapshot without body(2)
    memo.argv(body(1))
    memo.finish()
    memo.start()
    memo.argv(body(1))
    memo.argv(body(2))  # forgotten: decoded again
    memo.finish()
    assert decode.calls == {body(1): 1, body(2): 2}
