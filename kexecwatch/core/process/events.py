"""Process events: one syscall event (an exec, usually) in ECS shape.

Theory of operation: :func:`process_event_from` reads the records of one
:class:`~kexecwatch.core.audit.assembler.AuditEvent` that holds a ``SYSCALL`` record
and returns a :class:`ProcessEvent`: who ran what, with which arguments, from
where. Arguments are rebuilt from every ``EXECVE`` record of the event, byte
exact. :meth:`ProcessEvent.to_document` renders the nested ECS document that
rules are evaluated against and that alerts carry.

Field sources follow Auditbeat and Elastic Defend: ``process.name`` is the
kernel's ``comm`` (a script's own name, not its interpreter's, cut at 15
bytes), ``process.executable`` is ``exe``, ``process.command_line`` joins the
EXECVE arguments (PROCTITLE is cut at 128 bytes and rewritable, so it only
fills ``process.title``).

Bytes become text only in :meth:`ProcessEvent.to_document`, with UTF-8 and
``surrogateescape``: an undecodable byte 0xNN becomes the lone surrogate
U+DCNN, which JSON writes as ``\\udcNN``; nothing is lost.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from kexecwatch.core.audit.assembler import AuditEvent
from kexecwatch.core.audit.fieldmemo import MAX_BODY, Memo, argv_of, fields_of, syscall_fields_of
from kexecwatch.core.audit.fields import Fields, decode_untrusted
from kexecwatch.core.audit.record import MAX_TIME_MS, EventId
from kexecwatch.core.audit.syscalls import ARCH_NAMES, EXEC_SYSCALLS, PROCESS_SYSCALLS, syscall_name
from kexecwatch.core.process.actions import EXEC_ACTIONS, event_action, event_type
from kexecwatch.core.process.capabilities import Capabilities, capabilities_of
from kexecwatch.core.process.identity import (
    entity_id,
    extra_of,
    identity_of,
    interactive_of,
    parent_identity_of,
    user_doc,
)
from kexecwatch.core.text.frozen import Frozen, set_field

__all__ = [
    "EVENTS_AS",
    "LONG_MAX",
    "LONG_MIN",
    "GroupLeader",
    "Parent",
    "PathItem",
    "ProcessEvent",
    "process_event_from",
    "process_event_of_run",
    "text",
]

KEY_SEPARATOR = b"\x01"
#: What ``process.entry_leader`` copies of the process itself when it is its own leader.
_LEADER_KEYS = frozenset(
    ("pid", "name", "executable", "args", "args_count", "command_line", "entity_id")
)
_IDENTITY_KEYS = frozenset(
    ("user", "real_user", "saved_user", "group", "real_group", "saved_group", "interactive", "tty")
)
#: The event vocabularies of ``--events-as`` (README, "The fields of a process event").
EVENTS_AS = ("auditbeat", "defend")


def text(value: bytes | None) -> str | None:
    """Bytes to text, losslessly (UTF-8 with ``surrogateescape``)."""
    return None if value is None else value.decode("utf-8", "surrogateescape")


class PathItem(Frozen):
    """One ``PATH`` record of an event: a file the syscall touched."""

    __slots__ = (  # noqa: RUF023 - the fields, in order
        "item",
        "name",
        "inode",
        "dev",
        "mode",
        "nametype",
    )

    item: int | None
    name: bytes | None
    inode: int | None
    dev: str | None
    mode: str | None
    nametype: str | None

    def __init__(  # noqa: PLR0917 - a dataclass's positional fields
        self,
        item: int | None,
        name: bytes | None,
        inode: int | None,
        dev: str | None,
        mode: str | None,
        nametype: str | None,
    ) -> None:
        set_field(self, "item", item)
        set_field(self, "name", name)
        set_field(self, "inode", inode)
        set_field(self, "dev", dev)
        set_field(self, "mode", mode)
        set_field(self, "nametype", nametype)


@dataclass(frozen=True, slots=True)
class Parent:
    """What is known of a process's parent, and where it came from.

    Attributes:
        pid: the parent's pid (the child's ``ppid``).
        name: its ``comm`` at its latest exec, when known.
        executable: its ``exe``, when known.
        args: its argv, when known.
        source: ``event`` (its exec was in the log), ``procfs`` (read live
            from ``/proc``), or ``unknown``.
        exec_id: the audit id of the exec the fields come from, if any.
        ppid: the parent's own parent pid, when known.
        extra: its credentials text as the table keeps it (the ``SYSCALL`` record's
            ``auid=`` ... ``ses=`` part; see :mod:`kexecwatch.core.process.identity`), if any.
        since_ms: when the table learned this entry (its exec, fork or ``/proc`` start).
    """

    pid: int
    name: bytes | None = None
    executable: bytes | None = None
    args: tuple[bytes, ...] | None = None
    source: str = "unknown"
    exec_id: EventId | None = None
    ppid: int | None = None
    extra: bytes | None = None
    since_ms: int | None = None

    def instance(self) -> str | None:
        """What names this process instance in its ``entity_id``: its exec's audit id, else
        ``<source>:<since_ms>``; ``None`` when nothing is known of it."""
        if self.exec_id is not None:
            return str(self.exec_id)
        if self.since_ms is None or self.source == "unknown":
            return None
        return f"{self.source}:{self.since_ms}"


class EntryLeader(Frozen):
    """A process's entry leader (:mod:`kexecwatch.core.process.leaders`).

    Attributes:
        process: what the table knows of it; ``None`` when it is the event's own process.
        type: Defend's ``entry_meta.type``: ``init``, ``sshd``, ``terminal``, ...
    """

    __slots__ = ("process", "type")

    process: Parent | None
    type: str

    def __init__(self, process: Parent | None, type: str) -> None:
        set_field(self, "process", process)
        set_field(self, "type", type)


class GroupLeader(Frozen):
    """A process's session or process group leader (:mod:`kexecwatch.core.process.groups`).

    Attributes:
        pid: the leader's pid: the session or group id.
        process: what the table knows of the leader; ``None`` when the table does not know
            it (or it is the event's own process, ``pid`` equal to the event's).
    """

    __slots__ = ("pid", "process")

    pid: int
    process: Parent | None

    def __init__(self, pid: int, process: Parent | None) -> None:
        set_field(self, "pid", pid)
        set_field(self, "process", process)


@dataclass(frozen=True, slots=True)
class ProcessEvent:
    """One syscall event with its process context (an exec, usually).

    ``args`` is ``None`` when the event had no ``EXECVE`` record (a failed
    exec, or a non-exec syscall). ``syscall_args`` holds ``a0``-``a3`` as
    written (hex). ``self_exec`` is, for a non-exec syscall such as
    ``kexec_file_load``, what the process table knew of the calling process
    itself (its latest exec: name, exe, argv), since the event holds no
    ``EXECVE``; its argv then fills ``process.args``. ``known_self`` is the same
    knowledge for any event that is not a process start (it names the instance in
    ``process.entity_id``). ``host_id`` is ``host.id`` (``node=``, else the configured
    id); ``interactive`` whether ``tty=`` names a terminal (``None``: no ``tty=``);
    ``extra`` the credentials text the process table keeps
    (:mod:`~kexecwatch.core.process.identity`);
    ``events_as`` the event vocabulary (``auditbeat`` or ``defend``); ``entry_leader``
    the process's entry leader, when the table shows it (:mod:`kexecwatch.core.process.leaders`);
    ``changed`` is ``uid``/``gid`` for a ``set*id`` call whose ids differ from what the
    table knew of the process (:func:`~kexecwatch.core.process.identity.credential_change`);
    ``capabilities`` the permitted and effective sets where the event's own records state
    them (:mod:`kexecwatch.core.process.capabilities`); ``session_leader`` and
    ``group_leader`` the leaders of its session and process group, where known exactly
    (:mod:`kexecwatch.core.process.groups`); ``running`` marks Elastic Defend's
    ``already_running`` event of a process found at start-up, not an audit event
    (:mod:`kexecwatch.core.process.running`).
    """

    node: str | None
    host_name: str
    id: EventId
    syscall: str | None
    arch: str | None
    success: bool
    exit_code: int | None
    pid: int
    ppid: int
    comm: bytes | None
    exe: bytes | None
    args: tuple[bytes, ...] | None
    argc: int | None
    title: bytes | None
    cwd: bytes | None
    ids: tuple[tuple[str, str], ...]
    names: tuple[tuple[str, str], ...]
    keys: tuple[str, ...]
    tty: str | None
    session: str | None
    paths: tuple[PathItem, ...]
    complete: bool
    line_no: int
    problems: tuple[str, ...] = ()
    parent: Parent | None = None
    syscall_args: tuple[str, ...] = ()
    self_exec: Parent | None = None
    host_id: str | None = None
    interactive: bool | None = None
    extra: bytes | None = None
    known_self: Parent | None = None
    events_as: str = "auditbeat"
    entry_leader: EntryLeader | None = None
    changed: str | None = None
    capabilities: Capabilities | None = None
    session_leader: GroupLeader | None = None
    group_leader: GroupLeader | None = None
    running: bool = False

    @property
    def is_exec(self) -> bool:
        """Whether this is an ``execve``/``execveat``."""
        return self.syscall in EXEC_SYSCALLS

    @property
    def is_process_start(self) -> bool:
        """Whether this is a successful exec: a process start."""
        return self.success and self.syscall in EXEC_SYSCALLS

    def with_parent(self, parent: Parent | None) -> ProcessEvent:
        """A copy with ``parent`` set."""
        return replace(self, parent=parent)

    def with_self_exec(self, known: Parent | None) -> ProcessEvent:
        """A copy with ``self_exec`` set (see the class docstring)."""
        return replace(self, self_exec=known)

    def with_entry_leader(self, leader: EntryLeader | None) -> ProcessEvent:
        """A copy with ``entry_leader`` set (see the class docstring)."""
        return replace(self, entry_leader=leader)

    def with_known_self(self, known: Parent | None) -> ProcessEvent:
        """A copy with ``known_self`` set (see the class docstring)."""
        return replace(self, known_self=known)

    @property
    def host_key(self) -> str:
        """The host part of entity ids: ``host.id``, else ``host.name``."""
        return self.host_id if self.host_id is not None else self.host_name

    @property
    def instance(self) -> str:
        """What names this process instance in ``process.entity_id``: this exec's audit id
        for a process start; else the instance the table knew (:meth:`Parent.instance`);
        else ``event:<time_ms>``, as the table then learns the process from this event."""
        if self.is_process_start:
            return str(self.id)
        known = self.known_self or self.self_exec
        found = known.instance() if known is not None else None
        return found if found is not None else f"event:{self.id.time_ms}"

    def _leader_doc(self, known: Parent | None, process: dict[str, Any]) -> dict[str, Any]:
        """A leader's own fields, as ``process.parent`` has them; ``known`` ``None``: the
        process itself, whose fields ``process`` holds."""
        if known is None:  # the process itself
            doc = {k: v for k, v in process.items() if k in _LEADER_KEYS or k in _IDENTITY_KEYS}
            doc["same_as_process"] = True
        else:
            doc = {"pid": known.pid, "same_as_process": False}
            _put(doc, "name", text(known.name))
            _put(doc, "executable", text(known.executable))
            if known.args is not None:
                args = [a.decode("utf-8", "surrogateescape") for a in known.args]
                doc["args"] = args
                doc["args_count"] = len(args)
                doc["command_line"] = " ".join(args)
            instance = known.instance()
            if instance is not None:
                doc["entity_id"] = entity_id(self.host_key, known.pid, instance)
            if known.extra is not None:
                doc.update(parent_identity_of(known.extra))
        return doc

    def _group_leader_doc(self, leader: GroupLeader, process: dict[str, Any]) -> dict[str, Any]:
        """``process.session_leader`` or ``process.group_leader``."""
        if leader.pid == self.pid:
            return self._leader_doc(None, process)
        if leader.process is None:
            return {"pid": leader.pid, "same_as_process": False}
        return self._leader_doc(leader.process, process)

    def to_document(self) -> dict[str, Any]:
        """The nested ECS document rules read and alerts carry."""
        process: dict[str, Any] = {"pid": self.pid}
        _put(process, "name", text(self.comm))
        _put(process, "executable", text(self.exe))
        own_args = self.args
        if own_args is None and self.self_exec is not None:
            own_args = self.self_exec.args
        if own_args is not None:
            args = [a.decode("utf-8", "surrogateescape") for a in own_args]
            process["args"] = args
            process["args_count"] = len(args)
            process["command_line"] = " ".join(args)
        _put(process, "title", text(self.title))
        _put(process, "working_directory", text(self.cwd))
        audit_id = str(self.id)
        start = self.is_process_start
        # self.instance, without writing the audit id twice.
        process["entity_id"] = entity_id(
            self.host_key, self.pid, audit_id if start else self.instance
        )
        process.update(identity_of(self.ids, self.names, self.interactive, self.tty))
        if self.capabilities is not None:
            permitted, effective = self.capabilities
            process["thread"] = {
                "capabilities": {"permitted": list(permitted), "effective": list(effective)}
            }
        parent: dict[str, Any] = {"pid": self.ppid}
        if self.parent is not None:
            _put(parent, "name", text(self.parent.name))
            _put(parent, "executable", text(self.parent.executable))
            if self.parent.args is not None:
                pargs = [a.decode("utf-8", "surrogateescape") for a in self.parent.args]
                parent["args"] = pargs
                parent["args_count"] = len(pargs)
                parent["command_line"] = " ".join(pargs)
            instance = self.parent.instance()
            if instance is not None:
                parent["entity_id"] = entity_id(self.host_key, self.parent.pid, instance)
            if self.parent.extra is not None:
                parent.update(parent_identity_of(self.parent.extra))
        process["parent"] = parent
        if self.entry_leader is not None:
            entry = self._leader_doc(self.entry_leader.process, process)
            entry["entry_meta"] = {"type": self.entry_leader.type}
            process["entry_leader"] = entry
        if self.session_leader is not None:
            process["session_leader"] = self._group_leader_doc(self.session_leader, process)
        if self.group_leader is not None:
            process["group_leader"] = self._group_leader_doc(self.group_leader, process)
        event: dict[str, Any] = {
            "kind": "event",
            "category": ["process"],
            "type": [
                "start"
                if start
                else event_type(self.syscall, self.success, self.events_as, self.changed)
            ],
            "action": "already_running"
            if self.running
            else _action(self.syscall, self.success, self.events_as, self.changed),
            "outcome": "success" if self.success else "failure",
            "module": "auditd",
        }
        user, group, who_auditd = _who_docs(self.ids, self.names)
        auditd: dict[str, Any] = {
            "id": audit_id,
            "sequence": self.id.serial,
            "syscall": self.syscall,
            "success": self.success,
            "complete": self.complete,
            "parent_source": self.parent.source if self.parent else "unknown",
        }
        _put(auditd, "node", self.node)
        _put(auditd, "arch", self.arch)
        _put(auditd, "exit", self.exit_code)
        _put(auditd, "argc", self.argc)
        _put(auditd, "session", self.session)
        _put(auditd, "tty", self.tty)
        if who_auditd:
            auditd.update(who_auditd)
        if self.keys:
            auditd["keys"] = list(self.keys)
        if self.parent is not None and self.parent.exec_id is not None:
            auditd["parent_exec_id"] = str(self.parent.exec_id)
        if not self.is_exec and self.syscall_args:
            auditd["data"] = dict(zip(("a0", "a1", "a2", "a3"), self.syscall_args, strict=False))
            if self.syscall in PROCESS_SYSCALLS:  # as Auditbeat names it (not kexec's: unchanged)
                auditd["data"]["syscall"] = self.syscall
        if self.args is None and self.self_exec is not None:
            # The argv is the calling process's, from its exec seen earlier.
            auditd["args_source"] = self.self_exec.source
            if self.self_exec.exec_id is not None:
                auditd["self_exec_id"] = str(self.self_exec.exec_id)
        if self.paths:
            auditd["paths"] = [_path_doc(p) for p in self.paths]
        if self.problems:
            auditd["problems"] = list(self.problems)
        if self.running:  # read from /proc: no audit event, no system call
            for key in ("sequence", "syscall", "success", "complete"):
                del auditd[key]
        host: dict[str, Any] = {"name": self.host_name, "os": {"type": "linux"}}
        _put(host, "id", self.host_id)
        doc: dict[str, Any] = {
            "@timestamp": format_timestamp(self.id.time_ms),
            "event": event,
            "host": host,
            "process": process,
            "auditd": auditd,
        }
        if user:
            doc["user"] = user
        if group:
            doc["group"] = group
        return doc


_WHO_DOCS: Memo[Any, tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = Memo()


def _who_docs(
    ids: tuple[tuple[str, str], ...], names: tuple[tuple[str, str], ...]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A document's ``user`` and ``group``, and its ``auditd`` fields ``login_user`` and
    ``filesystem_user`` (ECS has no field for the login uid nor the filesystem uid: they
    stay audit's), from the audit ids and ENRICHED names.

    Remembered, like :func:`~kexecwatch.core.process.identity.identity_of`: a few users recur,
    and the objects are shared between documents, which their readers never change.
    """
    key = (ids, names)
    known = _WHO_DOCS.get(key)
    if known is not None:
        return known
    by_id, by_name = dict(ids), dict(names)
    user = user_doc(by_id, by_name, "uid", "UID")
    effective = user_doc(by_id, by_name, "euid", "EUID")
    if effective:
        user["effective"] = effective
    group: dict[str, Any] = {}
    _put(group, "id", by_id.get("gid"))
    _put(group, "name", by_name.get("GID"))
    auditd: dict[str, Any] = {}
    for field, raw, enriched in (
        ("login_user", "auid", "AUID"),
        ("filesystem_user", "fsuid", "FSUID"),
    ):
        found = user_doc(by_id, by_name, raw, enriched)
        if found:
            auditd[field] = found
    docs = user, group, auditd
    if sum(len(v) for _, v in ids) + sum(len(v) for _, v in names) > MAX_BODY:
        return docs  # a hostile record's long values are not kept
    return _WHO_DOCS.put(key, docs)


# The formatted second of recent timestamps: exec events come many to a second, and
# strftime was 4% of an event export (py-spy).
_SECONDS: dict[int, str] = {}


def format_timestamp(time_ms: int) -> str:
    """Milliseconds since the epoch as ISO 8601 UTC with milliseconds.

    A time beyond year 9999 (a misdated record, reported by the assembler) is shown
    as the last millisecond of year 9999; the audit id keeps the record's own time.
    """
    second, ms = divmod(min(max(time_ms, 0), MAX_TIME_MS - 1), 1000)
    head = _SECONDS.get(second)
    if head is None:
        # Loaded with the first document's time: start-up needs no datetime.
        from datetime import UTC, datetime

        head = datetime.fromtimestamp(second, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        if len(_SECONDS) >= 4096:
            _SECONDS.clear()
        _SECONDS[second] = head
    return f"{head}{ms:03d}Z"


def _action(syscall: str | None, success: bool, events_as: str, changed: str | None) -> str:
    if syscall in EXEC_SYSCALLS:
        return EXEC_ACTIONS[events_as]
    return event_action(syscall, success, events_as, changed)


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        target[key] = value


def _path_doc(p: PathItem) -> dict[str, Any]:
    # _put's tests, written out (two PATH records per exec, in every full event).
    doc: dict[str, Any] = {}
    if p.item is not None:
        doc["item"] = p.item
    if p.name is not None:
        doc["name"] = p.name.decode("utf-8", "surrogateescape")
    if p.inode is not None:
        doc["inode"] = p.inode
    if p.dev is not None:
        doc["dev"] = p.dev
    if p.mode is not None:
        doc["mode"] = p.mode
    if p.nametype is not None:
        doc["nametype"] = p.nametype
    return doc


_ID_FIELDS = ("uid", "gid", "euid", "suid", "fsuid", "egid", "sgid", "fsgid", "auid")
_NAME_FIELDS = ("UID", "GID", "EUID", "SUID", "FSUID", "EGID", "SGID", "FSGID", "AUID")


def _int(raw: bytes | None, base: int = 10) -> int | None:
    if raw is None:
        return None
    try:
        return int(raw, base)
    except ValueError:
        return None


#: The range of ECS ``long``, as which process.pid, process.parent.pid and
#: process.exit_code are stored (the process table's snapshots hold them so too).
LONG_MIN = -(1 << 63)
LONG_MAX = (1 << 63) - 1


def _long(raw: bytes | None) -> int | None:
    """:func:`_int` of a value ECS stores as ``long``: ``None`` beyond its range too.

    The kernel writes these as C ints; a value no ``long`` holds is hostile or corrupt,
    and is read as absent rather than carried into the table and documents."""
    value = _int(raw)
    if value is None or not LONG_MIN <= value <= LONG_MAX:
        return None
    return value


def _plain(raw: bytes | None) -> str | None:
    if raw is None or raw in (b"(none)", b"(null)", b"?"):
        return None
    return raw.decode("utf-8", "surrogateescape")


# A PATH record as the kernel writes it (audit_log_name): plain tokens, each name once, so
# parse_fields would read these very values. Anything else (obj=, odd values) is read so.
_KERNEL_PATH = re.compile(
    rb'item=([0-9]+) name=("[^"\n]*"|[0-9A-F]+|\(null\)) '
    rb"(?:inode=([0-9]+) dev=([0-9a-f]+:[0-9a-f]+) mode=([0-7]+) ouid=[0-9]+ ogid=[0-9]+ "
    rb"rdev=[0-9a-f]+:[0-9a-f]+ )?nametype=([A-Z_]+)"
    rb"(?: cap_fp=[0-9a-f]+ cap_fi=[0-9a-f]+ cap_fe=[0-9]+ cap_fver=[0-9a-f]+"
    rb"(?: cap_frootid=-?[0-9]+)?)?"
)


_CAPABILITY_TYPES = frozenset(("BPRM_FCAPS", "CAPSET"))
_READ_TYPES = frozenset(("SYSCALL", "EXECVE", "CWD", "PATH", "PROCTITLE")) | _CAPABILITY_TYPES


def _path_of(body: bytes) -> tuple[PathItem, tuple[str, ...]]:
    """The :class:`PathItem` of a ``PATH`` record body, and the problems reading it."""
    # In the kernel's layout, read in one C call (a PATH body rarely recurs whole).
    m = _KERNEL_PATH.fullmatch(body)
    if m is not None:
        item, name, inode, dev, mode, nametype = m.groups()
        return PathItem(
            _int(item),
            decode_untrusted(name),
            _int(inode),
            _text(dev),
            _text(mode),
            _text(nametype),
        ), ()
    fields, issues = fields_of(body)
    return PathItem(
        item=_int(fields.get("item")),
        name=decode_untrusted(fields.get("name")),
        inode=_int(fields.get("inode")),
        dev=_plain(fields.get("dev")),
        mode=_plain(fields.get("mode")),
        nametype=_plain(fields.get("nametype")),
    ), issues


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("ascii")


def process_event_from(
    event: AuditEvent,
    host_name: str,
    *,
    host_id: str | None = None,
    events_as: str = "auditbeat",
) -> ProcessEvent | None:
    """Build the process event of an event that holds a ``SYSCALL`` record.

    Args:
        event: an assembled event.
        host_name: the host name to use when records carry no ``node=``.
        host_id: ``host.id`` for records without ``node=`` (``None``: no id).
        events_as: the event vocabulary, one of :data:`EVENTS_AS`.

    Returns:
        The process event, or ``None`` when the event has no ``SYSCALL``
        record or it lacks a pid. Never raises.
    """
    syscall_fields: Fields | None = None
    syscall_body = b""
    execve: list[Fields] = []
    execve_bodies: list[bytes] = []
    problems: list[str] = []
    cwd: bytes | None = None
    title: bytes | None = None
    paths: list[PathItem] = []
    names: tuple[tuple[str, str], ...] = ()
    capabilities: Capabilities | None = None
    capset_pid: bytes | None = None
    for record in event.records:
        rtype = record.type
        if rtype not in _READ_TYPES:
            continue
        if rtype in _CAPABILITY_TYPES:
            cap_fields, _ = fields_of(record.body)
            capabilities = capabilities_of(rtype, cap_fields)
            capset_pid = cap_fields.get("pid") if rtype == "CAPSET" else None
            continue
        body = record.body
        if rtype == "PATH":
            path, issues = _path_of(body)
            if issues:
                problems.extend(f"PATH: {i}" for i in issues)
            paths.append(path)
            continue
        # Bodies that recur (all but the SYSCALL's pids) are read once.
        fields, issues = syscall_fields_of(body) if rtype == "SYSCALL" else fields_of(body)
        if issues:
            problems.extend(f"{rtype}: {i}" for i in issues)
        if rtype == "SYSCALL":
            if syscall_fields is None:
                syscall_fields = fields
                syscall_body = record.body
                if record.enriched:
                    names = _enriched_names(record.enriched)
        elif rtype == "EXECVE":
            execve.append(fields)
            execve_bodies.append(body)
        elif rtype == "CWD":
            cwd = decode_untrusted(fields.get("cwd"))
        else:
            raw_title = fields.get("proctitle")
            title = None if raw_title == b'"(null)"' else decode_untrusted(raw_title)
    if syscall_fields is None:
        return None
    call = _call_of(syscall_fields)
    if call is None:
        return None
    if capset_pid is not None and _int(capset_pid) != call.pid:
        capabilities = None  # another process's sets (Linux no longer allows it)
    who = _who_of(syscall_body, syscall_fields)
    args: tuple[bytes, ...] | None = None
    argc: int | None = None
    if execve:
        args, argc, arg_problems = argv_of(tuple(execve_bodies), execve)
        problems.extend(arg_problems)
    node = event.node
    return ProcessEvent(
        node=node,
        host_name=node if node else host_name,
        host_id=node if node else host_id,
        interactive=who.interactive,
        extra=extra_of(syscall_body),
        events_as=events_as,
        id=event.id,
        syscall=call.syscall,
        arch=call.arch,
        success=call.success,
        exit_code=call.exit_code,
        pid=call.pid,
        ppid=call.ppid,
        comm=who.comm,
        exe=who.exe,
        args=args,
        argc=argc,
        title=title,
        cwd=cwd,
        ids=who.ids,
        names=names,
        keys=who.keys,
        tty=who.tty,
        session=who.session,
        paths=tuple(paths),
        complete=event.complete,
        line_no=event.records[0].line_no if event.records else 0,
        problems=tuple(problems),
        syscall_args=call.syscall_args,
        capabilities=capabilities,
    )


class _Call(NamedTuple):
    """What a ``SYSCALL`` record says of the call itself (its part before ``auid=``)."""

    syscall: str | None
    arch: str | None
    success: bool
    exit_code: int | None
    pid: int
    ppid: int
    syscall_args: tuple[str, ...]


class _Who(NamedTuple):
    """What a ``SYSCALL`` record says of the caller (its part from ``auid=`` on): the same
    for every event of one user, terminal and program, so it is read once per text."""

    ids: tuple[tuple[str, str], ...]
    tty: str | None
    session: str | None
    interactive: bool | None
    comm: bytes | None
    exe: bytes | None
    keys: tuple[str, ...]


# The kernel's SYSCALL head (audit_log_exit) up to pid=: these names only, none of which
# _Who reads, so what _Who reads comes from the text after it alone.
_KERNEL_HEAD = re.compile(
    rb"arch=([0-9a-f]+) syscall=([0-9]+) (?:per=[0-9a-f]+ )?success=(yes|no) "
    rb"exit=(-?[0-9]+) a0=([0-9a-f]+) a1=([0-9a-f]+) a2=([0-9a-f]+) a3=([0-9a-f]+) "
    rb"items=[0-9]+ ppid=([0-9]+) pid=([0-9]+)"
)
_NAMED: Memo[tuple[bytes | None, bytes | None], tuple[str | None, str | None]] = Memo()
_WHO: Memo[bytes, _Who] = Memo()


def _call_of(fields: Fields) -> _Call | None:
    """The :class:`_Call` of a ``SYSCALL`` record's fields; ``None`` without a pid."""
    pid = _long(fields.get("pid"))
    if pid is None:
        return None
    arch_raw = fields.get("arch")
    number_raw = fields.get("syscall")
    named = _NAMED.get((arch_raw, number_raw))
    if named is None:
        named = _names_of(arch_raw, number_raw)
        if len(number_raw or b"") <= MAX_BODY and len(arch_raw or b"") <= MAX_BODY:
            _NAMED.put((arch_raw, number_raw), named)
    return _Call(
        named[0],
        named[1],
        fields.get("success") == b"yes",
        _long(fields.get("exit")),
        pid,
        _long(fields.get("ppid")) or 0,
        _syscall_args(fields),
    )


def _syscall_args(fields: Fields) -> tuple[str, ...]:
    """``a0``-``a3`` as written, those present."""
    get = fields.get
    a0, a1, a2, a3 = get("a0"), get("a1"), get("a2"), get("a3")
    if a0 is not None and a1 is not None and a2 is not None and a3 is not None:
        return (
            a0.decode("ascii", "replace"),
            a1.decode("ascii", "replace"),
            a2.decode("ascii", "replace"),
            a3.decode("ascii", "replace"),
        )
    return tuple(raw.decode("ascii", "replace") for raw in (a0, a1, a2, a3) if raw is not None)


def _names_of(arch_raw: bytes | None, number_raw: bytes | None) -> tuple[str | None, str | None]:
    """The syscall's name and the architecture's name of raw ``arch=``/``syscall=`` values."""
    arch = _plain(arch_raw)
    number = _int(number_raw)
    syscall = syscall_name(arch, number) or (f"syscall_{number}" if number is not None else None)
    return syscall, ARCH_NAMES.get(arch.lower(), arch) if arch else None


def _who_of(body: bytes, fields: Fields) -> _Who:
    """The :class:`_Who` of a ``SYSCALL`` record (``fields``: its fields), remembered by
    its text from ``auid=`` on when the head before it is the kernel's."""
    cut = body.find(b" auid=")
    if cut <= 0 or len(body) - cut > MAX_BODY or not _KERNEL_HEAD.fullmatch(body, 0, cut):
        return _who_from(fields)
    tail = body[cut + 1 :]
    known = _WHO.get(tail)
    if known is None:
        known = _WHO.put(tail, _who_from(fields))
    return known


def _who_from(fields: Fields) -> _Who:
    raw_key = decode_untrusted(fields.get("key"))
    raw_tty = fields.get("tty")
    return _Who(
        ids=tuple((n, v) for n in _ID_FIELDS if (v := _plain(fields.get(n))) is not None),
        tty=_plain(raw_tty),
        session=_plain(fields.get("ses")),
        interactive=None if raw_tty is None else interactive_of(raw_tty.decode("ascii", "replace")),
        comm=decode_untrusted(fields.get("comm")),
        exe=decode_untrusted(fields.get("exe")),
        keys=(
            tuple(k.decode("utf-8", "surrogateescape") for k in raw_key.split(KEY_SEPARATOR))
            if raw_key
            else ()
        ),
    )


_NAMES_OF: Memo[bytes, tuple[tuple[str, str], ...]] = Memo()


def _enriched_names(tail: bytes) -> tuple[tuple[str, str], ...]:
    """The names of an ENRICHED tail, as ``(field, name)`` pairs in :data:`_NAME_FIELDS`
    order (remembered: a few users' names recur; read only)."""
    known = _NAMES_OF.get(tail)
    if known is not None:
        return known
    fields, _ = fields_of(tail)
    out: list[tuple[str, str]] = []
    for name in _NAME_FIELDS:
        raw = fields.get(name)
        if raw is not None:
            value = decode_untrusted(raw)
            if value is not None:
                out.append((name, value.decode("utf-8", "surrogateescape")))
    found = tuple(out)
    return _NAMES_OF.put(tail, found) if len(tail) <= MAX_BODY else found


#: The credentials part of plain runs' SYSCALL records, by its text from ``auid=`` on.
_PLAIN_WHO: Memo[bytes, _Who] = Memo()


def process_event_of_run(
    run: bytes,
    event_id: EventId,
    line_no: int,
    host_name: str,
    *,
    host_id: str | None = None,
    events_as: str = "auditbeat",
) -> ProcessEvent | None:
    """:func:`process_event_from` of a whole run the fast path recognised, read straight
    from its bytes: the very same process event, without records or an event in between.

    ``run`` is the run's lines, each with its newline, as
    :func:`~kexecwatch.core.scan.fastpath.run_end` delimits them after a
    :data:`~kexecwatch.core.scan.fastpath.SYSCALL_HEAD` match (so its first line is a
    ``SYSCALL`` record in the kernel's layout, and every line a record of ``event_id``),
    ``line_no`` its first line's number. Each line is cut into body and ENRICHED tail
    as :func:`~kexecwatch.core.scan.fastpath.records_of` cuts it.

    Returns ``None`` (the caller then builds the event the reference way) for anything
    but a plain run: a record type other than ``EXECVE``, ``CWD``, ``PATH`` and
    ``PROCTITLE`` after the ``SYSCALL``, or any parse problem (the event's
    ``problems`` are then empty). ``tests/core/process/test_run_events.py`` holds the two
    equal.
    """
    lines = run[:-1].split(b"\n")
    head = lines[0]
    # The header's length after the type: " msg=audit(" + id + "):" (records_of's way).
    after_type = head.find(b"):", 14) + 2 - head.find(b" ", 5)
    execve_bodies: list[bytes] = []
    execve: list[Fields] = []
    cwd: bytes | None = None
    title: bytes | None = None
    paths: list[PathItem] = []
    syscall_body = b""
    names: tuple[tuple[str, str], ...] = ()
    first = True
    for line in lines:
        space = line.find(b" ", 5)
        rtype = line[5:space]
        rest = line[space + after_type :]
        if rest.endswith(b"\r"):
            rest = rest[:-1]
        body, _, enriched = rest.partition(b"\x1d")
        body = body.strip(b" ")
        if first:
            first = False
            syscall_body = body
            if enriched:
                names = _enriched_names(enriched)
        elif rtype == b"PATH":
            path, issues = _path_of(body)
            if issues:
                return None
            paths.append(path)
        elif rtype == b"EXECVE":
            fields, issues = fields_of(body)
            if issues:
                return None
            execve.append(fields)
            execve_bodies.append(body)
        elif rtype == b"CWD":
            fields, issues = fields_of(body)
            if issues:
                return None
            cwd = decode_untrusted(fields.get("cwd"))
        elif rtype == b"PROCTITLE":
            fields, issues = fields_of(body)
            if issues:
                return None
            raw_title = fields.get("proctitle")
            title = None if raw_title == b'"(null)"' else decode_untrusted(raw_title)
        else:
            return None
    cut = syscall_body.find(b" auid=")
    head_match = _KERNEL_HEAD.fullmatch(syscall_body, 0, cut) if cut > 0 else None
    if head_match is None:
        return None
    tail = syscall_body[cut + 1 :]
    who = _PLAIN_WHO.get(tail)
    if who is None:
        fields, issues = syscall_fields_of(syscall_body)
        if issues or len(tail) > MAX_BODY:
            return None
        who = _PLAIN_WHO.put(tail, _who_of(syscall_body, fields))
    arch_raw, number_raw, success_raw, exit_raw, *call_args, ppid_raw, pid_raw = head_match.groups()
    named = _NAMED.get((arch_raw, number_raw))
    if named is None:
        named = _names_of(arch_raw, number_raw)
        if len(number_raw) <= MAX_BODY and len(arch_raw) <= MAX_BODY:
            _NAMED.put((arch_raw, number_raw), named)
    args: tuple[bytes, ...] | None = None
    argc: int | None = None
    if execve:
        args, argc, arg_problems = argv_of(tuple(execve_bodies), execve)
        if arg_problems:
            return None
    return ProcessEvent(
        node=None,
        host_name=host_name,
        host_id=host_id,
        interactive=who.interactive,
        extra=extra_of(syscall_body),
        events_as=events_as,
        id=event_id,
        syscall=named[0],
        arch=named[1],
        success=success_raw == b"yes",
        exit_code=int(exit_raw),
        pid=int(pid_raw),
        ppid=int(ppid_raw) or 0,
        comm=who.comm,
        exe=who.exe,
        args=args,
        argc=argc,
        title=title,
        cwd=cwd,
        ids=who.ids,
        names=names,
        keys=who.keys,
        tty=who.tty,
        session=who.session,
        paths=tuple(paths),
        complete=True,
        line_no=line_no,
        syscall_args=tuple(a.decode("ascii") for a in call_args),
    )
