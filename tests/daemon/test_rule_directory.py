"""``kexecwatch run --rule DIR``: a directory of rules in the daemon, and after a SIGHUP.

A real daemon process follows a log that a fake auditd writes. The directory is a small
detection-rules checkout (tests/test_rule_source.py): what it skipped and could not load
goes to the daemon log as ``rules_loaded``, the versions come from its lock file, and a
rule added to the directory runs after a SIGHUP.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

from tests.daemon.harness import Daemon, FakeAuditd
from tests.test_check_rule import rule_file
from tests.test_rule_source import V7_ID, checkout


def _rules(d: Daemon) -> list[tuple[str, str]]:
    docs = [json.loads(line) for line in d.alerts.read_text().splitlines()]
    return [(doc["rule"]["name"], doc["rule"]["version"]) for doc in docs]


def test_the_daemon_runs_a_rule_directory_and_rereads_it_on_sighup(tmp_path: Path) -> None:
    rules = checkout(tmp_path / "checkout", lock={V7_ID: {"version": 11}})
    log = tmp_path / "audit.log"
    w = FakeAuditd(log)
    d = Daemon(tmp_path, log, extra_args=("--rule", str(rules), "--no-builtin-rules"))
    w.emit(kexec=True)
    d.wait_alerts(2)
    assert sorted(_rules(d)) == [
        ("Copy of Kernel Load or Unload via Kexec Detected", "1"),
        ("Kernel Load or Unload via Kexec Detected", "11"),
    ]
    own = d.stderr()
    assert "rules_loaded" in own and "f_broken.toml" in own
    assert "2 rules loaded" in own and "skipped 1 KQL, 1 ES|QL" in own

    rule_file(
        rules,
        "z_added.toml",
        (V7_ID, "00000000-0000-4000-8000-000000000009"),
        ('name = "Kernel Load', 'name = "Added Kernel Load'),
    )
    d.proc.send_signal(signal.SIGHUP)
    d.wait_log("reloaded")
    w.emit(kexec=True)
    d.wait_alerts(5)
    assert sorted(_rules(d)[2:]) == [
        ("Added Kernel Load or Unload via Kexec Detected", "7"),
        ("Copy of Kernel Load or Unload via Kexec Detected", "1"),
        ("Kernel Load or Unload via Kexec Detected", "11"),
    ]
    assert d.stop() == 0
