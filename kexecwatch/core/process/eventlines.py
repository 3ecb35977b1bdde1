"""``--events --format json`` lines written by the native library, and what Python tells it.

Theory of operation: with the native scanner, replay's ``--events --format json`` has
the library write the line of a plain exec itself (``native/src/render.rs``): a
successful exec, or a failed one by a pid the table does not know, with no entry
leader (its parent known to the table or not: see below), that no rule needs, in a
whole run (or one event of an interleaved pair) of ``SYSCALL``, ``EXECVE`` (argc and
``a0`` ... in order, long arguments in chunks), ``CWD``, ``PATH`` and ``PROCTITLE``
records in the kernel's layouts, while no process group or session is known. The
library writes what differs from exec to exec (time, id, pids, argv, working directory,
title, ``PATH`` items, entity id); the members that depend only on the ``SYSCALL``
record's text from ``auid=`` on (the *render key*: users, groups, credentials, ``keys``,
``event``, name and executable) Python writes once per key: :func:`event_pieces` builds
the process event of that text alone and takes the members from its very
:meth:`~kexecwatch.core.process.events.ProcessEvent.to_document`, so both halves come from
one definition. Any member this module does not expect makes the answer "hand back":
such runs go the Python way, and a field added to the document is never lost here.
``tests/test_event_lines.py`` holds the lines to the Python path's bytes.

An exec whose parent the table knows is written too when its process has no entry
leader (``native/src/parent.rs`` walks the known ancestors with the rules of
:func:`~kexecwatch.core.process.leaders.entry_leader` and hands back any run where a
leader would be found): the library writes ``process.parent`` from the table entry,
and asks Python, once per text, what depends on a text alone (:func:`table_answer`):
the credential members and login session of a credentials text, and whether an
ancestor's name or executable names an entry service.
"""

from __future__ import annotations

import struct
from typing import Any

from kexecwatch.core.audit.record import EventId
from kexecwatch.core.process.events import Parent, process_event_of_run
from kexecwatch.core.process.leaders import entry_service, login_session
from kexecwatch.core.text.frozen import Frozen, set_field
from kexecwatch.core.text.jsontext import compact

__all__ = [
    "EXTRA_KEY",
    "PIECES",
    "SERVICE_KEY",
    "EventLines",
    "event_pieces",
    "host_parts",
    "table_answer",
]

#: The pieces of an answer, in the order ``native/src/render.rs`` reads them: each a
#: document member (``"key":value``) or, for the credentials of ``process``, the members
#: that sort between two of the library's own (``identity:<after>``); empty when absent.
PIECES = (
    "auditd.arch",
    "auditd.filesystem_user",
    "auditd.keys",
    "auditd.login_user",
    "auditd.session",
    "auditd.syscall",
    "auditd.tty",
    "event",
    "group",
    "process.executable",
    "identity:executable",
    "process.name",
    "identity:pid",
    "identity:title",
    "user",
)

# The members the library writes itself (per exec), or that are absent from an exec
# without EXECVE, PATH, CWD and PROCTITLE records such as the one built here.
_OWN_AUDITD = frozenset(("complete", "exit", "id", "parent_source", "sequence", "success"))
_OWN_PROCESS = frozenset(("entity_id", "parent", "pid"))
_IDENTITY = frozenset(
    ("user", "real_user", "saved_user", "group", "real_group", "saved_group", "interactive", "tty")
)
# Where the credentials go between the library's own members of ``process``.
_SLOTS = (
    ("identity:executable", "executable", "name"),
    ("identity:pid", "pid", "title"),
    ("identity:title", "title", "working_directory"),
)


class EventLines(Frozen):
    """Process events' NDJSON lines as the native library wrote them (``--events``):
    the same bytes ``jsontext.line(event.to_document())`` gives, in log order among the
    other outputs."""

    __slots__ = ("data",)

    data: bytes

    def __init__(self, data: bytes) -> None:
        set_field(self, "data", data)

    def describe(self) -> str:
        """What it holds, in one line (the lines themselves go to the output)."""
        lines = self.data.count(b"\n")
        return f"{lines} process event lines written by the native library"


def _fake_run(call: bytes, success: bytes, tail: bytes) -> bytes:
    """An exec of ``call`` (``success`` ``yes`` or ``no``) whose ``SYSCALL`` record goes
    on with ``tail`` (from ``auid=`` to the line's end), without any other record."""
    return (
        b"type=SYSCALL msg=audit(1.000:1): " + call + b" success=" + success + b" exit=0 a0=0"
        b" a1=0 a2=0 a3=0 items=0 ppid=2 pid=3 " + tail + b"\n"
    )


def host_parts(host_name: str, host_id: str | None) -> tuple[bytes, bytes]:
    """The ``"host":{...}`` member of every line, and the host part of entity ids."""
    key = host_id if host_id is not None else host_name
    doc: dict[str, Any] = {"name": host_name, "os": {"type": "linux"}}
    if host_id is not None:
        doc["id"] = host_id
    return b'"host":' + compact(doc), key.encode("utf-8", "surrogateescape")


def event_pieces(  # noqa: PLR0917 - the render key's parts and the document's settings
    call: bytes,
    success: bytes,
    tail: bytes,
    host_name: str,
    host_id: str | None,
    events_as: str,
) -> list[bytes] | None:
    """Python's answer for a render key (see the module docstring): the
    :data:`PIECES`, or ``None`` ("hand such runs back"): for an exec only, successful
    or failed."""
    if success not in (b"yes", b"no"):
        return None
    run = _fake_run(call, success, tail)
    event_id = EventId(1, 0, 1)
    process = process_event_of_run(
        run, event_id, 1, host_name, host_id=host_id, events_as=events_as
    )
    if process is None or not process.is_exec:
        return None
    doc = process.to_document()
    pieces = dict.fromkeys(PIECES, b"")
    for key, value in doc.items():
        if key in ("event", "group", "user"):
            pieces[key] = _member(key, value)
        elif key not in ("@timestamp", "auditd", "host", "process"):
            return None
    for key, value in doc["auditd"].items():
        name = f"auditd.{key}"
        if name in pieces:
            pieces[name] = _member(key, value)
        elif key not in _OWN_AUDITD:
            return None
    slots: dict[str, list[bytes]] = {slot: [] for slot, _, _ in _SLOTS}
    for key in sorted(doc["process"]):
        value = doc["process"][key]
        name = f"process.{key}"
        if name in pieces:
            pieces[name] = _member(key, value)
        elif key in _IDENTITY:
            slot = next((s for s, after, before in _SLOTS if after < key < before), None)
            if slot is None:
                return None
            slots[slot].append(_member(key, value))
        elif key not in _OWN_PROCESS:
            return None
    for slot, members in slots.items():
        pieces[slot] = b",".join(members)
    return [pieces[name] for name in PIECES]


def _member(key: str, value: Any) -> bytes:
    return compact(key) + b":" + compact(value)


#: The keys of the library's questions about the process table's texts (no render key
#: starts with a NUL: it starts with the ``SYSCALL`` record's ``arch=``).
EXTRA_KEY = b"\0extra\0"
SERVICE_KEY = b"\0service\0"
# The members of ``process.parent`` the library writes itself; credentials go between.
_PARENT_SLOTS = (("executable", "name"), ("pid", "\U0010ffff"))


def table_answer(key: bytes) -> list[bytes] | None:
    """Python's answer for a key of :data:`EXTRA_KEY` or :data:`SERVICE_KEY` (see the
    module docstring); ``None``: hand such runs back."""
    if key.startswith(EXTRA_KEY):
        return _extra_pieces(key[len(EXTRA_KEY) :])
    if key.startswith(SERVICE_KEY):
        values = _values(key[len(SERVICE_KEY) :])
        if values is None:
            return None
        name, exe = values
        return None if entry_service(Parent(0, name=name, executable=exe)) else []
    return None


def _extra_pieces(extra: bytes) -> list[bytes] | None:
    """The credential members of a parent whose table entry keeps ``extra`` (taken from
    the document of an exec with such a parent), in the two places they sort to, and
    its login session (empty when unset, else ``=`` and the value)."""
    run = _fake_run(b"arch=c000003e syscall=59", b"yes", b'auid=0 comm="x" exe="/x"')
    process = process_event_of_run(run, EventId(1, 0, 1), 1, "h")
    if process is None:
        return None
    parent = process.with_parent(Parent(2, extra=extra)).to_document()["process"]["parent"]
    slots: list[list[bytes]] = [[] for _ in _PARENT_SLOTS]
    for key in sorted(parent):
        if key == "pid":
            continue
        slot = next((n for n, (lo, hi) in enumerate(_PARENT_SLOTS) if lo < key < hi), None)
        if slot is None:
            return None
        slots[slot].append(_member(key, parent[key]))
    session = login_session(extra)
    ses = b"" if session is None else b"=" + session.encode("utf-8", "surrogateescape")
    return [b",".join(members) for members in slots] + [ses]


def _values(data: bytes) -> tuple[bytes | None, bytes | None] | None:
    """The two values of a :data:`SERVICE_KEY` key: each ``-`` (unknown) or ``+``, a
    u32 little-endian length and the bytes."""
    found: list[bytes | None] = []
    at = 0
    while at < len(data):
        if data[at : at + 1] == b"-":
            found.append(None)
            at += 1
        elif data[at : at + 1] == b"+" and at + 5 <= len(data):
            (n,) = struct.unpack_from("<I", data, at + 1)
            if at + 5 + n > len(data):
                return None
            found.append(data[at + 5 : at + 5 + n])
            at += 5 + n
        else:
            return None
    if len(found) != 2:
        return None
    return found[0], found[1]
