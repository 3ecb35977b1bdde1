"""Detector: bytes in, alerts and diagnostics out. The whole pure pipeline.

Theory of operation::

    bytes -> LineBuffer -> parse_record -> Assembler -> process_event_from
          -> ProcessTable (parent) -> rules -> AlertLimiter -> outputs

:meth:`Detector.feed` takes any chunk of a log and returns a list of outputs:
:class:`~kexecwatch.core.alerts.Alert`,
:class:`~kexecwatch.core.process.ProcessEvent` (when asked for),
:class:`~kexecwatch.core.record.ParseIssue`,
:class:`~kexecwatch.core.assembler.EventsLost` and
:class:`~kexecwatch.core.alerts.AlertsSuppressed`. :meth:`flush` ends the
stream. The result does not depend on how the input was split.

Rule 1: no I/O and no clock. The live shell passes time to :meth:`expire`
and may inject a ``/proc`` lookup into the process table.
Rule 2: bad input becomes values; the only exceptions that leave this module
are bugs.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, fields
from typing import Any, Protocol

from kexecwatch.core.alerts import Alert, AlertLimiter, AlertsSuppressed, RuleMeta
from kexecwatch.core.assembler import (
    DEFAULT_MAX_INFLIGHT,
    DEFAULT_WINDOW_MS,
    Assembler,
    AssemblerOutput,
    AuditEvent,
    EventsLost,
)
from kexecwatch.core.linebuffer import DEFAULT_MAX_LINE, LineBuffer
from kexecwatch.core.process import ProcessEvent, process_event_from
from kexecwatch.core.proctable import DEFAULT_MAX_ENTRIES, ProcessTable, ProcLookup
from kexecwatch.core.record import AuditRecord, ParseIssue, parse_record

__all__ = ["DetectionRule", "Detector", "DetectorOptions", "Output", "Stats"]

Output = Alert | ProcessEvent | ParseIssue | EventsLost | AlertsSuppressed


class DetectionRule(RuleMeta, Protocol):
    """A rule the detector can run: its metadata and a predicate on documents."""

    def matches(self, document: dict[str, Any]) -> bool: ...


@dataclass(frozen=True, slots=True)
class DetectorOptions:
    """Tuning of the pipeline.

    Attributes:
        window_ms: how long (record time) an incomplete event may wait.
        max_inflight: the most incomplete events held at once.
        max_line: the longest line kept, in bytes.
        max_processes: the size of the process table.
        emit_events: also return every process event (``--events``).
        since_ms / until_ms: only events in ``[since, until)`` are evaluated
            and returned; earlier ones still teach the process table.
    """

    window_ms: int = DEFAULT_WINDOW_MS
    max_inflight: int = DEFAULT_MAX_INFLIGHT
    max_line: int = DEFAULT_MAX_LINE
    max_processes: int = DEFAULT_MAX_ENTRIES
    emit_events: bool = False
    since_ms: int | None = None
    until_ms: int | None = None


@dataclass(slots=True)
class Stats:
    """Running counts, for the summary and the status line."""

    lines: int = 0
    records: int = 0
    events: int = 0
    process_events: int = 0
    alerts: int = 0
    suppressed: int = 0
    parse_issues: int = 0
    lost_events: int = 0
    incomplete_events: int = 0
    last_time_ms: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counts by name."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


_STAT_NAMES = frozenset(f.name for f in fields(Stats))


@dataclass(slots=True)
class _Position:
    source: Hashable
    offset: int


class Detector:
    """The pure detection pipeline. See the module docstring.

    Args:
        rules: the rules to evaluate.
        host_name: ``host.name`` for records without ``node=``.
        options: tuning; see :class:`DetectorOptions`.
        lookup: an optional live ``/proc`` lookup for unknown parents.
    """

    def __init__(
        self,
        rules: Sequence[DetectionRule],
        *,
        host_name: str,
        options: DetectorOptions | None = None,
        lookup: ProcLookup | None = None,
    ) -> None:
        self.options = options or DetectorOptions()
        self.rules = list(rules)
        self.host_name = host_name
        self.stats = Stats()
        self._lines = LineBuffer(max_line=self.options.max_line)
        self._assembler = Assembler(
            window_ms=self.options.window_ms, max_inflight=self.options.max_inflight
        )
        self.table = ProcessTable(max_entries=self.options.max_processes, lookup=lookup)
        self._limiter = AlertLimiter()
        self._starts: dict[tuple[str | None, Any], _Position] = {}

    # -- feeding -------------------------------------------------------------

    def switch_source(self, source: Hashable, offset: int = 0) -> list[Output]:
        """Continue with another source (a rotated file's successor).

        Events in flight are kept, so an event whose records straddle a
        rotation is still assembled whole. A partial line left at the end of
        the previous source is reported, since nothing can complete it.
        """
        left = self._lines.switch(source, offset)
        if not left:
            return []
        self.stats.parse_issues += 1
        return [
            ParseIssue(self._lines.line_no, "line without newline at end of source", left[:120])
        ]

    def feed(self, data: bytes) -> list[Output]:
        """Feed any chunk of the log; return the outputs it completes."""
        out: list[Output] = []
        stats = self.stats
        for line in self._lines.feed(data):
            stats.lines += 1
            if line.overlong:
                stats.parse_issues += 1
                out.append(
                    ParseIssue(
                        line.line_no, f"line longer than {self.options.max_line} bytes skipped"
                    )
                )
                continue
            raw = line.data
            if not raw or raw[0] == 0x23 or raw.isspace():  # blank or '#' comment
                continue
            record = parse_record(raw, line.line_no)
            if isinstance(record, ParseIssue):
                stats.parse_issues += 1
                out.append(record)
                continue
            stats.records += 1
            key = (record.node, record.id)
            if key not in self._starts:
                self._starts[key] = _Position(line.source, line.offset)
            self._handle(self._assembler.push(record), out)
        return out

    def expire(self, now_ms: int) -> list[Output]:
        """Complete events older than the window against ``now_ms`` (live idle)."""
        out: list[Output] = []
        self._handle(self._assembler.expire(now_ms), out)
        return out

    def flush(self) -> list[Output]:
        """End of stream: complete everything and report what was held back."""
        out: list[Output] = []
        left = self._lines.pending
        if left:
            self.stats.parse_issues += 1
            out.append(
                ParseIssue(
                    self._lines.line_no + 1, "line without newline at end of input", left[:120]
                )
            )
            self._lines.switch(self._lines.source, self._lines.offset)
        self._handle(self._assembler.flush(), out)
        for suppressed in self._limiter.flush():
            self.stats.suppressed += suppressed.count
            out.append(suppressed)
        return out

    # -- positions, for checkpoints ----------------------------------------------

    @property
    def resume_position(self) -> tuple[Hashable, int]:
        """Where to start reading again to rebuild the events in flight.

        The start of the oldest in-flight event's first line, or just past
        the last complete line when nothing is in flight.
        """
        if self._starts:
            first = next(iter(self._starts.values()))
            return first.source, first.offset
        return self._lines.source, self._lines.boundary

    # -- internals ---------------------------------------------------------------

    def _handle(self, produced: list[AssemblerOutput], out: list[Output]) -> None:
        stats = self.stats
        for item in produced:
            if isinstance(item, AuditEvent):
                self._starts.pop((item.node, item.id), None)
                stats.events += 1
                if not item.complete:
                    stats.incomplete_events += 1
                stats.last_time_ms = max(stats.last_time_ms, item.id.time_ms)
                self._on_event(item, out)
            elif isinstance(item, EventsLost):
                stats.lost_events += item.count
                out.append(item)
            else:
                stats.parse_issues += 1
                out.append(item)

    def _on_event(self, event: AuditEvent, out: list[Output]) -> None:
        if not _has_syscall(event.records):
            return
        process = process_event_from(event, self.host_name)
        if process is None:
            return
        parent = self.table.parent_of(process)
        if parent is not None:
            process = process.with_parent(parent)
        self.table.observe(process)
        if not (process.is_exec or process.syscall in ("kexec_load", "kexec_file_load")):
            return
        options = self.options
        t = process.id.time_ms
        if (options.since_ms is not None and t < options.since_ms) or (
            options.until_ms is not None and t >= options.until_ms
        ):
            return
        self.stats.process_events += 1
        if options.emit_events:
            out.append(process)
        if not self.rules:
            return
        document = process.to_document()
        for rule in self.rules:
            if rule.matches(document):
                alert = Alert(rule, process)
                admitted, closed = self._limiter.admit(alert)
                for suppressed in closed:
                    self.stats.suppressed += suppressed.count
                    out.append(suppressed)
                if admitted:
                    self.stats.alerts += 1
                    out.append(alert)

    # -- state ---------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """A JSON-ready snapshot of everything but the in-flight records.

        In-flight events are rebuilt by re-reading from
        :attr:`resume_position`; already completed events are recognised and
        skipped by the assembler's ``done`` set.
        """
        return {
            "version": 1,
            "assembler": self._assembler.to_state(),
            "processes": self.table.to_state(),
            "limiter": self._limiter.to_state(),
            "stats": self.stats.as_dict(),
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Load a snapshot made by :meth:`to_state`. Raises ``ValueError`` if foreign."""
        if not isinstance(state, dict) or state.get("version") != 1:
            raise ValueError("not a kexecwatch detector state (version 1)")
        try:
            self._assembler.restore(state["assembler"])
            self.table.restore(state["processes"])
            self._limiter.restore(state["limiter"])
            for name, value in state.get("stats", {}).items():
                if name in _STAT_NAMES:
                    setattr(self.stats, name, int(value))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"corrupt detector state: {exc}") from exc


def _has_syscall(records: tuple[AuditRecord, ...]) -> bool:
    return any(r.type == "SYSCALL" for r in records)
