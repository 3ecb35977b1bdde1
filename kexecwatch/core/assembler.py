"""Event assembler: groups records that share (node, audit id) into events.

Theory of operation: records arrive in log order, which is not always event
order. Each record is pushed; an event completes when its last record arrives
(``EOE``, or ``PROCTITLE``, which the kernel writes last), at once for record
types that are events on their own, or when it has waited longer than the
*window* measured in record time. A cap on the events in flight evicts the
oldest one, flagged incomplete, so memory stays bounded whatever the input.
A ``done`` set remembers recently completed events, so a late ``EOE`` is
absorbed and a late record of another type is reported, never silently
merged into a new event.

Serials are the kernel's event counter. Gaps in them mean the kernel or
auditd lost events; :class:`_GapTracker` reports them as :class:`EventsLost`
values once out-of-order arrivals can no longer fill them. Serials restart at
every boot (a ``kexec -e`` is a boot too), so a large step back starts a new
sequence instead of being read as ``2**32`` lost events.

Rule 1: time is the records' time, passed in or read from ids; this module
never reads a clock, so a replay behaves like live tailing.
Rule 2: every output is a value; nothing here raises on input.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from kexecwatch.core.msgtypes import ends_event, is_daemon_record, is_single_record
from kexecwatch.core.record import AuditRecord, EventId, ParseIssue

__all__ = [
    "DEFAULT_MAX_INFLIGHT",
    "DEFAULT_WINDOW_MS",
    "MAX_NODES",
    "Assembler",
    "AssemblerOutput",
    "AuditEvent",
    "EventsLost",
]

#: How long, in record time, an incomplete event may wait for more records.
DEFAULT_WINDOW_MS = 5_000
#: How many incomplete events may be in flight before the oldest is evicted.
DEFAULT_MAX_INFLIGHT = 4_096

_MAX_AHEAD = 1_024
_RESET_BACKSTEP = 1_000
_RESET_FUTURE_MS = 2_000
_DONE_LIMIT = 65_536
#: How many ``node=`` values keep a watermark and a serial tracker; the node seen
#: first is forgotten (its open gaps reported) to make room for a new one.
MAX_NODES = 65_536

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


AssemblerOutput = AuditEvent | EventsLost | ParseIssue


@dataclass(slots=True)
class _GapTracker:
    expected: int | None = None
    last_time_ms: int = 0
    ahead: dict[int, EventId] = field(default_factory=dict)

    def observe(
        self, node: str | None, event_id: EventId, watermark: int, window_ms: int
    ) -> list[EventsLost]:
        serial = event_id.serial
        if self.expected is None:
            self._restart(serial, event_id.time_ms)
            return []
        if serial < self.expected:
            if (
                serial + _RESET_BACKSTEP < self.expected
                or event_id.time_ms > self.last_time_ms + _RESET_FUTURE_MS
            ):
                # A new boot: the old sequence is over. What was still ahead of
                # the old expectation is reported, then we start again.
                lost = self.drain_all(node)
                self._restart(serial, event_id.time_ms)
                return lost
            self.ahead.pop(serial, None)
            return []
        self.last_time_ms = max(self.last_time_ms, event_id.time_ms)
        if serial == self.expected:
            self.expected += 1
            self._advance()
        else:
            self.ahead[serial] = event_id
        return self.declare(node, watermark, window_ms)

    def declare(self, node: str | None, watermark: int, window_ms: int) -> list[EventsLost]:
        lost: list[EventsLost] = []
        while self.ahead and self.expected is not None:
            first = min(self.ahead)
            if len(self.ahead) <= _MAX_AHEAD and self.ahead[first].time_ms >= watermark - window_ms:
                break
            lost.append(EventsLost(node, self.expected, first - 1, self.ahead[first]))
            self.expected = first
            self._advance()
        return lost

    def drain_all(self, node: str | None) -> list[EventsLost]:
        lost: list[EventsLost] = []
        while self.ahead and self.expected is not None:
            first = min(self.ahead)
            lost.append(EventsLost(node, self.expected, first - 1, self.ahead[first]))
            self.expected = first
            self._advance()
        return lost

    def _advance(self) -> None:
        assert self.expected is not None
        while self.expected in self.ahead:
            del self.ahead[self.expected]
            self.expected += 1

    def _restart(self, serial: int, time_ms: int) -> None:
        self.expected = serial + 1
        self.last_time_ms = time_ms
        self.ahead.clear()


class Assembler:
    """Groups records into events. Feed with :meth:`push`; end with :meth:`flush`.

    Args:
        window_ms: how long, in record time, an incomplete event may wait.
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
        # Recently completed events: the keys for lookups, the order for pruning
        # (oldest first, so pruning pops from the left in O(1)).
        self._done: set[EventKey] = set()
        self._done_order: deque[tuple[int, EventKey]] = deque()
        self._watermark: dict[str | None, int] = {}
        # The newest watermark of all: kept as it moves, since scanning every
        # node's on every record made the cost grow with the square of the nodes.
        self._newest: int | None = None
        self._nodes: deque[str | None] = deque()  # in the order first seen, for MAX_NODES
        self._gaps: dict[str | None, _GapTracker] = {}
        # In-flight events by age, for expiry: (time, sequence, key). Entries of
        # events that completed meanwhile are dropped when they surface.
        self._by_age: list[tuple[int, int, EventKey]] = []
        self._sequence = 0
        self._quiet_until_ms = -1

    @property
    def inflight(self) -> int:
        """How many incomplete events are held now."""
        return len(self._inflight)

    def holds(self, key: EventKey) -> bool:
        """Whether the event ``(node, id)`` is in flight."""
        return key in self._inflight

    def push(self, record: AuditRecord) -> list[AssemblerOutput]:
        """Add one record; return whatever it completes, expires or reveals."""
        out: list[AssemblerOutput] = []
        node = record.node
        event_id = record.id
        time_ms = event_id.time_ms
        watermark = self._watermark.get(node)
        if watermark is None:
            self._admit_node(node, record.line_no, out)
        if watermark is None or time_ms > watermark:
            self._watermark[node] = watermark = time_ms
            if self._newest is None or time_ms > self._newest:
                self._newest = time_ms
        key = (node, event_id)
        records = self._inflight.get(key)
        if records is None:
            if key in self._done:
                # After a restore, the records of events completed before the
                # checkpoint are read again on purpose: skip them quietly.
                if record.type != "EOE" and time_ms > self._quiet_until_ms:
                    out.append(
                        ParseIssue(
                            record.line_no,
                            f"late {record.type} record for event {event_id}, "
                            "which was already complete",
                        )
                    )
                return out
            if not is_daemon_record(record.type):
                tracker = self._gaps.get(node)
                if tracker is None:
                    tracker = self._gaps[node] = _GapTracker()
                out.extend(tracker.observe(node, event_id, watermark, self.window_ms))
            if is_single_record(record.type):
                self._remember(key, time_ms)
                out.append(AuditEvent(node, event_id, (record,), "single"))
                self._expire_into(out)
                return out
            if record.type == "EOE":
                # An EOE with nothing before it: an empty event, nothing to add.
                self._remember(key, time_ms)
                return out
            records = self._inflight[key] = []
            if not ends_event(record.type):
                heapq.heappush(self._by_age, (time_ms, self._sequence, key))
                self._sequence += 1
                if len(self._by_age) > 4 * self.max_inflight:
                    self._compact_ages()
        if record.type != "EOE":
            records.append(record)
        if ends_event(record.type):
            del self._inflight[key]
            self._remember(key, time_ms)
            out.append(AuditEvent(node, event_id, tuple(records), record.type.lower()))
        elif len(self._inflight) > self.max_inflight:
            oldest = next(iter(self._inflight))
            out.append(self._finish(oldest, "evicted"))
        self._expire_into(out)
        return out

    def maybe_push_whole(
        self, node: str | None, event_id: EventId, time_ms: int | None = None
    ) -> list[AssemblerOutput] | None:
        """Take a whole syscall event at once, when that equals pushing its records.

        The caller has seen, contiguous in the log, a ``SYSCALL`` record, records of
        the same id that neither end the event nor are ``EOE``, and a ``PROCTITLE``.
        Pushing those one by one would open the event, grow it, and complete it; this
        does the same state changes without the records, which the caller keeps.
        ``time_ms`` is ``event_id.time_ms``, when the caller has it at hand.

        Returns:
            What the records would have produced *before* the event itself (lost
            events, events expired by its time), or ``None`` (with nothing changed)
            when the event cannot be taken whole: its id is in flight or done, it is
            already older than the window, or the in-flight cap would evict.
        """
        key = (node, event_id)
        inflight = self._inflight
        if key in self._done or key in inflight or len(inflight) >= self.max_inflight:
            return None
        if time_ms is None:
            time_ms = event_id.time_ms
        marks = self._watermark
        watermark = marks.get(node)
        if watermark is not None and time_ms < watermark - self.window_ms:
            return None  # push() would expire it after its first record
        if watermark is None:
            if len(marks) >= MAX_NODES:
                return None  # push() forgets a node, and says so
            self._nodes.append(node)
        if watermark is None or time_ms > watermark:
            marks[node] = watermark = time_ms
        newest = self._newest
        if newest is None or time_ms > newest:
            self._newest = newest = time_ms
        tracker = self._gaps.get(node)
        if not inflight and tracker is not None and not tracker.ahead:
            # The common case, inlined: nothing in flight, so nothing can expire; the
            # serial is the next one or starts a new sequence, and only the done set
            # moves on. Same state changes as the general case below.
            out: list[AssemblerOutput] = []
            if event_id[2] == tracker.expected:
                tracker.expected += 1
                tracker.last_time_ms = max(tracker.last_time_ms, time_ms)
            else:
                out = list(tracker.observe(node, event_id, watermark, self.window_ms))
            done = self._done
            order = self._done_order
            if order:
                horizon = newest - 4 * self.window_ms
                while order and order[0][0] < horizon:
                    done.discard(order.popleft()[1])
            # _remember(), and the pruning after it, which can only drop this event
            # itself when it is the only one left (and older than the horizon).
            done.add(key)
            order.append((time_ms, key))
            if len(order) > _DONE_LIMIT:
                done.discard(order.popleft()[1])
            elif len(order) == 1:
                self._prune_done()
            return out
        out = []
        if tracker is None:
            tracker = self._gaps[node] = _GapTracker()
        out.extend(tracker.observe(node, event_id, watermark, self.window_ms))
        # While its first record is handled the event is in flight: expiry counts it.
        # The middle records change nothing (same watermark, same set in flight).
        inflight[key] = []
        self._expire_into(out)
        del inflight[key]
        self._remember(key, time_ms)
        # After the last record: nothing new can expire, but the bookkeeping moves on.
        self._expire_into(out)
        return out

    def maybe_push_pair(
        self, node: str | None, first: EventId, first_ms: int, second: EventId, second_ms: int
    ) -> list[AssemblerOutput] | None:
        """Take two whole syscall events whose records interleave, the first ending first.

        The caller has seen the first event's ``SYSCALL`` record, then the second's,
        then the rest of both, each event whole (as for :meth:`maybe_push_whole`) and
        the first's ``PROCTITLE`` before the second's. Pushed in that order, the
        records open the first, open the second, then complete the first and the
        second. With nothing else in flight, room for both, and neither old enough to
        expire while the other is open, those are the state changes of taking the
        first whole and then the second whole: the gap tracker sees the same serials
        in the same order with the same watermarks, and the done set ends the same.

        Returns:
            What the records would have produced before the events themselves (lost
            events), or ``None`` (with nothing changed) when that does not hold.
        """
        if self._inflight or self.max_inflight < 2 or first == second:
            return None
        done = self._done
        if (node, first) in done or (node, second) in done:
            return None
        watermark = self._watermark.get(node)
        newest = (
            max(first_ms, second_ms) if watermark is None else max(watermark, first_ms, second_ms)
        )
        if min(first_ms, second_ms) < newest - self.window_ms:
            return None  # one would expire while the other is open, or at once
        out = self.maybe_push_whole(node, first, first_ms)
        if out is None:  # pragma: no cover - excluded by the checks above
            raise AssertionError("maybe_push_pair: the first event was refused")
        rest = self.maybe_push_whole(node, second, second_ms)
        if rest is None:  # pragma: no cover - excluded by the checks above
            raise AssertionError("maybe_push_pair: the second event was refused")
        out.extend(rest)
        return out

    def _prune_done(self) -> None:
        order = self._done_order
        if order and self._newest is not None:
            horizon = self._newest - 4 * self.window_ms
            while order and order[0][0] < horizon:
                self._done.discard(order.popleft()[1])

    def _admit_node(self, node: str | None, line_no: int, out: list[AssemblerOutput]) -> None:
        """Start tracking ``node``; beyond :data:`MAX_NODES`, forget the first seen."""
        nodes = self._nodes
        nodes.append(node)
        if len(nodes) <= MAX_NODES:
            return
        old = nodes.popleft()
        self._watermark.pop(old, None)
        tracker = self._gaps.pop(old, None)
        if tracker is not None:
            out.extend(tracker.drain_all(old))
        name = "(none)" if old is None else old[:64]
        out.append(
            ParseIssue(
                line_no,
                f"more than {MAX_NODES} nodes: node {name} forgotten (its watermark and serials)",
            )
        )

    def expire(self, now_ms: int) -> list[AssemblerOutput]:
        """Complete events older than the window, measured against ``now_ms``.

        The live shell calls this with a time derived from the last record's
        time plus the idle time it saw; replay never needs to.
        """
        out: list[AssemblerOutput] = []
        # The watermarks stay record time: a clock passed in here completes what
        # waits, but must not make the next records look late.
        self._expire_into(out, now_ms)
        for node, tracker in self._gaps.items():
            mark = max(self._watermark.get(node, now_ms), now_ms)
            out.extend(tracker.declare(node, mark, self.window_ms))
        return out

    def flush(self) -> list[AssemblerOutput]:
        """End of stream: return every event in flight and every open gap."""
        out: list[AssemblerOutput] = [self._finish(k, "flushed") for k in list(self._inflight)]
        for node, tracker in self._gaps.items():
            out.extend(tracker.drain_all(node))
        self._by_age.clear()
        return out

    def _finish(self, key: EventKey, ended_by: str) -> AuditEvent:
        records = self._inflight.pop(key)
        self._remember(key, key[1].time_ms)
        return AuditEvent(key[0], key[1], tuple(records), ended_by)

    def _remember(self, key: EventKey, time_ms: int) -> None:
        if key in self._done:
            return
        self._done.add(key)
        order = self._done_order
        order.append((time_ms, key))
        if len(order) > _DONE_LIMIT:
            self._done.discard(order.popleft()[1])

    def _compact_ages(self) -> None:
        self._by_age = [(k[1].time_ms, n, k) for n, k in enumerate(self._inflight)]
        heapq.heapify(self._by_age)
        self._sequence = len(self._by_age)

    def _expire_into(self, out: list[AssemblerOutput], now_ms: int = 0) -> None:
        ages = self._by_age
        if not ages and not self._done:
            return
        newest = now_ms if self._newest is None else self._newest
        limit = max(newest, now_ms) - self.window_ms
        deferred: list[tuple[int, int, EventKey]] = []
        while ages and ages[0][0] < limit:
            entry = heapq.heappop(ages)
            key = entry[2]
            if key not in self._inflight:
                continue  # completed since
            if entry[0] < max(self._watermark.get(key[0], newest), now_ms) - self.window_ms:
                out.append(self._finish(key, "expired"))
            else:
                deferred.append(entry)  # another node, whose own time has not moved on
        for entry in deferred:
            heapq.heappush(ages, entry)
        horizon = newest - 4 * self.window_ms
        order = self._done_order
        while order and order[0][0] < horizon:
            self._done.discard(order.popleft()[1])

    def to_state(self) -> dict[str, Any]:
        """A JSON-ready snapshot of what is needed to carry on after a restart."""
        return {
            "window_ms": self.window_ms,
            "watermark": [[n, t] for n, t in self._watermark.items()],
            "gaps": [
                [n, g.expected, g.last_time_ms, [str(i) for i in g.ahead.values()]]
                for n, g in self._gaps.items()
            ],
            "done": [[k[0], str(k[1])] for _, k in list(self._done_order)[-4096:]],
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Load a snapshot made by :meth:`to_state` (in-flight records are re-read)."""
        for node, t in state.get("watermark", []):
            if node not in self._watermark:
                self._nodes.append(node)
            self._watermark[node] = int(t)
            if self._newest is None or int(t) > self._newest:
                self._newest = int(t)
            self._quiet_until_ms = max(self._quiet_until_ms, int(t))
        for node, expected, last_ms, ahead in state.get("gaps", []):
            tracker = self._gaps[node] = _GapTracker(
                None if expected is None else int(expected), int(last_ms)
            )
            for text in ahead:
                eid = EventId.from_str(text)
                tracker.ahead[eid.serial] = eid
        for node, text in state.get("done", []):
            eid = EventId.from_str(text)
            self._remember((node, eid), eid.time_ms)
