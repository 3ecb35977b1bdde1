"""Telemetry events: what the audit trail says about its own health.

Theory of operation: an attacker who can run kexec can first blind auditing:
remove the audit rules, disable auditing, stop auditd, or flood it until the
kernel drops events. Those leave traces that are not process events:

* ``CONFIG_CHANGE`` records (the kernel's, usually with the ``SYSCALL``,
  ``SOCKADDR`` and ``PROCTITLE`` records of the ``auditctl`` that asked):
  ``op=remove_rule`` (older kernels: ``op="remove rule"``), ``op=add_rule``,
  ``audit_enabled=0 old=1``;
* auditd's own ``DAEMON_START``, ``DAEMON_END`` and ``DAEMON_ABORT``;
* gaps in the kernel's serials (:class:`~kexecwatch.core.audit.assembler.EventsLost`),
  and a ``lost=`` counter on a configuration record where one shows it;
* a log file lost before it was read to its end (rotated away while nobody read it):
  the live shell's follower finds that gap and hands it in
  (:meth:`TelemetryTracker.from_lost_log`).

:class:`TelemetryTracker` turns those into :class:`TelemetryEvent` values whose
:meth:`TelemetryEvent.to_document` is an ECS document with
``event.category`` ``["configuration"]`` (or ``["host"]`` for lost events and logs) and
an ``event.action`` of :data:`ACTIONS`. Rules that declare
``applies_to = "telemetry"`` are run on them.

Rule 1: only a handful of record types (:data:`TELEMETRY_TYPES`) ever get
here, so the per-event cost on the process path is one set lookup.
Rule 2: the only state is auditd's last lifecycle record per node, used to
tell a restart after a crash (``DAEMON_START`` with no ``DAEMON_END`` since the
previous start) from an orderly one. It is not part of the detector's saved
state: after a restore, the first start is taken as orderly.
"""

from __future__ import annotations

from typing import Any

from kexecwatch.core.audit.assembler import AuditEvent, EventsLost
from kexecwatch.core.audit.fields import parse_fields
from kexecwatch.core.audit.msgtypes import TELEMETRY_TYPES
from kexecwatch.core.audit.record import EventId
from kexecwatch.core.process.events import ProcessEvent, format_timestamp, text
from kexecwatch.core.text.frozen import Frozen, set_field

__all__ = ["ACTIONS", "TelemetryEvent", "TelemetryTracker"]


#: ``event.action`` values of telemetry documents.
ACTIONS = (
    "audit-rule-removed",
    "audit-rule-added",
    "audit-disabled",
    "audit-config-changed",
    "auditd-started",
    "auditd-stopped",
    "auditd-aborted",
    "events-lost",
    "audit-log-lost",
)
_HOST_ACTIONS = frozenset(("events-lost", "audit-log-lost"))

_DAEMON_ACTIONS = {
    "DAEMON_START": "auditd-started",
    "DAEMON_END": "auditd-stopped",
    "DAEMON_ABORT": "auditd-aborted",
}
_KEPT_FIELDS = (
    "op",
    "audit_enabled",
    "old",
    "key",
    "list",
    "res",
    "auid",
    "ses",
    "pid",
    "ver",
    "format",
    "kernel",
    "reason",
    "lost",
)


class TelemetryEvent(Frozen):
    """One event about the audit trail itself.

    Attributes:
        node: the ``node=`` name, or ``None``.
        host_name: ``host.name``.
        id: the audit id of the record (for lost events: of the first event
            after the gap).
        action: one of :data:`ACTIONS`.
        record_type: the record it came from (``None`` for a serial gap).
        fields: the record's interesting fields, as text.
        lost: ``(first, last)`` missing serials, for a serial gap.
        unclean_restart: a ``DAEMON_START`` with no ``DAEMON_END`` or
            ``DAEMON_ABORT`` since the previous start on that node.
        process: the ``auditctl`` (or other caller) the record's ``SYSCALL``
            names, with its parent, if the event had one.
        line_no: the line of the record.
    """

    __slots__ = (  # noqa: RUF023 - the fields, in order
        "node",
        "host_name",
        "id",
        "action",
        "record_type",
        "fields",
        "lost",
        "unclean_restart",
        "process",
        "line_no",
    )

    node: str | None
    host_name: str
    id: EventId
    action: str
    record_type: str | None
    fields: tuple[tuple[str, str], ...]
    lost: tuple[int, int] | None
    unclean_restart: bool
    process: ProcessEvent | None
    line_no: int

    def __init__(  # noqa: PLR0917 - a dataclass's positional fields
        self,
        node: str | None,
        host_name: str,
        id: EventId,
        action: str,
        record_type: str | None,
        fields: tuple[tuple[str, str], ...] = (),
        lost: tuple[int, int] | None = None,
        unclean_restart: bool = False,
        process: ProcessEvent | None = None,
        line_no: int = 0,
    ) -> None:
        set_field(self, "node", node)
        set_field(self, "host_name", host_name)
        set_field(self, "id", id)
        set_field(self, "action", action)
        set_field(self, "record_type", record_type)
        set_field(self, "fields", fields)
        set_field(self, "lost", lost)
        set_field(self, "unclean_restart", unclean_restart)
        set_field(self, "process", process)
        set_field(self, "line_no", line_no)

    def field(self, name: str) -> str | None:
        """A kept record field by name."""
        return dict(self.fields).get(name)

    def to_document(self) -> dict[str, Any]:
        """The nested ECS document telemetry rules read and alerts carry."""
        res = self.field("res")
        event: dict[str, Any] = {
            "kind": "event",
            "category": ["host"] if self.action in _HOST_ACTIONS else ["configuration"],
            "type": [_TYPES.get(self.action, "change")],
            "action": self.action,
            "module": "auditd",
        }
        if res is not None:
            event["outcome"] = "success" if res in ("1", "success", "yes") else "failure"
        auditd: dict[str, Any] = {"id": str(self.id), "sequence": self.id.serial}
        if self.node is not None:
            auditd["node"] = self.node
        if self.record_type is not None:
            auditd["record_type"] = self.record_type
        if self.fields:
            auditd["data"] = dict(self.fields)
        if self.lost is not None:
            first, last = self.lost
            auditd["lost"] = {"first_serial": first, "last_serial": last, "count": last - first + 1}
        if self.action == "auditd-started":
            auditd["unclean_restart"] = self.unclean_restart
        doc: dict[str, Any] = {
            "@timestamp": format_timestamp(self.id.time_ms),
            "event": event,
            "host": {"name": self.host_name, "os": {"type": "linux"}},
            "auditd": auditd,
        }
        if self.process is not None:
            pdoc = self.process.to_document()
            doc["process"] = pdoc["process"]
            for key in ("user", "group"):
                if key in pdoc:
                    doc[key] = pdoc[key]
            for key in ("login_user", "filesystem_user"):
                if key in pdoc["auditd"]:
                    auditd[key] = pdoc["auditd"][key]
        else:
            auid = self.field("auid")
            if auid is not None:
                auditd["login_user"] = {"id": auid}
        return doc


_TYPES = {
    "auditd-started": "start",
    "auditd-stopped": "end",
    "auditd-aborted": "end",
    "events-lost": "info",
    "audit-log-lost": "info",
}


def _config_action(fields: dict[str, str]) -> str:
    op = fields.get("op", "").replace(" ", "_")
    if op == "remove_rule":
        return "audit-rule-removed"
    if op == "add_rule":
        return "audit-rule-added"
    if fields.get("audit_enabled") == "0" and fields.get("old") != "0":
        return "audit-disabled"
    return "audit-config-changed"


class TelemetryTracker:
    """Builds telemetry events from assembled events and serial gaps."""

    def __init__(self) -> None:
        self._daemon: dict[str | None, str] = {}

    @staticmethod
    def is_telemetry(event: AuditEvent) -> bool:
        """Whether ``event`` holds a record that may make a telemetry event."""
        return any(r.type in TELEMETRY_TYPES for r in event.records)

    def from_event(
        self, event: AuditEvent, host_name: str, process: ProcessEvent | None
    ) -> list[TelemetryEvent]:
        """The telemetry events of one assembled event (one per telemetry record).

        Args:
            event: the assembled event.
            host_name: ``host.name`` for records without ``node=``.
            process: the event's process event (its ``SYSCALL``), if any.
        """
        out: list[TelemetryEvent] = []
        host = event.node or host_name
        for record in event.records:
            if record.type not in TELEMETRY_TYPES:
                continue
            raw, _ = parse_fields(record.body)
            fields = {
                k: (text(v) or "").strip("'\"")
                for k in _KEPT_FIELDS
                if (v := raw.get(k)) is not None
            }
            unclean = False
            action = _DAEMON_ACTIONS.get(record.type)
            if action is None:
                action = _config_action(fields)
            else:
                previous = self._daemon.get(event.node)
                unclean = record.type == "DAEMON_START" and previous == "DAEMON_START"
                self._daemon[event.node] = record.type
            kept = tuple(fields.items())
            out.append(
                TelemetryEvent(
                    event.node,
                    host,
                    event.id,
                    action,
                    record.type,
                    kept,
                    unclean_restart=unclean,
                    process=process,
                    line_no=record.line_no,
                )
            )
            lost = fields.get("lost", "")
            if lost.isdigit() and int(lost) > 0 and action != "events-lost":
                out.append(
                    TelemetryEvent(
                        event.node,
                        host,
                        event.id,
                        "events-lost",
                        record.type,
                        kept,
                        process=process,
                        line_no=record.line_no,
                    )
                )
        return out

    @staticmethod
    def from_lost_log(
        host_name: str, time_ms: int, facts: tuple[tuple[str, str], ...]
    ) -> TelemetryEvent:
        """The telemetry event of a log file lost before it was read to its end.

        Args:
            host_name: ``host.name``.
            time_ms: its time: the last record read before the loss (a log file has
                no audit id; this one is the same when a restart finds the loss again).
            facts: what the shell knows of the loss (``path``, ``offset``, ``file``,
                ``resumed_from``), kept as the document's ``auditd.data``.
        """
        return TelemetryEvent(
            None,
            host_name,
            EventId(time_ms // 1000, time_ms % 1000, 0),
            "audit-log-lost",
            None,
            facts,
        )

    @staticmethod
    def from_lost(lost: EventsLost, host_name: str) -> TelemetryEvent:
        """The telemetry event of a gap in the kernel's serials."""
        return TelemetryEvent(
            lost.node,
            lost.node or host_name,
            lost.before,
            "events-lost",
            None,
            lost=(lost.first_serial, lost.last_serial),
        )
