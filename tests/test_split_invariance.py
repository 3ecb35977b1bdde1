"""Any split of a real recording gives the same outputs as the whole (hypothesis)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from kexecwatch.core.detect.alerts import Alert, to_json_line
from kexecwatch.core.detect.detector import Detector, DetectorOptions
from kexecwatch.core.process.events import ProcessEvent
from kexecwatch.rules import load_builtin_rules
from tests.builders import feed_in_pieces

ROOT = Path(__file__).resolve().parent.parent
# Long arguments split over EXECVE records, hostile bytes, and a failed exec.
LOGS = [
    (ROOT / "fixtures/audit/enriched/v7-long-arg.log").read_bytes(),
    (ROOT / "fixtures/audit/raw/v7-hostile-args.log").read_bytes(),
    (ROOT / "fixtures/audit/enriched/telemetry-gap.log").read_bytes(),
]
RULES = load_builtin_rules()


def rendered(data: bytes, cuts: list[int]) -> list[str]:
    det = Detector(RULES, host_name="split", options=DetectorOptions(emit_events=True))
    out = feed_in_pieces(det, data, cuts)
    lines = []
    for item in out:
        if isinstance(item, Alert | ProcessEvent):
            lines.append(to_json_line(item.to_document()).decode())
        else:
            lines.append(repr(item))
    return lines


WHOLE = [rendered(data, []) for data in LOGS]


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=len(LOGS) - 1), st.data())
def test_any_split_of_a_recording_gives_the_same_outputs(index: int, data: st.DataObject) -> None:
    log = LOGS[index]
    cuts = data.draw(st.lists(st.integers(min_value=0, max_value=len(log)), max_size=40))
    assert rendered(log, cuts) == WHOLE[index]


def test_the_recordings_produce_something() -> None:
    assert all(any('"kind":"alert"' in line for line in lines) for lines in WHOLE)
