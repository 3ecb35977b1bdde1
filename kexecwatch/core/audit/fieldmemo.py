"""Record bodies read once: a bounded memory of :func:`~kexecwatch.core.audit.fields.parse_fields`
for the parts of process events that recur.

Theory of operation: in an exec-heavy log most record bodies come back again and again:
a ``SYSCALL`` record's part from ``auid=`` on (credentials, tty, session, comm, exe, key:
one per user and program), an ``ENRICHED`` tail, a script's ``EXECVE`` arguments, a
working directory, a ``PROCTITLE``. Building every process event in full (``--events``)
read each of them again; here each distinct body is read once and its result remembered.

Rule 1: a result is exactly what :func:`parse_fields` (or :func:`argv_from_execve`) returns
for the same bytes; only the work is saved. A ``SYSCALL`` body is split before ``auid=``
only when both halves are plain ``name=value`` tokens, which then read as the whole does.
Rule 2: results are shared between events: callers read them and never change them.
Rule 3: memory is bounded: a memory holds at most :data:`MAX_ENTRIES` bodies of at most
:data:`MAX_BODY` bytes each (longer ones are read every time), and is emptied when full.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Generic, TypeVar

from kexecwatch.core.audit.fields import Fields, argv_from_execve, parse_fields, plain_fields

__all__ = ["MAX_BODY", "MAX_ENTRIES", "Memo", "argv_of", "fields_of", "syscall_fields_of"]

#: The most bodies one memory holds before it is emptied.
MAX_ENTRIES = 1024
#: The longest body remembered, in bytes (a long argv is rare and costly to hash twice).
MAX_BODY = 2048

K = TypeVar("K")
V = TypeVar("V")

Parsed = tuple[Fields, tuple[str, ...]]
Argv = tuple[tuple[bytes, ...], int | None, tuple[str, ...]]


class Memo(Generic[K, V]):
    """A dict emptied when it holds :data:`MAX_ENTRIES` entries: ``get``, then ``put``."""

    __slots__ = ("_entries", "get")

    def __init__(self) -> None:
        self._entries: dict[K, V] = {}
        self.get = self._entries.get

    def put(self, key: K, value: V) -> V:
        """Remember ``value`` for ``key``; return ``value``."""
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[key] = value
        return value


_BODIES: Memo[bytes, Parsed] = Memo()
_TAILS: Memo[bytes, Fields] = Memo()
_ARGVS: Memo[tuple[bytes, ...], Argv] = Memo()


def fields_of(body: bytes) -> Parsed:
    """:func:`parse_fields` of ``body``, remembered (problems as a tuple)."""
    found = _BODIES.get(body)
    if found is not None:
        return found
    fields, problems = parse_fields(body)
    parsed = fields, tuple(problems)
    return _BODIES.put(body, parsed) if len(body) <= MAX_BODY else parsed


def syscall_fields_of(body: bytes) -> Parsed:
    """:func:`parse_fields` of a ``SYSCALL`` body, its part from ``auid=`` on remembered.

    The part before (syscall, result, arguments, pids) differs in every event and is
    read each time.
    """
    cut = body.find(b" auid=")
    if cut > 0 and len(body) - cut <= MAX_BODY:
        tail = body[cut + 1 :]
        known = _TAILS.get(tail)
        if known is None:
            known = plain_fields(tail)
            if known is not None:
                _TAILS.put(tail, known)
        if known is not None:
            head = _head_fields(body[:cut])
            if head is not None:
                # A name in both halves keeps its first place and its last value, as in
                # a whole read.
                head.update(known)
                return head, ()
    fields, problems = parse_fields(body)
    return fields, tuple(problems)


# The kernel's SYSCALL head (audit_log_exit), up to pid=: plain tokens with these names,
# which parse_fields reads as this dict. Anything else is read by plain_fields.
_HEAD = re.compile(
    rb"arch=([0-9a-f]+) syscall=([0-9]+) (?:per=([0-9a-f]+) )?success=(yes|no) "
    rb"exit=(-?[0-9]+) a0=([0-9a-f]+) a1=([0-9a-f]+) a2=([0-9a-f]+) a3=([0-9a-f]+) "
    rb"items=([0-9]+) ppid=([0-9]+) pid=([0-9]+)"
)
_HEAD_NAMES = (
    *("arch", "syscall", "per", "success", "exit"),
    *("a0", "a1", "a2", "a3", "items", "ppid", "pid"),
)


def _head_fields(head: bytes) -> Fields | None:
    """:func:`plain_fields` of a SYSCALL body's part before `` auid=``."""
    m = _HEAD.fullmatch(head)
    if m is None:
        return plain_fields(head)
    # Only per= is optional: None where it is absent.
    return {name: v for name, v in zip(_HEAD_NAMES, m.groups(), strict=True) if v is not None}


def argv_of(bodies: tuple[bytes, ...], fields: Sequence[Fields]) -> Argv:
    """:func:`argv_from_execve` of one event's ``EXECVE`` records, remembered by their
    bodies; ``fields`` are those bodies' fields (:func:`fields_of`), in the same order."""
    found = _ARGVS.get(bodies)
    if found is not None:
        return found
    argv, argc, problems = argv_from_execve(list(fields))
    result = tuple(argv), argc, tuple(problems)
    if sum(map(len, bodies)) <= MAX_BODY:
        _ARGVS.put(bodies, result)
    return result
