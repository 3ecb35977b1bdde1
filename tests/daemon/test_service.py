"""Service behaviour of a real daemon process: signals, exit codes, state directory."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

from tests.daemon.harness import RUNNER, alerted_once


def run_once(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RUNNER, *args], capture_output=True, text=True, timeout=60, check=False)


def test_bad_output_spec_exits_2_naming_it(tmp_path: Path) -> None:
    r = run_once(
        "--log",
        str(tmp_path / "a.log"),
        "--state-dir",
        str(tmp_path / "s"),
        "--output",
        "syslog://nohost",
    )
    assert r.returncode == 2
    assert "syslog://nohost" in r.stderr


def test_unknown_config_key_exits_2(tmp_path: Path) -> None:
    cfg = tmp_path / "k.toml"
    cfg.write_text("state_dir = '/x'\n")
    r = run_once("--config", str(cfg))
    assert r.returncode == 2
    assert "unknown key 'state_dir'" in r.stderr


def test_symlinked_state_dir_exits_2(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    r = run_once("--log", str(tmp_path / "a.log"), "--state-dir", str(tmp_path / "link"))
    assert r.returncode == 2
    assert "symlink" in r.stderr


def test_sigterm_checkpoints_and_exits_0(tmp_path: Path) -> None:
    w, d = alerted_once(tmp_path)
    assert d.stop() == 0
    cp = json.loads((tmp_path / "state" / "checkpoint.json").read_text())
    assert cp["position"]["offset"] == w.path.stat().st_size
    assert len(cp["recent_alert_ids"]) == 1
    assert "event=status lines=7 " in d.stderr()


def test_sighup_reopens_json_output_and_keeps_rules_on_a_bad_rule(tmp_path: Path) -> None:
    w, d = alerted_once(tmp_path)
    d.alerts.rename(tmp_path / "alerts.ndjson.1")  # logrotate
    (tmp_path / "k.toml").write_text("rules = ['/nonexistent.toml']\npoll-interval = 0.2\n")
    d.proc.send_signal(signal.SIGHUP)
    d.wait_log("event=rules_reload_failed")
    time.sleep(0.3)
    w.emit(kexec=True)
    assert len(d.wait_alerts(1)) == 1  # the new file got the second alert
    assert d.stop() == 0
