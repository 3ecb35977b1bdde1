"""Issue 16 §3: a SIGHUP after a rule edit beyond the parser's limits keeps the old rules.

Before: 300 nested parentheses raised RecursionError on reload and the daemon died.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from kexecwatch.core.detect.rule.parser import MAX_NESTING
from tests.daemon.harness import Daemon, FakeAuditd
from tests.test_check_rule import V7


def test_sighup_with_a_too_deep_rule_logs_it_and_keeps_alerting(tmp_path: Path) -> None:
    rule = tmp_path / "mine.toml"
    rule.write_text(
        V7.replace('name = "Kernel Load or Unload via Kexec Detected"', 'name = "Old rule"')
    )
    log = tmp_path / "audit.log"
    w = FakeAuditd(log)
    d = Daemon(tmp_path, log, extra_args=("--rule", str(rule), "--no-builtin-rules"))
    w.emit(kexec=True)
    d.wait_alerts(1)

    deep = "(" * 300 + 'process.name == "kexec"' + ")" * 300
    rule.write_text(rule.read_text().replace('process.name == "kexec"', deep, 1))
    d.proc.send_signal(signal.SIGHUP)
    d.wait_log("reload_failed")
    own = d.stderr()
    assert f"{rule}:50:{len(' and ') + MAX_NESTING + 1}" in own
    assert "Traceback" not in own
    time.sleep(0.3)
    assert d.proc.poll() is None

    w.emit(kexec=True)
    ids = d.wait_alerts(2)
    assert len(ids) == 2
    names = [json.loads(line)["rule"]["name"] for line in d.alerts.read_text().splitlines()]
    assert names == ["Old rule", "Old rule"]
    assert d.stop() == 0
