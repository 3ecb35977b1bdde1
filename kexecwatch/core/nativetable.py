"""The process table kept by the native library, behind :class:`ProcessTable`'s API.

Theory of operation: when the native bulk path scans, the process table lives in the
native session (the scan updates it without Python), so the detector and the shells
use this wrapper instead of :class:`~kexecwatch.core.proctable.ProcessTable`. Its
rules (pid reuse, the lateness walk, the history of two, LRU order with parents kept
fresh, the entry and argv bounds, the unreadable FIFO) are the ones stated once in
:mod:`kexecwatch.core.proctable`'s docstring; the native table implements them and
``tests/core/test_nativetable.py`` holds both tables equal on the same operations.

Entries cross the boundary as :data:`~kexecwatch.core.nativeapi.RawEntry` tuples:
``comm``/``exe`` may be the raw text of a ``SYSCALL`` record (decoded here with the
reference decoder) and ``args`` raw ``EXECVE`` bodies (decoded only when the entry
describes a parent), as the Python table keeps them.

Rule 1: same answers as ``ProcessTable`` for the same calls, including the ``/proc``
lookup's use (a miss reads it, an unreadable pid is not tried again).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kexecwatch.core.fields import decode_untrusted
from kexecwatch.core.nativeapi import NativeSession, RawEntry
from kexecwatch.core.process import Parent
from kexecwatch.core.proctable import (
    STATE_ENTRIES,
    Args,
    LazyArgs,
    LiveProcess,
    ProcLookup,
    TableLookups,
    state_row,
)
from kexecwatch.core.record import EventId
from kexecwatch.core.syscalls import EXEC_SYSCALLS, FORK_SYSCALLS

__all__ = ["NativeProcessTable"]


class NativeProcessTable(TableLookups):
    """:class:`~kexecwatch.core.proctable.ProcessTable`'s API over a native session (the
    lookups are :class:`~kexecwatch.core.proctable.TableLookups`', shared with it).

    Args:
        session: the detector's native session (it holds the entries).
        lookup: called on a miss to read a live parent (live mode only).
        decode: turns raw argv (``EXECVE`` bodies) into argv.
    """

    def __init__(
        self,
        session: NativeSession,
        *,
        lookup: ProcLookup | None = None,
        decode: Callable[[bytes], tuple[bytes, ...] | None],
    ) -> None:
        self.session = session
        self.lookup = lookup
        self._decode = decode

    def __len__(self) -> int:
        return self.session.table_len()

    @property
    def args_bytes(self) -> int:
        """How many argv bytes the table holds now (history included)."""
        return self.session.table_args_bytes()

    def _parent_at(self, pid: int, at_ms: int) -> Parent | None:
        entry = self.session.table_entry_at(pid, at_ms)
        return None if entry is None else self._parent(entry)

    def _latest(self, pid: int) -> Parent | None:
        entry = self.session.table_latest(pid)
        return None if entry is None else self._parent(entry)

    def _has(self, pid: int) -> bool:
        return self.session.table_contains(pid)

    def _is_unreadable(self, pid: int) -> bool:
        return self.session.table_is_unreadable(pid)

    def _mark_unreadable(self, pid: int) -> None:
        self.session.table_mark_unreadable(pid)

    def learn_exec(  # noqa: PLR0917 - ProcessTable.learn_exec's signature
        self,
        pid: int,
        ppid: int,
        comm: bytes | None,
        exe: bytes | None,
        args: Args,
        time_ms: int,
        exec_id: EventId | bytes,
        extra: bytes | None = None,
    ) -> None:
        """A successful exec, from raw values (``ProcessTable.learn_exec``)."""
        self.session.table_store(
            (pid, ppid, comm, False, exe, False, args, time_ms, _id_text(exec_id), "event", extra)
        )

    def learn(
        self,
        *,
        syscall: str | None,
        success: bool,
        pid: int,
        ppid: int,
        comm: bytes | None,
        exe: bytes | None,
        exit_code: int | None,
        args: Args | LazyArgs,
        event_id: EventId,
        extra: bytes | None = None,
    ) -> None:
        """:meth:`observe` from raw values (``ProcessTable.learn``); every entry learned
        from the event keeps its ``extra`` (a fork child: the fork's)."""
        if isinstance(args, LazyArgs):
            args = args.resolve()
        store = self.session.table_store
        time_ms = event_id.time_ms
        if success and syscall in EXEC_SYSCALLS:
            store(
                (pid, ppid, comm, False, exe, False, args, time_ms, str(event_id), "event", extra)
            )
        elif success and syscall in FORK_SYSCALLS:
            if exit_code is not None and exit_code > 0:
                known = self.session.table_latest(pid)
                store(
                    (
                        exit_code,
                        pid,
                        comm,
                        False,
                        exe,
                        False,
                        None if known is None else known[6],
                        time_ms,
                        None if known is None else known[8],
                        "event",
                        extra,
                    )
                )
        elif comm is not None and not self.session.table_contains(pid):
            store((pid, ppid, comm, False, exe, False, None, time_ms, None, "event", extra))

    def add_live(self, live: LiveProcess) -> None:
        """Seed or refresh an entry from ``/proc``."""
        self.session.table_store(
            (
                live.pid,
                live.ppid,
                live.comm,
                False,
                live.exe,
                False,
                live.args,
                live.start_ms,
                None,
                "procfs",
                live.extra,
            )
        )

    def to_state(self) -> list[list[Any]]:
        """A JSON-ready snapshot, row for row as ``ProcessTable.to_state``."""
        return [
            state_row(self._parent(entry), entry[7])
            for entry in self.session.table_rows(STATE_ENTRIES)
        ]

    def restore(self, state: list[list[Any]]) -> None:
        """Load a snapshot made by :meth:`to_state` (or ``ProcessTable.to_state``)."""

        def dec(s: str | None) -> bytes | None:
            return None if s is None else s.encode("latin-1")

        for row in state:
            # Snapshots written before entries had ``extra`` have 8 columns.
            pid, ppid, comm, exe, args, since, exec_id, source, *rest = row
            self.session.table_store(
                (
                    int(pid),
                    None if ppid is None else int(ppid),
                    dec(comm),
                    False,
                    dec(exe),
                    False,
                    None if args is None else tuple(a.encode("latin-1") for a in args),
                    int(since),
                    None if exec_id is None else str(EventId.from_str(exec_id)),
                    str(source),
                    dec(rest[0]) if rest else None,
                )
            )

    def _parent(self, entry: RawEntry) -> Parent:
        pid, ppid, comm, comm_raw, exe, exe_raw, args, since, exec_id, source, extra = entry
        return Parent(
            pid=pid,
            name=decode_untrusted(comm) if comm_raw and comm is not None else comm,
            executable=decode_untrusted(exe) if exe_raw and exe is not None else exe,
            args=self._decode(args) if isinstance(args, bytes) else args,
            source=source,
            exec_id=None if exec_id is None else EventId.from_str(exec_id),
            ppid=ppid,
            extra=extra,
            since_ms=since,
        )


def _id_text(exec_id: EventId | bytes) -> str:
    return exec_id.decode("ascii") if isinstance(exec_id, bytes) else str(exec_id)
