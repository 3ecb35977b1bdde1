"""The systemd unit: what it promises, and systemd's own exposure rating of it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "packaging" / "kexecwatch.service"
MAX_EXPOSURE = 4.9  # systemd-analyze calls up to 4.9 "OK"; above is MEDIUM/EXPOSED/UNSAFE


def settings() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def test_unit_runs_the_daemon_as_its_user_with_the_adm_group() -> None:
    s = settings()
    assert s["ExecStart"] == [
        "/opt/kexecwatch/bin/kexecwatch run --config /etc/kexecwatch/kexecwatch.toml"
    ]
    # /bin/kill is not on a minimal system (procps): the shell's builtin sends SIGHUP.
    assert s["ExecReload"] == ["/bin/sh -c 'kill -HUP \"$MAINPID\"'"]
    assert s["Type"] == ["notify"]
    assert s["Restart"] == ["on-failure"]
    assert "WatchdogSec" in s
    assert s["User"] == ["kexecwatch"]
    assert s["SupplementaryGroups"] == ["adm"]


def test_unit_writes_only_its_state_and_log_directories() -> None:
    s = settings()
    assert s["ProtectSystem"] == ["strict"]
    assert s["ReadWritePaths"] == ["/var/lib/kexecwatch /var/log/kexecwatch"]
    assert (s["StateDirectory"], s["StateDirectoryMode"]) == (["kexecwatch"], ["0700"])
    assert (s["LogsDirectory"], s["LogsDirectoryMode"]) == (["kexecwatch"], ["0750"])


def test_unit_capabilities_are_ptrace_only() -> None:
    s = settings()
    assert s["CapabilityBoundingSet"] == ["CAP_SYS_PTRACE"]
    assert s["AmbientCapabilities"] == ["CAP_SYS_PTRACE"]
    assert s["NoNewPrivileges"] == ["yes"]
    assert s["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"]
    assert s["SystemCallFilter"][0] == "@system-service"
    for hardening in (
        "ProtectHome",
        "PrivateTmp",
        "ProtectKernelTunables",
        "ProtectKernelModules",
        "ProtectKernelLogs",
    ):
        assert s[hardening] == ["yes"], hardening


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze missing: apt-get install systemd",
)
def test_systemd_rates_the_unit_ok_or_better() -> None:
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    match = re.search(
        r"Overall exposure level for kexecwatch\.service: ([0-9.]+) (\w+)", done.stdout
    )
    assert match, done.stdout + done.stderr
    exposure, rating = float(match.group(1)), match.group(2)
    assert rating in ("OK", "SAFE"), (exposure, rating)
    assert exposure <= MAX_EXPOSURE
