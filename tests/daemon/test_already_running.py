"""A real ``kexecwatch run --events-as defend``: Defend's already_running events at start-up.

A process tree shaped like an rc.local script's leftover (``sh`` with ``/etc/rc.local start``
in its argv, still running a ``sleep``) exists before the daemon starts; the daemon's
start-up ``/proc`` scan must alert on it with the snapshot's "Potential Execution of
rc.local Script" rule, once, and not at all in Auditbeat's vocabulary. Skips, saying so,
without the snapshot in ../shared.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon.harness import Daemon, FakeAuditd
from tests.test_rule_source import SNAPSHOT, needs_snapshot

RULE = SNAPSHOT / "rules" / "linux" / "persistence_rc_local_service_already_running.toml"


@pytest.fixture
def leftover() -> Iterator[int]:
    """The pid of a ``sleep`` whose parent ran ``sh -c ... /etc/rc.local start``."""
    script = subprocess.Popen(["sh", "-c", "sleep 120; true", "/etc/rc.local", "start"])
    try:
        children = Path(f"/proc/{script.pid}/task/{script.pid}/children")
        deadline = time.monotonic() + 10
        while not children.read_text().split() and time.monotonic() < deadline:
            time.sleep(0.02)
        (pid,) = (int(p) for p in children.read_text().split())
        yield pid
    finally:
        script.kill()
        script.wait()


def run_daemon(tmp_path: Path, events_as: str) -> tuple[Daemon, FakeAuditd]:
    log = tmp_path / "audit.log"
    auditd = FakeAuditd(log)
    args = ("--rule", str(RULE), "--no-builtin-rules", "--events-as", events_as)
    return Daemon(tmp_path, log, extra_args=args), auditd


@needs_snapshot
def test_the_daemon_alerts_on_an_rc_local_leftover_found_at_start(
    tmp_path: Path, leftover: int
) -> None:
    d, auditd = run_daemon(tmp_path, "defend")
    d.wait_alerts(1)
    auditd.emit(kexec=True)  # the log is followed on as usual
    time.sleep(1.0)
    docs = [json.loads(line) for line in d.alerts.read_text().splitlines()]
    assert d.stop() == 0
    mine = [doc for doc in docs if doc["process"]["pid"] == leftover]
    assert len(mine) == 1
    (doc,) = mine
    assert doc["rule"]["name"] == "Potential Execution of rc.local Script"
    assert doc["event"]["action"] == "already_running"
    assert doc["process"]["parent"]["args"][-2:] == ["/etc/rc.local", "start"]


@needs_snapshot
def test_auditbeats_vocabulary_has_no_already_running_events(tmp_path: Path, leftover: int) -> None:
    d, auditd = run_daemon(tmp_path, "auditbeat")
    auditd.emit(kexec=True)
    d.wait_log("event=status")
    assert d.stop() == 0
    assert not d.alerts.exists() or d.alerts.read_text() == ""
