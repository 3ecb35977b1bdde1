"""`kexecwatch doctor` against the REAL audit subsystem: each outcome on this machine.

Every test runs inside tools.auditlab.AuditdSession, which holds the audit lock, starts a
private auditd and restores the machine (rules, auditd, enabled flag, backlog) afterwards,
even when the test process is killed.

The rules are etc/audit.rules scoped to a uid that runs nothing (auditlab.scoped_rules), so
other work on the machine does not flood the session's log; the doctor is told to expect
exactly those scoped rules. That the unscoped rules match what the kernel echoes is pinned
in test_install_auditctl.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.auditlab import AuditdSession, read_rules_file, scoped_rules

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "etc" / "audit.rules"
IDLE_UID = 3_999_999  # no process runs as this uid
SCOPED = scoped_rules(read_rules_file(RULES), IDLE_UID)

pytestmark = [
    pytest.mark.auditd,
    pytest.mark.skipif(os.geteuid() != 0, reason="drives the real auditd: needs root"),
    pytest.mark.skipif(not Path("/usr/sbin/auditd").exists(), reason="auditd not installed"),
    pytest.mark.skipif(
        Path("/run/systemd/system").exists(),
        reason="systemd runs here: the service check would ask systemctl, "
        "and a stand-in process cannot fake a unit",
    ),
]


@pytest.fixture
def daemon_standin(tmp_path: Path) -> Iterator[Path]:
    """A fresh checkpoint and a process that looks like `kexecwatch run` in `ps`.

    The daemon itself is another part of the project; doctor only looks for a process
    whose argv has a `kexecwatch` program followed by `run`, and at checkpoint.json.
    """
    state = tmp_path / "state"
    state.mkdir()
    (tmp_path / "expected.rules").write_text("".join(f"{r}\n" for r in SCOPED))
    (state / "checkpoint.json").write_text(json.dumps({"path": "audit.log", "offset": 0}))
    fake = tmp_path / "kexecwatch"
    fake.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(3600)\n")
    fake.chmod(0o755)
    proc = subprocess.Popen([str(fake), "run", "--config", "/dev/null"])
    try:
        yield state
    finally:
        proc.kill()
        proc.wait()


def doctor(session: AuditdSession, state: Path) -> tuple[int, dict[str, dict[str, str]]]:
    """Run the doctor as a separate process, pointed at the session's auditd."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "kexecwatch.adapters.doctor",
            "--format",
            "json",
            "--auditd-conf",
            str(session.confdir / "auditd.conf"),
            "--rules",
            str(state.parent / "expected.rules"),
            "--service-user",
            "root",
            "--state-dir",
            str(state),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert done.stderr == ""
    report = json.loads(done.stdout)
    assert report["exit_code"] == done.returncode
    return done.returncode, {c["id"]: c for c in report["checks"]}


def test_auditd_up_with_rules_works(daemon_standin: Path) -> None:
    with AuditdSession(SCOPED) as session:
        code, checks = doctor(session, daemon_standin)
    bad = {k: v["summary"] for k, v in checks.items() if v["status"] != "PASS"}
    assert bad == {}
    assert code == 0
    assert len(SCOPED) == 6  # execs, kexec calls, setsid/setpgid; b64 and b32 each
    assert "all 6 rules" in checks["audit-rules"]["summary"]


def test_auditd_up_without_rules_is_blind(daemon_standin: Path) -> None:
    with AuditdSession() as session:
        code, checks = doctor(session, daemon_standin)
    assert code == 2
    assert checks["audit-rules"]["status"] == "FAIL"
    assert checks["auditd-running"]["status"] == "PASS"


def test_partial_rules_are_degraded(daemon_standin: Path) -> None:
    execs_only = [r for r in SCOPED if "kexecwatch-exec" in r]
    with AuditdSession(execs_only) as session:
        code, checks = doctor(session, daemon_standin)
    assert code == 1
    assert checks["audit-rules"]["status"] == "WARN"
    assert len(execs_only) == 2
    assert "4 of 6 rules" in checks["audit-rules"]["summary"]


def test_auditd_down_is_blind(daemon_standin: Path) -> None:
    with AuditdSession(SCOPED) as session:
        session.stop()
        deadline = time.monotonic() + 10
        code, checks = doctor(session, daemon_standin)
        while checks["auditd-running"]["status"] == "PASS" and time.monotonic() < deadline:
            time.sleep(0.1)  # the kernel forgets the daemon's pid a moment after it exits
            code, checks = doctor(session, daemon_standin)
    assert code == 2
    assert checks["auditd-running"]["status"] == "FAIL"
    assert checks["audit-rules"]["status"] == "PASS"  # the rules alone do not help


def test_audit_disabled_is_blind(daemon_standin: Path) -> None:
    with AuditdSession(SCOPED) as session:
        subprocess.run(["auditctl", "-e", "0"], check=True, capture_output=True)
        code, checks = doctor(session, daemon_standin)
    assert code == 2
    assert checks["audit-enabled"]["status"] == "FAIL"
