"""The pure readers of auditctl output, rules files and auditd.conf."""

from __future__ import annotations

from pathlib import Path

import pytest

from kexecwatch.core.doctor.auditctl import (
    missing_rules,
    parse_auditd_conf,
    parse_rules,
    parse_status,
    rule_matches,
)

REPO = Path(__file__).resolve().parents[2]

# What `auditctl -l` printed on Debian 12 (auditctl 3.0.9) after `auditctl -R etc/audit.rules`.
LOADED_FULL = """\
-a always,exit -F arch=b64 -S execve,execveat -F key=kexecwatch-exec
-a always,exit -F arch=b32 -S execve,execveat -F key=kexecwatch-exec
-a always,exit -F arch=b64 -S kexec_load,kexec_file_load -F key=kexecwatch-kexec
-a always,exit -F arch=b32 -S sys_kexec_load -F key=kexecwatch-kexec
-a always,exit -F arch=b64 -S setpgid,setsid -F key=kexecwatch-session
-a always,exit -F arch=b32 -S setpgid,setsid -F key=kexecwatch-session
"""

STATUS = """\
enabled 1
failure 1
pid 4242
rate_limit 0
backlog_limit 8192
lost 7
backlog 3
backlog_wait_time 15000
loginuid_immutable 0 unlocked
"""


def test_status_reads_every_counter() -> None:
    st = parse_status(STATUS)
    assert (st.enabled, st.pid, st.backlog_limit, st.lost, st.backlog, st.rate_limit) == (
        1,
        4242,
        8192,
        7,
        3,
        0,
    )


def test_status_missing_lines_are_none() -> None:
    st = parse_status("garbage\nenabled x\n")
    assert st.enabled is None
    assert st.pid is None


def test_project_rules_match_what_the_kernel_echoes() -> None:
    expected = parse_rules((REPO / "etc" / "audit.rules").read_text())
    assert len(expected) == 6
    assert missing_rules(expected, parse_rules(LOADED_FULL)) == ()


def test_lowvolume_rules_are_not_the_full_rules() -> None:
    low = parse_rules((REPO / "etc" / "audit-lowvolume.rules").read_text())
    missing = missing_rules(low, parse_rules(LOADED_FULL))
    # The exe= filtered exec rules are absent; the kexec and session rules are shared.
    assert [r.key for r in missing] == ["kexecwatch-exec"] * 4


def test_partial_load_names_the_missing_rules() -> None:
    expected = parse_rules(LOADED_FULL)
    loaded = parse_rules("\n".join(LOADED_FULL.splitlines()[:2]))
    assert [r.text for r in missing_rules(expected, loaded)] == LOADED_FULL.splitlines()[2:]


def test_no_rules_output_parses_to_nothing() -> None:
    assert parse_rules("No rules\n") == ()


def test_k_and_f_key_and_split_syscalls_are_the_same_rule() -> None:
    (a,) = parse_rules("-a exit,always -F arch=b64 -S execveat -S execve -k k1")
    (b,) = parse_rules("-a always,exit -F arch=b64 -S execve,execveat -F key=k1")
    assert rule_matches(a, b)
    assert a.key == "k1"


@pytest.mark.parametrize(
    "loaded",
    [
        "-a always,exit -F arch=b32 -S execve -F key=k1",  # other arch
        "-a always,exit -F arch=b64 -S execve -F key=k2",  # other key
        "-a never,exit -F arch=b64 -S execve -F key=k1",  # other action
        "-a always,exit -F arch=b64 -S execve,kill -F key=k1",  # extra syscall
        "-a always,exit -F arch=b64 -S execve -F uid=0 -F key=k1",  # extra filter
    ],
)
def test_different_rules_do_not_match(loaded: str) -> None:
    (expected,) = parse_rules("-a always,exit -F arch=b64 -S execve -k k1")
    (other,) = parse_rules(loaded)
    assert not rule_matches(expected, other)


def test_numeric_syscall_matches_one_named_syscall_only() -> None:
    (expected,) = parse_rules("-a always,exit -F arch=b32 -S 283 -k k")
    (one,) = parse_rules("-a always,exit -F arch=b32 -S sys_kexec_load -F key=k")
    (two,) = parse_rules("-a always,exit -F arch=b32 -S kexec_load,kill -F key=k")
    assert rule_matches(expected, one)
    assert not rule_matches(expected, two)


def test_control_lines_and_watches() -> None:
    rules = parse_rules(
        "-D\n-b 8192\n-e 2\n--backlog_wait_time 60000\n"
        "-w /usr/sbin/kexec -p x -k kx\n# -a always,exit -S kill\n"
    )
    (watch,) = rules
    assert watch.list_action == "watch"
    assert watch.fields == frozenset({"path=/usr/sbin/kexec", "perm=x", "key=kx"})


def test_auditd_conf() -> None:
    conf = parse_auditd_conf(
        "# c\nlog_file = /var/log/audit/audit.log\nLog_Group=adm\n\n"
        "name_format = NONE\nbroken line\n"
    )
    assert conf == {
        "log_file": "/var/log/audit/audit.log",
        "log_group": "adm",
        "name_format": "NONE",
    }
