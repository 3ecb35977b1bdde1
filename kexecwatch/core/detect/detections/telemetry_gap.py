"""``audit-telemetry-gap``: the audit trail went blind, or was blinded.

Runs on telemetry documents (:mod:`kexecwatch.core.detect.telemetry`) and matches:

* ``audit-rule-removed``: ``CONFIG_CHANGE op=remove_rule`` (``auditctl -d``,
  ``auditctl -D``). ``auditctl -D`` removes rules one system call at a time,
  so removals by the same process within :data:`BURST_MS` of an alerted one
  are part of that alert and do not raise another;
* ``audit-disabled``: ``CONFIG_CHANGE audit_enabled=0`` (from 1 or 2);
* ``auditd-stopped`` / ``auditd-aborted``: ``DAEMON_END`` / ``DAEMON_ABORT``;
* ``auditd-started`` after a crash: a ``DAEMON_START`` with no ``DAEMON_END``
  or ``DAEMON_ABORT`` since the previous start (an orderly restart was
  already reported by its ``DAEMON_END``);
* ``events-lost``: a gap in the kernel's serials, or a ``lost=`` counter;
* ``audit-log-lost``: a log file rotated away before it was read to its end (the
  daemon found its checkpointed file gone).
"""

from __future__ import annotations

from typing import Any

from kexecwatch.core.detect.detections.common import title_as_args
from kexecwatch.core.scan.prefilter import Prefilter

__all__ = ["BURST_MS", "TelemetryGap"]

#: Rule removals by one process this close together make one alert.
BURST_MS = 1_000

_ACTIONS = frozenset(
    (
        "audit-rule-removed",
        "audit-disabled",
        "auditd-stopped",
        "auditd-aborted",
        "auditd-started",
        "events-lost",
        "audit-log-lost",
    )
)


def _epoch_ms(document: dict[str, Any]) -> int:
    sec, _, rest = str(document.get("auditd", {}).get("id", "0.000:0")).partition(".")
    try:
        return int(sec) * 1000 + int(rest.partition(":")[0] or 0)
    except ValueError:
        return 0


class TelemetryGap:
    """Audit rules removed, auditing disabled, auditd down, or events lost."""

    applies_to = "telemetry"

    def prefilters(self) -> list[Prefilter]:
        """No process document: telemetry reaches it by record type (the detector's job)."""
        return []

    def __init__(self) -> None:
        self._removals: dict[tuple[Any, Any], int] = {}

    def matches(self, document: dict[str, Any]) -> bool:
        """See the module docstring."""
        event = document.get("event", {})
        action = event.get("action")
        if action not in _ACTIONS or event.get("category") == ["process"]:
            return False
        auditd = document.get("auditd", {})
        if action == "auditd-started":
            return bool(auditd.get("unclean_restart"))
        if action == "audit-rule-removed":
            if event.get("outcome") == "failure":
                return False
            return self._first_of_burst(document)
        return True

    def _first_of_burst(self, document: dict[str, Any]) -> bool:
        key = (document.get("auditd", {}).get("node"), document.get("process", {}).get("pid"))
        now = _epoch_ms(document)
        last = self._removals.get(key)
        if last is not None and 0 <= now - last <= BURST_MS:
            self._removals[key] = now
            return False
        self._removals[key] = now
        if len(self._removals) > 256:
            del self._removals[next(iter(self._removals))]
        return True

    def reason(self, document: dict[str, Any]) -> str:
        """What happened to the audit trail, and by whom when the record says."""
        action = document.get("event", {}).get("action")
        auditd = document.get("auditd", {})
        data = auditd.get("data", {})
        who = _who(document)
        if action == "audit-rule-removed":
            key = f" (key {data['key']})" if data.get("key") not in (None, "(null)") else ""
            return (
                f"audit rule removed{key}{who}: what it logged is no longer seen "
                f"(further removals by this process within {BURST_MS // 1000} s: same alert)"
            )
        if action == "audit-disabled":
            return f"auditing disabled (audit_enabled=0, was {data.get('old', '?')}){who}"
        if action == "auditd-stopped":
            return "auditd stopped (DAEMON_END): nothing is written until it restarts"
        if action == "auditd-aborted":
            why = f": {data['reason']}" if data.get("reason") else ""
            return f"auditd aborted (DAEMON_ABORT){why}: nothing is written until it restarts"
        if action == "auditd-started":
            return (
                "auditd started again with no stop record since its previous start "
                "(killed or crashed): events of the gap may be lost"
            )
        if action == "audit-log-lost":
            return (
                f"checkpointed log {data.get('path', '?')} (file {data.get('file', '?')}) was "
                f"rotated away before it was read to its end: records after byte "
                f"{data.get('offset', '?')} of it, and of any file rotated away after it, are "
                f"lost; resumed with {data.get('resumed_from', '?')}"
            )
        lost = auditd.get("lost")
        if lost:
            return (
                f"{lost['count']} audit event(s) lost: serials {lost['first_serial']}-"
                f"{lost['last_serial']} missing"
            )
        return f"the kernel reports lost audit events (lost={data.get('lost', '?')})"


def _who(document: dict[str, Any]) -> str:
    process = document.get("process")
    if not process:
        auid = document.get("auditd", {}).get("login_user", {}).get("id")
        return f" (auid {auid})" if auid else ""
    title = process.get("title")
    name = title_as_args(title) if title else process.get("name") or "?"
    return f" by {name} (pid {process.get('pid', '?')})"
