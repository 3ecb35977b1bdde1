"""Prefilters: which syscall events deserve a full parse.

Theory of operation: most events of a busy log are execs that no rule can match. The
detector's fast path (:mod:`kexecwatch.core.scan.fastpath`) reads only a few fields of such an
event's ``SYSCALL`` record (syscall, success, pid, ppid, comm, exe), teaches the process
table, and moves on. An event is parsed in full, turned into a
:class:`~kexecwatch.core.process.events.ProcessEvent` and shown to the rules only when an
:class:`Prefilter` accepts it.

Prefilters are derived from each rule's literals (:func:`prefilter_from_values`, fed by
``CompiledQuery.required_values()``): ``process.name == "kexec"`` becomes "only events
whose ``comm`` decodes to ``kexec``". A consumer whose needs cannot be stated this way
registers :data:`EVERYTHING` and gets every event, only more slowly.

Rules in Python (:mod:`kexecwatch.core.detect.detections`) have no literals to read: each states
its prefilters itself (``prefilters()``), with the fields below and, where a set of values is
not enough, a test on the document's ``process.name`` and ``process.executable``
(:attr:`Prefilter.where`) or on learned ``PATH`` inodes (:attr:`Prefilter.path_items`).
A rule that requires text in its arguments gets an :attr:`Prefilter.args` test
(:mod:`kexecwatch.core.scan.argtest`), run on each event's decoded arguments.

Rule 1: a prefilter may accept too much, never too little. Every derivation here maps a
document field onto the raw value it is built from, exactly as
:meth:`~kexecwatch.core.process.events.ProcessEvent.to_document` builds it; a field with no such
mapping is simply not used.
Rule 2: everything but :attr:`~Prefilter.record_types`,
:attr:`~Prefilter.path_items` and :attr:`~Prefilter.args` depends only on the
``SYSCALL`` record's syscall, success, comm, exe and host
(:meth:`Prefilter.accepts_static`), so a reader may decide once per distinct
combination and remember the answer.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field

from kexecwatch.core.process.actions import syscalls_of_actions, syscalls_of_types
from kexecwatch.core.scan.argtest import ArgsTest, Facts

__all__ = ["EVERYTHING", "LearnedItems", "Prefilter", "prefilter_from_values", "text_of"]


def text_of(value: bytes | None) -> str:
    """A decoded ``comm``/``exe`` as the document holds it (``""`` when absent)."""
    return "" if value is None else value.decode("utf-8", "surrogateescape")


@dataclass(frozen=True, slots=True)
class Prefilter:
    """Which syscall events one consumer needs in full. ``None`` accepts anything.

    An event is accepted when every given constraint holds; a consumer with several
    alternatives states several prefilters.

    Attributes:
        syscalls: syscall names (``execve``, ``kexec_load``, ``syscall_999`` for a
            number the table does not name).
        success: the ``success=`` flag.
        comms: the decoded ``comm`` (``process.name``).
        exes: the decoded ``exe`` (``process.executable``).
        hosts: ``host.name``: the record's ``node=``, or the detector's host name.
        where: a test on ``process.name`` and ``process.executable`` as the document
            holds them (``""`` when absent); it must depend on nothing else.
        record_types: the event holds at least one record of one of these types.
        path_items: a live collection of ``(inode, dev)`` pairs (a detection's learned
            state, best a :class:`LearnedItems`, whose version lets the fast path keep
            its search): the event may hold a ``PATH`` record with one of them. Empty:
            no event is accepted.
        args: a test on ``process.name``, ``process.executable`` and
            ``process.command_line`` together (the decoded arguments); an event whose
            arguments the reader cannot tell is accepted.
    """

    syscalls: frozenset[str] | None = None
    success: bool | None = None
    comms: frozenset[bytes] | None = None
    exes: frozenset[bytes] | None = None
    hosts: frozenset[str] | None = None
    where: Callable[[str, str], bool] | None = field(default=None, compare=False)
    record_types: frozenset[str] | None = None
    path_items: Collection[tuple[int, str]] | None = field(default=None, compare=False)
    args: ArgsTest | None = None

    @property
    def is_static(self) -> bool:
        """Whether :meth:`accepts_static` is the whole answer (Rule 2)."""
        return self.record_types is None and self.path_items is None and self.args is None

    def accepts_static(
        self, syscall: str, success: bool, comm: bytes | None, exe: bytes | None, host: str
    ) -> bool:
        """Whether the constraints on the ``SYSCALL`` record's values all hold."""
        if self.comms is not None and comm not in self.comms:
            return False
        if self.exes is not None and exe not in self.exes:
            return False
        if self.syscalls is not None and syscall not in self.syscalls:
            return False
        if self.success is not None and success != self.success:
            return False
        if self.hosts is not None and host not in self.hosts:
            return False
        if self.where is not None and not self.where(text_of(comm), text_of(exe)):
            return False
        return self.args is None or self.args.given(text_of(comm), text_of(exe)) is not False

    def accepts_items(self, inodes: Callable[[], Collection[int]]) -> bool:
        """The :attr:`path_items` test, given the event's ``PATH`` inodes (a superset).

        ``inodes`` is only called when there is something to compare with.
        """
        known = self.path_items
        if known is None:
            return True
        if not known:
            return False
        found = inodes()
        return any(inode in found for inode, _ in list(known))

    def accepts(
        self,
        syscall: str,
        success: bool,
        comm: bytes | None,
        exe: bytes | None,
        *,
        host: str,
        record_types: frozenset[str] | None = None,
        inodes: Callable[[], Collection[int]] | None = None,
        facts: Callable[[], Facts] | None = None,
    ) -> bool:
        """Whether an event with these raw values may be needed.

        ``record_types`` may be left ``None`` by a caller that knows no prefilter asks
        for them, ``inodes`` (the event's ``PATH`` inodes) and ``facts`` (what
        :attr:`args` reads) when it cannot tell; a prefilter that asks then accepts the
        event (Rule 1).
        """
        if not self.accepts_static(syscall, success, comm, exe, host):
            return False
        if inodes is not None and not self.accepts_items(inodes):
            return False
        if self.args is not None and facts is not None and not self.args.accepts(facts()):
            return False
        return not (
            self.record_types is not None
            and record_types is not None
            and not (self.record_types & record_types)
        )


#: Accepts every event: for consumers whose needs cannot be stated as literals.
EVERYTHING = Prefilter()


class LearnedItems(Collection[tuple[int, str]]):
    """A detection's learned ``(inode, dev)`` pairs, each with a text it keeps about it,
    the most recently learned last, at most ``limit``: a :attr:`Prefilter.path_items`.

    :attr:`version` changes whenever the pairs do, so a reader may keep what it derives
    from them (the fast path's inode search) until it changes, instead of reading
    every pair again for every event.
    """

    __slots__ = ("_items", "limit", "version")

    def __init__(self, limit: int) -> None:
        self._items: dict[tuple[int, str], str] = {}
        self.limit = limit
        self.version = 0

    def learn(self, item: tuple[int, str], text: str) -> None:
        """Remember ``item`` (again) as the most recent, forgetting the oldest beyond
        :attr:`limit`."""
        items = self._items
        if items.pop(item, None) is None:
            self.version += 1
        items[item] = text
        while len(items) > self.limit:
            del items[next(iter(items))]

    def text(self, item: tuple[int, str]) -> str | None:
        """What was learned with ``item`` (``None``: not known)."""
        return self._items.get(item)

    def __contains__(self, item: object) -> bool:
        return item in self._items

    def __iter__(self) -> Iterator[tuple[int, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

#: Document fields that hold the same value in every process document.
_CONSTANTS = {
    "event.category": "process",
    "event.kind": "event",
    "event.module": "auditd",
    "host.os.type": "linux",
}


def _encoded(values: frozenset[str]) -> frozenset[bytes]:
    # Document text is bytes decoded as UTF-8 with surrogateescape; a string that does
    # not encode back can come from no bytes at all, so it is simply dropped.
    out = set()
    for value in values:
        try:
            out.add(value.encode("utf-8", "surrogateescape"))
        except UnicodeEncodeError:
            continue
    return frozenset(out)


def prefilter_from_values(required: Mapping[str, frozenset[str]]) -> Prefilter | None:
    """The prefilter of a rule whose matches all hold ``required`` values.

    Args:
        required: ``field -> values`` such that every matching document has an element
            of ``field`` equal to one of ``values`` (``CompiledQuery.required_values()``).

    Returns:
        The narrowest prefilter this module can state, or ``None`` when no process
        document can ever match (``event.category == "network"``).
    """
    for name, constant in _CONSTANTS.items():
        if name in required and constant not in required[name]:
            return None
    syscalls: frozenset[str] | None = None
    success: bool | None = None
    actions = required.get("event.action")
    if actions is not None:
        syscalls = syscalls_of_actions(actions)
    types = required.get("event.type")
    typed = syscalls_of_types(types) if types is not None else None
    if typed is not None:  # only some syscalls have such a type ("start": an exec, ...)
        syscalls = typed[0] if syscalls is None else syscalls & typed[0]
        success = typed[1]
    outcomes = required.get("event.outcome")
    if outcomes is not None:
        wanted = {o == "success" for o in outcomes if o in ("success", "failure")}
        if not wanted or (success is not None and success not in wanted):
            return None
        if len(wanted) == 1:
            success = next(iter(wanted))
    if syscalls is not None and not syscalls:
        return None
    names = required.get("process.name")
    exes = required.get("process.executable")
    hosts = required.get("host.name")
    return Prefilter(
        syscalls=syscalls,
        success=success,
        comms=_encoded(names) if names is not None else None,
        exes=_encoded(exes) if exes is not None else None,
        hosts=hosts,
    )
