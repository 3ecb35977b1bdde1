"""Process table: what each pid last executed, so events can name their parents.

Theory of operation: every exec event teaches the table what its pid now runs
(comm, exe, argv), and every successful fork/clone teaches it that the child
runs what its parent ran. An event's parent is the entry of its ``ppid``,
taken from the latest exec of that pid seen *before* the event.

Pid reuse: an entry learned for pid P is only trusted as the parent of an
event whose time is not earlier than the entry's; and a new exec or fork for P
replaces the old entry, so a recycled pid never keeps a dead process's name.
With ``max_lateness_ms`` (the detector passes its event window), an entry dated
more than that after the event is not a later exec learned early, but a clock
that stepped back (README, "Time policy"), and is used.
Entries may also be injected from ``/proc`` by the live shell (``source``
``procfs``), and looked up on a miss through an injected :class:`ProcLookup`.
The table is bounded: past ``max_entries`` entries or ``max_args_bytes`` of argv,
the least recently used entries are dropped. An entry is used when its pid execs or
forks and when it is named as the parent of an exec or fork, so a long-lived shell
that keeps starting commands stays while processes that ran once and exited go.

Every entry learned from an event keeps that event's credentials text, its ``extra``:
the ``SYSCALL`` record's text from ``auid=`` up to (not including) `` comm=``, as
written (:func:`~kexecwatch.core.process.identity.extra_of`); a fork child keeps the fork
event's (the credentials it inherits). ``/proc`` entries carry the same layout read from
``/proc`` when the shell gives one. It is decoded only when the entry describes a parent
(:mod:`kexecwatch.core.process.identity`); the native table stores the same bytes.

The rules, stated once for both implementations (this module's :class:`ProcessTable` and
the native library's table, which :class:`~kexecwatch.core.process.nativetable.NativeProcessTable`
wraps; ``tests/core/process/test_nativetable.py`` holds them equal):

- *Store*: a new entry for pid P becomes P's latest; P's previous entries stay as its
  history, at most two (older links are cut, their argv bytes given back). Storing moves
  P to the most recently used end, and P's ``ppid``, if it has an entry, too (a parent
  still spawning stays).
- *Bounds*: after a store, while there are more than ``max_entries`` pids, or more than
  ``max_args_bytes`` argv bytes with more than one pid, the least recently used pid goes,
  history and all. argv bytes: raw ``EXECVE`` bodies count their length, decoded argv the
  sum of its lengths plus 8 a value (:func:`_size`).
- *Lookups* at a time t walk back from the latest entry while the entry is dated after t
  and no more than ``max_lateness_ms`` after it; the first other entry answers (or none).
  Lookups do not change the order.
- *Unreadable*: a pid ``/proc`` could not name is remembered (the last 4096) and not read
  again by :meth:`ProcessTable.remember_live`.
- *Learning*: a successful exec stores its argv and id; a successful fork or clone with a
  positive exit value stores the child (pid = exit value, ppid = the caller) with the
  caller's latest argv and exec id and the event's comm and exe; any other event stores
  the pid without argv when it has no entry and its comm is known.

Rule 1: the table never guesses. A parent it does not know has no name, and
the event says so (``parent_source`` ``unknown``).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from typing import Any, Final, Protocol

from kexecwatch.core.audit.record import EventId
from kexecwatch.core.audit.syscalls import EXEC_SYSCALLS, FORK_SYSCALLS
from kexecwatch.core.process.events import LONG_MAX, LONG_MIN, Parent, ProcessEvent
from kexecwatch.core.process.groups import ProcessGroups
from kexecwatch.core.text.frozen import Frozen, set_field
from kexecwatch.core.text.jsontext import JsonText, ascii_compact

__all__ = [
    "DEFAULT_MAX_ARGS_BYTES",
    "DEFAULT_MAX_ENTRIES",
    "Args",
    "ArgvMemo",
    "LazyArgs",
    "LiveProcess",
    "ProcLookup",
    "ProcessTable",
    "ProcessTableLike",
    "TableLookups",
    "id_text",
    "state_row",
    "state_row_of",
]

DEFAULT_MAX_ENTRIES = 65_536
#: How many of the most recently used entries a snapshot (checkpoint) keeps.
STATE_ENTRIES = 4_096
#: The argv bytes the table may hold (raw EXECVE bodies, history included). At the
#: ~350 bytes of an average argv this holds some 24,000 processes: with parents kept
#: fresh (below) that covers every process still spawning children, for the bounded
#: memory of a replay (peak RSS under 64 MB).
DEFAULT_MAX_ARGS_BYTES = 8 << 20


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
        extra: its credentials in the layout of an entry's ``extra`` (see the module
            docstring), if read.
        sid: its session (stat field 6), if read.
        pgid: its process group (stat field 5), if read.
    """

    pid: int
    ppid: int
    comm: bytes | None
    exe: bytes | None
    args: tuple[bytes, ...] | None
    start_ms: int
    extra: bytes | None = None
    sid: int | None = None
    pgid: int | None = None


class ProcLookup(Protocol):
    """Looks a live process up; injected by the live shell, absent in replay."""

    def __call__(self, pid: int) -> LiveProcess | None:  # pragma: no cover - protocol
        ...


class LazyArgs(Frozen):
    """argv kept as the raw bytes it is written in, decoded only when a parent needs it.

    Most processes never become the parent of an event a rule reads, so the fast path
    stores an exec's raw ``EXECVE`` record bodies and leaves the decoding to ``decode``.
    The table keeps only ``raw`` (see :data:`Args`); ``decode`` must be
    :func:`~kexecwatch.core.scan.fastpath.argv_of_execve_bodies`'s equal.
    """

    __slots__ = ("raw", "decode")  # noqa: RUF023 - the fields, in order

    raw: bytes
    decode: Callable[[bytes], tuple[bytes, ...] | None]

    def __init__(self, raw: bytes, decode: Callable[[bytes], tuple[bytes, ...] | None]) -> None:
        set_field(self, "raw", raw)
        set_field(self, "decode", decode)

    def resolve(self) -> tuple[bytes, ...] | None:
        """The decoded argv."""
        return self.decode(self.raw)


#: argv as stored: decoded, or the raw ``EXECVE`` bodies (joined by newlines), or unknown.
Args = tuple[bytes, ...] | bytes | None


class ProcessTableLike(Protocol):
    """The process table as the detector and the shells use it: :class:`ProcessTable`'s
    public API, which every implementation (the native one too) keeps, with its rules."""

    lookup: ProcLookup | None
    #: Sessions and process groups (:mod:`kexecwatch.core.process.groups`), learned with
    #: the table: from the events it observes and the ``/proc`` entries it is given.
    groups: ProcessGroups

    def __len__(self) -> int: ...

    @property
    def args_bytes(self) -> int:
        """How many argv bytes the table holds now (history included)."""

    def parent_of(self, event: ProcessEvent) -> Parent | None:
        """The parent of ``event``'s process as known before the event."""

    def process_of(self, event: ProcessEvent) -> Parent | None:
        """``event``'s own process as known before the event."""

    def remember_live(self, pid: int, time_ms: int) -> None:
        """Make sure ``pid`` is known, reading ``/proc`` once if it is not."""

    def parent_at(self, ppid: int, time_ms: int) -> Parent | None:
        """The process ``ppid`` as known at ``time_ms``."""

    def ancestry(self, pid: int, at_ms: int, depth: int = 8) -> list[Parent]:
        """What is known of ``pid`` and its ancestors at ``at_ms``, nearest first."""

    def observe(self, event: ProcessEvent) -> None:
        """Learn from one event."""

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
        """A successful exec, from raw values."""

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
        """:meth:`observe` from raw values."""

    def add_live(self, live: LiveProcess) -> None:
        """Seed or refresh an entry from ``/proc``."""

    def to_state(self) -> list[list[Any]]:
        """A JSON-ready snapshot."""

    def state_text(self) -> JsonText:
        """:meth:`to_state` as the checkpoint writes it (``jsontext.ascii_compact``)."""

    def restore(self, state: list[list[Any]]) -> None:
        """Load a snapshot made by :meth:`to_state`."""


# An entry is a plain tuple (cheaper to build and smaller than an object):
# (pid, ppid, comm, exe, args, since_ms, exec_id, source, extra, previous).
# exec_id is an EventId, or the raw ``sec.mmm:serial`` bytes the fast path read.
_Entry = tuple[
    int,
    int | None,
    bytes | None,
    bytes | None,
    Args,
    int,
    EventId | bytes | None,
    str,
    bytes | None,
    Any,
]
_ARGS: Final = 4
_PREV: Final = 9


def _with_previous(entry: _Entry, previous: _Entry | None) -> _Entry:
    return (*entry[:9], previous)


def _size(args: Args) -> int:
    if args is None:
        return 0
    if isinstance(args, bytes):
        return len(args)
    return sum(map(len, args)) + 8 * len(args)


def _chain_size(entry: _Entry | None) -> int:
    total = 0
    while entry is not None:
        total += _size(entry[_ARGS])
        entry = entry[_PREV]
    return total


def _as_parent(entry: _Entry, decode: Callable[[bytes], tuple[bytes, ...] | None]) -> Parent:
    pid, ppid, comm, exe, args, since, exec_id, source, extra, _prev = entry
    if isinstance(exec_id, bytes):
        exec_id = EventId.from_str(exec_id.decode("ascii"))
    return Parent(
        pid=pid,
        name=comm,
        executable=exe,
        args=decode(args) if isinstance(args, bytes) else args,
        source=source,
        exec_id=exec_id,
        ppid=ppid,
        extra=extra,
        since_ms=since,
    )


def _no_decoder(raw: bytes) -> tuple[bytes, ...] | None:  # pragma: no cover - wiring bug
    raise TypeError("raw argv stored without a decoder")


class TableLookups:
    """What every process table does the same way over its own storage: the lookups
    (with the ``/proc`` lookup's use), :meth:`observe`, :meth:`learn` and :meth:`add_live`
    (the rules of the module docstring). A table provides :meth:`_parent_at` (the
    lateness walk), :meth:`_latest`, :meth:`_has`, the unreadable FIFO
    (:meth:`_is_unreadable`, :meth:`_mark_unreadable`), :meth:`_inherited` and
    :meth:`_put` (its storage, with history, LRU order and bounds)."""

    lookup: ProcLookup | None
    groups: ProcessGroups

    def _parent_at(self, pid: int, at_ms: int) -> Parent | None:
        raise NotImplementedError

    def _latest(self, pid: int) -> Parent | None:
        raise NotImplementedError

    def _has(self, pid: int) -> bool:
        raise NotImplementedError

    def _is_unreadable(self, pid: int) -> bool:
        raise NotImplementedError

    def _mark_unreadable(self, pid: int) -> None:
        raise NotImplementedError

    def _inherited(self, pid: int) -> tuple[Args, EventId | bytes | None] | None:
        """The argv and exec id a fork child of ``pid`` starts with (its latest entry)."""
        raise NotImplementedError

    def _put(  # noqa: PLR0917 - one entry's fields, in the order entries hold them
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
        """Store one entry by the table's rules (history, LRU order, bounds)."""
        raise NotImplementedError

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
        """:meth:`observe` from raw values, for events that are not built in full.

        ``args`` may be raw ``EXECVE`` bodies: they are decoded only if the entry is
        ever used as a parent. ``extra``: the event's credentials text, which every
        entry learned from it keeps (a fork child inherits its parent's credentials
        at the fork).
        """
        if isinstance(args, LazyArgs):
            args = args.resolve()
        time_ms = event_id.time_ms
        if success and syscall in EXEC_SYSCALLS:
            self._put(pid, ppid, comm, exe, args, time_ms, event_id, "event", extra)
        elif success and syscall in FORK_SYSCALLS:
            if exit_code is not None and exit_code > 0:
                known = self._inherited(pid)
                self._put(
                    exit_code,
                    pid,
                    comm,
                    exe,
                    None if known is None else known[0],
                    time_ms,
                    None if known is None else known[1],
                    "event",
                    extra,
                )
        elif comm is not None and not self._has(pid):
            # Any other syscall tells us what the pid runs now, without argv.
            self._put(pid, ppid, comm, exe, None, time_ms, None, "event", extra)

    def add_live(self, live: LiveProcess) -> None:
        """Seed or refresh an entry from ``/proc`` (the live shell's job), with its
        session and process group when read."""
        if live.sid is not None and live.pgid is not None:
            self.groups.add_live(live.pid, live.ppid, live.sid, live.pgid, live.start_ms)
        self._put(
            live.pid,
            live.ppid,
            live.comm,
            live.exe,
            live.args,
            live.start_ms,
            None,
            "procfs",
            live.extra,
        )

    def parent_of(self, event: ProcessEvent) -> Parent | None:
        """The parent of ``event``'s process as known before the event, or ``None``."""
        return self._known(event.ppid, event.id.time_ms)

    def process_of(self, event: ProcessEvent) -> Parent | None:
        """``event``'s own process as known before the event (its latest exec), or ``None``.

        For a non-exec syscall (``kexec_file_load``) this gives the caller's
        argv, which the event itself does not carry.
        """
        return self._known(event.pid, event.id.time_ms)

    def remember_live(self, pid: int, time_ms: int) -> None:
        """Make sure ``pid`` is known, reading ``/proc`` once if it is not.

        The live fast path calls this for every exec's parent, so that a parent
        that exits later can still be named; it decodes nothing, and a pid that
        could not be read is not tried again until the table learns of it.
        """
        if self.lookup is None or pid <= 0 or self._has(pid) or self._is_unreadable(pid):
            return
        live = self.lookup(pid)
        if live is not None and live.start_ms <= time_ms:
            self.add_live(live)
            return
        self._mark_unreadable(pid)

    def parent_at(self, ppid: int, time_ms: int) -> Parent | None:
        """The process ``ppid`` as known at ``time_ms``, or ``None``.

        With a live lookup, a miss reads ``/proc`` and remembers what it found.
        """
        return self._known(ppid, time_ms)

    def _known(self, pid: int, time_ms: int) -> Parent | None:
        known = self._parent_at(pid, time_ms)
        if known is not None:
            return known
        if self.lookup is not None and pid > 0:
            live = self.lookup(pid)
            # A process that started after the event cannot be the one asked
            # for: the pid was recycled in between.
            if live is not None and live.start_ms <= time_ms:
                self.add_live(live)
                return self._latest(pid)
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
            known = self._parent_at(current, at_ms)
            if known is None:
                break
            chain.append(known)
            current = known.ppid
        return chain

    def restore(self, state: list[list[Any]]) -> None:
        """Load a snapshot made by ``to_state`` (of either table: the rows are the same)."""

        def dec(s: str | None) -> bytes | None:
            return None if s is None else s.encode("latin-1")

        for row in state:
            # Snapshots written before entries had ``extra`` have 8 columns.
            pid, ppid, comm, exe, args, since, exec_id, source, *rest = row
            pid, ppid, since = int(pid), None if ppid is None else int(ppid), int(since)
            # Events never carry more (events._long); a row that does is forged.
            if not all(LONG_MIN <= n <= LONG_MAX for n in (pid, ppid or 0, since)):
                raise ValueError(f"process table row beyond the long range: pid {pid}")
            self._put(
                pid,
                ppid,
                dec(comm),
                dec(exe),
                None if args is None else tuple(a.encode("latin-1") for a in args),
                since,
                None if exec_id is None else EventId.from_str(exec_id),
                str(source),
                dec(rest[0]) if rest else None,
            )

    def observe(self, event: ProcessEvent) -> None:
        """Learn from one event: an exec replaces the pid's entry; a fork copies; a
        ``setsid``/``setpgid`` call states a session or process group."""
        self.groups.observe(event)
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
            extra=event.extra,
        )


class ProcessTable(TableLookups):
    """Bounded pid → latest-exec table. See the module docstring for the rules.

    Args:
        max_entries: the most pids remembered.
        lookup: called on a miss to read a live parent (live mode only).
        max_args_bytes: the most argv bytes held (raw or decoded, history
            included); past it, the least recently updated entries go first.
        decode: turns raw argv (``bytes`` given to :meth:`learn_exec`) into argv.
        max_lateness_ms: how much later than an event an entry may be dated and
            still be taken as learned after it; ``None``: any later entry is.
    """

    def __init__(
        self,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        lookup: ProcLookup | None = None,
        max_args_bytes: int = DEFAULT_MAX_ARGS_BYTES,
        decode: Callable[[bytes], tuple[bytes, ...] | None] = _no_decoder,
        max_lateness_ms: int | None = None,
    ) -> None:
        # Beyond any time: the walk below then stops only at earlier entries.
        self._lateness = 2**63 if max_lateness_ms is None else max_lateness_ms
        self.max_entries = max_entries
        self.max_args_bytes = max_args_bytes
        self.lookup = lookup
        self.groups = ProcessGroups(max_entries)
        self._decode = decode
        self._argv_memo = ArgvMemo(decode)
        self._unreadable: dict[int, None] = {}
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._args_bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def args_bytes(self) -> int:
        """How many argv bytes the table holds now (history included)."""
        return self._args_bytes

    def _parent_at(self, pid: int, at_ms: int) -> Parent | None:
        entry = self._entry_at(pid, at_ms)
        return None if entry is None else _as_parent(entry, self._decode)

    def _latest(self, pid: int) -> Parent | None:
        entry = self._entries.get(pid)
        return None if entry is None else _as_parent(entry, self._decode)

    def _has(self, pid: int) -> bool:
        return pid in self._entries

    def _is_unreadable(self, pid: int) -> bool:
        return pid in self._unreadable

    def _mark_unreadable(self, pid: int) -> None:
        unreadable = self._unreadable
        unreadable[pid] = None
        if len(unreadable) > 4096:
            del unreadable[next(iter(unreadable))]

    def _entry_at(self, pid: int, at_ms: int) -> _Entry | None:
        entry = self._entries.get(pid)
        # Events complete roughly, not strictly, in time order: walk back to
        # the latest entry of that pid from before the event.
        while entry is not None and at_ms < entry[5] <= at_ms + self._lateness:
            entry = entry[_PREV]
        return entry

    def learn_exec(  # noqa: PLR0917 - positional: called once per exec on the fast path
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
        """A successful exec, from raw values: the fast path's :meth:`learn`.

        ``args`` may be raw ``EXECVE`` bodies (``bytes``), decoded only if the entry
        is ever used as a parent; ``exec_id`` may be the raw id text; ``extra`` the
        credentials text (see the module docstring).
        """
        self._store((pid, ppid, comm, exe, args, time_ms, exec_id, "event", extra, None))

    def _inherited(self, pid: int) -> tuple[Args, EventId | bytes | None] | None:
        known = self._entries.get(pid)
        return None if known is None else (known[_ARGS], known[6])

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
        self._store((pid, ppid, comm, exe, args, time_ms, exec_id, source, extra, None))

    def _store(self, entry: _Entry) -> None:
        entries = self._entries
        pid = entry[0]
        parent = entry[1]
        if parent is not None and parent in entries:
            entries.move_to_end(parent)  # still spawning: keep it
        added = _size(entry[_ARGS])
        old = entries.get(pid)
        if old is not None:
            # Keep a short history so a slightly late child still finds the
            # parent it had; older links are cut to bound memory.
            older = old[_PREV]
            if older is not None and older[_PREV] is not None:
                added -= _chain_size(older[_PREV])
                old = _with_previous(old, _with_previous(older, None))
            entry = _with_previous(entry, old)
            entries.move_to_end(pid)
        entries[pid] = entry
        self._args_bytes += added
        while len(entries) > self.max_entries or (
            self._args_bytes > self.max_args_bytes and len(entries) > 1
        ):
            self._args_bytes -= _chain_size(entries.popitem(last=False)[1])

    def to_state(self) -> list[list[Any]]:
        """A JSON-ready snapshot (bytes as latin-1 text, which round-trips)."""
        # Only the most recently used entries: a restarted daemon seeds every live
        # process from /proc again, so the snapshot need only carry the recent
        # ones that may have exited, and it stays small enough to write often.
        recent = list(islice(reversed(self._entries.values()), STATE_ENTRIES))
        recent.reverse()
        # Made straight from the entries, each recurring command line decoded once: the
        # daemon snapshots every few seconds.
        memo = self._argv_memo
        memo.start()
        rows = []
        for pid, ppid, comm, exe, stored, since, exec_id, source, extra, _prev in recent:
            args = memo.argv(stored) if isinstance(stored, bytes) else stored
            if isinstance(exec_id, bytes):
                text: str | None = id_text(exec_id.decode("ascii"))
            else:
                text = None if exec_id is None else str(exec_id)
            rows.append(state_row_of(pid, ppid, comm, exe, args, since, text, source, extra))
        memo.finish()
        return rows

    def state_text(self) -> JsonText:
        """:meth:`to_state` as the checkpoint writes it (``jsontext.ascii_compact``)."""
        return JsonText(ascii_compact(self.to_state()))


class ArgvMemo:
    """Command lines decoded for snapshots, kept from one snapshot to the next.

    The daemon snapshots the table every few seconds and most command lines recur, within
    a snapshot and from one to the next: each is decoded once while it stays in the
    snapshots. Holds the command lines of the last snapshot only.

    Args:
        decode: turns raw argv (``EXECVE`` bodies) into argv.
    """

    __slots__ = ("_before", "_decode", "_now")

    def __init__(self, decode: Callable[[bytes], tuple[bytes, ...] | None]) -> None:
        self._decode = decode
        self._before: dict[bytes, tuple[bytes, ...] | None] = {}
        self._now: dict[bytes, tuple[bytes, ...] | None] = {}

    def start(self) -> None:
        """A new snapshot begins: what the last one decoded may be reused."""
        self._before, self._now = self._now, {}

    def finish(self) -> None:
        """The snapshot is made: forget the command lines it did not have."""
        self._before = {}

    def argv(self, raw: bytes) -> tuple[bytes, ...] | None:
        """``raw`` decoded (once while it stays in the snapshots)."""
        now = self._now
        if raw in now:
            return now[raw]
        before = self._before
        value = before[raw] if raw in before else self._decode(raw)
        now[raw] = value
        return value


#: An audit id as ``str(EventId)`` spells it (no leading zeros).
_CANONICAL_ID = re.compile(r"(?:0|[1-9][0-9]*)\.[0-9]{3}:(?:0|[1-9][0-9]*)")


def id_text(raw: str) -> str:
    """An audit id as written in a log (``sec.mmm:serial``), spelled as ``str(EventId)``."""
    return raw if _CANONICAL_ID.fullmatch(raw) else str(EventId.from_str(raw))


def state_row(parent: Parent, since_ms: int) -> list[Any]:
    """One entry of a snapshot (:meth:`ProcessTable.to_state`): bytes as latin-1 text."""
    return state_row_of(
        parent.pid,
        parent.ppid,
        parent.name,
        parent.executable,
        parent.args,
        since_ms,
        None if parent.exec_id is None else str(parent.exec_id),
        parent.source,
        parent.extra,
    )


def state_row_of(  # noqa: PLR0917 - one value per column
    pid: int,
    ppid: int | None,
    name: bytes | None,
    executable: bytes | None,
    args: tuple[bytes, ...] | None,
    since_ms: int,
    exec_id: str | None,
    source: str,
    extra: bytes | None,
) -> list[Any]:
    """A snapshot row from its values: the one statement of the row's layout (``exec_id``
    as ``str(EventId)`` spells it)."""
    return [
        pid,
        ppid,
        None if name is None else name.decode("latin-1"),
        None if executable is None else executable.decode("latin-1"),
        None if args is None else [a.decode("latin-1") for a in args],
        since_ms,
        exec_id,
        source,
        None if extra is None else extra.decode("latin-1"),
    ]
