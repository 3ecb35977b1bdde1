"""Assembler.quiet_state / absorb: a batch of plain whole events, applied at once, leaves
the state that taking them one by one (maybe_push_whole) leaves.

The batch is made here as the native scan makes it, with the assembler's own clock and
serial tracker on a copy of the quiet state: what this holds is absorb's part (the state
applied, the done set pruned once, only surviving entries keyed). A third assembler keeps
the batches' done rows in a store (:meth:`Assembler.keep_done_in`), as the native session
does between calls (:class:`ModelStore` is native/src/done.rs in Python): its done set,
expanded, must be the same entries in the same order, with the same answers.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kexecwatch.core.audit import assembler as assembler_module
from kexecwatch.core.audit.assembler import Assembler, _Clock, _GapTracker
from kexecwatch.core.audit.nativeapi import STOP_END, DoneStore, QuietState, ScanResult
from kexecwatch.core.audit.record import AuditRecord, EventId

WINDOW = 100


class ModelStore:
    """The native session's done store (native/src/done.rs), in Python."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, int, int, int]] = []

    def extend(self, done: array[int]) -> int:
        kept = 0
        for i in range(0, len(done), 4):
            if not self.done_contains(done[i], done[i + 1], done[i + 2]):
                self.rows.append((done[i], done[i + 1], done[i + 2], done[i + 3]))
                kept += 1
        return kept

    def done_contains(self, sec: int, ms: int, serial: int) -> bool:
        return any(row[:3] == (sec, ms, serial) for row in self.rows)

    def done_drop(self, limit: int, forced: int, stale_before: int) -> tuple[int, int]:
        gone = 0
        while gone < limit and self.rows and (gone < forced or self.rows[0][3] < stale_before):
            del self.rows[0]
            gone += 1
        return gone, self.rows[0][3] if self.rows else 2**63 - 1

    def done_rows(self, offset: int, count: int) -> array[int]:
        return array("q", [v for row in self.rows[offset : offset + count] for v in row])

    def done_max_serial(self, floor: int, excluded: Iterable[int]) -> int:
        skip = set(excluded)
        return max((r[2] for r in self.rows if r[2] >= floor and r[2] not in skip), default=-1)


def scan_model(
    state: QuietState, events: list[EventId], window: int, store: ModelStore | None = None
) -> ScanResult:
    """What a native scan returns for ``events`` (all plain), from ``state``; with a
    store, the rows it keeps there."""
    clock = _Clock(present=state.present, elapsed=state.elapsed)
    tracker = _GapTracker(
        state.expected,
        state.last_time_ms,
        {s: (EventId(sec, ms, s), seen) for s, sec, ms, seen in state.ahead},
    )
    done: array[int] = array("q")
    lost = []
    last = 0
    for event_id in events:
        t = event_id.time_ms
        assert state.present - window <= t <= clock.present + window, "not plain"
        if t > clock.present:
            clock.elapsed += t - clock.present
            clock.present = t
        for gap in tracker.observe(None, event_id, clock, window):
            b = gap.before
            lost.append((gap.first_serial, gap.last_serial, b.sec, b.msec, b.serial))
        done.extend((event_id.sec, event_id.msec, event_id.serial, clock.elapsed))
        last = max(last, t)
    assert tracker.expected is not None and clock.present is not None
    after = QuietState(
        clock.present,
        clock.elapsed,
        tracker.expected,
        tracker.last_time_ms,
        [(s, i.sec, i.msec, seen) for s, (i, seen) in tracker.ahead.items()],
        state.done_ceiling,
    )
    n = len(events)
    kept = 0 if store is None else store.extend(done)
    return ScanResult(0, STOP_END, None, 0, 0, 0, 0, n, 0, last, after, done, lost, kept)


def snapshot(asm: Assembler, store: ModelStore | None = None) -> dict[str, Any]:
    """Everything of the assembler's state that a scan may touch (a store's blocks
    expanded into the entries they stand for)."""
    order: list[tuple[int, Any]] = []
    at = 0
    for elapsed, key in asm._done_order:
        if isinstance(key, int):
            assert store is not None and key > 0
            rows = store.rows[at : at + key]
            assert rows[0][3] >= elapsed, "a block's elapsed time is a lower bound"
            order.extend((r[3], (None, EventId(r[0], r[1], r[2]))) for r in rows)
            at += key
        else:
            order.append((elapsed, key))
    assert store is None or at == len(store.rows) == asm._stored
    stored = {(None, EventId(*r[:3])) for r in store.rows} if store else set()
    assert not stored & asm._done
    return {
        "state": asm.to_state(),
        "order": order,
        "done": set(asm._done) | stored,
        "restored": set(asm._restored),
        "clocks": {n: (c.present, c.elapsed, c.pending) for n, c in asm._clocks.items()},
        "gaps": {n: (g.expected, g.last_time_ms, dict(g.ahead)) for n, g in asm._gaps.items()},
    }


def record(event_id: EventId, kind: str = "SYSCALL", node: str | None = None) -> AuditRecord:
    return AuditRecord(node, kind, event_id, b"x=1", b"", 1)


# A step: ("take", dt, dserial) a plain whole event; ("fill",) a record of a missing serial
# pushed by the reference path (not plain: serial below expected); ("node", dt) an event
# of another node.
steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("take"),
            st.integers(-WINDOW, WINDOW),
            st.sampled_from([1, 1, 1, 1, 2, 3, 40]),
        ),
        st.tuples(st.just("fill")),
        st.tuples(st.just("late"), st.integers(1, 60)),
        st.tuples(st.just("node"), st.integers(0, WINDOW)),
    ),
    max_size=80,
)


def run(plan: list[tuple[Any, ...]], restored: bool) -> list[dict[str, Any]]:
    """The snapshots of three assemblers after ``plan``: events one by one, in batches,
    and in batches kept in a store (the same events and records each)."""
    one, batch, kept = (Assembler(window_ms=WINDOW) for _ in range(3))
    store = ModelStore()
    kept.keep_done_in(store)
    outputs: list[list[list[Any]]] = [[], [], []]
    if restored:
        state = {
            "watermark": [[None, 1_000_000]],
            "gaps": [[None, 10, 1_000_000, []]],
            "done": [[None, "1000.000:8"], [None, "1000.000:9"], ["n", "1000.000:3"]],
        }
        for asm in (one, batch, kept):
            asm.restore(state)
    t, serial = 1_000_000, 10
    missing: list[int] = []
    pending: list[EventId] = []
    taken: list[EventId] = []

    def flush() -> None:
        if not pending:
            return
        quiet = batch.quiet_state()
        assert quiet is not None and quiet == kept.quiet_state()
        assert all(e.serial > quiet.done_ceiling for e in pending)
        batch.absorb(scan_model(quiet, pending, WINDOW))
        kept.absorb(scan_model(quiet, pending, WINDOW, store))
        pending.clear()

    def push_all(rec: AuditRecord) -> None:
        for asm, out in zip((one, batch, kept), outputs, strict=True):
            out.append(asm.push(rec))

    for step in plan:
        if step[0] == "take":
            present = one._clocks[None].present if None in one._clocks else None
            t = max(t + step[1], (present or t) - WINDOW)
            serial += step[2]
            missing.extend(range(serial - step[2] + 1, serial))
            event_id = EventId(t // 1000, t % 1000, serial)
            assert one.maybe_push_whole(None, event_id, t) is not None
            taken.append(event_id)
            if batch.quiet_state() is None:
                assert kept.quiet_state() is None
                assert batch.maybe_push_whole(None, event_id, t) is not None
                assert kept.maybe_push_whole(None, event_id, t) is not None
            else:
                pending.append(event_id)
            continue
        flush()
        if step[0] == "fill" and missing:
            gone = EventId(t // 1000, t % 1000, missing.pop())
            push_all(record(gone))
            push_all(record(gone, "PROCTITLE"))
        elif step[0] == "node":
            other = EventId((t + step[1]) // 1000, (t + step[1]) % 1000, serial)
            push_all(record(other, "USER_START", "n"))
        elif step[0] == "late" and taken:
            # A record of an event taken earlier: "late" while it is done, else a new
            # event (the done set's answer, from the store for the kept assembler).
            again = taken[-min(step[1], len(taken))]
            present = one._clocks[None].present
            if present is None or abs(again.time_ms - present) > WINDOW // 2:
                continue  # (it would be a time jump, which this plan does not test)
            push_all(record(again, "CWD"))
            push_all(record(again, "EOE"))
    flush()
    assert outputs[0] == outputs[1] == outputs[2]
    return [snapshot(one), snapshot(batch), snapshot(kept, store)]


@settings(max_examples=300, deadline=None)
@given(steps, st.booleans())
def test_absorbing_a_batch_equals_taking_each_event(plan: list[Any], restored: bool) -> None:
    one, batch, kept = run(plan, restored)
    assert batch == one
    assert kept == one


@pytest.mark.parametrize("restored", [True, False])
@settings(max_examples=150, deadline=None)
@given(plan=steps)
def test_absorb_keeps_the_done_limit_as_the_per_event_path(plan: list[Any], restored: bool) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(assembler_module, "_DONE_LIMIT", 5)
        one, batch, kept = run(plan, restored=restored)
    assert batch == one
    assert kept == one


def test_the_session_is_a_done_store() -> None:
    """The Protocol the assembler relies on is what the test model implements."""
    store: DoneStore = ModelStore()
    assert store.done_max_serial(0, ()) == -1


def test_quiet_state_needs_a_quiet_assembler() -> None:
    asm = Assembler(window_ms=WINDOW)
    assert asm.quiet_state() is None  # no clock yet
    first = EventId(1000, 0, 5)
    assert asm.maybe_push_whole(None, first) == []
    quiet = asm.quiet_state()
    assert quiet == QuietState(1_000_000, 0, 6, 1_000_000, [], -1)
    asm.push(record(EventId(1000, 1, 6)))  # in flight
    assert asm.quiet_state() is None
    asm.push(record(EventId(1000, 1, 6), "PROCTITLE"))
    assert asm.quiet_state() is not None
    asm.push(record(EventId(1500, 0, 7)))  # a time jump pending
    asm.push(record(EventId(1500, 0, 7), "PROCTITLE"))
    assert asm.quiet_state() is None


def test_done_ceiling_covers_a_new_boot_and_daemon_records() -> None:
    asm = Assembler(window_ms=WINDOW)
    for serial in range(5000, 5010):
        asm.maybe_push_whole(None, EventId(1000, serial - 5000, serial))
    quiet = asm.quiet_state()
    assert quiet is not None and quiet.done_ceiling == -1
    # A new boot: serials restart low while the old ones are still in the done set.
    asm.push(record(EventId(1000, 20, 3)))
    asm.push(record(EventId(1000, 20, 3), "PROCTITLE"))
    quiet = asm.quiet_state()
    assert quiet is not None and quiet.expected == 4 and quiet.done_ceiling == 5009
    # Once they are pruned (four windows on), the ceiling falls again.
    for serial in range(4, 20):
        t = 1_000_020 + 90 * (serial - 3)
        assert asm.maybe_push_whole(None, EventId(t // 1000, t % 1000, serial)) is not None
    quiet = asm.quiet_state()
    assert quiet is not None and quiet.done_ceiling == -1
    # A daemon record is remembered without the tracker: covered.
    asm.push(record(EventId(1001, 500, 40), "DAEMON_START"))
    quiet = asm.quiet_state()
    assert quiet is not None and quiet.done_ceiling == 40
