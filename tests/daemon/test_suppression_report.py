"""The daemon reports alerts held back by a rule's limit while the window is still open.

A local user can run kexec 100 times to fill a rule's window (5 minutes); a kexec run by root
in the same window is then suppressed. Before, the daemon said so only when that rule's next
alert fell in a later window, which may never come.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.daemon.harness import Daemon, FakeAuditd

pytestmark = pytest.mark.slow


def test_a_suppressed_alert_is_logged_and_counted_without_a_later_alert(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    w = FakeAuditd(log)
    d = Daemon(tmp_path, log)
    for _ in range(101):  # 3 ms apart: one window of every rule
        w.emit(kexec=True)
    d.wait_alerts(100)
    d.wait_log("alerts_suppressed", timeout=10.0)
    d.wait_log("suppressed=1 ", timeout=10.0)
    assert "1 alert(s) of rule 'Kernel Load or Unload via Kexec Detected'" in d.stderr()
    assert d.stop() == 0
    assert len(d.alert_ids()) == 100
