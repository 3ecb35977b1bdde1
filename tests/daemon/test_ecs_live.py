"""A running daemon's alert documents are ECS, by name and type (issue 14)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kexecwatch.adapters.daemon.follower import Gap
from kexecwatch.adapters.daemon.logfiles import FileIdentity, Position
from kexecwatch.adapters.session import Session
from kexecwatch.core.detect.alerts import Alert, to_json_line
from kexecwatch.core.detect.detector import DetectorOptions
from kexecwatch.rules import load_builtin_rules
from tests import ecs
from tests.builders import exec_lines, join
from tests.daemon.harness import Daemon, FakeAuditd

pytestmark = pytest.mark.skipif(
    not ecs.ECS_FLAT.is_file(), reason=f"ECS definitions not found at {ecs.ECS_FLAT}"
)


def test_live_alert_documents_are_ecs(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    writer = FakeAuditd(log)
    daemon = Daemon(tmp_path, log)
    writer.emit(kexec=True)  # with a tty, every id and a proctitle
    writer.emit(kexec=True, args=("kexec", "-e"))
    daemon.wait_alerts(2)
    assert daemon.stop() == 0
    docs = [json.loads(line) for line in daemon.alerts.read_text().splitlines()]
    assert [ecs.problems(d) for d in docs] == [[] for _ in docs]
    assert all(d["event"]["kind"] == "alert" and d["event"]["id"] for d in docs)


def test_the_telemetry_gap_alert_is_ecs() -> None:
    lost = Position(FileIdentity(1, 2, "ab" * 32, 64), 100, "/var/log/audit/audit.log.1")
    session = Session(load_builtin_rules(), host_name="h", options=DetectorOptions())
    session.feed(join(exec_lines(1, comm="id", exe="/usr/bin/id", args=("id",))))
    [alert] = session.follow(Gap(lost, "/var/log/audit/audit.log"), 0.0)
    assert isinstance(alert, Alert)
    doc = json.loads(to_json_line(alert.to_document()))
    assert ecs.problems(doc) == []
    assert doc["event"]["id"] == alert.id
