"""Outputs that cannot be jammed (issue 16 §4): a real daemon, real sockets, a real full disk."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from kexecwatch.adapters.daemon.sinks import SYSLOG_MAX_BYTES
from tests.daemon.harness import Daemon, FakeAuditd, audit_ids
from tests.smallfs import fill, small_tmpfs

pytestmark = pytest.mark.slow


def test_a_70kb_argument_does_not_jam_udp_syslog(tmp_path: Path, udp_server: socket.socket) -> None:
    port = udp_server.getsockname()[1]
    w = FakeAuditd(tmp_path / "audit.log")
    d = Daemon(tmp_path, w.path, outputs=(f"syslog://127.0.0.1:{port}",))
    huge = "A" * 70_000  # any local user can exec kexec with arguments like this
    w.emit(kexec=True, args=("kexec", "-l", huge))
    w.emit(kexec=True)
    d.wait_alerts(2)
    first, second = (json.loads(x) for x in d.alerts.read_text().splitlines())
    assert first["process"]["args"][2] == huge  # the JSON output keeps every byte
    messages = [udp_server.recv(1 << 17) for _ in range(2)]
    assert all(len(m) <= SYSLOG_MAX_BYTES for m in messages)
    docs = [json.loads(m.split(b"\xef\xbb\xbf", 1)[1]) for m in messages]
    assert [doc["event"]["id"] for doc in docs] == [first["event"]["id"], second["event"]["id"]]
    assert docs[0]["process"]["args"][2].endswith(" bytes)")
    assert docs[1]["process"] == second["process"]  # a normal alert goes whole
    d.wait_log("output_dropped=0")  # shortened, so nothing was dropped
    assert d.stop() == 0


def test_a_full_state_dir_then_kill_9_delivers_each_alert_once(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "state", "16m") as state:
        w = FakeAuditd(tmp_path / "audit.log")
        d = Daemon(tmp_path, w.path, state=state)
        while not (state / "checkpoint.json").exists():
            time.sleep(0.05)
        fill(state / "filler")  # nothing more fits: checkpoints fail from now on
        burst = []
        for _ in range(600):
            w.t += 3_000  # 3 s apart: under the rule's 100 alerts per 5 minutes
            burst += w.event(kexec=True)
        w.write(b"".join(burst))
        d.wait_alerts(600, timeout=120)
        d.wait_log("event=checkpoint_failed")
        time.sleep(0.5)  # the last deliveries reach the journal
        d.kill()
        (state / "filler").unlink()
        d = Daemon(tmp_path, w.path, state=state)
        w.emit(kexec=True)
        d.wait_alerts(601, timeout=120)
        time.sleep(1.0)  # a repeat would arrive right behind
        ids = audit_ids(d.alert_ids())
        assert d.stop() == 0
    assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} alerts delivered twice"
    assert sorted(ids) == sorted(w.expected)
