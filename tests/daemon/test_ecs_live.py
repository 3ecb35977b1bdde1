"""A running daemon's alert documents are ECS, by name and type (issue 14)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kexecwatch.adapters.coreglue import gap_record
from kexecwatch.adapters.follower import Gap
from kexecwatch.adapters.logfiles import FileIdentity, Position
from tests import ecs
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
    record = gap_record(Gap(lost, "/var/log/audit/audit.log"), "h")
    doc = json.loads(record.json_line)
    assert ecs.problems(doc) == []
    assert doc["event"]["id"] == record.alert_id
