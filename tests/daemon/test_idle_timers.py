"""An idle daemon sleeps until its next timer, and every timer still fires on time.

With a working directory watch the safety poll is ten poll intervals apart (the harness's
0.2 s: 2 s), so nothing else may ride on it: the watchdog ping, the status line and the
checkpoint after lines each end the daemon's wait themselves.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from tests.daemon.harness import Daemon, FakeAuditd


def _notify_socket(tmp_path: Path) -> tuple[socket.socket, str]:
    name = f"kexecwatch-idle-{os.getpid()}-{time.monotonic_ns()}"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(b"\0" + name.encode())
    srv.settimeout(0.5)
    return srv, "@" + name


def test_an_idle_daemon_pings_the_watchdog_at_half_its_interval(tmp_path: Path) -> None:
    """WatchdogSec=100ms: a ping every 50 ms, not only when a safety poll happens to wake
    the daemon (before: one per poll interval, 0.2 s here, so systemd would kill a
    daemon whose WatchdogSec is below twice its poll interval)."""
    srv, name = _notify_socket(tmp_path)
    log = tmp_path / "audit.log"
    FakeAuditd(log)
    d = Daemon(tmp_path, log, env={"NOTIFY_SOCKET": name, "WATCHDOG_USEC": "100000"})
    try:
        pings = 0
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            try:
                if srv.recv(4096) == b"WATCHDOG=1":
                    pings += 1
            except TimeoutError:
                pass
        assert pings >= 20, (pings, d.stderr())  # 40 due; 10 at most before
    finally:
        assert d.stop() == 0
        srv.close()


def test_an_idle_daemon_logs_status_and_checkpoints_on_time(tmp_path: Path) -> None:
    """status-interval 1 s and checkpoint-interval 0.5 s, shorter than the 2 s safety
    poll: the status lines keep coming and lines read are checkpointed within a second."""
    log = tmp_path / "audit.log"
    w = FakeAuditd(log)
    d = Daemon(tmp_path, log)
    try:
        time.sleep(3.6)
        assert d.stderr().count("event=status") >= 3, d.stderr()
        checkpoint = d.state / "checkpoint.json"
        mtime = checkpoint.stat().st_mtime_ns
        w.emit()  # an exec that alerts nothing: only the periodic checkpoint covers it
        deadline = time.monotonic() + 1.5
        while checkpoint.stat().st_mtime_ns == mtime and time.monotonic() < deadline:
            time.sleep(0.05)
        assert checkpoint.stat().st_mtime_ns != mtime, d.stderr()
    finally:
        assert d.stop() == 0
