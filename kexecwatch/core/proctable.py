"""Process table: what each pid last executed, so events can name their parents.

Theory of operation: every exec event teaches the table what its pid now runs
(comm, exe, argv), and every successful fork/clone teaches it that the child
runs what its parent ran. An event's parent is the entry of its ``ppid``,
taken from the latest exec of that pid seen *before* the event.

Pid reuse: an entry learned for pid P is only trusted as the parent of an
event whose time is not earlier than the entry's; and a new exec or fork for P
replaces the old entry, so a recycled pid never keeps a dead process's name.
Entries may also be injected from ``/proc`` by the live shell (``source``
``procfs``), and looked up on a miss through an injected :class:`ProcLookup`.
The table is bounded: past ``max_entries`` the least recently updated entries
are dropped.

Rule 1: the table never guesses. A parent it does not know has no name, and
the event says so (``parent_source`` ``unknown``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from kexecwatch.core.process import Parent, ProcessEvent
from kexecwatch.core.record import EventId
from kexecwatch.core.syscalls import EXEC_SYSCALLS, FORK_SYSCALLS

__all__ = ["DEFAULT_MAX_ENTRIES", "LazyArgs", "LiveProcess", "ProcLookup", "ProcessTable"]

DEFAULT_MAX_ENTRIES = 65_536


@dataclass(frozen=True, slots=True)
class LiveProcess:
    """A process as read from ``/proc`` by the live shell.

    Attributes:
        pid: ``/proc/<pid>``.
        ppid: field 4 of ``/proc/<pid>/stat``.
        comm: ``/proc/<pid>/comm``.
        exe: the target of ``/proc/<pid>/exe``, if readable.
        args: ``/proc/<pid>/cmdline`` split on NUL, if readable.
        start_ms: start time in epoch milliseconds (stat field 22 + btime).
    """

    pid: int
    ppid: int
    comm: bytes | None
    exe: bytes | None
    args: tuple[bytes, ...] | None
    start_ms: int


class ProcLookup(Protocol):
    """Looks a live process up; injected by the live shell, absent in replay."""

    def __call__(self, pid: int) -> LiveProcess | None:  # pragma: no cover - protocol
        ...


@dataclass(frozen=True, slots=True)
class LazyArgs:
    """argv kept as the raw bytes it is written in, decoded only when a parent needs it.

    Most processes never become the parent of an event a rule reads, so the fast path
    stores an exec's raw ``EXECVE`` records and leaves the decoding to ``decode``.
    """

    raw: bytes
    decode: Callable[[bytes], tuple[bytes, ...] | None]

    def resolve(self) -> tuple[bytes, ...] | None:
        """The decoded argv."""
        return self.decode(self.raw)


def _args(value: tuple[bytes, ...] | LazyArgs | None) -> tuple[bytes, ...] | None:
    return value.resolve() if isinstance(value, LazyArgs) else value


@dataclass(frozen=True, slots=True)
class _Entry:
    pid: int
    ppid: int | None
    comm: bytes | None
    exe: bytes | None
    args: tuple[bytes, ...] | LazyArgs | None
    since_ms: int
    exec_id: EventId | None
    source: str
    previous: _Entry | None = None

    def as_parent(self) -> Parent:
        return Parent(
            pid=self.pid,
            name=self.comm,
            executable=self.exe,
            args=_args(self.args),
            source=self.source,
            exec_id=self.exec_id,
            ppid=self.ppid,
        )


class ProcessTable:
    """Bounded pid → latest-exec table. See the module docstring for the rules.

    Args:
        max_entries: the most pids remembered.
        lookup: called on a miss to read a live parent (live mode only).
    """

    def __init__(
        self, *, max_entries: int = DEFAULT_MAX_ENTRIES, lookup: ProcLookup | None = None
    ) -> None:
        self.max_entries = max_entries
        self.lookup = lookup
        self._entries: OrderedDict[int, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def parent_of(self, event: ProcessEvent) -> Parent | None:
        """The parent of ``event``'s process as known before the event, or ``None``."""
        return self._known(event.ppid, event.id.time_ms)

    def process_of(self, event: ProcessEvent) -> Parent | None:
        """``event``'s own process as known before the event (its latest exec), or ``None``.

        For a non-exec syscall (``kexec_file_load``) this gives the caller's
        argv, which the event itself does not carry.
        """
        return self._known(event.pid, event.id.time_ms)

    def parent_at(self, ppid: int, time_ms: int) -> Parent | None:
        """The process ``ppid`` as known at ``time_ms``, or ``None``.

        With a live lookup, a miss reads ``/proc`` and remembers what it found.
        """
        return self._known(ppid, time_ms)

    def _known(self, pid: int, time_ms: int) -> Parent | None:
        entry = self._entry_at(pid, time_ms)
        if entry is not None:
            return entry.as_parent()
        if self.lookup is not None and pid > 0:
            live = self.lookup(pid)
            # A process that started after the event cannot be the one asked
            # for: the pid was recycled in between.
            if live is not None and live.start_ms <= time_ms:
                self.add_live(live)
                return self._entries[pid].as_parent()
        return None

    def ancestry(self, pid: int, at_ms: int, depth: int = 8) -> list[Parent]:
        """What is known of ``pid`` and its ancestors at time ``at_ms``, nearest first.

        Follows ``ppid`` links through the table only (the injected lookup is not
        consulted). Stops at the first pid the table does not know, at pid 0, at a
        pid already seen (a loop made by pid reuse), or after ``depth`` entries.

        Args:
            pid: where to start, usually an event's ``ppid``.
            at_ms: the event time; entries learned after it are not used.
            depth: the most entries returned.

        Returns:
            ``[process, its parent, its grandparent, ...]``; empty when ``pid`` is unknown.
        """
        chain: list[Parent] = []
        seen: set[int] = set()
        current: int | None = pid
        while current is not None and current > 0 and current not in seen and len(chain) < depth:
            seen.add(current)
            entry = self._entry_at(current, at_ms)
            if entry is None:
                break
            chain.append(entry.as_parent())
            current = entry.ppid
        return chain

    def _entry_at(self, pid: int, at_ms: int) -> _Entry | None:
        entry = self._entries.get(pid)
        # Events complete roughly, not strictly, in time order: walk back to
        # the latest entry of that pid from before the event.
        while entry is not None and entry.since_ms > at_ms:
            entry = entry.previous
        return entry

    def observe(self, event: ProcessEvent) -> None:
        """Learn from one event: an exec replaces the pid's entry; a fork copies."""
        self.learn(
            syscall=event.syscall,
            success=event.success,
            pid=event.pid,
            ppid=event.ppid,
            comm=event.comm,
            exe=event.exe,
            exit_code=event.exit_code,
            args=event.args,
            event_id=event.id,
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
        args: tuple[bytes, ...] | LazyArgs | None,
        event_id: EventId,
    ) -> None:
        """:meth:`observe` from raw values, for events that are not built in full.

        ``args`` may be a :class:`LazyArgs`: it is decoded only if the entry is ever
        used as a parent.
        """
        if success and syscall in EXEC_SYSCALLS:
            self._store(_Entry(pid, ppid, comm, exe, args, event_id.time_ms, event_id, "event"))
        elif success and syscall in FORK_SYSCALLS:
            if exit_code is not None and exit_code > 0:
                known = self._entries.get(pid)
                self._store(
                    _Entry(
                        pid=exit_code,
                        ppid=pid,
                        comm=comm,
                        exe=exe,
                        args=known.args if known is not None else None,
                        since_ms=event_id.time_ms,
                        exec_id=known.exec_id if known is not None else None,
                        source="event",
                    )
                )
        elif pid not in self._entries and comm is not None:
            # Any other syscall tells us what the pid runs now, without argv.
            self._store(_Entry(pid, ppid, comm, exe, None, event_id.time_ms, None, "event"))

    def add_live(self, live: LiveProcess) -> None:
        """Seed or refresh an entry from ``/proc`` (the live shell's job)."""
        self._store(
            _Entry(
                pid=live.pid,
                ppid=live.ppid,
                comm=live.comm,
                exe=live.exe,
                args=live.args,
                since_ms=live.start_ms,
                exec_id=None,
                source="procfs",
            )
        )

    def _store(self, entry: _Entry) -> None:
        entries = self._entries
        old = entries.get(entry.pid)
        if old is not None:
            # Keep a short history so a slightly late child still finds the
            # parent it had; older links are cut to bound memory.
            if old.previous is not None:
                old = replace(old, previous=replace(old.previous, previous=None))
            entry = replace(entry, previous=old)
        entries[entry.pid] = entry
        entries.move_to_end(entry.pid)
        while len(entries) > self.max_entries:
            entries.popitem(last=False)

    def to_state(self) -> list[list[Any]]:
        """A JSON-ready snapshot (bytes as latin-1 text, which round-trips)."""

        def enc(b: bytes | None) -> str | None:
            return None if b is None else b.decode("latin-1")

        return [
            [
                e.pid,
                e.ppid,
                enc(e.comm),
                enc(e.exe),
                None if (args := _args(e.args)) is None else [a.decode("latin-1") for a in args],
                e.since_ms,
                None if e.exec_id is None else str(e.exec_id),
                e.source,
            ]
            for e in self._entries.values()
        ]

    def restore(self, state: list[list[Any]]) -> None:
        """Load a snapshot made by :meth:`to_state`."""

        def dec(s: str | None) -> bytes | None:
            return None if s is None else s.encode("latin-1")

        for pid, ppid, comm, exe, args, since, exec_id, source in state:
            self._store(
                _Entry(
                    pid=int(pid),
                    ppid=None if ppid is None else int(ppid),
                    comm=dec(comm),
                    exe=dec(exe),
                    args=None if args is None else tuple(a.encode("latin-1") for a in args),
                    since_ms=int(since),
                    exec_id=None if exec_id is None else EventId.from_str(exec_id),
                    source=str(source),
                )
            )
