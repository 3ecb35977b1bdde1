"""A running daemon and a replay of the same log give the same host.id and entity ids.

And the daemon's host.id defaults to the machine id (issue 15, "Fields from the audit trail").
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kexecwatch.hostid import machine_id
from tests.daemon.harness import Daemon, FakeAuditd

ROOT = Path(__file__).resolve().parents[2]
RECORDING = ROOT / "fixtures" / "audit" / "raw" / "all-scenarios.log"
HOST_ID = "0f0e0d0c0b0a09080706050403020100"


def by_alert_id(lines: list[str]) -> dict[str, dict[str, Any]]:
    docs = [json.loads(line) for line in lines if line.strip()]
    return {d["event"]["id"]: d for d in docs if d.get("event", {}).get("kind") == "alert"}


def test_daemon_and_replay_give_the_same_entity_ids(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    shutil.copyfile(RECORDING, log)
    replayed = subprocess.run(
        [sys.executable, "-m", "kexecwatch", "replay", "--host-name", "testhost"]
        + ["--host-id", HOST_ID, "--events-as", "defend", str(RECORDING)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert replayed.returncode == 1, replayed.stderr  # alerts found
    expected = by_alert_id(replayed.stdout.splitlines())
    assert len(expected) > 20
    daemon = Daemon(tmp_path, log, extra_args=("--host-id", HOST_ID, "--events-as", "defend"))
    daemon.wait_alerts(len(expected))
    assert daemon.stop() == 0
    live = by_alert_id(daemon.alerts.read_text().splitlines())
    assert live.keys() == expected.keys()
    for alert_id, doc in live.items():
        want = expected[alert_id]
        assert doc["host"]["id"] == HOST_ID
        assert doc["event"]["action"] == want["event"]["action"] == "exec"
        assert doc["process"]["entity_id"] == want["process"]["entity_id"], alert_id
        if want["auditd"]["parent_source"] == "event":
            assert doc["process"]["parent"]["entity_id"] == want["process"]["parent"]["entity_id"]
            assert doc["process"]["parent"]["user"] == want["process"]["parent"]["user"]


@pytest.mark.skipif(machine_id() is None, reason="this host has no readable machine id")
def test_daemon_host_id_defaults_to_the_machine_id(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    writer = FakeAuditd(log)
    daemon = Daemon(tmp_path, log)
    writer.emit(kexec=True)
    daemon.wait_alerts(1)
    assert daemon.stop() == 0
    [doc] = [json.loads(line) for line in daemon.alerts.read_text().splitlines()]
    assert doc["host"]["id"] == machine_id()
    assert doc["event"]["action"] == "executed"
