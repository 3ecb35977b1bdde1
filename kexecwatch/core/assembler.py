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

from dataclasses import dataclass, field
from typing import Any

from kexecwatch.core.msgtypes import ends_event, is_daemon_record, is_single_record
from kexecwatch.core.record import AuditRecord, EventId, ParseIssue

__all__ = [
    "DEFAULT_MAX_INFLIGHT",
    "DEFAULT_WINDOW_MS",
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
        self._done: dict[EventKey, int] = {}
        self._watermark: dict[str | None, int] = {}
        self._gaps: dict[str | None, _GapTracker] = {}
        self._oldest_ms: int | None = None
        self._quiet_until_ms = -1

    @property
    def inflight(self) -> int:
        """How many incomplete events are held now."""
        return len(self._inflight)

    def push(self, record: AuditRecord) -> list[AssemblerOutput]:
        """Add one record; return whatever it completes, expires or reveals."""
        out: list[AssemblerOutput] = []
        node = record.node
        event_id = record.id
        time_ms = event_id.time_ms
        watermark = self._watermark.get(node)
        if watermark is None or time_ms > watermark:
            self._watermark[node] = watermark = time_ms
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
            if self._oldest_ms is None or time_ms < self._oldest_ms:
                self._oldest_ms = time_ms
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

    def expire(self, now_ms: int) -> list[AssemblerOutput]:
        """Complete events older than the window, measured against ``now_ms``.

        The live shell calls this with a time derived from the last record's
        time plus the idle time it saw; replay never needs to.
        """
        out: list[AssemblerOutput] = []
        for node in list(self._watermark):
            self._watermark[node] = max(self._watermark[node], now_ms)
        self._expire_into(out)
        for node, tracker in self._gaps.items():
            out.extend(tracker.declare(node, self._watermark.get(node, now_ms), self.window_ms))
        return out

    def flush(self) -> list[AssemblerOutput]:
        """End of stream: return every event in flight and every open gap."""
        out: list[AssemblerOutput] = [self._finish(k, "flushed") for k in list(self._inflight)]
        for node, tracker in self._gaps.items():
            out.extend(tracker.drain_all(node))
        self._oldest_ms = None
        return out

    def _finish(self, key: EventKey, ended_by: str) -> AuditEvent:
        records = self._inflight.pop(key)
        self._remember(key, key[1].time_ms)
        return AuditEvent(key[0], key[1], tuple(records), ended_by)

    def _remember(self, key: EventKey, time_ms: int) -> None:
        done = self._done
        done[key] = time_ms
        if len(done) > _DONE_LIMIT:
            # Drop the oldest half; dicts keep insertion order.
            for stale in list(done)[: _DONE_LIMIT // 2]:
                del done[stale]

    def _expire_into(self, out: list[AssemblerOutput]) -> None:
        if self._oldest_ms is None:
            return
        newest = max(self._watermark.values())
        if self._oldest_ms >= newest - self.window_ms:
            return
        oldest: int | None = None
        for key in list(self._inflight):
            node_mark = self._watermark.get(key[0], newest)
            t = key[1].time_ms
            if t < node_mark - self.window_ms:
                out.append(self._finish(key, "expired"))
            elif oldest is None or t < oldest:
                oldest = t
        self._oldest_ms = oldest
        horizon = newest - 4 * self.window_ms
        if self._done and next(iter(self._done.values())) < horizon:
            for key, t in list(self._done.items()):
                if t >= horizon:
                    break
                del self._done[key]

    def to_state(self) -> dict[str, Any]:
        """A JSON-ready snapshot of what is needed to carry on after a restart."""
        return {
            "window_ms": self.window_ms,
            "watermark": [[n, t] for n, t in self._watermark.items()],
            "gaps": [
                [n, g.expected, g.last_time_ms, [str(i) for i in g.ahead.values()]]
                for n, g in self._gaps.items()
            ],
            "done": [[k[0], str(k[1])] for k in list(self._done)[-4096:]],
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Load a snapshot made by :meth:`to_state` (in-flight records are re-read)."""
        for node, t in state.get("watermark", []):
            self._watermark[node] = int(t)
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
            self._done[(node, eid)] = eid.time_ms
