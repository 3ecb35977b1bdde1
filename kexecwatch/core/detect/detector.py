"""Detector: bytes in, alerts and diagnostics out. The whole pure pipeline.

Theory of operation::

    bytes -> LineBuffer -> parse_record -> Assembler -> process_event_from
          -> ProcessTable (parent) -> rules -> AlertLimiter -> outputs

The fast path (on by default) takes a shortcut for the bulk of a log: the scanner
stage (:mod:`kexecwatch.core.scan.scanner`) takes whole syscall events at once and, unless an
:class:`~kexecwatch.core.scan.prefilter.Prefilter` accepts one, never parses its records:
it only teaches the process table. Everything else (single records, odd layouts) takes
the reference path above, which ``DetectorOptions(fast_path=False)`` uses for every
line. Both give the same outputs (``tests/core/scan/test_fast_path.py``,
``tests/core/scan/test_fast_pair.py``).

Hook point for detections: :meth:`Detector._on_event` receives every event
that may matter, records and all: every event of the reference path, and the
fast-path events some prefilter accepts. The rules register theirs from their
literals; another consumer calls :meth:`Detector.add_prefilter` with the
syscalls, names or record types it needs (or ``EVERYTHING``).

:meth:`Detector.feed` takes any chunk of a log and returns a list of outputs:
:class:`~kexecwatch.core.detect.alerts.Alert`,
:class:`~kexecwatch.core.process.events.ProcessEvent` (when asked for),
:class:`~kexecwatch.core.audit.record.ParseIssue`,
:class:`~kexecwatch.core.audit.assembler.EventsLost`,
:class:`~kexecwatch.core.detect.alerts.AlertsSuppressed` and :class:`Verdict` (when asked
for). :meth:`flush` ends the stream. The result does not depend on how the input was split.

Rule 1: no I/O and no clock. The live shell passes its idle time to
:meth:`expire_idle` (or a time to :meth:`expire`) and may inject a ``/proc``
lookup into the process table.
Rule 2: bad input becomes values. An exception while handling one event (a bug)
is caught, counted in ``Stats.event_errors`` and returned as an
:class:`EventError`; the rest of the input goes on (README, "One bad event").
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol

from kexecwatch.core.audit.assembler import (
    DEFAULT_MAX_INFLIGHT,
    DEFAULT_WINDOW_MS,
    Assembler,
    AssemblerOutput,
    AuditEvent,
    EventsLost,
)
from kexecwatch.core.audit.fields import is_bound_problem
from kexecwatch.core.audit.linebuffer import DEFAULT_MAX_LINE, LineBuffer
from kexecwatch.core.audit.msgtypes import TELEMETRY_TYPES
from kexecwatch.core.audit.nativeapi import NativeLib
from kexecwatch.core.audit.record import (
    MAX_TIME_MS,
    EventId,
    ParseIssue,
    TimeJump,
    parse_record,
    quotable,
    where_text,
)
from kexecwatch.core.audit.syscalls import (
    CRED_SYSCALLS,
    GROUP_SYSCALLS,
    KEXEC_SYSCALLS,
    PROCESS_SYSCALLS,
)
from kexecwatch.core.detect.alerts import (
    Alert,
    AlertLimiter,
    AlertsSuppressed,
    RuleMeta,
    to_text_line,
)
from kexecwatch.core.detect.rule.sequence import CompiledSequence
from kexecwatch.core.detect.ruleindex import RuleIndex
from kexecwatch.core.detect.ruleindex import prefilters_of as _prefilters_of
from kexecwatch.core.detect.telemetry import TelemetryEvent, TelemetryTracker
from kexecwatch.core.process.eventlines import (
    EventLines,
    event_pieces,
    host_parts,
    table_answer,
)
from kexecwatch.core.process.events import (
    Parent,
    ProcessEvent,
    process_event_from,
    process_event_of_run,
)
from kexecwatch.core.process.identity import credential_change
from kexecwatch.core.process.leaders import MAX_DEPTH, entry_leader
from kexecwatch.core.process.nativetable import NativeProcessTable
from kexecwatch.core.process.running import running_event
from kexecwatch.core.process.table import (
    DEFAULT_MAX_ARGS_BYTES,
    DEFAULT_MAX_ENTRIES,
    LiveProcess,
    ProcessTable,
    ProcessTableLike,
    ProcLookup,
)
from kexecwatch.core.scan.argtest import Facts, known_of
from kexecwatch.core.scan.fastpath import argv_of_execve_bodies, record_types
from kexecwatch.core.scan.nativescan import NativeScanner, default_native, single_types
from kexecwatch.core.scan.prefilter import EVERYTHING, Prefilter
from kexecwatch.core.scan.scanner import NEVER_DUE, PythonScanner, in_window
from kexecwatch.core.text.frozen import Frozen, Slotted, set_field
from kexecwatch.core.text.textsafe import VALUE_BYTES, clip, escape_text
from kexecwatch.errors import SourceLocation

if TYPE_CHECKING:
    from kexecwatch.core.detect.rule.sequence_state import SequenceEngine, SequenceMatch

__all__ = [
    "DetectionRule",
    "Detector",
    "DetectorOptions",
    "EventError",
    "InjectedFault",
    "Output",
    "Stats",
    "Verdict",
]


class DetectionRule(RuleMeta, Protocol):
    """A rule the detector can run: its metadata, a predicate on documents, and
    a one-line reason for a match (carried as ``event.reason``).

    Every rule sees process documents. A rule whose ``applies_to`` attribute is
    ``"telemetry"`` also sees telemetry documents (``event.category``
    ``configuration``/``host``: audit rules removed, auditd stopped, events
    lost; see :mod:`kexecwatch.core.detect.telemetry`).
    """

    def matches(self, document: dict[str, Any]) -> bool: ...
    def reason(self, document: dict[str, Any]) -> str: ...


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
        fast_path: take the fast path for whole syscall events (see the
            module docstring); ``False`` parses every record, as a reference.
        fault_on: a test hook (:mod:`kexecwatch.testhooks`): handling an event
            whose records contain these bytes raises :class:`InjectedFault`.
        events_as: the event vocabulary of process documents (``--events-as``), one
            of :data:`~kexecwatch.core.process.events.EVENTS_AS`.
        explain: return a :class:`Verdict` for each evaluated process event this
            accepts (the live view: every run of kexec).
        event_lines: with ``emit_events`` and the native scanner, let the library
            write the NDJSON lines of plain execs itself (outputs of type
            :class:`~kexecwatch.core.process.eventlines.EventLines` among the process
            events): for a sink that writes ``--format json`` lines and nothing else.
    """

    window_ms: int = DEFAULT_WINDOW_MS
    max_inflight: int = DEFAULT_MAX_INFLIGHT
    max_line: int = DEFAULT_MAX_LINE
    max_processes: int = DEFAULT_MAX_ENTRIES
    emit_events: bool = False
    since_ms: int | None = None
    until_ms: int | None = None
    fast_path: bool = True
    fault_on: bytes | None = None
    events_as: str = "auditbeat"
    explain: Callable[[ProcessEvent], bool] | None = None
    event_lines: bool = False


class Verdict(Frozen):
    """What the rules made of one process event, when asked
    (:attr:`DetectorOptions.explain`): the names of the rules that alerted on it, of those
    that matched but whose alert the rule's limit held back, and for each rule with a
    query that did not match, why (``excluded: process.parent.name kdumpctl``)."""

    __slots__ = ("event", "alerted", "held", "silent")  # noqa: RUF023 - the fields, in order

    event: ProcessEvent
    alerted: tuple[str, ...]
    held: tuple[str, ...]
    silent: tuple[tuple[str, str], ...]

    def __init__(
        self,
        event: ProcessEvent,
        alerted: tuple[str, ...],
        held: tuple[str, ...],
        silent: tuple[tuple[str, str], ...],
    ) -> None:
        set_field(self, "event", event)
        set_field(self, "alerted", alerted)
        set_field(self, "held", held)
        set_field(self, "silent", silent)

    @property
    def reason(self) -> str:
        """The verdict in words (raw text, not yet terminal-safe): the rules that matched,
        and for each rule that did not why, named so that the two never read as one."""
        matched = [*self.alerted, *(f"{name} (held back by its limit)" for name in self.held)]
        silent = self.silent
        if matched and silent:
            return f"{', '.join(matched)} alerted; " + "; ".join(
                f"{name} did not: {why}" for name, why in silent
            )
        if matched:
            return ", ".join(matched)
        if len(silent) == 1:
            return silent[0][1]
        return "; ".join(f"{name}: {why}" for name, why in silent) or "no rule matched"


Output = (
    Alert
    | ProcessEvent
    | ParseIssue
    | TimeJump
    | EventsLost
    | AlertsSuppressed
    | Verdict
    | EventLines
)


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
    event_errors: int = 0
    time_jumps: int = 0
    last_time_ms: int = 0
    sequences_dropped: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counts by name."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


_TELEMETRY_PREFILTER = Prefilter(record_types=TELEMETRY_TYPES)
# The process table learns sessions and process groups from these events, in full.
_GROUP_PREFILTER = Prefilter(syscalls=GROUP_SYSCALLS)
_STAT_NAMES = frozenset(f.name for f in fields(Stats))


class _Position(Slotted):
    __slots__ = ("source", "offset")  # noqa: RUF023 - the fields, in order

    source: Hashable
    offset: int

    def __init__(self, source: Hashable, offset: int) -> None:
        self.source = source
        self.offset = offset


class Detector:
    """The pure detection pipeline. See the module docstring.

    Args:
        rules: the rules to evaluate.
        host_name: ``host.name`` for records without ``node=``.
        options: tuning; see :class:`DetectorOptions`.
        lookup: an optional live ``/proc`` lookup for unknown parents.
        native: the native library for the bulk of the log
            (:mod:`kexecwatch.core.scan.nativescan`), ``None`` for the Python scanner alone;
            by default the process-wide choice the shell installed
            (:func:`~kexecwatch.core.scan.nativescan.set_default_native`). Unused without
            the fast path.
        host_id: ``host.id`` for records without ``node=`` (the machine id live,
            ``--host-id`` offline); ``None``: documents have no ``host.id``.
    """

    def __init__(
        self,
        rules: Sequence[DetectionRule],
        *,
        host_name: str,
        options: DetectorOptions | None = None,
        lookup: ProcLookup | None = None,
        native: NativeLib | Literal["default"] | None = "default",
        host_id: str | None = None,
    ) -> None:
        self.options = options or DetectorOptions()
        self.host_name = host_name
        self.host_id = host_id
        self.stats = Stats()
        self._lines = LineBuffer(max_line=self.options.max_line)
        self._assembler = Assembler(
            window_ms=self.options.window_ms, max_inflight=self.options.max_inflight
        )
        if native == "default":
            native = default_native()
        options = self.options
        self._limiter = AlertLimiter()
        self._starts: dict[tuple[str | None, Any], _Position] = {}
        self._telemetry = TelemetryTracker()
        # None while no sequence or sample rule is loaded (most rule sets): its module
        # then never loads.
        self._sequences: SequenceEngine | None = None
        parts: dict[str, Any] = {
            "assembler": self._assembler,
            "stats": self.stats,
            "starts": self._starts,
            "host_name": host_name,
            "since_ms": options.since_ms,
            "until_ms": options.until_ms,
            "fault_on": options.fault_on,
        }
        self._rule_needs: list[Prefilter] = []  # replace_rules sets them
        self._scanner: PythonScanner
        if native is not None and options.fast_path:
            session = native.new_session(
                window_ms=options.window_ms,
                max_entries=options.max_processes,
                max_args_bytes=DEFAULT_MAX_ARGS_BYTES,
                max_lateness_ms=options.window_ms,
                since_ms=options.since_ms,
                until_ms=options.until_ms,
                live=lookup is not None,
                single_types=single_types(),
                fault_on=options.fault_on,
                max_inflight=options.max_inflight,
            )
            self.table: ProcessTableLike = NativeProcessTable(
                session, lookup=lookup, decode=argv_of_execve_bodies
            )
            self._scanner = NativeScanner(
                _Host(self),
                table=self.table,
                session=session,
                report=self._native_failed,
                **parts,
            )
            #: Which scanner this detector runs: ``native <version>`` or ``python``.
            self.scanner_name = f"native {native.version}"
            if (
                options.event_lines
                and options.emit_events
                and options.explain is None
                and lookup is None
                and options.since_ms is None
                and options.until_ms is None
            ):
                # Lines only while no process group is known: none is in the lines.
                self._scanner.render_events(
                    self._event_pieces,
                    lambda: not len(self.table.groups),
                    *host_parts(host_name, host_id),
                    lambda: [i for i in self._rule_needs if i.path_items is not None],
                )
        else:
            self.table = ProcessTable(
                max_entries=options.max_processes,
                lookup=lookup,
                decode=argv_of_execve_bodies,
                max_lateness_ms=options.window_ms,
            )
            self._scanner = PythonScanner(_Host(self), table=self.table, **parts)
            self.scanner_name = "python"
        self.replace_rules(rules)

    def replace_rules(self, rules: Sequence[DetectionRule]) -> None:
        """Run ``rules`` from now on (a reload); what the detector learned is kept."""
        self.rules = list(rules)
        # Each document is tried only by the rules that could match it (same alerts).
        self._index = RuleIndex(self.rules)
        # Sequence and sample rules keep their partial sequences across a reload when
        # their query is unchanged.
        kept = self._sequences.to_state() if self._sequences is not None else None
        self._sequences = None
        events_as = self.options.events_as
        needs = {id(rule): _prefilters_of(rule, events_as) for rule in self.rules}
        if any(isinstance(getattr(r, "query", None), CompiledSequence) for r in self.rules):
            self._sequences = self._sequence_engine(self.rules, lambda r: bool(needs[id(r)]))
            if kept is not None:
                self._sequences.restore(kept)
        self._sync_sequences_due()
        self._telemetry_rules = [
            r for r in self.rules if getattr(r, "applies_to", "process") == "telemetry"
        ]
        # What the rules (or --events) need, among the exec and kexec events in
        # [since, until); and what other consumers need, among all syscall events.
        self._rule_needs = [i for rule in self.rules for i in needs[id(rule)]]
        self._needs_by_values: dict[tuple[str, bool, bytes | None, bytes | None, str], _Need] = {}
        self._scanner.set_rule_prefilters(
            [EVERYTHING] if self.options.emit_events else self._rule_needs
        )
        if self._telemetry_rules and _TELEMETRY_PREFILTER not in self._scanner.prefilters:
            # Configuration changes come inside auditctl's own syscall events.
            self.add_prefilter(_TELEMETRY_PREFILTER)
        if _GROUP_PREFILTER not in self._scanner.prefilters:
            self.add_prefilter(_GROUP_PREFILTER)

    def add_prefilter(self, prefilter: Prefilter) -> None:
        """Have :meth:`_on_event` receive, in full, the fast-path events ``prefilter`` accepts.

        For detections beyond the rules (kexec syscalls, telemetry records): state
        the syscalls, names or record types needed; events not written as one
        whole syscall run always reach :meth:`_on_event` anyway.
        """
        self._scanner.add_prefilter(prefilter)

    # -- feeding -------------------------------------------------------------

    def switch_source(self, source: Hashable, offset: int = 0) -> list[Output]:
        """Continue with another source (a rotated file's successor).

        Events in flight are kept, so an event whose records straddle a
        rotation is still assembled whole. A partial line left at the end of
        the previous source is reported, since nothing can complete it.
        """
        issue = _unended(self._lines, "line without newline at end of source")
        self._lines.switch(source, offset)
        if issue is None:
            return []
        self.stats.parse_issues += 1
        return [issue]

    @property
    def source(self) -> Hashable:
        """The source being read now, as given to :meth:`switch_source`."""
        return self._lines.source

    def describe(self, output: Output) -> str:
        """One terminal-safe line for ``output``, the one wording every command shows:
        an alert's or process event's text line, a diagnostic's ``where: what``."""
        if isinstance(output, Alert | ProcessEvent):
            return to_text_line(output.to_document())
        if isinstance(output, EventsLost):
            return output.describe(self.source)
        if isinstance(output, Verdict):
            return escape_text(output.reason)
        return output.describe()

    @property
    def last_record_ms(self) -> int:
        """The latest record time read, in epoch milliseconds (0 before the first dated
        record): of the events handled and of those still in flight.

        For a shell's lag figure and idle clock; the detector itself ages events by each
        node's clock, never by this (README, "Time policy").
        """
        return max(self.stats.last_time_ms, self._assembler.latest_inflight_ms())

    def locate(self, line_no: int) -> SourceLocation:
        """Name line ``line_no`` of the source being read now: ``str(source):line``.

        The one way to say where something happened, for diagnostics about a
        line or an event (pass the line of its first record). Lines count from
        where reading of the source started, from 1.
        """
        return SourceLocation(str(self._lines.source), line_no or None)

    def feed(self, data: bytes, *, framed: bool = False) -> list[Output]:
        """Feed any chunk of the log; return the outputs it completes.

        ``framed``: ``data`` is a newline that is not part of the log, then the chunk
        (:meth:`~kexecwatch.core.audit.linebuffer.LineBuffer.feed_region`: a chunk of
        whole lines is then scanned without a copy).
        """
        out: list[Output] = []
        if not self.options.fast_path:
            for line in self._lines.feed(data[1:] if framed else data):
                self._line(
                    line.data, line.line_no, line.source, line.offset, out, overlong=line.overlong
                )
            return out
        overlong, region = self._lines.feed_region(data, framed=framed)
        if overlong is not None:
            self._line(b"", overlong.line_no, overlong.source, overlong.offset, out, overlong=True)
        if region is not None:
            self._lines.numbered(region, self._scanner.scan(region, out))
        return out

    def _line(
        self,
        raw: bytes,
        line_no: int,
        source: Hashable,
        offset: int,
        out: list[Output],
        *,
        overlong: bool = False,
    ) -> None:
        stats = self.stats
        stats.lines += 1
        if overlong:
            stats.parse_issues += 1
            out.append(
                ParseIssue(
                    line_no,
                    f"line longer than {self.options.max_line} bytes skipped",
                    source=source,
                )
            )
            return
        if not raw or raw[0] == 0x23 or raw.isspace():  # blank or '#' comment
            return
        record = parse_record(raw, line_no)
        if isinstance(record, ParseIssue):
            stats.parse_issues += 1
            out.append(replace(record, source=source))
            return
        stats.records += 1
        key = (record.node, record.id)
        opened = key not in self._starts
        if opened:
            self._starts[key] = _Position(source, offset)
        try:
            produced = self._assembler.push(record)
        except Exception as exc:  # one bad record must not cost the others
            self._failed(record.id, line_no, exc, out)
            produced = []
        self._handle(produced, out)
        if opened and not self._assembler.holds(key):
            # A record absorbed without opening an event (a late EOE) or one that
            # completed at once leaves nothing in flight to resume from.
            self._starts.pop(key, None)

    def expire(self, now_ms: int) -> list[Output]:
        """Complete events older than the window against ``now_ms`` (live idle, in
        record time: each node's present plus the idle time)."""
        out: list[Output] = []
        self._handle(self._assembler.expire(now_ms), out)
        if self._sequences:
            self._raise_sequences(self._sequences.advance(now_ms), out)
        return out

    def expire_idle(self, idle_ms: int) -> list[Output]:
        """Complete events older than the window, the log having been idle for
        ``idle_ms`` of the live shell's clock (see the README's "Time policy")."""
        out: list[Output] = []
        self._handle(self._assembler.expire_idle(idle_ms), out)
        if self._sequences and self.stats.last_time_ms:
            now = self.stats.last_time_ms + idle_ms
            self._raise_sequences(self._sequences.advance(now), out)
        return out

    def flush(self) -> list[Output]:
        """End of stream: complete everything and report what was held back."""
        out: list[Output] = []
        issue = _unended(self._lines, "line without newline at end of input")
        if issue is not None:
            self.stats.parse_issues += 1
            out.append(issue)
            line_no = self._lines.line_no
            self._lines.switch(self._lines.source, self._lines.offset)
            self._lines.line_no = line_no + 1  # the partial line counts as read
        self._handle(self._assembler.flush(), out)
        if self._sequences:
            self._raise_sequences(self._sequences.flush(), out)
        out += self.report_suppressed()
        return out

    def report_suppressed(self) -> list[Output]:
        """Report (and count) the alerts held back so far in windows still open.

        A window's surplus is otherwise reported when the rule's next alert opens a later
        window, which may never come; the daemon calls this with each status line so that a
        filled window is never silent. Each call reports what was held back since the last.
        """
        out: list[Output] = []
        for suppressed in self._limiter.flush():
            self.stats.suppressed += suppressed.count
            out.append(suppressed)
        return out

    def report_lost_log(self, facts: tuple[tuple[str, str], ...]) -> list[Output]:
        """A log file was lost before it was read to its end (rotated away while the
        shell was not reading): a telemetry event for the telemetry rules, like the
        kernel's own gaps, dated at the last record read (see
        :meth:`~kexecwatch.core.detect.telemetry.TelemetryTracker.from_lost_log`)."""
        out: list[Output] = []
        if self._telemetry_rules:
            lost = TelemetryTracker.from_lost_log(self.host_name, self.last_record_ms, facts)
            self._on_telemetry(lost, out)
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
                if item.id.time_ms < MAX_TIME_MS:  # no date: reported, never shown
                    stats.last_time_ms = max(stats.last_time_ms, item.id.time_ms)
                try:
                    self._on_event(item, out)
                except Exception as exc:  # one bad event must not cost the others
                    self._failed(item.id, item.records[0].line_no if item.records else 0, exc, out)
                if stats.last_time_ms >= self._scanner.sequences_due:
                    self._sequence_clock(stats.last_time_ms, out)
            elif isinstance(item, EventsLost):
                stats.lost_events += item.count
                out.append(item)
                if self._telemetry_rules:
                    self._on_telemetry(TelemetryTracker.from_lost(item, self.host_name), out)
            elif isinstance(item, TimeJump):
                stats.time_jumps += 1
                out.append(item if item.source is not None else replace(item, source=self.source))
            else:
                stats.parse_issues += 1
                out.append(item if item.source is not None else replace(item, source=self.source))

    def _failed(self, event_id: EventId, line_no: int, exc: Exception, out: list[Output]) -> None:
        """Count and report an event whose handling raised; the stream goes on."""
        self.stats.event_errors += 1
        reason = f"event {event_id} could not be handled (skipped): {type(exc).__name__}: {exc}"
        out.append(EventError(line_no, reason, source=self.source))

    def _native_failed(self, line_no: int, reason: str, out: list[Output]) -> None:
        """The native scanner failed (and is off now): one diagnostic, counted as an
        event error."""
        self.stats.event_errors += 1
        out.append(EventError(line_no, reason, source=self.source))

    def _on_event(self, event: AuditEvent, out: list[Output]) -> None:
        """The hook point: every event that may matter, records and all.

        Events of the fast path reach it only when a prefilter accepts them (see
        :meth:`add_prefilter`); on the reference path every event does, and those
        nobody needs are skimmed here.
        """
        fault = self.options.fault_on
        if fault is not None and any(fault in r.body for r in event.records):
            raise InjectedFault(f"injected fault in event {event.id}")
        if self._telemetry_rules and TelemetryTracker.is_telemetry(event):
            self._on_other_event(event, out)
        records = event.records
        syscall_record = records[0] if records and records[0].type == "SYSCALL" else None
        if syscall_record is None:  # not first in a run: look further
            syscall_record = next((r for r in records if r.type == "SYSCALL"), None)
            if syscall_record is None:
                return
        if self.options.fast_path and self._scanner.skim(event, syscall_record):
            return
        process = self._process_event(event)
        if process is None:
            return
        for problem in process.problems:
            if is_bound_problem(problem):
                self.stats.parse_issues += 1
                # Named where the dropped fields are: the EXECVE record, not the event's start.
                line_no = next(
                    (r.line_no for r in event.records if r.type == "EXECVE"), process.line_no
                )
                out.append(ParseIssue(line_no, problem, source=self.source))
        self._on_process(process, out, lambda: frozenset(r.type for r in event.records))

    def _on_run(self, run: bytes, event_id: EventId, line_no: int, out: list[Output]) -> bool:
        """The event hook for a whole fast-path run (see :meth:`_on_event`), where the
        run's bytes give the process event straight
        (:func:`~kexecwatch.core.process.events.process_event_of_run`): with ``--events``,
        a relevant plain exec. ``False``, with nothing done, for any other: the caller
        then hands the run's event to :meth:`_on_event`."""
        options = self.options
        if not options.emit_events and not (options.fast_path and self._scanner.needed_by_rules):
            # Without --events, _on_event's skim decides first, unless a rule prefilter
            # is known to need the run (skim then says so at once): that run is read
            # straight, without records, to the same process event.
            return False
        process = process_event_of_run(
            run,
            event_id,
            line_no,
            self.host_name,
            host_id=self.host_id,
            events_as=options.events_as,
        )
        if process is None:
            return False
        if not self._scanner.evaluates(process.syscall, process.id.time_ms):
            return False  # _on_event's skim teaches the table from it
        self._on_process(process, out, lambda: record_types(run))
        return True

    def _event_pieces(self, key: bytes) -> list[bytes] | None:
        """The native library's question for ``--events`` lines (``call \0 success \0
        comm \0 exe \0`` and the ``SYSCALL`` line from ``auid=`` on): the pieces of
        :func:`~kexecwatch.core.process.eventlines.event_pieces`, or ``None`` when a rule
        or another consumer may need such an exec in full (it then goes through
        :meth:`_on_process`, which shows it to them). Keys about the process table's
        texts (a parent's credentials, an ancestor's name): :func:`table_answer`."""
        if key.startswith(b"\0"):
            return table_answer(key)
        parts = key.split(b"\0", 4)
        if len(parts) != 5:
            return None
        call, success_raw, comm_raw, exe_raw, tail = parts
        syscall, success, comm, exe, evaluated, _, for_others = self._scanner.verdict(
            (call, success_raw, comm_raw, exe_raw)
        )
        if not evaluated or for_others:
            return None
        host = self.host_name
        for i in self._rule_needs:
            if i.accepts_static(syscall, success, comm, exe, host) and not _inodes_only(i):
                return None  # a rule may need it: shown to the rules in Python
        options = self.options
        return event_pieces(call, success_raw, tail, host, self.host_id, options.events_as)

    def _on_process(
        self, process: ProcessEvent, out: list[Output], kinds: Callable[[], frozenset[str]]
    ) -> None:
        """The process event of one event: completed from the table, shown to the rules
        (``kinds``: the event's record types, read when a prefilter asks)."""
        # What the table knows, put into the process event at once (one copy, not one
        # per part: a copy of a process event is a few microseconds).
        known_parts, ancestors = self._lineage(process)
        if not process.is_process_start:
            # What the process ran before: its instance (entity id), and for a kexec call
            # or another process syscall, which carry no argv, the caller's argv from its exec.
            known = self.table.process_of(process)
            known_parts["known_self"] = known
            if process.syscall in KEXEC_SYSCALLS or process.syscall in PROCESS_SYSCALLS:
                known_parts["self_exec"] = known
                if process.success and process.syscall in CRED_SYSCALLS and known is not None:
                    known_parts["changed"] = credential_change(known.extra, process.extra)
        if known_parts:
            process = replace(process, **known_parts)
        self.table.observe(process)
        # After observing: a setsid/setpgid event shows the session and group it set.
        process = self._with_leaders(process, ancestors)
        if not self._scanner.evaluates(process.syscall, process.id.time_ms):
            return
        options = self.options
        self.stats.process_events += 1
        explain = options.explain is not None and options.explain(process)
        if options.emit_events:
            out.append(process)
            if not self._rules_need(process, kinds):
                if explain:  # no rule can match: each says why not
                    out.append(self._verdict(process, process.to_document(), [], []))
                return  # what the fast path would have skipped, rules unread
        if not self.rules:
            if explain:
                out.append(Verdict(process, (), (), ()))
            return
        self._match(process, explain, out)

    def _lineage(self, process: ProcessEvent) -> tuple[dict[str, Any], list[Parent]]:
        """The parent and entry leader of ``process`` as the table knows them (as
        :func:`dataclasses.replace` arguments), and its known ancestors."""
        known_parts: dict[str, Any] = {}
        parent = self.table.parent_of(process)
        ancestors: list[Parent] = []
        if parent is not None:
            known_parts["parent"] = parent
            ancestors = self.table.ancestry(process.ppid, process.id.time_ms, MAX_DEPTH)
            known_parts["entry_leader"] = entry_leader(process.ppid, process.extra, ancestors)
        elif process.ppid in (0, 1):
            known_parts["entry_leader"] = entry_leader(process.ppid, process.extra, ())
        return known_parts, ancestors

    def _with_leaders(self, process: ProcessEvent, ancestors: list[Parent]) -> ProcessEvent:
        """``process`` with its session and group leaders, where known."""
        table = self.table
        session, group = table.groups.leaders(
            process.pid, process.ppid, process.id.time_ms, ancestors, table.parent_at
        )
        if session is None and group is None:
            return process
        return replace(process, session_leader=session, group_leader=group)

    def running(self, live: LiveProcess, now_ms: int) -> list[Output]:
        """Elastic Defend's ``already_running`` event of a process the live shell found
        running at start-up (:mod:`kexecwatch.core.process.running`), shown to the rules;
        nothing unless the event vocabulary is ``defend``. The table must know ``live``
        already (:meth:`~kexecwatch.core.process.table.ProcessTable.add_live`)."""
        out: list[Output] = []
        if self.options.events_as != "defend":
            return out
        process = running_event(live, now_ms, self.host_name, self.host_id)
        known_parts, ancestors = self._lineage(process)
        known_parts["known_self"] = self.table.process_of(process)
        process = self._with_leaders(replace(process, **known_parts), ancestors)
        self.stats.process_events += 1
        if self.options.emit_events:
            out.append(process)
        if self.rules:
            self._match(process, False, out)
        return out

    def _match(self, process: ProcessEvent, explain: bool, out: list[Output]) -> None:
        """Show ``process`` to the rules and the sequences."""
        document = process.to_document()
        alerted: list[DetectionRule] = []
        held: list[DetectionRule] = []
        for rule in self._index.candidates(document):
            if rule.matches(document):
                admitted = self._raise(Alert(rule, process, rule.reason(document)), out)
                if explain:
                    (alerted if admitted else held).append(rule)
        if explain:
            out.append(self._verdict(process, document, alerted, held))
        if self._sequences:
            now = self.stats.last_time_ms
            matches = self._sequences.observe(document, process.id.time_ms, now_ms=now)
            self._raise_sequences(matches, out)

    def _verdict(
        self,
        process: ProcessEvent,
        document: dict[str, Any],
        alerted: list[DetectionRule],
        held: list[DetectionRule],
    ) -> Verdict:
        """The rules that matched ``process``, and why each other rule with a query did not."""
        matched = alerted + held
        silent: list[tuple[str, str]] = []
        for rule in self.rules:
            explain = getattr(getattr(rule, "query", None), "explain", None)
            if callable(explain) and not any(rule is m for m in matched):
                silent.append((rule.name, explain(document) or "no match"))
        names = tuple(r.name for r in alerted), tuple(r.name for r in held)
        return Verdict(process, *names, tuple(silent))

    def _raise_sequences(self, matches: list[SequenceMatch], out: list[Output]) -> None:
        """Alert for completed sequences and samples (see :mod:`.rule.sequence_state`)."""
        for match in matches:
            self._raise(Alert(match.rule, match.events, match.reason), out)
        self.stats.sequences_dropped = self._sequences.dropped if self._sequences else 0
        self._sync_sequences_due()

    def _sync_sequences_due(self) -> None:
        """Tell the scanner from when on an event's time may make a sequence due
        (``None``: no sequence rule is loaded, events need no test)."""
        if self._sequences is None:
            self._scanner.set_sequences_due(None)
            return
        due = self._sequences.due_ms
        self._scanner.set_sequences_due(NEVER_DUE if due is None else due)

    def _sequence_clock(self, time_ms: int, out: list[Output]) -> None:
        """An event of ``time_ms`` was read, whatever rules were shown it: sequences
        due by then are matched now, not at the next event of their rule's (the same
        place whether the rule index and prefilters kept the event from them or not)."""
        if self._sequences:
            self._raise_sequences(self._sequences.tick(time_ms), out)

    def _sequence_engine(
        self, rules: Sequence[DetectionRule], needs: Callable[[Any], bool] | None = None
    ) -> SequenceEngine:
        from kexecwatch.core.detect.rule.sequence_state import SequenceEngine

        return SequenceEngine(rules, reorder_ms=self.options.window_ms, needs_events=needs)

    def _process_event(self, event: AuditEvent) -> ProcessEvent | None:
        return process_event_from(
            event, self.host_name, host_id=self.host_id, events_as=self.options.events_as
        )

    def _rules_need(self, process: ProcessEvent, kinds: Callable[[], frozenset[str]]) -> bool:
        """Whether the rules' prefilters accept ``process`` (``kinds``: its event's record
        types): with ``--events`` every event is built, but one no rule needs is not shown
        to the rules."""
        syscall = process.syscall or ""
        key = (syscall, process.success, process.comm, process.exe, process.host_name)
        static = self._needs_by_values.get(key)
        if static is None:
            # What the SYSCALL values alone decide (a static prefilter says all; the others
            # still look at record types or learned inodes), as the fast path's verdicts.
            passing = [i for i in self._rule_needs if i.accepts_static(*key)]
            static = (
                any(i.is_static for i in passing),
                tuple(passing),
                any(i.record_types is not None for i in passing),
            )
            if len(self._needs_by_values) >= _MAX_NEEDS:
                self._needs_by_values.clear()
            self._needs_by_values[key] = static
        decided, others, by_kinds = static
        if decided or not others:
            return decided
        # None: no prefilter asks for record types (accepts then does not look).
        types = kinds() if by_kinds else None

        def inodes() -> frozenset[int]:
            return frozenset(p.inode for p in process.paths if p.inode is not None)

        def facts() -> Facts:
            args = process.args
            if args is None and process.self_exec is not None:
                args = process.self_exec.args
            parent = process.parent
            return Facts(
                known_of(process.comm, process.exe, args),
                lambda: (
                    None
                    if parent is None
                    else known_of(parent.name, parent.executable, parent.args)
                ),
            )

        return any(
            i.accepts(*key[:4], host=key[4], record_types=types, inodes=inodes, facts=facts)
            for i in others
        )

    def _raise(self, alert: Alert, out: list[Output]) -> bool:
        """Alert unless the rule's limit holds it back; whether it was admitted."""
        admitted, closed = self._limiter.admit(alert)
        for suppressed in closed:
            self.stats.suppressed += suppressed.count
            out.append(suppressed)
        if admitted:
            self.stats.alerts += 1
            out.append(alert)
        return admitted

    def _on_other_event(self, event: AuditEvent, out: list[Output]) -> None:
        """Events about the audit trail itself (CONFIG_CHANGE, DAEMON_*): telemetry rules."""
        process = None
        if any(r.type == "SYSCALL" for r in event.records):
            # The auditctl (or other caller) that changed the configuration.
            process = self._process_event(event)
            if process is not None:
                process = process.with_parent(self.table.parent_of(process))
        for item in self._telemetry.from_event(event, self.host_name, process):
            self._on_telemetry(item, out)

    def _on_telemetry(self, item: TelemetryEvent, out: list[Output]) -> None:
        options = self.options
        if not in_window(item.id.time_ms, options.since_ms, options.until_ms):
            return
        document = item.to_document()
        for rule in self._telemetry_rules:
            if rule.matches(document):
                self._raise(Alert(rule, item, rule.reason(document)), out)
        if self._sequences:
            now = self.stats.last_time_ms
            matches = self._sequences.observe(document, item.id.time_ms, now_ms=now, telemetry=True)
            self._raise_sequences(matches, out)

    # -- state ---------------------------------------------------------------------

    def to_state(self, *, table_text: bool = False) -> dict[str, Any]:
        """A JSON-ready snapshot of everything but the in-flight records.

        In-flight events are rebuilt by re-reading from
        :attr:`resume_position`; already completed events are recognised and
        skipped by the assembler's ``done`` set.

        Args:
            table_text: the process table as its written text (a ``JsonText`` for
                ``jsontext.ascii_compact_with``; the daemon's checkpoint): the same
                bytes, at a fraction of the cost with the native scanner.
        """
        return {
            "version": 1,
            "assembler": self._assembler.to_state(),
            "processes": self.table.state_text() if table_text else self.table.to_state(),
            "groups": self.table.groups.to_state(),
            "limiter": self._limiter.to_state(),
            "sequences": (self._sequences or self._sequence_engine(())).to_state(),
            "stats": self.stats.as_dict(),
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Load a snapshot made by :meth:`to_state`. Raises ``ValueError`` if foreign."""
        if not isinstance(state, dict) or state.get("version") != 1:
            raise ValueError("not a kexecwatch detector state (version 1)")
        try:
            self._assembler.restore(state["assembler"])
            self.table.restore(state["processes"])
            if "groups" in state:  # absent from snapshots of older versions
                self.table.groups.restore(state["groups"])
            self._limiter.restore(state["limiter"])
            if "sequences" in state:  # absent from snapshots of older versions
                # Checked even when no sequence rule is loaded (an empty engine).
                (self._sequences or self._sequence_engine(())).restore(state["sequences"])
                self._sync_sequences_due()
            for name, value in state.get("stats", {}).items():
                if name in _STAT_NAMES:
                    setattr(self.stats, name, int(value))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"corrupt detector state: {exc}") from exc


#: Whether static prefilters alone accept, the prefilters whose static part passes, and
#: whether one of these looks at record types.
_Need = tuple[bool, tuple[Prefilter, ...], bool]
_MAX_NEEDS = 4096


def _inodes_only(prefilter: Prefilter) -> bool:
    """Whether the only test of ``prefilter`` beyond its static ones is a ``PATH`` inode
    (the native library hands back every run that holds one of its inodes)."""
    return (
        not prefilter.is_static
        and prefilter.path_items is not None
        and prefilter.record_types is None
        and prefilter.args is None
    )


class InjectedFault(RuntimeError):
    """The failure :attr:`DetectorOptions.fault_on` injects (tests only)."""


@dataclass(frozen=True, slots=True)
class EventError(ParseIssue):
    """An event whose handling raised: skipped, counted (``Stats.event_errors``) and
    reported with its first record's ``source:line``; the rest of the input goes on.

    A :class:`ParseIssue`, so every consumer of diagnostics shows it; its line says
    ``error`` rather than ``parse issue``.
    """

    def describe(self) -> str:
        """One terminal-safe line: where and what failed."""
        where = where_text(self.source, self.line_no)
        return f"{where}: error: {escape_text(clip(self.reason, VALUE_BYTES))}"


def _unended(lines: LineBuffer, reason: str) -> ParseIssue | None:
    """The partial line ``lines`` holds back, as a parse issue (``None`` if there is none)."""
    left = lines.pending
    if not left:
        return None
    return ParseIssue(lines.line_no + 1, reason, quotable(left[:120]), len(left), lines.source)


class _Host:
    """The detector's side of the scanner interface (:class:`ScanHost`)."""

    __slots__ = ("_detector", "clock", "failed", "handle", "line")

    def __init__(self, detector: Detector) -> None:
        self._detector = detector
        self.line = detector._line
        self.handle = detector._handle
        self.failed = detector._failed
        self.clock = detector._sequence_clock

    def event(self, event: AuditEvent, out: list[Output]) -> None:
        detector = self._detector
        try:
            detector._on_event(event, out)
        except Exception as exc:  # one bad event must not cost the others
            line_no = event.records[0].line_no if event.records else 0
            detector._failed(event.id, line_no, exc, out)

    def run_event(self, run: bytes, event_id: EventId, line_no: int, out: list[Output]) -> bool:
        detector = self._detector
        try:
            return detector._on_run(run, event_id, line_no, out)
        except Exception as exc:  # one bad event must not cost the others
            detector._failed(event_id, line_no, exc, out)
            return True
