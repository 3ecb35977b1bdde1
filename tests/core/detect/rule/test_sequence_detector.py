"""Sequence rules in the detector: real audit lines in, one alert per completed sequence
carrying its events, record-time order, and the detector's snapshot."""

from __future__ import annotations

import json
from pathlib import Path

from kexecwatch.core.detect.alerts import Alert
from kexecwatch.core.detect.detector import Detector
from kexecwatch.core.detect.rule.ruleset import Rule, load_rule
from tests.builders import exec_lines, join

ROOT = Path(__file__).resolve().parents[4]
V7 = (
    ROOT / "kexecwatch/rules/privilege_escalation_load_and_unload_of_kernel_via_kexec.toml"
).read_text(encoding="utf-8")


def sequence_rule(query: str) -> Rule:
    start = V7.index("query = '''")
    end = V7.index("'''", start + len("query = '''")) + 3
    return load_rule(V7[:start] + f"query = '''\n{query}\n'''" + V7[end:], "seq.toml")


RULE = sequence_rule(
    "sequence by host.name, user.id with maxspan=30s\n"
    '  [process where process.name == "id"]\n'
    '  [process where process.name == "whoami"]'
)


def run_of(name: str, serial: int, t: str, uid: int = 1000) -> list[bytes]:
    return exec_lines(serial, t=t, comm=name, exe=f"/usr/bin/{name}", args=(name,), uid=uid)


def alerts(det: Detector, data: bytes) -> list[Alert]:
    out = det.feed(data) + det.flush()
    return [o for o in out if isinstance(o, Alert)]


def test_a_completed_sequence_alerts_once_with_its_events() -> None:
    det = Detector([RULE], host_name="h")
    log = join(
        run_of("id", 1, "1700000000.000")
        + run_of("whoami", 2, "1700000010.000")
        + run_of("whoami", 3, "1700000011.000")
    )
    (alert,) = alerts(det, log)
    doc = alert.to_document()
    assert doc["rule"]["name"] == RULE.name
    assert doc["event"]["kind"] == "alert"
    assert doc["event"]["id"] == f"{RULE.rule_id}:h:1700000000.000:1..1700000010.000:2"
    assert doc["process"]["name"] == "whoami"
    sequence = doc["kexecwatch"]["sequence"]
    assert sequence["kind"] == "sequence"
    assert sequence["join"] == {"host.name": "h", "user.id": "1000"}
    assert [e["process"]["name"] for e in sequence["events"]] == ["id", "whoami"]
    assert [e["auditd"]["id"] for e in sequence["events"]] == [
        "1700000000.000:1",
        "1700000010.000:2",
    ]
    assert doc["event"]["reason"].startswith("sequence of 2 events by host.name=h user.id=1000")
    json.dumps(doc)  # JSON-ready


def test_maxspan_just_missed_and_another_user_do_not_alert() -> None:
    late = join(run_of("id", 1, "1700000000.000") + run_of("whoami", 2, "1700000030.001"))
    assert alerts(Detector([RULE], host_name="h"), late) == []
    other = join(run_of("id", 1, "1700000000.000") + run_of("whoami", 2, "1700000001.000", 1001))
    assert alerts(Detector([RULE], host_name="h"), other) == []


def test_events_written_out_of_order_match_in_record_time_order() -> None:
    # whoami's records reach the log before id's, though id ran first.
    log = join(run_of("whoami", 2, "1700000001.000") + run_of("id", 1, "1700000000.500"))
    (alert,) = alerts(Detector([RULE], host_name="h"), log)
    names = [e["process"]["name"] for e in alert.to_document()["kexecwatch"]["sequence"]["events"]]
    assert names == ["id", "whoami"]


def test_detector_snapshot_carries_a_partial_sequence_across_a_restart() -> None:
    first = Detector([RULE], host_name="h")
    first.feed(join(run_of("id", 1, "1700000000.000") + run_of("ls", 2, "1700000006.000")))
    state = json.loads(json.dumps(first.to_state()))
    assert state["sequences"]["rules"][RULE.rule_id]["partials"]
    second = Detector([RULE], host_name="h")
    second.restore(state)
    (alert,) = alerts(second, join(run_of("whoami", 3, "1700000007.000")))
    assert alert.id.endswith("1700000000.000:1..1700000007.000:3")


def test_a_reload_keeps_the_partial_sequences_of_unchanged_rules() -> None:
    det = Detector([RULE], host_name="h")
    det.feed(join(run_of("id", 1, "1700000000.000") + run_of("ls", 2, "1700000006.000")))
    det.replace_rules([RULE])
    assert len(alerts(det, join(run_of("whoami", 3, "1700000007.000")))) == 1


def test_sequence_alerts_count_against_the_rule_limit() -> None:
    det = Detector([RULE], host_name="h")
    lines: list[bytes] = []
    start = 1_699_999_800  # a multiple of the rule's 5 minute interval
    for i in range(RULE.max_signals + 3):
        lines += run_of("id", 2 * i + 1, f"{start + i}.000")
        lines += run_of("whoami", 2 * i + 2, f"{start + i}.001")
    out = det.feed(join(lines)) + det.flush()
    assert sum(isinstance(o, Alert) for o in out) == RULE.max_signals
    assert det.stats.suppressed == 3


# A missing last event: the sequence alerts once record time passes first + maxspan.
TRAILING = sequence_rule(
    "sequence by host.name, user.id with maxspan=5s\n"
    '  [process where process.name == "id"]\n'
    '  ![process where process.name == "whoami"]'
)


def test_a_due_sequence_alerts_at_the_next_event_of_any_kind() -> None:
    # "ls" matches no stage, so the rule index and the prefilters keep it from the rule;
    # its record time still closes the window, in the middle of the stream, not at its end.
    log = join(run_of("id", 1, "1700000000.000") + run_of("ls", 2, "1700000060.000"))
    det = Detector([TRAILING], host_name="h")
    (alert,) = [o for o in det.feed(log) if isinstance(o, Alert)]
    assert [e["process"]["name"] for e in alert.to_document()["kexecwatch"]["sequence"]["events"]]
    assert [o for o in det.flush() if isinstance(o, Alert)] == []


def test_a_due_sequence_alerts_when_the_log_is_idle() -> None:
    det = Detector([TRAILING], host_name="h")
    first = det.feed(join(run_of("id", 1, "1700000000.000")))
    assert [o for o in first if isinstance(o, Alert)] == []
    assert [o for o in det.expire_idle(1_000) if isinstance(o, Alert)] == []
    assert len([o for o in det.expire_idle(60_000) if isinstance(o, Alert)]) == 1


def test_sequences_follow_the_record_clock_of_every_event() -> None:
    # "ls" matches no stage: the rule is never shown it, yet it moves record time 100 s
    # on, past the reorder window of the later-written id and whoami (another source
    # replayed after it). They are matched at once, as when every rule sees every event,
    # not held until the end of the input.
    log = join(
        run_of("ls", 1, "1700000100.000")
        + run_of("id", 2, "1700000000.000")
        + run_of("whoami", 3, "1700000000.500")
    )
    det = Detector([RULE], host_name="h")
    (alert,) = [o for o in det.feed(log) if isinstance(o, Alert)]
    assert alert.to_document()["auditd"]["id"] == "1700000000.500:3"
    assert [o for o in det.flush() if isinstance(o, Alert)] == []
