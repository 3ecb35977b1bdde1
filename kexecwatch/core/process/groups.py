"""The session and process group of a process, where the audit trail or ``/proc`` state them.

Theory of operation: Linux puts every process in a session and a process group, named by
the pid of their leaders. A process's own ``setsid()`` makes it the leader of a new
session and of a new group (both its pid); ``setpgid(pid, pgid)`` moves the caller or one
of its children into a group (``pid`` 0: the caller; ``pgid`` 0: the moved process's pid);
``fork`` copies both to the child and ``exec`` keeps them. So a process's session is:

1. the one its own audited ``setsid``/``setpgid`` (or ``/proc/<pid>/stat``, live) states;
2. else its parent's, found the same way, up through the process table's known parents,
   because it inherited it at the fork: the walk stops (nothing known, **no** guess) at a
   parent the table does not know, at pid 1 (a process reparented to init no longer shows
   its forking parent), at a parent whose known session or group was stated only after the
   child started (it changed after the fork), and before any ``setsid``/``setpgid`` record
   has been seen at all (the calls are then not audited, and a process could have changed
   its session unseen: :attr:`ProcessGroups.audited`).

The same for the process group. A fact is tied to one process instance by the parent pid it
was stated with: a later process that reuses the pid under another parent does not inherit
it (a process reparented after its parent died loses it too, which is safe).

Where this cannot be exact (README, "Session and group leaders"): a process that changed its
session or group before auditing started (a replay of a log that does not show it) and whose
descendants the walk reaches through it; a process moved to a subreaper (``systemd --user``)
before its exec, which the walk takes for its forking parent; a parent that changed its own
session or group between the fork and the child's exec.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from kexecwatch.core.audit.syscalls import GROUP_SYSCALLS, SESSION_SYSCALLS
from kexecwatch.core.process.events import GroupLeader, Parent, ProcessEvent
from kexecwatch.core.text.frozen import Frozen, set_field

__all__ = ["MAX_DEPTH", "GroupFact", "ProcessGroups"]

#: The most ancestors walked.
MAX_DEPTH = 32
_MAX_PID = 1 << 22  # PID_MAX_LIMIT on 64-bit Linux


class GroupFact(Frozen):
    """What is stated of one process: its session and group (``None``: not stated, so
    inherited), its parent pid when stated (the instance), and since when."""

    __slots__ = ("sid", "pgid", "ppid", "since_ms")  # noqa: RUF023 - the fields, in order

    sid: int | None
    pgid: int | None
    ppid: int | None
    since_ms: int

    def __init__(self, sid: int | None, pgid: int | None, ppid: int | None, since_ms: int) -> None:
        set_field(self, "sid", sid)
        set_field(self, "pgid", pgid)
        set_field(self, "ppid", ppid)
        set_field(self, "since_ms", since_ms)

    def holds_for(self, ppid: int | None) -> bool:
        """Whether this fact is about the process whose parent is ``ppid``."""
        return self.ppid is None or ppid is None or self.ppid == ppid


def _pid_arg(raw: str | None) -> int | None:
    """A ``pid_t`` argument as the ``SYSCALL`` record writes it (hex), if plausible."""
    if raw is None:
        return None
    try:
        value = int(raw, 16)
    except ValueError:
        return None
    return value if 0 <= value <= _MAX_PID else None


class ProcessGroups:
    """Sessions and process groups, per pid, as the trail and ``/proc`` state them.

    Args:
        max_entries: the most pids remembered (least recently stated go first).
    """

    def __init__(self, max_entries: int = 65_536) -> None:
        self.max_entries = max_entries
        self._facts: OrderedDict[int, GroupFact] = OrderedDict()
        #: Whether a ``setsid``/``setpgid`` record has been seen: only then are the calls
        #: known to be audited, and a session or group inherited (module docstring).
        self.audited = False

    def __len__(self) -> int:
        return len(self._facts)

    def _put(self, pid: int, fact: GroupFact) -> None:
        facts = self._facts
        facts[pid] = fact
        facts.move_to_end(pid)
        while len(facts) > self.max_entries:
            facts.popitem(last=False)

    def observe(self, event: ProcessEvent) -> None:
        """Learn from a successful ``setsid`` or ``setpgid`` event (others are ignored)."""
        if event.syscall not in GROUP_SYSCALLS:
            return
        self.audited = True
        if not event.success:
            return
        time_ms = event.id.time_ms
        if event.syscall in SESSION_SYSCALLS:
            self._put(event.pid, GroupFact(event.pid, event.pid, event.ppid, time_ms))
            return
        args = event.syscall_args
        target = _pid_arg(args[0] if args else None)
        pgid = _pid_arg(args[1] if len(args) > 1 else None)
        if target is None or pgid is None:
            return
        target = target or event.pid
        # setpgid moves the caller or one of its children: the child's parent is the caller.
        ppid = event.ppid if target == event.pid else event.pid
        known = self._facts.get(target)
        sid = known.sid if known is not None and known.holds_for(ppid) else None
        self._put(target, GroupFact(sid, pgid or target, ppid, time_ms))

    def add_live(self, pid: int, ppid: int, sid: int, pgid: int, since_ms: int) -> None:
        """What ``/proc/<pid>/stat`` says (fields 6 and 5), taken as true since the
        process started (``since_ms``)."""
        self._put(pid, GroupFact(sid, pgid, ppid, since_ms))

    def resolve(
        self, pid: int, ppid: int, at_ms: int, ancestors: Sequence[Parent]
    ) -> tuple[int | None, int | None]:
        """The session and process group of process ``pid`` (parent ``ppid``) at
        ``at_ms``; ``None`` where not known exactly (module docstring).

        Args:
            ancestors: what the table knows of its parent, grandparent, ... (nearest
                first, as :meth:`~kexecwatch.core.process.table.ProcessTable.ancestry`).
        """
        sid: int | None = None
        pgid: int | None = None
        own = self._facts.get(pid)
        if own is not None and own.holds_for(ppid) and own.since_ms <= at_ms:
            sid, pgid = own.sid, own.pgid
        if (sid is not None and pgid is not None) or not self.audited:
            return sid, pgid
        child_ppid, child_since = ppid, at_ms
        for parent in ancestors[:MAX_DEPTH]:
            if parent.pid != child_ppid or parent.pid <= 1:
                break
            fact = self._facts.get(parent.pid)
            if fact is not None and fact.holds_for(parent.ppid):
                if fact.since_ms > child_since:
                    break  # stated after the child started: not what it inherited
                sid = fact.sid if sid is None else sid
                pgid = fact.pgid if pgid is None else pgid
                if sid is not None and pgid is not None:
                    break
            if parent.ppid is None:
                break
            child_ppid = parent.ppid
            child_since = parent.since_ms if parent.since_ms is not None else child_since
        return sid, pgid

    def to_state(self) -> list[list[Any]]:
        """A JSON-ready snapshot: ``[pid, sid, pgid, ppid, since_ms]`` rows, oldest first,
        and a leading ``[audited]`` row."""
        rows: list[list[Any]] = [[self.audited]]
        rows.extend([pid, f.sid, f.pgid, f.ppid, f.since_ms] for pid, f in self._facts.items())
        return rows

    def restore(self, state: list[list[Any]]) -> None:
        """Load a snapshot made by :meth:`to_state`. Raises ``ValueError`` if malformed."""
        if not state or len(state[0]) != 1:
            raise ValueError("groups state without its audited row")
        self.audited = bool(state[0][0])

        def opt(value: Any) -> int | None:
            return None if value is None else int(value)

        for pid, sid, pgid, ppid, since in state[1:]:
            self._put(int(pid), GroupFact(opt(sid), opt(pgid), opt(ppid), int(since)))

    def leaders(
        self,
        pid: int,
        ppid: int,
        at_ms: int,
        ancestors: Sequence[Parent],
        known: Callable[[int, int], Parent | None],
    ) -> tuple[GroupLeader | None, GroupLeader | None]:
        """The session leader and group leader of process ``pid`` (see :meth:`resolve`).

        ``known(pid, at_ms)`` is what the table knows of a leader. A leader's fields are
        given only when the table's entry is the instance the leader's own fact was stated
        for (same parent); else the leader is known by its pid alone.
        """
        sid, pgid = self.resolve(pid, ppid, at_ms, ancestors)
        return self._leader(sid, pid, at_ms, known), self._leader(pgid, pid, at_ms, known)

    def _leader(
        self,
        leader: int | None,
        pid: int,
        at_ms: int,
        known: Callable[[int, int], Parent | None],
    ) -> GroupLeader | None:
        if leader is None:
            return None
        if leader == pid:
            return GroupLeader(pid, None)
        fact = self._facts.get(leader)
        found = known(leader, at_ms) if fact is not None else None
        if found is not None and fact is not None and not fact.holds_for(found.ppid):
            found = None
        return GroupLeader(leader, found)
