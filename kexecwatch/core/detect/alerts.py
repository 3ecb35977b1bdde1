"""Alerts: a rule's verdict on a process event, its limits and its renderings.

Theory of operation: a :class:`RuleMeta` match on a
:class:`~kexecwatch.core.process.events.ProcessEvent` becomes an :class:`Alert`
whose id is stable across runs (rule id, node, audit id), so re-reading a log
never yields a "new" alert for an old event. :class:`AlertLimiter` applies a
rule's ``max_signals`` per user per ``interval`` of *event* time (100 per 5
minutes for the kexec rule), so one user's flood cannot silence another's alert;
what it holds back is counted and reported as
:class:`AlertsSuppressed`, never dropped silently.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from kexecwatch.core.detect.telemetry import TelemetryEvent
from kexecwatch.core.process.events import ProcessEvent, format_timestamp
from kexecwatch.core.text import jsontext
from kexecwatch.core.text.frozen import Frozen, set_field
from kexecwatch.core.text.textsafe import (
    COMMAND_BYTES,
    VALUE_BYTES,
    clip,
    clip_command,
    escape_text,
    shorten,
)

if TYPE_CHECKING:
    # Only for types: the sequence engine loads only when a sequence rule is loaded.
    from kexecwatch.core.detect.rule.sequence_state import MatchedSequence

__all__ = [
    "Alert",
    "AlertLimiter",
    "AlertsSuppressed",
    "RuleMeta",
    "alert_id",
    "alert_user",
    "command_text",
    "document_alert_id",
    "ecs_threat",
    "severity_label",
    "to_json_line",
    "to_text_line",
]


class RuleMeta(Protocol):
    """What an alert needs to know of the rule that raised it."""

    @property
    def rule_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def description(self) -> str: ...
    @property
    def severity(self) -> str: ...
    @property
    def risk_score(self) -> int: ...
    @property
    def license(self) -> str: ...
    @property
    def author(self) -> tuple[str, ...]: ...
    @property
    def references(self) -> tuple[str, ...]: ...
    def threat_documents(self) -> list[dict[str, Any]]: ...
    @property
    def max_signals(self) -> int: ...
    @property
    def interval_ms(self) -> int: ...


def document_alert_id(doc: dict[str, Any]) -> str:
    """The alert id an alert document carries (``event.id``), the key a consumer
    de-duplicates on; empty for a document without one (a process event)."""
    return str(doc.get("event", {}).get("id", ""))


def alert_id(rule_id: str, event: ProcessEvent | TelemetryEvent | MatchedSequence) -> str:
    """The stable id of the alert ``rule_id`` raises on ``event``."""
    return f"{rule_id}:{event.node or '-'}:{event.id}"


class Alert(Frozen):
    """One alert: the rule, the event it matched, and a one-line reason.

    The event is a process event, or a telemetry event (audit rules removed,
    auditd stopped, events lost) for rules that apply to telemetry, or the events
    of a completed sequence or sample (:class:`MatchedSequence`).
    """

    __slots__ = ("rule", "event", "reason")  # noqa: RUF023 - the fields, in order

    rule: RuleMeta
    event: ProcessEvent | TelemetryEvent | MatchedSequence
    reason: str

    def __init__(
        self,
        rule: RuleMeta,
        event: ProcessEvent | TelemetryEvent | MatchedSequence,
        reason: str = "",
    ) -> None:
        set_field(self, "rule", rule)
        set_field(self, "event", event)
        set_field(self, "reason", reason)

    @property
    def id(self) -> str:
        """Stable across runs: rule id + node + audit id."""
        return alert_id(self.rule.rule_id, self.event)

    def to_document(self) -> dict[str, Any]:
        """The nested ECS alert document (one JSON object per alert).

        ECS fields carry what ECS names (``event.id``, ``event.reason``,
        ``event.risk_score``, ``rule.version`` as a keyword, ``threat.*``); what ECS
        has no field for sits under ``kexecwatch.rule``.
        """
        doc = self.event.to_document()
        rule = self.rule
        event = {
            **doc["event"],
            "kind": "alert",
            "id": self.id,
            "risk_score": rule.risk_score,
            "severity": rule.risk_score,
        }
        if self.reason:
            event["reason"] = self.reason
        doc["event"] = event
        doc["rule"] = {
            "id": rule.rule_id,
            "uuid": rule.rule_id,
            "name": rule.name,
            "version": str(rule.version),
            "description": rule.description,
            "license": rule.license,
            "author": list(rule.author),
            "ruleset": "kexecwatch",
        }
        own: dict[str, Any] = {"severity": rule.severity}
        if rule.references:
            # ECS keeps one reference; the others stay in the rule's own namespace.
            doc["rule"]["reference"] = rule.references[0]
            own["references"] = list(rule.references)
        threats = rule.threat_documents()
        if threats:
            doc["threat"] = ecs_threat(threats)
        doc["kexecwatch"] = {**doc.get("kexecwatch", {}), "rule": own}
        return doc


def ecs_threat(threats: list[dict[str, Any]]) -> dict[str, Any]:
    """A rule's threat entries (tactic -> techniques -> sub-techniques, as Elastic rules
    write them) in ECS's shape: one ``threat`` object whose ids, names and references
    are parallel arrays, each tactic or technique once."""
    tactic: dict[str, list[str]] = {"id": [], "name": [], "reference": []}
    technique: dict[str, Any] = {"id": [], "name": [], "reference": []}
    sub: dict[str, list[str]] = {"id": [], "name": [], "reference": []}

    def add(into: dict[str, Any], item: dict[str, Any]) -> None:
        if item.get("id") not in into["id"]:
            for key in ("id", "name", "reference"):
                into[key].append(str(item.get(key, "")))

    for entry in threats:
        add(tactic, entry.get("tactic", {}))
        for tech in entry.get("technique", []):
            add(technique, tech)
            for subtech in tech.get("subtechnique", []):
                add(sub, subtech)
    if sub["id"]:
        technique["subtechnique"] = sub
    doc: dict[str, Any] = {"framework": threats[0].get("framework", "MITRE ATT&CK")}
    for key, value in (("tactic", tactic), ("technique", technique)):
        if value["id"]:
            doc[key] = value
    return doc


class AlertsSuppressed(Frozen):
    """Alerts held back by a rule's limit in one window of event time.

    ``user`` is the user whose window it was (see :func:`alert_user`), or ``None``
    for the rule's shared window (telemetry alerts, users beyond the tracked ones).
    """

    __slots__ = (  # noqa: RUF023 - the fields, in order
        "rule_id",
        "rule_name",
        "window_start_ms",
        "window_ms",
        "count",
        "user",
    )

    rule_id: str
    rule_name: str
    window_start_ms: int
    window_ms: int
    count: int
    user: str | None

    def __init__(  # noqa: PLR0917 - a dataclass's positional fields
        self,
        rule_id: str,
        rule_name: str,
        window_start_ms: int,
        window_ms: int,
        count: int,
        user: str | None = None,
    ) -> None:
        set_field(self, "rule_id", rule_id)
        set_field(self, "rule_name", rule_name)
        set_field(self, "window_start_ms", window_start_ms)
        set_field(self, "window_ms", window_ms)
        set_field(self, "count", count)
        set_field(self, "user", user)

    def describe(self) -> str:
        """One line for the operator."""
        start = format_timestamp(self.window_start_ms)
        whose = (
            "all users"
            if self.user is None
            else f"user {clip(escape_text(self.user), VALUE_BYTES)}"
        )
        return (
            f"{self.count} alert(s) of rule {self.rule_name!r} suppressed for {whose} in "
            f"the {self.window_ms // 1000}s window starting {start} (max_signals reached)"
        )


# The kernel writes an unset login uid as (u32)-1; some tools write -1.
_UNSET_IDS = frozenset({"4294967295", "-1"})


def alert_user(event: ProcessEvent | TelemetryEvent | MatchedSequence) -> str | None:
    """The user an alert's limit is kept for: the audit login uid (``auid``) when set,
    else the uid (of a sequence's last event); ``None`` for a telemetry event or an
    event without either."""
    if isinstance(event, TelemetryEvent):
        return None
    if not isinstance(event, ProcessEvent):
        return event.user  # a MatchedSequence (not imported: see the module's imports)
    ids = dict(event.ids)
    auid = ids.get("auid")
    if auid is not None and auid not in _UNSET_IDS:
        return auid
    return ids.get("uid")


@dataclass(slots=True)
class _Window:
    start_ms: int
    emitted: int = 0
    suppressed: int = 0


# Windows of users are tracked up to this many per rule (see AlertLimiter).
MAX_USERS_PER_RULE = 1024

_Key = tuple[str, str | None]


@dataclass(slots=True)
class AlertLimiter:
    """At most ``max_signals`` alerts per rule, per user, per ``interval`` of event time.

    The user is the one who ran the process (:func:`alert_user`), so one user's
    flood fills that user's window only and never suppresses another user's alert.
    Unprivileged users cannot mint uids, so the windows are few; still, at most
    ``max_users`` users are tracked per rule (windows of a past interval are
    reported and dropped first). Beyond that, alerts of further users share one
    window per rule, which is also the window of alerts without a user (telemetry).

    Windows are aligned on multiples of the interval since the epoch, so a
    replay and a live run cut the same windows. An alert of another window, later
    or earlier (a clock stepped back), opens a new one: a window of the future
    must not count, and silence, the alerts of the present.
    """

    max_users: int = MAX_USERS_PER_RULE
    _windows: dict[_Key, _Window] = field(default_factory=dict)
    _names: dict[str, tuple[str, int]] = field(default_factory=dict)
    _users: dict[str, int] = field(default_factory=dict)

    def admit(self, alert: Alert) -> tuple[bool, list[AlertsSuppressed]]:
        """Whether to emit ``alert``, and any closed window's suppressed count."""
        rule = alert.rule
        interval = max(rule.interval_ms, 1)
        start = alert.event.id.time_ms // interval * interval
        self._names[rule.rule_id] = (rule.name, interval)
        closed: list[AlertsSuppressed] = []
        key = self._key(rule.rule_id, alert_user(alert.event), start, closed)
        window = self._windows.get(key)
        if window is None or start != window.start_ms:
            if window is not None and window.suppressed:
                closed.append(self._report(key, window))
            if window is None and key[1] is not None:
                self._users[rule.rule_id] = self._users.get(rule.rule_id, 0) + 1
            window = self._windows[key] = _Window(start)
        if window.emitted < rule.max_signals:
            window.emitted += 1
            return True, closed
        window.suppressed += 1
        return False, closed

    def _key(
        self, rule_id: str, user: str | None, start: int, closed: list[AlertsSuppressed]
    ) -> _Key:
        """The window key of ``user``'s alert; the shared one beyond ``max_users``."""
        key = (rule_id, user)
        if user is None or key in self._windows or self._users.get(rule_id, 0) < self.max_users:
            return key
        for old in [k for k, w in self._windows.items() if k[0] == rule_id and k[1] is not None]:
            window = self._windows[old]
            if window.start_ms != start:
                if window.suppressed:
                    closed.append(self._report(old, window))
                del self._windows[old]
                self._users[rule_id] -= 1
        return key if self._users.get(rule_id, 0) < self.max_users else (rule_id, None)

    def flush(self) -> list[AlertsSuppressed]:
        """Report the suppressed counts of every open window."""
        out = [self._report(k, w) for k, w in self._windows.items() if w.suppressed]
        for w in self._windows.values():
            w.suppressed = 0
        return out

    def _report(self, key: _Key, window: _Window) -> AlertsSuppressed:
        name, interval = self._names[key[0]]
        return AlertsSuppressed(key[0], name, window.start_ms, interval, window.suppressed, key[1])

    def to_state(self) -> list[list[Any]]:
        """A JSON-ready snapshot: ``[rule_id, user, start, emitted, suppressed, name,
        interval]`` per window."""
        return [
            [r, u, w.start_ms, w.emitted, w.suppressed, *self._names[r]]
            for (r, u), w in self._windows.items()
        ]

    def restore(self, state: list[list[Any]]) -> None:
        """Load a snapshot made by :meth:`to_state`, or by the per-rule limiter before
        issue 16 (``[rule_id, start, emitted, suppressed, name, interval]``: that window
        becomes the rule's shared one)."""
        for entry in state:
            full = [entry[0], None, *entry[1:]] if len(entry) == 6 else entry
            rule_id, user, start, emitted, suppressed, name, interval = full
            key = (str(rule_id), None if user is None else str(user))
            if key not in self._windows and key[1] is not None:
                self._users[key[0]] = self._users.get(key[0], 0) + 1
            self._windows[key] = _Window(int(start), int(emitted), int(suppressed))
            self._names[key[0]] = (str(name), int(interval))


def to_json_line(doc: dict[str, Any]) -> bytes:
    """One NDJSON line, UTF-8, keys sorted.

    Undecodable bytes travel as lone surrogates; they are written as the JSON
    escapes ``\\udc80``-``\\udcff``, so the line is valid UTF-8 and lossless.
    Control characters and Unicode line breaks are escaped (see :mod:`jsontext`).
    """
    return jsontext.line(doc)


def command_text(process: dict[str, Any], quote: Callable[[str], str] = str) -> str:
    """A process document's argv (else its command line or name) as one line for people,
    each argument passed through ``quote``, shortened as
    :func:`~kexecwatch.core.text.textsafe.clip_command` does."""
    args = process.get("args")
    if not args:
        line = str(process.get("command_line") or process.get("name") or "?")
        return clip(line, COMMAND_BYTES)
    return clip_command(map(str, args), quote)


def _shell_quote(arg: str) -> str:
    # Quote like a shell would, so "a b" stays one visible argument.
    return arg if arg and _PLAIN_ARG.fullmatch(arg) else _single_quote(arg)


def _single_quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\\''") + "'"


_PLAIN_ARG = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")


def severity_label(doc: dict[str, Any]) -> str:
    """An alert document's severity word (``"medium"``); empty for an event document."""
    return str(doc.get("kexecwatch", {}).get("rule", {}).get("severity", ""))


def to_text_line(doc: dict[str, Any], *, width: int = 0) -> str:
    """One terminal-safe line describing an alert (or a process event) document.

    Long values are shortened with a visible ``…(+N bytes)`` (see
    :func:`~kexecwatch.core.text.textsafe.clip`): each argument, the command line and
    any other value to the limits named there. The JSON document keeps everything.
    """
    process = doc.get("process", {})
    parent = process.get("parent", {})
    user = doc.get("user", {})
    event = doc.get("event", {})
    rule = doc.get("rule", {})
    who = user.get("name") or user.get("id") or "?"
    pname = parent.get("name", "?")
    parts = [
        doc.get("@timestamp", "?"),
        severity_label(doc) or event.get("action", ""),
        f"rule={rule['name']!r}" if rule else "",
        f"host={clip(str(doc.get('host', {}).get('name', '?')), VALUE_BYTES)}",
        f"user={who}",
    ]
    if "process" in doc:
        parts += [
            f"pid={process.get('pid', '?')}",
            f"parent={pname}({parent.get('pid', '?')})",
            f"exe={clip(str(process.get('executable', '?')), VALUE_BYTES)}",
            "cmd=" + command_text(process, _shell_quote),
        ]
    else:  # a telemetry event: auditd stopped, rules removed, events lost
        parts.append(f"action={event.get('action', '?')}")
    if event.get("reason"):
        parts.append(f"reason={clip(str(event['reason']), VALUE_BYTES)}")
    line = escape_text(" ".join(p for p in parts if p))
    return shorten(line, width) if width > 0 else line
