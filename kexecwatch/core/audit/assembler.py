"""Event assembler: groups records that share (node, audit id) into events.

Theory of operation: records arrive in log order, which is not always event
order. Each record is pushed; an event completes when its last record arrives
(``EOE``, or ``PROCTITLE``, which the kernel writes last), at once for record
types that are events on their own, or when it has waited longer than the
*window*. A cap on the events in flight evicts the oldest one, flagged
incomplete, so memory stays bounded whatever the input. A ``done`` set
remembers recently completed events, so a late ``EOE`` is absorbed and a late
record of another type is reported, never silently merged into a new event.

Time (the README's "Time policy"): how long an event has waited is measured on
each node's :class:`_Clock`, an *elapsed* count that only plausible progress of
record time moves: the time of the record that opens an event, when it lies
within one window of the node's present. A record dated further ahead or behind
is held as a possible discontinuity. When the next event's record comes back to
the present, it was one misdated record: it is reported and never becomes the
present. When the next one agrees with it, the clock stepped (or the log was
quiet): it becomes the present, but the step itself adds no elapsed time. So an
event's age counts from its arrival, never from its own timestamp: whatever one
record says, and across a clock step either way, an event in flight is not
expired before its own records arrive. A time beyond year 9999 is reported and
never used.

Serials are the kernel's event counter. Gaps in them mean the kernel or
auditd lost events; :class:`_GapTracker` reports them as :class:`EventsLost`
values once out-of-order arrivals can no longer fill them. Serials restart at
every boot (a ``kexec -e`` is a boot too), so a large step back starts a new
sequence instead of being read as ``2**32`` lost events.

Rule 1: time is the records' time, or the idle time passed in; this module
never reads a clock, so a replay behaves like live tailing.
Rule 2: every output is a value; nothing here raises on input.
"""

from __future__ import annotations

import heapq
from array import array
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from functools import partial
from itertools import islice, repeat
from operator import itemgetter
from typing import Any

from kexecwatch.core.audit.msgtypes import (
    LEADS_SYSCALL_EVENT,
    ends_event,
    is_daemon_record,
    is_single_record,
)
from kexecwatch.core.audit.nativeapi import AheadSource, DoneStore, QuietState, ScanResult
from kexecwatch.core.audit.record import (
    MAX_TIME_MS,
    AuditRecord,
    EventId,
    ParseIssue,
    TimeJump,
    where_text,
)
from kexecwatch.core.text.textsafe import quote_input

__all__ = [
    "DEFAULT_MAX_INFLIGHT",
    "DEFAULT_WINDOW_MS",
    "EXPIRY_BURST",
    "MAX_NODES",
    "Assembler",
    "AssemblerOutput",
    "AuditEvent",
    "EventsLost",
]

#: How long an incomplete event may wait for more records (elapsed record time).
DEFAULT_WINDOW_MS = 5_000
#: How many incomplete events may be in flight before the oldest is evicted.
DEFAULT_MAX_INFLIGHT = 4_096
#: So many events expiring at once are reported: the sign of a time problem.
EXPIRY_BURST = 8

_MAX_AHEAD = 1_024
_RESET_BACKSTEP = 1_000
_RESET_FUTURE_MS = 2_000
_DONE_LIMIT = 65_536
#: How many ``node=`` values keep a clock and a serial tracker; the node seen
#: first is forgotten (its open gaps reported) to make room for a new one.
MAX_NODES = 65_536
_RESTORED_LIMIT = 4_096
#: Jumps shorter than this are not worth a diagnostic, whatever the window.
_REPORT_MIN_MS = 1_000

EventKey = tuple[str | None, EventId]


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """The records of one event, in the order they were read.

    Attributes:
        node: the node name shared by the records, or ``None``.
        id: the shared audit id.
        records: the records, in log order.
        ended_by: ``eoe``, ``proctitle`` or ``single`` for a complete event;
            ``expired``, ``evicted`` or ``flushed`` when it was cut short.
    """

    node: str | None
    id: EventId
    records: tuple[AuditRecord, ...]
    ended_by: str

    @property
    def complete(self) -> bool:
        """Whether the event's own last record was seen."""
        return self.ended_by in ("eoe", "proctitle", "single")


@dataclass(frozen=True, slots=True)
class EventsLost:
    """A gap in the kernel's serials: events the log does not hold.

    Attributes:
        node: the node the gap was seen on.
        first_serial: the first missing serial.
        last_serial: the last missing serial.
        before: the id of the first event after the gap.
    """

    node: str | None
    first_serial: int
    last_serial: int
    before: EventId

    @property
    def count(self) -> int:
        """How many events are missing."""
        return self.last_serial - self.first_serial + 1

    def describe(self, source: Hashable) -> str:
        """One terminal-safe line: the source being read, how many events are missing
        and which: ``audit.log: 3 event(s) lost on node 'web-1': serials 7-9 missing
        before 1700000000.000:10``."""
        where = "input" if source is None else where_text(source, 0)
        name = self.node.encode("utf-8", "surrogateescape") if self.node else b""
        node = f" on node {quote_input(name)}" if name else ""
        return (
            f"{where}: {self.count} event(s) lost{node}: serials {self.first_serial}-"
            f"{self.last_serial} missing before {self.before}"
        )


AssemblerOutput = AuditEvent | EventsLost | ParseIssue | TimeJump


@dataclass(slots=True)
class _Clock:
    """One node's time: the record-time present and the elapsed time (see module doc).

    ``pending`` is a time one window or more away from ``present``, seen on the
    record at ``pending_line`` opening event ``pending_key``: a discontinuity or one
    misdated record, which the next other event's time tells apart. ``ages`` holds
    the node's in-flight events by the elapsed time they opened at.
    """

    present: int | None = None
    elapsed: int = 0
    pending: int | None = None
    pending_key: EventKey | None = None
    pending_line: int = 0
    ages: list[tuple[int, int, EventKey]] = field(default_factory=list)

    def gap_elapsed(self) -> int:
        """The elapsed time for gap reports: an unresolved jump ahead counts too.

        Declaring lost events a little early costs a premature report, never an
        event, so evidence not yet confirmed is taken here.
        """
        pending = self.pending
        present = self.present
        if pending is None or present is None or pending <= present:
            return self.elapsed
        return self.elapsed + pending - present


#: The ops of QuietState.ahead_ops (a dict's assignment, deletion and clearing).
AHEAD_SET = 0
AHEAD_DELETE = 1
AHEAD_CLEAR = 2

#: A serial beyond any: the done set must be searched for the real ceiling.
_UNKNOWN_CEILING = 2**64
#: Elapsed times for the store's drops: every row is stale before the first, none
#: before the second.
_ALL_STALE = 2**63 - 1
_NONE_STALE = -(2**63)


@dataclass(slots=True)
class _GapTracker:
    expected: int | None = None
    last_time_ms: int = 0
    # serial -> (its event's id, the elapsed time it was seen at); read as ``ahead``,
    # which applies the changes a native session holds first.
    known_ahead: dict[int, tuple[EventId, int]] = field(default_factory=dict)
    # Set when the sequence (re)starts: done events of the node may then have serials
    # at or above ``expected`` without being ahead (see Assembler.quiet_state).
    ceiling: int = -1
    # Counts the changes of ``ahead``, so that quiet_state() can reuse its rows.
    changes: int = 0
    # While a native session holds ``ahead`` too: the changes made here since, as
    # flat (op, serial, sec, ms, seen) ops (AHEAD_SET, AHEAD_DELETE, AHEAD_CLEAR) for
    # QuietState.ahead_ops; None when no session follows (or too many to be worth it).
    journal: list[int] | None = None
    # While a native session holds changes to the serials ahead that ``known_ahead``
    # lacks (ScanResult.ahead_held): how to read them, once they are needed.
    pull: Callable[[], tuple[list[int], array[int]]] | None = None

    @property
    def ahead(self) -> dict[int, tuple[EventId, int]]:
        """serial -> (its event's id, the elapsed time it was seen at), for the serials
        seen ahead of ``expected``."""
        if self.pull is not None:
            pull, self.pull = self.pull, None
            self.apply(*pull())
        return self.known_ahead

    def apply(self, gone: list[int], added: array[int]) -> None:
        """Apply changes a native scan made: delete ``gone``, then append ``added``
        (``(serial, sec, ms, seen)`` flat, in insertion order), as the dict went."""
        if gone or added:
            ahead = self.known_ahead
            for serial in gone:
                del ahead[serial]
            # After a gap nearly every event taken is ahead: C-level loops, no
            # tuple per row on the way (the same assignments in the same order).
            serials = added[0::4]
            parts = zip(added[1::4], added[2::4], serials, strict=True)
            ids = map(_new_id, repeat(EventId), parts)
            ahead.update(zip(serials, zip(ids, added[3::4], strict=True), strict=True))
            self.changes += 1

    def observe(
        self, node: str | None, event_id: EventId, clock: _Clock, window_ms: int
    ) -> list[EventsLost]:
        serial = event_id.serial
        time_ms = event_id.time_ms
        if self.expected is None:
            self.ceiling = _UNKNOWN_CEILING
            self._restart(serial, time_ms)
            return []
        if serial < self.expected:
            if serial + _RESET_BACKSTEP < self.expected or (
                self.last_time_ms + _RESET_FUTURE_MS < time_ms < MAX_TIME_MS
            ):
                # A new boot: the old sequence is over. What was still ahead of
                # the old expectation is reported, then we start again.
                self.ceiling = _UNKNOWN_CEILING
                lost = self.drain_all(node)
                self._restart(serial, time_ms)
                return lost
            if self.ahead.pop(serial, None) is not None:
                self.changes += 1
                if self.journal is not None:
                    self._note(AHEAD_DELETE, serial)
            return []
        if clock.present is not None:
            self.last_time_ms = max(self.last_time_ms, clock.present)
        if serial == self.expected:
            self.expected += 1
            self._advance()
        else:
            self.ahead[serial] = (event_id, clock.elapsed)
            self.changes += 1
            if self.journal is not None:
                self._note(AHEAD_SET, serial, event_id.sec, event_id.msec, clock.elapsed)
        return self.declare(node, clock.gap_elapsed(), window_ms)

    def declare(self, node: str | None, elapsed: int, window_ms: int) -> list[EventsLost]:
        lost: list[EventsLost] = []
        while self.ahead and self.expected is not None:
            first = min(self.ahead)
            event_id, seen = self.ahead[first]
            if len(self.ahead) <= _MAX_AHEAD and seen >= elapsed - window_ms:
                break
            lost.append(EventsLost(node, self.expected, first - 1, event_id))
            self.expected = first
            self._advance()
        return lost

    def drain_all(self, node: str | None) -> list[EventsLost]:
        lost: list[EventsLost] = []
        while self.ahead and self.expected is not None:
            first = min(self.ahead)
            lost.append(EventsLost(node, self.expected, first - 1, self.ahead[first][0]))
            self.expected = first
            self._advance()
        return lost

    def _advance(self) -> None:
        assert self.expected is not None
        while self.expected in self.ahead:
            del self.ahead[self.expected]
            self.changes += 1
            if self.journal is not None:
                self._note(AHEAD_DELETE, self.expected)
            self.expected += 1

    def _restart(self, serial: int, time_ms: int) -> None:
        self.expected = serial + 1
        self.last_time_ms = time_ms if time_ms < MAX_TIME_MS else 0
        self.ahead.clear()
        self.changes += 1
        if self.journal is not None:
            self._note(AHEAD_CLEAR, 0)

    def _note(self, op: int, serial: int, sec: int = 0, ms: int = 0, seen: int = 0) -> None:
        journal = self.journal
        assert journal is not None
        journal += (op, serial, sec, ms, seen)
        if len(journal) > 5 * _MAX_AHEAD:
            self.journal = None  # sending the rows costs less


_new_id = tuple.__new__
_make_id = partial(tuple.__new__, EventId)
_first = itemgetter(0)
_ONLY_NODE_NONE: deque[str | None] = deque([None])


def _seconds(ms: int) -> str:
    return f"{ms // 1000}.{ms % 1000:03d}"


class Assembler:
    """Groups records into events. Feed with :meth:`push`; end with :meth:`flush`.

    Args:
        window_ms: how long (elapsed record time) an incomplete event may wait; also
            how far a record's time may be from the present before it is a jump.
        max_inflight: the most incomplete events held at once.
    """

    def __init__(
        self, *, window_ms: int = DEFAULT_WINDOW_MS, max_inflight: int = DEFAULT_MAX_INFLIGHT
    ) -> None:
        if window_ms < 0 or max_inflight < 1:
            raise ValueError("window_ms must be >= 0 and max_inflight >= 1")
        self.window_ms = window_ms
        self.max_inflight = max_inflight
        self._inflight: dict[EventKey, list[AuditRecord]] = {}
        # The elapsed time each in-flight event opened at (its node's clock).
        self._opened: dict[EventKey, int] = {}
        # Recently completed events: the keys for lookups, the order for pruning
        # (by the elapsed time they opened at, so pruning pops from the left).
        # With a done store (keep_done_in), the order also holds one block per native
        # scan: (a lower bound of its first row's elapsed time, how many rows of the
        # store are its own); the store holds the blocks' rows in the same order.
        self._done: set[EventKey] = set()
        self._done_order: deque[tuple[int, EventKey | int]] = deque()
        self._store: DoneStore | None = None
        self._stored = 0  # rows in the store: the sum of the blocks' counts
        self._stored_max = -1  # no serial above it was ever stored: no need to ask
        # Events completed before a restored checkpoint: re-read on purpose.
        self._restored: set[EventKey] = set()
        # Events completed as one leading record (LOGIN) whose syscall's own records
        # may still follow under the same id; oldest first, bounded by the done set.
        self._leads: dict[EventKey, None] = {}
        self._clocks: dict[str | None, _Clock] = {}
        self._nodes: deque[str | None] = deque()  # in the order first seen, for MAX_NODES
        self._gaps: dict[str | None, _GapTracker] = {}
        self._sequence = 0
        # For quiet_state(): an upper bound of the serials of node None's done events
        # that no tracker accounts for (daemon records, restored events), and the
        # elapsed time of the last exact search.
        self._done_ceiling = -1
        self._ceiling_at: int | None = None
        # quiet_state()'s rows of node None's ahead serials: (tracker, its changes, rows).
        self._ahead_rows: tuple[_GapTracker | None, int, list[tuple[int, int, int, int]]] = (
            None,
            0,
            [],
        )
        # The tracker whose serials ahead the session holds since absorb() applied a
        # scan's ahead_delta: QuietState.ahead_kept (with its journal since) while it is.
        self._ahead_synced: _GapTracker | None = None
        self._ahead_source: AheadSource | None = None

    @property
    def inflight(self) -> int:
        """How many incomplete events are held now."""
        return len(self._inflight)

    def latest_inflight_ms(self) -> int:
        """The latest time of an event in flight (a date, not beyond year 9999), or 0."""
        return max(
            (t for _, event_id in self._inflight if (t := event_id.time_ms) < MAX_TIME_MS),
            default=0,
        )

    def holds(self, key: EventKey) -> bool:
        """Whether the event ``(node, id)`` is in flight."""
        return key in self._inflight

    def push(self, record: AuditRecord) -> list[AssemblerOutput]:
        """Add one record; return whatever it completes, expires or reveals."""
        out: list[AssemblerOutput] = []
        node = record.node
        event_id = record.id
        key = (node, event_id)
        records = self._inflight.get(key)
        clock = self._clocks.get(node)
        if clock is None:
            clock = self._admit_node(node, record.line_no, out)
        if records is None:
            if key in self._leads and not is_single_record(record.type):
                # The audited syscall behind a LOGIN record: its own records, one event.
                del self._leads[key]
            elif key in self._done or (self._stored and self._is_stored(key)):
                # After a restore, the records of events completed before the
                # checkpoint are read again on purpose: skip them quietly.
                if record.type != "EOE" and key not in self._restored:
                    out.append(
                        ParseIssue(
                            record.line_no,
                            f"late {record.type} record for event {event_id}, "
                            "which was already complete",
                        )
                    )
                return out
            # The record opening an event carries its time; the others repeat it.
            self._tick(clock, event_id.time_ms, key, record.line_no, out)
            if not is_daemon_record(record.type):
                tracker = self._gaps.get(node)
                if tracker is None:
                    tracker = self._gaps[node] = _GapTracker()
                out.extend(tracker.observe(node, event_id, clock, self.window_ms))
            elif node is None:
                self._done_ceiling = max(self._done_ceiling, event_id.serial)
            if is_single_record(record.type):
                self._remember(key, clock.elapsed)
                if record.type in LEADS_SYSCALL_EVENT:
                    self._add_lead(key)
                out.append(AuditEvent(node, event_id, (record,), "single"))
                self._expire_into(clock, out, record.line_no)
                return out
            if record.type == "EOE":
                # An EOE with nothing before it: an empty event, nothing to add.
                self._remember(key, clock.elapsed)
                return out
            records = self._inflight[key] = []
            self._opened[key] = clock.elapsed
            if not ends_event(record.type):
                heapq.heappush(clock.ages, (clock.elapsed, self._sequence, key))
                self._sequence += 1
                if len(clock.ages) > 4 * self.max_inflight:
                    self._compact_ages(node, clock)
        if record.type != "EOE":
            records.append(record)
        if ends_event(record.type):
            del self._inflight[key]
            self._remember(key, self._opened.pop(key))
            out.append(AuditEvent(node, event_id, tuple(records), record.type.lower()))
        elif len(self._inflight) > self.max_inflight:
            oldest = next(iter(self._inflight))
            out.append(self._finish(oldest, "evicted"))
        self._expire_into(clock, out, record.line_no)
        return out

    def _add_lead(self, key: EventKey) -> None:
        """Remember the single-record event ``key`` as a lead (its syscall's own
        records may still follow under the same id)."""
        leads = self._leads
        leads[key] = None
        # A lead matters only while its event is done (otherwise its syscall's records
        # open an event anyway): forget the oldest ones the done set has forgotten.
        # Never one still done, so that taking a LOGIN with its syscall at once, or
        # alone (the native scan: absorb), is the same.
        done = self._done
        while (oldest := next(iter(leads), None)) is not None and not (
            oldest in done or (self._stored and self._is_stored(oldest))
        ):
            del leads[oldest]

    def _tick(
        self, clock: _Clock, time_ms: int, key: EventKey, line_no: int, out: list[AssemblerOutput]
    ) -> None:
        """Move ``clock`` by the time of a record that opens event ``key`` (module doc)."""
        if time_ms >= MAX_TIME_MS:
            out.append(
                ParseIssue(
                    line_no,
                    f"record time {_seconds(time_ms)} is beyond year 9999: not used as event time",
                )
            )
            return
        present = clock.present
        if present is None:
            clock.present = time_ms
            return
        window = self.window_ms
        pending = clock.pending
        if pending is not None:
            if key == clock.pending_key:
                return  # the same event tells nothing new
            ahead = pending > present
            misdated = time_ms < pending - window if ahead else time_ms >= present - window
            distance = abs(pending - present)
            if misdated:
                if distance > _REPORT_MIN_MS:
                    out.append(
                        TimeJump(
                            clock.pending_line,
                            f"record dated {_seconds(distance)} s "
                            f"{'ahead of' if ahead else 'behind'} the stream: "
                            "its time is not taken as the present",
                        )
                    )
            else:
                # A clock step (or a quiet log): the new present, but no time elapsed.
                clock.present = present = pending
                if not ahead and distance > _REPORT_MIN_MS:
                    out.append(
                        TimeJump(
                            clock.pending_line,
                            f"record time steps back {_seconds(distance)} s (a clock step "
                            "or an older log): a discontinuity, not elapsed time",
                        )
                    )
            clock.pending = clock.pending_key = None
        if time_ms > present + window or time_ms < present - window:
            clock.pending = time_ms
            clock.pending_key = key
            clock.pending_line = line_no
        elif time_ms > present:
            clock.elapsed += time_ms - present
            clock.present = time_ms

    def _plain(self, clock: _Clock | None, time_ms: int) -> bool:
        """Whether a record at ``time_ms`` opening an event just moves ``clock`` on."""
        if time_ms >= MAX_TIME_MS:
            return False
        if clock is None or clock.present is None:
            return True
        present = clock.present
        window = self.window_ms
        return clock.pending is None and present - window <= time_ms <= present + window

    def maybe_push_whole(
        self,
        node: str | None,
        event_id: EventId,
        time_ms: int | None = None,
        line_no: int = 0,
    ) -> list[AssemblerOutput] | None:
        """Take a whole syscall event at once, when that equals pushing its records.

        The caller has seen, contiguous in the log, a ``SYSCALL`` record, records of
        the same id that neither end the event nor are ``EOE``, and a ``PROCTITLE``.
        Pushing those one by one would open the event, grow it, and complete it; this
        does the same state changes without the records, which the caller keeps.
        ``time_ms`` is ``event_id.time_ms``, when the caller has it at hand;
        ``line_no`` is the line of its first record (for a diagnostic of expiry).

        Returns:
            What the records would have produced *before* the event itself (lost
            events, events expired by its time), or ``None`` (with nothing changed)
            when the event cannot be taken whole: its id is in flight or done, its
            time is not plain progress of the node's clock (a jump to report), or the
            in-flight cap would evict.
        """
        key = (node, event_id)
        inflight = self._inflight
        if (
            key in self._done
            or key in inflight
            or len(inflight) >= self.max_inflight
            or (self._stored and self._is_stored(key))
        ):
            return None
        if time_ms is None:
            time_ms = event_id.time_ms
        clock = self._clocks.get(node)
        if not self._plain(clock, time_ms):
            return None
        if clock is None:
            if len(self._clocks) >= MAX_NODES:
                return None  # push() forgets a node, and says so
            clock = self._admit_node(node, 0, [])
        # _tick(), for plain progress.
        present = clock.present
        if present is None or time_ms > present:
            if present is not None:
                clock.elapsed += time_ms - present
            clock.present = present = time_ms
        elapsed = clock.elapsed
        tracker = self._gaps.get(node)
        if not inflight and tracker is not None and not tracker.ahead:
            # The common case, inlined: nothing in flight, so nothing can expire; the
            # serial is the next one or starts a new sequence, and only the done set
            # moves on. Same state changes as the general case below.
            out: list[AssemblerOutput] = []
            if event_id[2] == tracker.expected:
                tracker.expected += 1
                tracker.last_time_ms = max(tracker.last_time_ms, present)
            else:
                out = list(tracker.observe(node, event_id, clock, self.window_ms))
            self._prune_done()
            self._remember(key, elapsed)
            self._prune_done()
            return out
        out = []
        if tracker is None:
            tracker = self._gaps[node] = _GapTracker()
        out.extend(tracker.observe(node, event_id, clock, self.window_ms))
        # While its first record is handled the event is in flight: expiry counts it.
        # The middle records change nothing (same time, same set in flight).
        inflight[key] = []
        self._expire_into(clock, out, line_no)
        del inflight[key]
        self._remember(key, elapsed)
        # After the last record: nothing new can expire, but the bookkeeping moves on.
        self._expire_into(clock, out)
        return out

    def maybe_push_pair(
        self, node: str | None, first: EventId, first_ms: int, second: EventId, second_ms: int
    ) -> list[AssemblerOutput] | None:
        """Take two whole syscall events whose records interleave, the first ending first.

        The caller has seen the first event's ``SYSCALL`` record, then the second's,
        then the rest of both, each event whole (as for :meth:`maybe_push_whole`) and
        the first's ``PROCTITLE`` before the second's. Pushed in that order, the
        records open the first, open the second, then complete the first and the
        second. With nothing else in flight, room for both, and both times plain
        progress of the clock, those are the state changes of taking the first whole
        and then the second whole: the clock moves by the same times in the same
        order (so the first, open while the second's time moves it by at most one
        window, cannot expire), the gap tracker sees the same serials, and the done
        set ends the same.

        Returns:
            What the records would have produced before the events themselves (lost
            events), or ``None`` (with nothing changed) when that does not hold.
        """
        if self._inflight or self.max_inflight < 2 or first == second:
            return None
        done = self._done
        if (node, first) in done or (node, second) in done:
            return None
        if self._stored and (self._is_stored((node, first)) or self._is_stored((node, second))):
            return None
        clock = self._clocks.get(node)
        if not self._plain(clock, first_ms):
            return None
        present = first_ms if clock is None or clock.present is None else clock.present
        present = max(present, first_ms)
        window = self.window_ms
        if not present - window <= second_ms <= present + window or second_ms >= MAX_TIME_MS:
            return None
        out = self.maybe_push_whole(node, first, first_ms)
        if out is None:  # pragma: no cover - excluded by the checks above
            raise AssertionError("maybe_push_pair: the first event was refused")
        rest = self.maybe_push_whole(node, second, second_ms)
        if rest is None:  # pragma: no cover - excluded by the checks above
            raise AssertionError("maybe_push_pair: the second event was refused")
        out.extend(rest)
        return out

    # -- the native bulk path ---------------------------------------------------------

    def quiet_state(self) -> QuietState | None:
        """Node ``None``'s state for a native scan, or ``None`` when it may not run.

        Quiet: no event in flight (any node), node ``None`` has a present and no time
        pending, and its serial tracker has started. Then taking a plain whole event
        changes only what :class:`QuietState` holds and the done set (as
        :meth:`maybe_push_whole`'s common case does), which :meth:`absorb` applies.
        """
        if self._inflight:
            return None
        clock = self._clocks.get(None)
        tracker = self._gaps.get(None)
        if (
            clock is None
            or clock.present is None
            or clock.pending is not None
            or tracker is None
            or tracker.expected is None
        ):
            return None
        ceiling = max(self._done_ceiling, tracker.ceiling)
        if ceiling >= tracker.expected and (
            tracker.ceiling == _UNKNOWN_CEILING
            or self._ceiling_at is None
            or clock.elapsed >= self._ceiling_at + self.window_ms
        ):
            # After a new sequence, a daemon record or a restore: search the done set
            # (once a sequence starts, then at most once a window of elapsed time while
            # old events keep the ceiling up; until then the bound found stands).
            expected = tracker.expected
            ahead = tracker.ahead
            ceiling = max(
                (
                    event_id.serial
                    for node, event_id in self._done
                    if node is None and event_id.serial >= expected and event_id.serial not in ahead
                ),
                default=-1,
            )
            if self._store is not None and self._stored:
                ceiling = max(ceiling, self._store.done_max_serial(expected, ahead.keys()))
            self._done_ceiling = ceiling
            tracker.ceiling = -1
            self._ceiling_at = clock.elapsed
        if self._ahead_synced is tracker and tracker.journal is not None:
            # The session holds these serials already, but for what Python changed since.
            return QuietState(
                clock.present,
                clock.elapsed,
                tracker.expected,
                tracker.last_time_ms,
                [],
                ceiling,
                True,
                tracker.journal,
            )
        rows = self._ahead_rows
        if rows[0] is not tracker or rows[1] != tracker.changes:
            # Up to _MAX_AHEAD serials: made again only when they changed.
            made = [(serial, i.sec, i.msec, seen) for serial, (i, seen) in tracker.ahead.items()]
            rows = self._ahead_rows = (tracker, tracker.changes, made)
        return QuietState(
            clock.present, clock.elapsed, tracker.expected, tracker.last_time_ms, rows[2], ceiling
        )

    def absorb(self, result: ScanResult) -> None:
        """Apply what a native scan took from :meth:`quiet_state`'s state.

        The clock, the serial tracker and the done set end as taking each event with
        :meth:`maybe_push_whole` would leave them. The done set is pruned once, with the
        final clock: the events that per-event pruning (or the size limit) would have
        dropped are exactly those before the first one that is fresh at the end and
        within the last ``_DONE_LIMIT``, since one stale stays stale. Only the new
        events that survive get a key; with a done store (:meth:`keep_done_in`), the
        rows the session kept become one block instead, and no key crosses.
        """
        self._absorb_state(result)
        leads = result.leads
        if leads:
            # The lone LOGIN records taken, as push() remembers them (once the done set
            # is as per-event pushing leaves it: a lead no longer done is no lead).
            for i in range(0, len(leads), 3):
                self._add_lead((None, _new_id(EventId, (leads[i], leads[i + 1], leads[i + 2]))))

    def _absorb_state(self, result: ScanResult) -> None:
        """:meth:`absorb` but for the leads."""
        state = result.state
        clock = self._clocks[None]
        before = clock.elapsed
        clock.present = state.present
        clock.elapsed = state.elapsed
        tracker = self._gaps[None]
        tracker.expected = state.expected
        tracker.last_time_ms = state.last_time_ms
        delta = result.ahead_delta
        if result.ahead_held and self._ahead_source is not None:
            # The session keeps the changes until the tracker is read (most scans
            # after a gap add serials ahead that later scans remove again).
            tracker.pull = self._ahead_source.ahead_pull
            self._ahead_synced = tracker
            tracker.journal = []
        elif delta is not None:
            tracker.apply(*delta)
            # The session now holds what the tracker holds: journal from here.
            self._ahead_synced = tracker
            tracker.journal = []
        elif state.ahead_kept:
            # Not scanned (numbers the session cannot hold): it may not have the ops.
            self._ahead_synced = None
            tracker.journal = None
        else:
            rows = self._ahead_rows
            if not (rows[0] is tracker and rows[1] == tracker.changes and state.ahead == rows[2]):
                self._absorb_ahead(tracker, state.ahead)
                self._ahead_rows = (tracker, tracker.changes, state.ahead)
        done = result.done
        if result.done_kept:
            self._absorb_block(before, result.done_kept, done)
            return
        taken = len(done) // 4
        if not taken:
            return
        if self._restored:
            # Events restored from a checkpoint leave the restored set only when pruned,
            # not when the size limit drops them: replay the steps (for the four windows
            # after a restore, until they are pruned).
            final = clock.elapsed
            for i in range(0, 4 * taken, 4):
                clock.elapsed = done[i + 3]
                self._prune_done()
                self._remember(
                    (None, _new_id(EventId, (done[i], done[i + 1], done[i + 2]))), done[i + 3]
                )
                self._prune_done()
            clock.elapsed = final
            return
        order = self._done_order
        known = self._done
        keep = 4 * self.window_ms
        threshold = clock.elapsed - keep
        excess = len(known) + self._stored + taken - _DONE_LIMIT
        if self._nodes == _ONLY_NODE_NONE and not self._stored:
            # Every entry is node None's, in the order of its clock: how many go is
            # one search, and they go in C-level loops.
            drop = min(max(bisect_left(order, (threshold,)), excess), len(order))
            if drop:
                known.difference_update([key for _, key in islice(order, drop)])
                for _ in repeat(None, drop):
                    order.popleft()
                excess -= drop
        else:
            excess = self._drop_done(excess)
        first = max(bisect_left(done[3::4], threshold), excess)
        if first >= taken:
            return
        start = 4 * first
        fields = (done[start::4], done[start + 1 :: 4], done[start + 2 :: 4])
        keys = list(zip(repeat(None), map(_make_id, zip(*fields, strict=True))))
        known.update(keys)
        order.extend(zip(done[start + 3 :: 4], keys, strict=True))

    def pull_ahead_from(self, source: AheadSource) -> None:
        """Let node ``None``'s serials ahead wait in ``source`` (a native session that
        holds its scans' changes: ``ScanResult.ahead_held``) until they are read."""
        self._ahead_source = source

    def keep_done_in(self, store: DoneStore) -> None:
        """Let ``store`` (the native session) keep node ``None``'s done events that
        native scans take: :meth:`absorb` then adds one block per scan (its
        ``done_kept`` rows) to the done order instead of a key per event. The meaning
        stays here: membership asks the store too, and pruning, the size limit and
        checkpoints treat a block's rows exactly as the keys they stand for."""
        if self._stored and store is not self._store:
            raise ValueError("keep_done_in: the done set already has another store's rows")
        self._store = store

    def _is_stored(self, key: EventKey) -> bool:
        store = self._store
        event_id = key[1]
        if store is None or key[0] is not None or event_id[2] > self._stored_max:
            return False
        return store.done_contains(event_id[0], event_id[1], event_id[2])

    def _absorb_block(self, before: int, kept: int, done: array[int]) -> None:
        """The done-set part of :meth:`absorb` for ``kept`` rows the store kept (the
        last ``kept`` of ``done``), the first taken at elapsed ``before`` or later."""
        top = max(done[len(done) - 4 * kept + 2 :: 4])
        self._stored_max = max(self._stored_max, top)
        if not self._restored:
            self._add_block(before, kept)
            self._drop_done(len(self._done) + self._stored - _DONE_LIMIT)
            return
        # As absorb's replay for restored events: step by step, each row a block of one
        # (merged with the block before it).
        clock = self._clocks[None]
        final = clock.elapsed
        for elapsed in done[len(done) - 4 * kept + 3 :: 4]:
            clock.elapsed = elapsed
            self._prune_done()
            self._add_block(elapsed, 1)
            if len(self._done) + self._stored > _DONE_LIMIT:
                self._drop_oldest()
            self._prune_done()
        clock.elapsed = final

    def _add_block(self, elapsed: int, count: int) -> None:
        order = self._done_order
        if order and isinstance(last := order[-1][1], int):
            order[-1] = (order[-1][0], last + count)  # adjacent rows of the store: one block
        else:
            order.append((elapsed, count))
        self._stored += count

    def _drop_rows(self, count: int, forced: int, stale_before: int) -> int:
        """Drop rows of the oldest block (``count`` rows): the first ``forced``, then
        the stale ones. Returns how many went."""
        assert self._store is not None
        gone, front = self._store.done_drop(count, forced, stale_before)
        self._stored -= gone
        if gone >= count:
            self._done_order.popleft()
        else:
            self._done_order[0] = (front, count - gone)
        return gone

    def _drop_oldest(self) -> None:
        """The size limit: forget the oldest done event."""
        order = self._done_order
        oldest = order[0][1]
        if isinstance(oldest, int):
            self._drop_rows(oldest, 1, _NONE_STALE)
        else:
            order.popleft()
            self._done.discard(oldest)

    def _drop_done(self, excess: int) -> int:
        """Forget done events from the oldest: the first ``excess`` whatever their age
        (the size limit), then those opened four windows ago on their node's clock (a
        node forgotten: all of its). Returns the excess left over."""
        order = self._done_order
        clocks = self._clocks
        keep = 4 * self.window_ms
        while order:
            elapsed, key = order[0]
            if isinstance(key, int):
                clock = clocks.get(None)
                stale_before = _ALL_STALE if clock is None else clock.elapsed - keep
                if excess <= 0 and elapsed >= stale_before:
                    break
                gone = self._drop_rows(key, max(excess, 0), stale_before)
                excess -= gone
                if gone < key:
                    break
                continue
            owner = clocks.get(key[0])
            if excess <= 0 and owner is not None and elapsed >= owner.elapsed - keep:
                break
            order.popleft()
            self._done.discard(key)
            if excess <= 0:
                self._restored.discard(key)
            excess -= 1
        return excess

    @staticmethod
    def _absorb_ahead(tracker: _GapTracker, rows: list[tuple[int, int, int, int]]) -> None:
        """Make ``tracker.ahead`` hold ``rows`` (in their order), changing only what changed.

        A scan removes serials (the gap filled or declared) and appends new ones, as the
        dict does: the serials kept are then, in order, the first ones of ``rows``.
        """
        ahead = tracker.ahead
        wanted = dict.fromkeys(map(_first, rows))
        for serial in ahead.keys() - wanted.keys():
            del ahead[serial]
        kept = len(ahead)
        if list(ahead) != list(islice(wanted, kept)):  # pragma: no cover - another order
            ahead.clear()
            kept = 0
        for serial, sec, ms, seen in rows[kept:]:
            ahead[serial] = (_new_id(EventId, (sec, ms, serial)), seen)
        tracker.changes += 1
        tracker.journal = None

    def _admit_node(self, node: str | None, line_no: int, out: list[AssemblerOutput]) -> _Clock:
        """Start a clock for ``node``; beyond :data:`MAX_NODES`, forget the first seen.

        A forgotten node's events in flight are evicted and its open gaps reported;
        if it comes back, it starts afresh.
        """
        clock = self._clocks[node] = _Clock()
        nodes = self._nodes
        nodes.append(node)
        if len(nodes) <= MAX_NODES:
            return clock
        old = nodes.popleft()
        gone = self._clocks.pop(old, None)
        if gone is not None:
            for _, _, key in sorted(gone.ages):
                if key in self._inflight:
                    out.append(self._finish(key, "evicted"))
        tracker = self._gaps.pop(old, None)
        if tracker is not None:
            out.extend(tracker.drain_all(old))
        name = "(none)" if old is None else old[:64]
        out.append(
            ParseIssue(
                line_no,
                f"more than {MAX_NODES} nodes: node {name} forgotten (its clock and serials)",
            )
        )
        return clock

    def expire(self, now_ms: int) -> list[AssemblerOutput]:
        """Complete events that waited longer than the window, the log being idle
        until ``now_ms`` (record time: each node's present plus the idle time).

        Kept for callers that think in record time; :meth:`expire_idle` takes the
        idle time itself.
        """
        return self._expire_idle(lambda clock: max(0, now_ms - (clock.present or now_ms)))

    def expire_idle(self, idle_ms: int) -> list[AssemblerOutput]:
        """Complete events that waited longer than the window, the log having been
        idle for ``idle_ms`` (the live shell measures it; replay never needs to)."""
        return self._expire_idle(lambda clock: max(0, idle_ms))

    def _expire_idle(self, idle_of: Callable[[_Clock], int]) -> list[AssemblerOutput]:
        # The idle time ages what waits, but is not added to the clocks: it must
        # not make the next records' events look old.
        out: list[AssemblerOutput] = []
        for node, clock in self._clocks.items():
            idle = idle_of(clock)
            self._expire_into(clock, out, 0, idle)
            tracker = self._gaps.get(node)
            if tracker is not None:
                out.extend(tracker.declare(node, clock.gap_elapsed() + idle, self.window_ms))
        return out

    def flush(self) -> list[AssemblerOutput]:
        """End of stream: return every event in flight and every open gap."""
        out: list[AssemblerOutput] = [self._finish(k, "flushed") for k in list(self._inflight)]
        for node, tracker in self._gaps.items():
            out.extend(tracker.drain_all(node))
        for clock in self._clocks.values():
            clock.ages.clear()
        return out

    def _finish(self, key: EventKey, ended_by: str) -> AuditEvent:
        records = self._inflight.pop(key)
        self._remember(key, self._opened.pop(key))
        return AuditEvent(key[0], key[1], tuple(records), ended_by)

    def _remember(self, key: EventKey, elapsed: int) -> None:
        if key in self._done or (self._stored and self._is_stored(key)):
            return
        self._done.add(key)
        order = self._done_order
        order.append((elapsed, key))
        if len(self._done) + self._stored > _DONE_LIMIT:
            self._drop_oldest()

    def _prune_done(self) -> None:
        """Forget completed events opened four windows ago (on their node's clock)."""
        order = self._done_order
        clocks = self._clocks
        keep = 4 * self.window_ms
        while order:
            elapsed, key = order[0]
            if isinstance(key, int):  # a block of the store's rows: the general walk
                self._drop_done(0)
                return
            clock = clocks.get(key[0])  # None: a node forgotten (MAX_NODES)
            if clock is not None and elapsed >= clock.elapsed - keep:
                return
            order.popleft()
            self._done.discard(key)
            self._restored.discard(key)

    def _compact_ages(self, node: str | None, clock: _Clock) -> None:
        opened = self._opened
        clock.ages = [(opened[k], n, k) for n, k in enumerate(self._inflight) if k[0] == node]
        heapq.heapify(clock.ages)
        self._sequence = max(self._sequence, len(self._inflight))

    def _expire_into(
        self, clock: _Clock, out: list[AssemblerOutput], line_no: int = 0, idle: int = 0
    ) -> None:
        ages = clock.ages
        limit = clock.elapsed + idle - self.window_ms
        expired = 0
        while ages and ages[0][0] < limit:
            key = heapq.heappop(ages)[2]
            if key in self._inflight:
                out.append(self._finish(key, "expired"))
                expired += 1
        if expired >= EXPIRY_BURST:
            out.append(
                ParseIssue(
                    line_no,
                    f"{expired} events in flight expired at once: their last records "
                    "did not come within the window",
                )
            )
        if self._done_order:
            self._prune_done()

    def to_state(self) -> dict[str, Any]:
        """A JSON-ready snapshot of what is needed to carry on after a restart.

        Only plausible times are kept: a present is never a misdated record's time
        (see :meth:`_tick`), and nothing beyond year 9999 is ever written.
        """
        return {
            "window_ms": self.window_ms,
            "watermark": [
                [n, c.present]
                for n, c in self._clocks.items()
                if c.present is not None and c.present < MAX_TIME_MS
            ],
            "gaps": [
                [
                    n,
                    g.expected,
                    g.last_time_ms if g.last_time_ms < MAX_TIME_MS else 0,
                    [str(i) for i, _ in g.ahead.values()],
                ]
                for n, g in self._gaps.items()
            ],
            "done": self._done_tail(_RESTORED_LIMIT),
        }

    def _done_tail(self, limit: int) -> list[list[str | None]]:
        """The last ``limit`` done events, oldest first, as ``[node, id]``."""
        tail: list[list[str | None]] = []
        end = self._stored  # the store's position just past the block looked at
        for _, key in reversed(self._done_order):
            if len(tail) >= limit:
                break
            if isinstance(key, int):
                assert self._store is not None
                take = min(key, limit - len(tail))
                rows = self._store.done_rows(end - take, take)
                for i in range(len(rows) - 4, -1, -4):  # str(EventId(...)), without one
                    tail.append([None, f"{rows[i]}.{rows[i + 1]:03d}:{rows[i + 2]}"])
                end -= key
            else:
                tail.append([key[0], str(key[1])])
        tail.reverse()
        return tail

    def restore(self, state: dict[str, Any]) -> None:
        """Load a snapshot made by :meth:`to_state` (in-flight records are re-read).

        A time that is no date (beyond year 9999, or negative), as an older version
        could write, is dropped: the next records set the present again.
        """
        for node, t in state.get("watermark", []):
            if 0 <= int(t) < MAX_TIME_MS:
                clock = self._clocks.get(node) or self._admit_node(node, 0, [])
                clock.present = int(t)
        for node, expected, last_ms, ahead in state.get("gaps", []):
            last = int(last_ms)
            tracker = self._gaps[node] = _GapTracker(
                None if expected is None else int(expected), last if 0 <= last < MAX_TIME_MS else 0
            )
            for text in ahead:
                eid = EventId.from_str(text)
                tracker.ahead[eid.serial] = (eid, 0)
                tracker.changes += 1
        for node, text in state.get("done", [])[-_RESTORED_LIMIT:]:
            key = (node, EventId.from_str(text))
            if node not in self._clocks:
                self._admit_node(node, 0, [])
            self._remember(key, 0)
            self._restored.add(key)
            if node is None:
                self._done_ceiling = max(self._done_ceiling, key[1].serial)
