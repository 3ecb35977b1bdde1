"""Elastic Defend's already_running events: the daemon's start-up /proc scan, under defend.

The unit tests feed the detector ``/proc`` entries as the live shell reads them; the last
test scans the real ``/proc`` through the daemon's session with two of the snapshot's rules
and a real process tree shaped like an rc.local script's leftover.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

from kexecwatch.adapters.session import Session
from kexecwatch.core.detect.alerts import Alert
from kexecwatch.core.detect.detector import Detector, DetectorOptions
from kexecwatch.core.detect.rule.ruleset import load_rule
from kexecwatch.core.process.events import ProcessEvent
from kexecwatch.core.process.table import LiveProcess
from kexecwatch.rules import load_builtin_rules
from tests.test_rule_source import SNAPSHOT, needs_snapshot

CREDS = b"auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295"
INIT = LiveProcess(1, 0, b"systemd", b"/usr/lib/systemd/systemd", (b"/sbin/init",), 1_000, CREDS)
SHELL = LiveProcess(
    300, 1, b"bash", b"/usr/bin/bash", (b"bash", b"/opt/boot.sh"), 2_000, CREDS, sid=300, pgid=300
)
NOW = 1_700_000_000_123


def running(events_as: str, *lives: LiveProcess) -> list[Any]:
    det = Detector(
        [], host_name="h", options=DetectorOptions(emit_events=True, events_as=events_as)
    )
    for live in lives:
        det.table.add_live(live)
    return [o for live in lives for o in det.running(live, NOW)]


def test_each_process_found_at_start_is_an_already_running_event() -> None:
    init, shell = running("defend", INIT, SHELL)
    assert isinstance(shell, ProcessEvent) and isinstance(init, ProcessEvent)
    doc = shell.to_document()
    assert doc["event"] == {
        "kind": "event",
        "category": ["process"],
        "type": ["info"],
        "action": "already_running",
        "outcome": "success",
        "module": "auditd",
    }
    process = doc["process"]
    assert (process["pid"], process["name"], process["args_count"]) == (300, "bash", 2)
    assert process["parent"]["name"] == "systemd"
    assert process["parent"]["command_line"] == "/sbin/init"
    assert process["parent"]["entity_id"] == init.to_document()["process"]["entity_id"]
    assert process["user"] == {"id": "0"} and process["interactive"] is False
    assert process["session_leader"]["same_as_process"] is True
    assert process["entry_leader"]["entry_meta"] == {"type": "init"}
    assert doc["@timestamp"] == "2023-11-14T22:13:20.123Z"
    assert "syscall" not in doc["auditd"] and "sequence" not in doc["auditd"]
    # the pid is the serial: one alert id per process of a scan
    assert str(shell.id) != str(init.id)


def test_only_defends_vocabulary_has_them() -> None:
    assert running("auditbeat", INIT, SHELL) == []


def snapshot_rules() -> list[Any]:
    names = ("persistence_rc_local_service_already_running", "persistence_systemd_shell_execution")
    paths = [SNAPSHOT / "rules" / "linux" / f"{n}.toml" for n in names]
    return [load_rule(p.read_text(encoding="utf-8"), str(p)) for p in paths]


@needs_snapshot
def test_the_systemd_shell_rule_fires_on_a_boot_shell() -> None:
    det = Detector(snapshot_rules(), host_name="h", options=DetectorOptions(events_as="defend"))
    det.table.add_live(INIT)
    det.table.add_live(SHELL)
    (alert,) = det.running(SHELL, NOW)
    assert isinstance(alert, Alert)
    assert alert.rule.name == "Systemd Shell Execution During Boot"
    assert det.running(INIT, NOW) == []


@needs_snapshot
def test_the_daemons_start_up_scan_finds_an_rc_local_leftover(tmp_path: Path) -> None:
    # sh keeps running (two commands) with "/etc/rc.local start" in its argv, as
    # rc-local.service runs the script; its sleep is what Defend would report.
    script = subprocess.Popen(["sh", "-c", "sleep 60; true", "/etc/rc.local", "start"])
    try:
        deadline = time.monotonic() + 10
        children = Path(f"/proc/{script.pid}/task/{script.pid}/children")
        while not children.read_text().split() and time.monotonic() < deadline:
            time.sleep(0.02)
        (sleep_pid,) = (int(p) for p in children.read_text().split())
        session = Session(
            snapshot_rules(),
            host_name="h",
            options=DetectorOptions(events_as="defend"),
            live=True,
        )
        assert session.seed() > 2
        alerts = [o for o in session.take_seeded() if isinstance(o, Alert)]
        assert session.take_seeded() == []
    finally:
        script.kill()
        script.wait()
    rc_local = [a for a in alerts if a.rule.name == "Potential Execution of rc.local Script"]
    assert sleep_pid in {a.event.pid for a in rc_local}
    for alert in rc_local:
        assert isinstance(alert.event, ProcessEvent)
        assert alert.event.to_document()["event"]["action"] == "already_running"


def test_the_auditbeat_scan_still_only_seeds(tmp_path: Path) -> None:
    session = Session([], host_name="h", options=DetectorOptions(emit_events=True), live=True)
    assert session.seed() > 2
    assert session.take_seeded() == []
    assert len(session.detector.table) > 2


def test_the_builtin_rules_never_alert_on_a_running_process() -> None:
    """--events-as defend never changes what the v7 kexec rule (and kexecwatch's own)
    alert on: a kexec found running is no exec."""
    kexec = LiveProcess(
        400, 1, b"kexec", b"/usr/sbin/kexec", (b"kexec", b"-l", b"/boot/vmlinuz"), 2_000, CREDS
    )
    det = Detector(load_builtin_rules(), host_name="h", options=DetectorOptions(events_as="defend"))
    det.table.add_live(INIT)
    det.table.add_live(kexec)
    assert det.running(kexec, NOW) == []
