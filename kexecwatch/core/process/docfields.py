"""The fields and event categories a rule's query can read, derived from the code.

Theory of operation: a user's EQL rule is evaluated on process documents, which
:meth:`~kexecwatch.core.process.events.ProcessEvent.to_document` builds. Rather than keep a
hand-written list that drifts from that method, this module builds process events with
every optional part filled in (an exec, and a kexec system call whose argv comes from the
caller's own exec), renders them with ``to_document`` and reads the dotted paths back.
A field that the method stops writing disappears from :func:`process_fields` at once.

Rendering them on every start-up was a tenth of a replay's fixed cost, so the results are
stored in :mod:`~kexecwatch.core.process.doctables`, generated from the derivation here
(``python -m tools.doctables``); ``tests/core/process/test_doctables.py`` fails on a stale
table, so the derivation stays the single statement of what the documents hold.

Only values a query can compare are listed: scalars and arrays of scalars. Arrays of
objects (``auditd.paths``) are not walked by the evaluator, so their members are not
fields a query can read.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from functools import cache
from itertools import product
from typing import Any

from kexecwatch.core.audit.record import EventId
from kexecwatch.core.audit.syscalls import (
    CRED_SYSCALLS,
    EXEC_SYSCALLS,
    KEXEC_SYSCALLS,
    PROCESS_SYSCALLS,
)
from kexecwatch.core.process import doctables
from kexecwatch.core.process.events import (
    EntryLeader,
    GroupLeader,
    Parent,
    PathItem,
    ProcessEvent,
)

__all__ = [
    "FACET_FIELDS",
    "derive_categories",
    "derive_facets",
    "derive_fields",
    "process_categories",
    "process_facets",
    "process_fields",
]


def _samples() -> tuple[ProcessEvent, ...]:
    """Process events with every optional part present."""
    parent = Parent(
        pid=1,
        name=b"bash",
        executable=b"/bin/bash",
        args=(b"bash",),
        source="event",
        exec_id=EventId(1, 0, 1),
        ppid=0,
        extra=b"auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=1",
        since_ms=1000,
    )
    names = ("uid", "gid", "euid", "suid", "fsuid", "egid", "sgid", "auid")
    exec_event = ProcessEvent(
        node="node",
        host_name="host",
        id=EventId(1, 0, 2),
        syscall="execve",
        arch="x86_64",
        success=True,
        exit_code=0,
        pid=2,
        ppid=1,
        comm=b"kexec",
        exe=b"/usr/sbin/kexec",
        args=(b"kexec", b"-l"),
        argc=2,
        title=b"kexec -l",
        cwd=b"/",
        ids=tuple((n, "0") for n in names),
        names=tuple((n.upper(), "root") for n in names),
        keys=("key",),
        tty="pts0",
        session="1",
        paths=(PathItem(0, b"/usr/sbin/kexec", 1, "00:01", "0100755", "NORMAL"),),
        complete=True,
        line_no=1,
        problems=("problem",),
        parent=parent,
        host_id="id",
        interactive=True,
        entry_leader=EntryLeader(parent, "sshd"),
        capabilities=(("CAP_SYS_PTRACE",), ("CAP_SYS_PTRACE",)),
        session_leader=GroupLeader(1, parent),
        group_leader=GroupLeader(2, None),  # its own leader: its names too
    )
    kexec_call = replace(
        exec_event,
        syscall="kexec_load",
        args=None,
        syscall_args=("0",) * 4,
        self_exec=parent,
        entry_leader=EntryLeader(None, "init"),  # its own leader: its names too
        session_leader=GroupLeader(2, None),
        group_leader=GroupLeader(1, parent),
    )
    return exec_event, kexec_call, replace(kexec_call, syscall=min(PROCESS_SYSCALLS))


def _leaves(doc: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _leaves(value, f"{name}.")
        elif not (isinstance(value, list) and any(isinstance(v, Mapping) for v in value)):
            yield name


def process_fields() -> frozenset[str]:
    """Every dotted field a process document can carry (``process.parent.name``, ...)."""
    return doctables.PROCESS_FIELDS


def process_categories() -> frozenset[str]:
    """The ``event.category`` values of process documents, plus ``any``."""
    return doctables.PROCESS_CATEGORIES


def derive_fields() -> frozenset[str]:
    """What :func:`process_fields` gives, derived by rendering :func:`_samples`."""
    return frozenset(name for event in _samples() for name in _leaves(event.to_document()))


def derive_categories() -> frozenset[str]:
    """What :func:`process_categories` gives, derived by rendering :func:`_samples`."""
    found = {c for event in _samples() for c in event.to_document()["event"]["category"]}
    return frozenset({*found, "any"})


#: Fields that take one of a few values, fixed by the kind of event (not by the process).
FACET_FIELDS = (
    "event.category",
    "event.type",
    "event.action",
    "event.outcome",
    "event.kind",
    "event.module",
    "host.os.type",
    "auditd.data.syscall",
)


def _get(doc: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value: Any = doc
    for key in name.split("."):
        # to_document's objects are dicts (an ABC's isinstance test costs ten times more).
        value = value.get(key) if isinstance(value, dict) else None
    values = value if isinstance(value, list) else [value]
    return tuple(str(v) for v in values if v is not None)


def _facet_sample(
    syscall: str | None, success: bool, changed: str | None, events_as: str, running: bool
) -> ProcessEvent:
    """A process event with only what the facet fields depend on: the call (and for a
    call that is not an exec, ``a0``-``a3``), the outcome, the change, the vocabulary.
    Rendering the full samples (:func:`_samples`) 230 times was most of a replay's
    start-up; these give the same facets (``tests/core/process/test_docfields.py``)."""
    return ProcessEvent(
        node=None,
        host_name="host",
        id=EventId(1, 0, 2),
        syscall=syscall,
        arch=None,
        success=success,
        exit_code=None,
        pid=2,
        ppid=1,
        comm=None,
        exe=None,
        args=None,
        argc=None,
        title=None,
        cwd=None,
        ids=(),
        names=(),
        keys=(),
        tty=None,
        session=None,
        paths=(),
        complete=True,
        line_no=1,
        syscall_args=() if syscall in EXEC_SYSCALLS else ("0",) * 4,
        events_as=events_as,
        changed=changed,
        running=running,
    )


def process_facets(events_as: str = "auditbeat") -> tuple[Mapping[str, tuple[str, ...]], ...]:
    """Every combination of :data:`FACET_FIELDS` values a process document can have.

    One per kind of event the rules see (each exec, kexec call and other process syscall
    of :data:`~kexecwatch.core.audit.syscalls.PROCESS_SYSCALLS`, successful or not, and for a
    ``set*id`` call with the ids changed or not),
    deduplicated: ``{"event.action": ("executed",), "event.type": ("start",), ...}``;
    in the event vocabulary ``events_as`` (``--events-as``).
    """
    stored = doctables.PROCESS_FACETS.get(events_as)
    return derive_facets(events_as) if stored is None else stored


@cache
def derive_facets(events_as: str) -> tuple[Mapping[str, tuple[str, ...]], ...]:
    """What :func:`process_facets` gives, derived by rendering lean events."""
    found: dict[tuple[tuple[str, tuple[str, ...]], ...], Mapping[str, tuple[str, ...]]] = {}
    kinds: list[tuple[str | None, bool, str | None, bool]] = [
        (syscall, success, changed, False)
        for syscall in sorted(EXEC_SYSCALLS | KEXEC_SYSCALLS | PROCESS_SYSCALLS)
        for success, changed in product(
            (True, False), (None, "uid", "gid") if syscall in CRED_SYSCALLS else (None,)
        )
    ]
    if events_as == "defend":  # the daemon's start-up scan: Defend's already_running
        kinds.append((None, True, None, True))
    for syscall, success, changed, running in kinds:
        doc = _facet_sample(syscall, success, changed, events_as, running).to_document()
        facets = {name: _get(doc, name) for name in FACET_FIELDS}
        found.setdefault(tuple(facets.items()), facets)
    return tuple(found.values())
