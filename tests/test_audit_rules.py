"""The shipped audit rules load into a real kernel with auditctl -R, and are listed back."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.auditlab import AuditdSession, audit_rules, audit_status, auditctl, require_root_auditd

pytestmark = pytest.mark.auditd

ETC = Path(__file__).resolve().parent.parent / "etc"

FULL_LISTING = [
    "-a always,exit -F arch=b64 -S execve,execveat -F key=kexecwatch-exec",
    "-a always,exit -F arch=b32 -S execve,execveat -F key=kexecwatch-exec",
    "-a always,exit -F arch=b64 -S kexec_load,kexec_file_load -F key=kexecwatch-kexec",
    "-a always,exit -F arch=b32 -S sys_kexec_load -F key=kexecwatch-kexec",
    "-a always,exit -F arch=b64 -S setpgid,setsid -F key=kexecwatch-session",
    "-a always,exit -F arch=b32 -S setpgid,setsid -F key=kexecwatch-session",
]
LOWVOLUME_LISTING = [
    "-a always,exit -F arch=b64 -S execve,execveat -F exe=/usr/sbin/kexec -F key=kexecwatch-exec",
    "-a always,exit -F arch=b64 -S execve,execveat -F exe=/sbin/kexec -F key=kexecwatch-exec",
    "-a always,exit -F arch=b32 -S execve,execveat -F exe=/usr/sbin/kexec -F key=kexecwatch-exec",
    "-a always,exit -F arch=b32 -S execve,execveat -F exe=/sbin/kexec -F key=kexecwatch-exec",
    "-a always,exit -F arch=b64 -S kexec_load,kexec_file_load -F key=kexecwatch-kexec",
    "-a always,exit -F arch=b32 -S sys_kexec_load -F key=kexecwatch-kexec",
    "-a always,exit -F arch=b64 -S setpgid,setsid -F key=kexecwatch-session",
    "-a always,exit -F arch=b32 -S setpgid,setsid -F key=kexecwatch-session",
]


@pytest.mark.parametrize(
    ("name", "expected"),
    [("audit.rules", FULL_LISTING), ("audit-lowvolume.rules", LOWVOLUME_LISTING)],
)
def test_rules_file_loads_and_is_restored(name: str, expected: list[str]) -> None:
    require_root_auditd()
    # Auditing stays off: these rules are not scoped to a user and would log every
    # exec on the machine.
    with AuditdSession(enable=False):
        assert audit_rules() == []
        auditctl("-R", str(ETC / name))
        assert audit_rules() == expected
    assert audit_rules() == []
    assert audit_status().enabled == 0


def test_b32_has_no_kexec_file_load() -> None:
    """Why the rules use only 283 (kexec_load) for arch=b32."""
    require_root_auditd()
    with AuditdSession(enable=False):
        out = auditctl("-a", "always,exit", "-F", "arch=b32", "-S", "kexec_file_load", check=False)
        assert "unknown" in out.lower()
        assert audit_rules() == []
