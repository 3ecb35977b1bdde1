"""Elastic's own sequence rules (read from ../shared, never copied) fire on the process
events kexecwatch builds from audit lines, and a maxspan just missed does not fire."""

from __future__ import annotations

from pathlib import Path

import pytest

from kexecwatch.core.detect.alerts import Alert
from kexecwatch.core.detect.detector import Detector
from kexecwatch.core.detect.rule.ruleset import Rule, load_rule
from tests.builders import exec_lines, join

RULES = Path(__file__).resolve().parents[4].parent / "shared" / "detection-rules" / "rules"

pytestmark = pytest.mark.skipif(
    not RULES.is_dir(), reason=f"Elastic's detection-rules snapshot is not at {RULES}"
)


def upstream(relative: str) -> Rule:
    path = RULES / relative
    return load_rule(path.read_text(encoding="utf-8"), str(path))


def run(
    name: str,
    serial: int,
    t: str,
    *,
    pid: int,
    ppid: int,
    args: tuple[str, ...] = (),
    uid: int = 1000,
    euid: int | None = None,
) -> list[bytes]:
    lines = exec_lines(
        serial,
        t=t,
        pid=pid,
        ppid=ppid,
        comm=name,
        exe=f"/usr/bin/{name}",
        args=(name, *args),
        uid=uid,
    )
    if euid is not None:  # a setuid program: the effective uid differs
        lines[0] = lines[0].replace(f" euid={uid} ".encode(), f" euid={euid} ".encode())
    return lines


def alerts(rule: Rule, lines: list[bytes]) -> list[Alert]:
    det = Detector([rule], host_name="lab", host_id="lab-id")
    out = det.feed(join(lines)) + det.flush()
    return [o for o in out if isinstance(o, Alert)]


def names(alert: Alert) -> list[str]:
    return [e["process"]["name"] for e in alert.to_document()["kexecwatch"]["sequence"]["events"]]


TELNET = "linux/initial_access_telnet_auth_bypass_envar_auditd.toml"


def test_telnet_login_bypass_sequence_fires_and_a_missed_maxspan_does_not() -> None:
    rule = upstream(TELNET)
    telnetd = run("telnetd", 1, "1700000000.000", pid=200, ppid=1)
    login = run("login", 2, "1700000000.900", pid=201, ppid=200, args=("-f", "root"))
    (alert,) = alerts(rule, telnetd + login)
    assert names(alert) == ["telnetd", "login"]
    assert alert.to_document()["rule"]["name"] == rule.name
    late = run("login", 2, "1700000001.001", pid=201, ppid=200, args=("-f", "root"))
    assert alerts(rule, telnetd + late) == []  # maxspan=1s just missed
    other_parent = run("login", 2, "1700000000.900", pid=201, ppid=999, args=("-f", "root"))
    assert alerts(rule, telnetd + other_parent) == []  # join key: telnetd's pid


def test_suid_binary_sequence_fires() -> None:
    rule = upstream(
        "linux/privilege_escalation_suspicious_suid_binary_execution_auditd_sequence.toml"
    )
    python = run("python3", 1, "1700000000.000", pid=300, ppid=1, args=("-c", "x"))
    su = run("su", 2, "1700000002.000", pid=301, ppid=300, euid=0)
    (alert,) = alerts(rule, python + su)
    assert names(alert) == ["python3", "su"]
    assert alerts(rule, python + run("su", 2, "1700000031.000", pid=301, ppid=300, euid=0)) == []


def test_unshare_then_root_shell_sequence_fires() -> None:
    rule = upstream("linux/privilege_escalation_unshare_to_root_process_auditd_sequence.toml")
    unshare = run("unshare", 1, "1700000000.000", pid=400, ppid=10, args=("--map-root-user",))
    shell = run("bash", 2, "1700000001.000", pid=401, ppid=10, uid=0)
    (alert,) = alerts(rule, unshare + shell)
    assert names(alert) == ["unshare", "bash"]
    other = run("bash", 2, "1700000001.000", pid=401, ppid=11, uid=0)
    assert alerts(rule, unshare + other) == []  # another parent: another key


def test_git_recursive_clone_then_shell_sequence_fires() -> None:
    rule = upstream("cross-platform/execution_git_exploit_cve_2025_48384.toml")
    git = run(
        "git",
        1,
        "1700000000.000",
        pid=500,
        ppid=1,
        args=("clone", "--recursive", "https://example.invalid/r.git"),
    )
    shell = run("sh", 2, "1700000003.000", pid=501, ppid=500)
    (alert,) = alerts(rule, git + shell)
    assert names(alert) == ["git", "sh"]
    stranger = run("sh", 2, "1700000003.000", pid=501, ppid=77)
    assert alerts(rule, git + stranger) == []  # not git's child: entity ids differ
