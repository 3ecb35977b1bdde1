"""A sequence rule half-seen before a restart of ``kexecwatch run`` completes after it:
the partial sequence travels in the checkpoint (before: sequence rules did not load)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.daemon.harness import Daemon, FakeAuditd
from tests.test_check_rule import V7

QUERY = (
    "sequence by host.name, user.id with maxspan=1m\n"
    '  [process where process.name == "ls"]\n'
    '  [process where process.name == "kexec"]'
)


def sequence_rule(tmp: Path) -> Path:
    start = V7.index("query = '''")
    end = V7.index("'''", start + len("query = '''")) + 3
    path = tmp / "sequence.toml"
    path.write_text(V7[:start] + f"query = '''\n{QUERY}\n'''" + V7[end:], encoding="utf-8")
    return path


def test_partial_sequence_survives_a_restart_and_alerts_once(tmp_path: Path) -> None:
    rule = sequence_rule(tmp_path)
    args = ("--rule", str(rule), "--no-builtin-rules")
    log = tmp_path / "audit.log"
    w = FakeAuditd(log)
    d = Daemon(tmp_path, log, extra_args=args)
    w.emit()  # ls: the first stage
    time.sleep(1.5)  # checkpoints happen every 0.5 s
    assert d.stop() == 0
    assert d.alert_ids() == []
    state = json.loads((tmp_path / "state" / "checkpoint.json").read_text())
    assert "sequences" in json.dumps(state)

    d2 = Daemon(tmp_path, log, extra_args=args)
    w.emit(kexec=True)  # the second stage, after the restart
    (alert_id,) = d2.wait_alerts(1)
    doc = json.loads(d2.alerts.read_text().splitlines()[0])
    events = doc["kexecwatch"]["sequence"]["events"]
    assert [e["process"]["name"] for e in events] == ["ls", "kexec"]
    assert alert_id == doc["event"]["id"]
    assert doc["kexecwatch"]["sequence"]["join"] == {"host.name": "testhost", "user.id": "0"}
    d2.wait_log("sequences_dropped=0")  # the status line counts partials let go
    assert d2.stop() == 0

    d3 = Daemon(tmp_path, log, extra_args=args)  # nothing new: no second alert
    time.sleep(1.5)
    assert d3.stop() == 0
    assert d3.alert_ids() == [alert_id]
