"""The audit-telemetry-gap rule and telemetry documents, through the whole pipeline."""

from __future__ import annotations

from kexecwatch.core.detect.alerts import to_text_line
from kexecwatch.core.detect.detector import Detector
from kexecwatch.rules import load_builtin_rules
from tests.builders import exec_lines, join
from tests.core.detect.detections.lines import alerts, by_rule, config_change, daemon

REMOVE = 'auid=0 ses=1 op=remove_rule key="kexecwatch-exec" list=4 res=1'


def reasons(lines: list[bytes], **options: object) -> list[str]:
    found = by_rule(alerts(lines, **options))
    assert {name for name, _ in found} <= {"audit-telemetry-gap"}
    return [reason for _, reason in found]


def test_auditctl_minus_capital_d_is_one_alert_per_burst() -> None:
    lines = (
        config_change(1, REMOVE, t="1700000000.010")
        + config_change(2, REMOVE, t="1700000000.020")
        + config_change(3, REMOVE.replace("exec", "kexec"), t="1700000000.900")
        + config_change(4, REMOVE, t="1700000005.000")  # a later removal: a new alert
    )
    assert (
        reasons(lines)
        == [
            "audit rule removed (key kexecwatch-exec) by auditctl -D (pid 900): what it logged is "
            "no longer seen (further removals by this process within 1 s: same alert)",
        ]
        * 2
    )


def test_older_remove_rule_spelling_and_failed_removal() -> None:
    lines = config_change(1, 'auid=0 ses=1 op="remove rule" key=(null) list=4 res=1') + (
        config_change(2, REMOVE.replace("res=1", "res=0"), t="1700000009.000", pid=901)
    )
    assert reasons(lines) == [
        "audit rule removed by auditctl -D (pid 900): what it logged is no longer seen "
        "(further removals by this process within 1 s: same alert)"
    ]


def test_audit_disabled_but_not_enabled_or_already_off() -> None:
    lines = (
        config_change(1, "op=set audit_enabled=0 old=1 auid=0 ses=1 res=1", title="auditctl -e 0")
        + config_change(2, "op=set audit_enabled=0 old=0 auid=0 ses=1 res=1")
        + config_change(3, "op=set audit_enabled=1 old=0 auid=0 ses=1 res=1")
        + config_change(4, 'auid=0 ses=1 op=add_rule key="k" list=4 res=1')
    )
    assert reasons(lines) == [
        "auditing disabled (audit_enabled=0, was 1) by auditctl -e 0 (pid 900)"
    ]


def test_daemon_lifecycle() -> None:
    lines = [
        daemon("START", 10),  # the log's first start: orderly
        daemon("END", 11, t="1700000001.000"),
        daemon("START", 12, t="1700000002.000"),  # after an END: already reported
        daemon("START", 13, t="1700000003.000"),  # no END since the last start: a crash
        daemon("ABORT", 14, t="1700000004.000"),
    ]
    assert reasons(lines) == [
        "auditd stopped (DAEMON_END): nothing is written until it restarts",
        "auditd started again with no stop record since its previous start (killed or "
        "crashed): events of the gap may be lost",
        "auditd aborted (DAEMON_ABORT): nothing is written until it restarts",
    ]


def test_serial_gap_is_an_alert_and_still_a_diagnostic() -> None:
    lines = exec_lines(1, comm="ls", exe="/usr/bin/ls", args=("ls",)) + exec_lines(
        5, comm="ls", exe="/usr/bin/ls", args=("ls",)
    )
    found = alerts(lines)
    assert [a.reason for a in found] == ["3 audit event(s) lost: serials 2-4 missing"]
    doc = found[0].to_document()
    assert doc["event"]["category"] == ["host"]
    assert doc["event"]["action"] == "events-lost"
    assert doc["auditd"]["lost"] == {"first_serial": 2, "last_serial": 4, "count": 3}
    assert "process" not in doc
    assert found[0].id == "90e35c4d-3187-4bd6-b4a8-8404a3e7090f:-:1700000000.000:5"


def test_lost_counter_on_a_configuration_record() -> None:
    lines = config_change(1, "op=set audit_backlog_limit=64 old=8192 lost=12 auid=0 res=1")
    assert reasons(lines) == ["the kernel reports lost audit events (lost=12)"]


def test_telemetry_alert_documents_and_text_lines() -> None:
    [alert] = alerts(config_change(1, REMOVE))
    doc = alert.to_document()
    assert doc["event"]["kind"] == "alert"
    assert doc["event"]["category"] == ["configuration"]
    assert doc["event"]["action"] == "audit-rule-removed"
    assert doc["event"]["outcome"] == "success"
    assert doc["auditd"]["data"]["key"] == "kexecwatch-exec"
    assert doc["process"]["name"] == "auditctl"
    assert doc["process"]["title"] == "auditctl -D"
    assert doc["rule"]["name"] == "Audit Telemetry Gap"
    assert doc["threat"]["technique"]["subtechnique"]["id"] == ["T1562.012"]
    line = to_text_line(doc)
    assert "rule='Audit Telemetry Gap'" in line and "exe=/usr/sbin/auditctl" in line
    assert line.endswith("(further removals by this process within 1 s: same alert)")
    [lost] = alerts([daemon("END", 3)])
    assert "action=auditd-stopped reason=auditd stopped" in to_text_line(lost.to_document())


def test_upstream_ruleset_and_time_window_skip_telemetry() -> None:
    lines = config_change(1, REMOVE) + [daemon("END", 2, t="1700000100.000")]
    assert alerts(lines, ruleset="upstream") == []
    assert reasons(lines, since_ms=1700000050000) == [
        "auditd stopped (DAEMON_END): nothing is written until it restarts"
    ]


def test_without_telemetry_rules_the_telemetry_path_is_not_taken() -> None:
    det = Detector(load_builtin_rules("upstream"), host_name="h")
    assert det._telemetry_rules == []
    det.feed(join([daemon("START", 1), daemon("START", 2)]))
    assert det._telemetry._daemon == {}  # never consulted


def test_reason_shows_a_real_proctitle_as_spaced_arguments() -> None:
    # The kernel separates PROCTITLE arguments with NUL bytes (hex-encoded in the log).
    lines = config_change(1, REMOVE, title="auditctl\x00-D\x00-k\x00x")
    [reason] = reasons(lines)
    assert "by auditctl -D -k x (pid 900)" in reason
    assert "\x00" not in reason


LOST_LOG = (
    ("path", "/var/log/audit/audit.log.1"),
    ("offset", "100"),
    ("file", "dev=1 ino=2"),
    ("resumed_from", "/var/log/audit/audit.log"),
)


def test_a_log_lost_to_rotation_is_a_telemetry_alert_through_the_rules() -> None:
    det = Detector(load_builtin_rules("all"), host_name="h")
    det.feed(join(exec_lines(1, t="1700000007.250", comm="id", exe="/usr/bin/id", args=("id",))))
    det.flush()
    [alert] = det.report_lost_log(LOST_LOG)
    assert by_rule([alert]) == [
        (
            "audit-telemetry-gap",
            "checkpointed log /var/log/audit/audit.log.1 (file dev=1 ino=2) was rotated away "
            "before it was read to its end: records after byte 100 of it, and of any file "
            "rotated away after it, are lost; resumed with /var/log/audit/audit.log",
        )
    ]
    doc = alert.to_document()
    assert doc["event"]["action"] == "audit-log-lost" and doc["event"]["category"] == ["host"]
    assert doc["auditd"]["data"] == dict(LOST_LOG)
    assert doc["@timestamp"] == "2023-11-14T22:13:27.250Z"  # the last record read
    assert doc["event"]["id"] == alert.id
    # Again after a restart from the same state: the same id, so the journal drops it.
    again = Detector(load_builtin_rules("all"), host_name="h")
    again.restore(det.to_state())
    assert [a.id for a in again.report_lost_log(LOST_LOG)] == [alert.id]


def test_a_lost_log_without_telemetry_rules_alerts_nothing() -> None:
    assert Detector(load_builtin_rules("upstream"), host_name="h").report_lost_log(LOST_LOG) == []
