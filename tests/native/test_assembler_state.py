"""The native scan moves the assembler's state exactly as the Python assembler does.

Random streams of single-record events (times near and far, serials in order, skipped,
repeated, late, reset) go to a Python :class:`Assembler` record by record, and to the
native scan from the quiet state that assembler has. Whatever native takes must leave
the same clock (present, elapsed), serial tracker (expected, last_time_ms, the serials
ahead in their dict order) and lost reports as pushing the records did; whatever it
hands back is pushed in Python and the comparison goes on from there.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from kexecwatch.core.audit.assembler import Assembler, EventsLost
from kexecwatch.core.audit.record import AuditRecord, parse_record
from kexecwatch.native import STOP_END, STOP_HANDBACK, NativeLib, QuietState

WINDOW = 5000


def _quiet(assembler: Assembler) -> QuietState | None:
    clock = assembler._clocks.get(None)
    gaps = assembler._gaps.get(None)
    if (
        assembler.inflight
        or clock is None
        or clock.present is None
        or clock.pending is not None
        or gaps is None
        or gaps.expected is None
    ):
        return None
    done = [key[1].serial for key in assembler._done if key[0] is None]
    return QuietState(
        present=clock.present,
        elapsed=clock.elapsed,
        expected=gaps.expected,
        last_time_ms=gaps.last_time_ms,
        ahead=[(s, eid.sec, eid.msec, seen) for s, (eid, seen) in gaps.ahead.items()],
        done_ceiling=max(done, default=-1),
    )


def _stream(rng: random.Random, n: int) -> list[bytes]:
    time_ms, serial = 1_700_000_000_000, 1000
    lines = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.6:
            time_ms += rng.randrange(0, 400)
            serial += 1
        elif roll < 0.75:
            serial += rng.randrange(2, 8)  # lost events
            time_ms += rng.randrange(0, 3000)
        elif roll < 0.85:
            serial -= rng.randrange(1, 4)  # late or repeated
        elif roll < 0.9:
            time_ms += rng.choice([-1, 1]) * rng.randrange(4000, 9000)  # near/over a window
        elif roll < 0.95:
            time_ms += rng.randrange(5001, 20000)  # a quiet log or a clock step
            serial += 1
        else:
            serial = rng.randrange(1, 50)  # a new boot
        lines.append(
            b"type=USER_CMD msg=audit(%d.%03d:%d): pid=1 cmd=6C73"
            % (time_ms // 1000, time_ms % 1000, serial)
        )
    return lines


def _lost(items: list[Any]) -> list[tuple[int, int, int, int, int]]:
    return [
        (i.first_serial, i.last_serial, i.before.sec, i.before.msec, i.before.serial)
        for i in items
        if isinstance(i, EventsLost)
    ]


def compare(native_lib: NativeLib, seed: int) -> int:
    """Run one stream both ways, comparing as it goes; returns the lost reports seen."""
    rng = random.Random(seed)
    lines = _stream(rng, 600)
    buf = b"".join(line + b"\n" for line in lines)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    session = native_lib.new_session(
        window_ms=WINDOW,
        max_entries=100,
        max_args_bytes=1000,
        max_lateness_ms=WINDOW,
        since_ms=None,
        until_ms=None,
        live=False,
        single_types=["USER_CMD"],
        fault_on=None,
    )
    python = Assembler(window_ms=WINDOW)
    index = 0
    taken = 0
    reported = 0
    try:
        while index < len(lines):
            state = _quiet(python)
            if state is not None:
                result = session.scan(buf, starts[index], state)
                assert result.stop in (STOP_END, STOP_HANDBACK)
                lost: list[Any] = []
                for _ in range(result.events):
                    record = parse_record(lines[index])
                    assert isinstance(record, AuditRecord)
                    lost += python.push(record)
                    index += 1
                assert starts[index] == result.end
                after = _quiet(python)
                assert after is not None
                assert result.state.present == after.present
                assert result.state.elapsed == after.elapsed
                assert result.state.expected == after.expected
                assert result.state.last_time_ms == after.last_time_ms
                assert result.state.ahead == after.ahead
                assert result.lost == _lost(lost)
                reported += len(result.lost)
                taken += result.events
                if result.stop == STOP_END:
                    break
            record = parse_record(lines[index])
            assert isinstance(record, AuditRecord)
            python.push(record)
            index += 1
    finally:
        session.close()
    assert taken > 40, taken
    return reported


@pytest.mark.parametrize("seed", range(12))
def test_native_state_is_the_assemblers(native_lib: NativeLib, seed: int) -> None:
    compare(native_lib, seed)


def test_lost_reports_are_compared(native_lib: NativeLib) -> None:
    assert sum(compare(native_lib, seed) for seed in range(12)) > 0
