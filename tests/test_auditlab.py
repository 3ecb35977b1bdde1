"""The audit lab restores the machine on exit, even when its process is SIGKILLed."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tools.auditlab import (
    AuditdSession,
    AuditLabError,
    audit_lock,
    audit_rules,
    audit_status,
    auditd_processes,
    require_root_auditd,
    scoped_rules,
)

REPO = Path(__file__).resolve().parent.parent
RULE = "-a always,exit -F arch=b64 -S kexec_load -k kexecwatch-labtest"
LISTED = "-a always,exit -F arch=b64 -S kexec_load -F key=kexecwatch-labtest"

CHILD = f"""
import sys, time
sys.path.insert(0, {str(REPO)!r})
from tools.auditlab import AuditdSession
session = AuditdSession([{RULE!r}]).__enter__()
print(session.pid, flush=True)
time.sleep(600)
"""


def test_scoped_rules_adds_the_filter_before_the_key() -> None:
    lines = ["-a always,exit -F arch=b64 -S execve -k kx", "-w /usr/sbin/kexec -p x -k kx", "-b 8"]
    assert scoped_rules(lines, 995) == [
        "-a always,exit -F arch=b64 -S execve -F uid=995 -k kx",
        "-w /usr/sbin/kexec -p x -k kx",
        "-b 8",
    ]


@pytest.mark.auditd
def test_guardian_restores_after_sigkill() -> None:
    require_root_auditd()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True, cwd="/"
    )
    try:
        assert child.stdout is not None
        ready, _, _ = select.select([child.stdout], [], [], 900)
        assert ready, "the child never opened its session"
        pid = int(child.stdout.readline())
        assert pid in auditd_processes()
        assert audit_status().pid == pid
        assert audit_rules() == [LISTED]
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    # The guardian holds the lock until it has restored, so taking it waits for that.
    with audit_lock(timeout=120):
        assert audit_rules() == []
        assert pid not in auditd_processes()
        status = audit_status()
        assert status.enabled == 0
        assert status.pid == 0


@pytest.mark.auditd
def test_normal_exit_restores_and_rotate_works() -> None:
    require_root_auditd()
    with AuditdSession([RULE], log_format="ENRICHED", node_name="labtest") as session:
        pid, workdir = session.pid, session.workdir
        assert audit_status().enabled == 1
        session.rotate()
        first = session.log_path.read_text()
        assert first.startswith("node=labtest type=DAEMON_ROTATE ")
        rotated = session.log_path.with_name("audit.log.1").read_text()
        assert "type=DAEMON_START" in rotated
    assert audit_rules() == []
    assert pid not in auditd_processes()
    assert audit_status().enabled == 0
    assert not workdir.exists()


@pytest.mark.auditd
def test_refuses_an_auditd_it_did_not_start() -> None:
    require_root_auditd()
    with AuditdSession([RULE]) as outer:
        with pytest.raises(AuditLabError, match="did not start"):
            AuditdSession().__enter__()
        assert outer.pid in auditd_processes()
        assert len(audit_rules()) == 1
    assert audit_rules() == []
