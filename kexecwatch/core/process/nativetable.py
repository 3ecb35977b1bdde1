"""The process table kept by the native library, behind :class:`ProcessTable`'s API.

Theory of operation: when the native bulk path scans, the process table lives in the
native session (the scan updates it without Python), so the detector and the shells
use this wrapper instead of :class:`~kexecwatch.core.process.table.ProcessTable`. Its
rules (pid reuse, the lateness walk, the history of two, LRU order with parents kept
fresh, the entry and argv bounds, the unreadable FIFO) are the ones stated once in
:mod:`kexecwatch.core.process.table`'s docstring; the native table implements them and
``tests/core/process/test_nativetable.py`` holds both tables equal on the same operations.
Sessions and process groups (:attr:`groups`) are kept in Python, as in ``ProcessTable``:
only events Python handles state them (the scanners hand every ``setsid``/``setpgid``
back, see the detector's prefilter), and ``/proc`` entries come through :meth:`add_live`.

Entries cross the boundary as :data:`~kexecwatch.core.audit.nativeapi.RawEntry` tuples:
``comm``/``exe`` may be the raw text of a ``SYSCALL`` record (decoded here with the
reference decoder) and ``args`` raw ``EXECVE`` bodies (decoded only when the entry
describes a parent), as the Python table keeps them.

Rule 1: same answers as ``ProcessTable`` for the same calls, including the ``/proc``
lookup's use (a miss reads it, an unreadable pid is not tried again).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kexecwatch.core.audit.fields import decode_untrusted
from kexecwatch.core.audit.nativeapi import NativeSession, RawEntry
from kexecwatch.core.audit.record import EventId
from kexecwatch.core.process.events import Parent
from kexecwatch.core.process.groups import ProcessGroups
from kexecwatch.core.process.table import (
    STATE_ENTRIES,
    Args,
    ArgvMemo,
    ProcLookup,
    TableLookups,
    id_text,
    state_row_of,
)
from kexecwatch.core.text.jsontext import JsonText, ascii_compact

__all__ = ["NativeProcessTable"]

#: The most :class:`Parent` values :meth:`NativeProcessTable._shared_parent` keeps.
_MAX_PARENTS = 1024


class NativeProcessTable(TableLookups):
    """:class:`~kexecwatch.core.process.table.ProcessTable`'s API over a native session (the
    lookups are :class:`~kexecwatch.core.process.table.TableLookups`', shared with it).

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
        self.groups = ProcessGroups()
        self._decode = decode
        self._argv_memo = ArgvMemo(decode)
        # The Parent made of each recent entry (_shared_parent), by the entry itself.
        self._parents: dict[RawEntry, Parent] = {}

    def __len__(self) -> int:
        return self.session.table_len()

    @property
    def args_bytes(self) -> int:
        """How many argv bytes the table holds now (history included)."""
        return self.session.table_args_bytes()

    def _parent_at(self, pid: int, at_ms: int) -> Parent | None:
        entry = self.session.table_entry_at(pid, at_ms)
        return None if entry is None else self._shared_parent(entry)

    def _latest(self, pid: int) -> Parent | None:
        entry = self.session.table_latest(pid)
        return None if entry is None else self._shared_parent(entry)

    def _shared_parent(self, entry: RawEntry) -> Parent:
        """:meth:`_parent` of ``entry``, made once while it recurs: with many rules the
        scanners ask for the parent of nearly every exec, and one shell's entry is the
        parent of many (a :class:`Parent` is frozen, so one may be shared)."""
        parents = self._parents
        known = parents.get(entry)
        if known is None:
            if len(parents) >= _MAX_PARENTS:
                parents.clear()
            known = parents[entry] = self._parent(entry)
        return known

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
        self._put(pid, ppid, comm, exe, args, time_ms, exec_id, "event", extra)

    def _inherited(self, pid: int) -> tuple[Args, EventId | bytes | None] | None:
        known = self.session.table_latest(pid)
        if known is None:
            return None
        return known[6], None if known[8] is None else known[8].encode("ascii")

    def _put(  # noqa: PLR0917 - TableLookups._put's signature
        self,
        pid: int,
        ppid: int | None,
        comm: bytes | None,
        exe: bytes | None,
        args: Args,
        time_ms: int,
        exec_id: EventId | bytes | None,
        source: str,
        extra: bytes | None,
    ) -> None:
        exec_text = None if exec_id is None else _id_text(exec_id)
        self.session.table_store(
            (pid, ppid, comm, False, exe, False, args, time_ms, exec_text, source, extra)
        )

    def to_state(self) -> list[list[Any]]:
        """A JSON-ready snapshot, row for row as ``ProcessTable.to_state``."""
        # The daemon checkpoints every few seconds, 4,096 rows each time: rows are made
        # straight from the raw entries (no Parent, no EventId unless an id is spelled
        # unusually), a comm or exe that recurs is decoded once, and a command line once
        # while it stays in the snapshots.
        texts: dict[bytes, bytes | None] = {}
        memo = self._argv_memo
        memo.start()
        rows = [self._state_row(entry, texts) for entry in self.session.table_rows(STATE_ENTRIES)]
        memo.finish()
        return rows

    def state_text(self) -> JsonText:
        """:meth:`to_state` as the checkpoint writes it (``jsontext.ascii_compact``), the
        rows the native side is sure of written by it in one call (``state.rs``)."""
        texts: dict[bytes, bytes | None] = {}
        memo = self._argv_memo
        memo.start()
        pieces: list[bytes | memoryview] = [b"["]
        for part in self.session.table_state(STATE_ENTRIES):
            if len(pieces) > 1:
                pieces.append(b",")
            if isinstance(part, memoryview):
                pieces.append(part)
            else:
                pieces.append(ascii_compact(self._state_row(part, texts)))
        pieces.append(b"]")
        memo.finish()
        return JsonText(*pieces)

    def _state_row(self, entry: RawEntry, texts: dict[bytes, bytes | None]) -> list[Any]:
        pid, ppid, comm, comm_raw, exe, exe_raw, args, since, exec_id, source, extra = entry
        if comm_raw and comm is not None:
            comm = texts[comm] if comm in texts else texts.setdefault(comm, decode_untrusted(comm))
        if exe_raw and exe is not None:
            exe = texts[exe] if exe in texts else texts.setdefault(exe, decode_untrusted(exe))
        if isinstance(args, bytes):
            args = self._argv_memo.argv(args)
        if exec_id is not None:
            exec_id = id_text(exec_id)
        return state_row_of(pid, ppid, comm, exe, args, since, exec_id, source, extra)

    def _parent(
        self, entry: RawEntry, decoded: dict[bytes, tuple[bytes, ...] | None] | None = None
    ) -> Parent:
        pid, ppid, comm, comm_raw, exe, exe_raw, args, since, exec_id, source, extra = entry
        if isinstance(args, bytes):
            raw = args
            if decoded is None:
                args = self._decode(raw)
            elif raw in decoded:
                args = decoded[raw]
            else:
                args = decoded[raw] = self._decode(raw)
        return Parent(
            pid=pid,
            name=decode_untrusted(comm) if comm_raw and comm is not None else comm,
            executable=decode_untrusted(exe) if exe_raw and exe is not None else exe,
            args=args,
            source=source,
            exec_id=None if exec_id is None else EventId.from_str(exec_id),
            ppid=ppid,
            extra=extra,
            since_ms=since,
        )


def _id_text(exec_id: EventId | bytes) -> str:
    return exec_id.decode("ascii") if isinstance(exec_id, bytes) else str(exec_id)
