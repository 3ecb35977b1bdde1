"""What the live view shows: plain state, the model that fills it, and the keys.

Theory of operation: :class:`LiveModel` owns one
:class:`~kexecwatch.adapters.session.Session` (its detector run with ``emit_events`` so
that every process event comes out, not only alerts, and asked for the rules' verdict on
every run of kexec: the activity panel shows the detector's own, limits included). The
terminal loop feeds it bytes and calls :meth:`LiveModel.tick` with the wall clock before
each redraw; the model keeps a :class:`DashboardState` up to date, and
:func:`~kexecwatch.adapters.live.render.render_dashboard` draws that state and
nothing else. Keys are in :mod:`kexecwatch.adapters.live.keys`.

Rule 1: no I/O and no clock here; times are passed in. Everything is testable without
a terminal.
Rule 2: state holds data as the log gave it (unescaped); only the renderer makes text
terminal-safe, in one place.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kexecwatch.adapters.session import Diagnostic, Session
from kexecwatch.core import (
    DEFAULT_WINDOW_MS,
    Alert,
    DetectionRule,
    DetectorOptions,
    MatchedSequence,
    Output,
    ProcessEvent,
    ProcessTableLike,
    TelemetryEvent,
    Verdict,
    command_text,
    record_times,
)
from kexecwatch.core.process.events import text

__all__ = [
    "HEADER_LINES",
    "ActivityRow",
    "AlertRow",
    "DashboardState",
    "LiveModel",
    "ProcessSummary",
    "alerts_panel_height",
    "is_compact",
    "is_kexec",
    "process_chain",
]

#: Seconds of event-rate history kept for the sparkline.
HISTORY_S = 300
MAX_ALERT_ROWS = 1000
MAX_ACTIVITY_ROWS = 200
CHAIN_DEPTH = 5
#: Screen lines above the panels: title, two lines of counters, the sparkline.
HEADER_LINES = 4
_RATE_WINDOW_S = 3.0


@dataclass(frozen=True, slots=True)
class ProcessSummary:
    """Who ran what, as one line of the screen shows it (raw text, not yet escaped)."""

    time_ms: int
    host: str
    user: str
    pid: int
    chain: tuple[str, ...]
    command: str


@dataclass(frozen=True, slots=True)
class AlertRow:
    """One alert as the alerts panel shows it; ``document`` is the full ECS alert."""

    rule: str
    severity: str
    process: ProcessSummary
    document: dict[str, Any]
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ActivityRow:
    """One execution of kexec, whether it alerted or, if not, why not."""

    process: ProcessSummary
    alerted: bool
    reason: str


@dataclass(slots=True)
class DashboardState:
    """Everything the screen shows. Plain data: the renderer reads only this.

    ``selected`` is an index into ``alert_rows`` (oldest first), or ``None`` to follow
    the newest alert. ``rate_history`` holds events per second of log time, oldest
    first, ending at the latest record time. ``compact`` is the ``c`` key's choice of one
    line per alert (``None``: automatic, see :func:`is_compact`); ``height`` is the
    terminal's, as last drawn.
    """

    source: str = "follow"
    path: str = ""
    status: str = ""
    offset: int = 0
    lag: int | None = None
    records: int = 0
    events: int = 0
    records_per_s: float = 0.0
    events_per_s: float = 0.0
    alerts: int = 0
    suppressed: int = 0
    lost_events: int = 0
    parse_issues: int = 0
    uptime_s: float = 0.0
    log_time_ms: int = 0
    paused: bool = False
    finished: bool = False
    message: str = ""
    alert_rows: list[AlertRow] = field(default_factory=list)
    activity: list[ActivityRow] = field(default_factory=list)
    rate_history: list[int] = field(default_factory=list)
    selected: int | None = None
    detail: int | None = None
    detail_scroll: int = 0
    compact: bool | None = None
    height: int = 0


def process_chain(
    event: ProcessEvent, table: ProcessTableLike, depth: int = CHAIN_DEPTH
) -> tuple[str, ...]:
    """Names from the oldest known ancestor down to ``event``'s process.

    ``("systemd", "bash", "kexec")``; an ancestor the table does not know is shown as
    ``pid N`` and ends the chain.
    """
    own = text(event.comm) or text(event.exe) or f"pid {event.pid}"
    ancestors = table.ancestry(event.ppid, event.id.time_ms, depth - 1)
    if not ancestors and event.parent is not None and event.parent.name is not None:
        return (text(event.parent.name) or "?", own)
    names = [text(p.name) or f"pid {p.pid}" for p in ancestors]
    top = ancestors[-1].ppid if ancestors else event.ppid
    if len(names) < depth - 1 and top is not None and top > 0:
        names.append(f"pid {top}")
    return (*reversed(names), own)


def alerts_panel_height(body: int, compact: bool) -> int:
    """Lines of the alerts panel when ``body`` lines hold it and the activity panel: a
    bit over half; compact, at least 10 (eight one-line alerts) while activity keeps 3."""
    height = max(3, body * 11 // 20)
    return max(height, min(10, body - 3)) if compact else height


def is_compact(state: DashboardState, height: int) -> bool:
    """Whether alerts take one line each on a screen ``height`` lines high: as ``c`` last
    chose, else when there are more alerts than two lines each would show."""
    if state.compact is not None:
        return state.compact
    body = height - HEADER_LINES - 1
    return len(state.alert_rows) > (alerts_panel_height(body, False) - 3) // 2


def is_kexec(event: ProcessEvent) -> bool:
    """Whether ``event`` executes kexec: ``comm`` or the basename of ``exe`` is ``kexec``."""
    exe = event.exe or b""
    return event.is_exec and (event.comm == b"kexec" or exe.rsplit(b"/", 1)[-1] == b"kexec")


class LiveModel:
    """The detector plus the live view's state. See the module docstring.

    Args:
        rules: the rules to run.
        host_name: ``host.name`` for records without ``node=``.
        live: look unknown parents up in ``/proc`` (following this host's log).
        window_ms: how long, in record time, an incomplete event waits for more records.
        host_id: ``host.id`` for records without ``node=``.
        events_as: the event vocabulary (``--events-as``).
    """

    def __init__(
        self,
        rules: Sequence[DetectionRule],
        *,
        host_name: str,
        live: bool = False,
        state: DashboardState | None = None,
        window_ms: int = DEFAULT_WINDOW_MS,
        host_id: str | None = None,
        events_as: str = "auditbeat",
    ) -> None:
        self.session = Session(
            rules,
            host_name=host_name,
            options=DetectorOptions(
                emit_events=True, window_ms=window_ms, events_as=events_as, explain=is_kexec
            ),
            host_id=host_id,
            live=live,
        )
        self.detector = self.session.detector
        self.state = state or DashboardState()
        self._per_second: dict[int, int] = {}
        self._samples: deque[tuple[float, int, int]] = deque()
        self._started: float | None = None
        #: Grows whenever something on the screen may have changed (redraw hint).
        self.version = 0

    # -- feeding ------------------------------------------------------------------
    def switch_source(self, name: str, offset: int = 0) -> None:
        """Continue with another file (the next replay file, or a rotated log)."""
        self._take(self.detector.switch_source(name, offset))

    def feed(self, data: bytes, now: float | None = None) -> None:
        """Feed a chunk of log; events are counted in the second of their records.

        ``now`` (monotonic seconds) restarts the idle clock of a followed log."""
        start = 0
        second: int | None = None
        # Cut the chunk where the record second changes, so the sparkline counts each
        # event in its own second even when a whole file arrives at once.
        for at, time_ms in record_times(data):
            sec = time_ms // 1000
            if second is not None and sec != second:
                cut = data.rfind(b"\n", start, at) + 1
                if cut > start:
                    self._feed_part(data[start:cut], second, now)
                    start = cut
            second = sec
        if start < len(data):
            self._feed_part(data[start:], second, now)

    def _feed_part(self, data: bytes, second: int | None, now: float | None) -> None:
        self.version += 1  # the record count changed, at least
        before = self.detector.stats.events
        self._take(self.session.feed(data, now))
        self._count(self.detector.stats.events - before, second)

    def idle(self, now: float, *, mid_line: bool = False) -> None:
        """The followed log is quiet at monotonic time ``now``: idle means expire
        (see :meth:`~kexecwatch.adapters.session.Session.idle`)."""
        before = self.detector.stats.events
        self._take(self.session.idle(now, mid_line=mid_line))
        self._count(self.detector.stats.events - before, None)

    def flush(self) -> None:
        """End of input (a finished replay)."""
        before = self.detector.stats.events
        self._take(self.detector.flush())
        self._count(self.detector.stats.events - before, None)

    def note(self, message: str) -> None:
        """Show ``message`` (a diagnostic of the shell) in the status line."""
        self.state.message = message
        self.version += 1

    # -- clock ----------------------------------------------------------------------
    def tick(self, now: float) -> None:
        """Bring counters, rates and the uptime up to date at wall time ``now`` (s)."""
        stats = self.detector.stats
        state = self.state
        if self._started is None:
            self._started = now
        state.uptime_s = now - self._started
        state.records, state.events = stats.records, stats.events
        state.alerts, state.suppressed = stats.alerts, stats.suppressed
        state.lost_events, state.parse_issues = stats.lost_events, stats.parse_issues
        state.log_time_ms = stats.last_time_ms
        samples = self._samples
        samples.append((now, stats.records, stats.events))
        while len(samples) > 2 and now - samples[1][0] >= _RATE_WINDOW_S:
            samples.popleft()
        t0, r0, e0 = samples[0]
        span = now - t0
        state.records_per_s = (stats.records - r0) / span if span > 0 else 0.0
        state.events_per_s = (stats.events - e0) / span if span > 0 else 0.0
        last = stats.last_time_ms // 1000
        first = last - HISTORY_S + 1
        for sec in [s for s in self._per_second if s < first]:
            del self._per_second[sec]
        counts = self._per_second
        state.rate_history = [counts.get(s, 0) for s in range(first, last + 1)] if last else []

    # -- internals --------------------------------------------------------------------
    def _count(self, events: int, second: int | None) -> None:
        if events <= 0:
            return
        if second is None:
            second = self.detector.stats.last_time_ms // 1000
        self._per_second[second] = self._per_second.get(second, 0) + events

    def _take(self, outputs: list[Output]) -> None:
        if outputs:
            self.version += 1
            self.session.deliver(outputs, self)

    # -- the session's output sink ------------------------------------------------------
    def alert(self, alert: Alert, document: dict[str, Any]) -> None:
        """An alert: a row of the alerts panel."""
        self._add_alert(alert, document)

    def process(self, event: ProcessEvent, document: dict[str, Any]) -> None:
        """A process event: counted only (kexec runs come with their verdicts)."""

    def verdict(self, verdict: Verdict, document: dict[str, Any]) -> None:
        """What the rules made of a run of kexec: an activity row."""
        rows = self.state.activity
        summary = self._summary(verdict.event, document)
        rows.append(ActivityRow(summary, bool(verdict.alerted), verdict.reason))
        if len(rows) > MAX_ACTIVITY_ROWS:
            del rows[: len(rows) - MAX_ACTIVITY_ROWS]

    def diagnostic(self, item: Diagnostic, text: str) -> None:
        """A diagnostic: the status line."""
        self.state.message = text

    def _summary(
        self, event: ProcessEvent | TelemetryEvent | MatchedSequence, doc: dict[str, Any]
    ) -> ProcessSummary:
        if isinstance(event, MatchedSequence):
            # A sequence's row shows its last event, as its document does.
            process = doc.get("process", {})
            user = doc.get("user", {})
            return ProcessSummary(
                time_ms=event.id.time_ms,
                host=str(event.node or "?"),
                user=str(user.get("name") or user.get("id") or "?"),
                pid=int(process.get("pid") or 0),
                chain=(),
                command=command_text(process),
            )
        if isinstance(event, TelemetryEvent):
            if event.process is not None:
                return self._summary(event.process, event.process.to_document())
            return ProcessSummary(
                time_ms=event.id.time_ms,
                host=event.host_name,
                user="-",
                pid=0,
                chain=(),
                command=event.action,
            )
        user = doc.get("user", {})
        process = doc.get("process", {})
        return ProcessSummary(
            time_ms=event.id.time_ms,
            host=event.host_name,
            user=str(user.get("name") or user.get("id") or "?"),
            pid=event.pid,
            chain=process_chain(event, self.detector.table),
            command=command_text(process),
        )

    def _add_alert(self, alert: Alert, doc: dict[str, Any]) -> None:
        summary = self._summary(alert.event, doc)
        rows = self.state.alert_rows
        rows.append(AlertRow(alert.rule.name, alert.rule.severity, summary, doc, alert.reason))
        if len(rows) > MAX_ALERT_ROWS:
            drop = len(rows) - MAX_ALERT_ROWS
            del rows[:drop]
            state = self.state
            if state.selected is not None:
                state.selected = max(0, state.selected - drop)
            if state.detail is not None:
                state.detail = max(0, state.detail - drop)
