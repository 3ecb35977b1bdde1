"""Verdicts of `kexecwatch doctor` on fixed facts: each check and the exit code."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from kexecwatch.core.doctor.auditctl import AuditStatus
from kexecwatch.core.doctor.hostfacts import (
    CheckpointFacts,
    Facts,
    FileFacts,
    ServiceFacts,
    UserFacts,
)
from kexecwatch.core.doctor.posture import CHECK_IDS, Check, Effect, Report, Status, assess

RULES = (Path(__file__).resolve().parents[3] / "etc" / "audit.rules").read_text()
LOADED = """\
-a always,exit -F arch=b64 -S execve,execveat -F key=kexecwatch-exec
-a always,exit -F arch=b32 -S execve,execveat -F key=kexecwatch-exec
-a always,exit -F arch=b64 -S kexec_load,kexec_file_load -F key=kexecwatch-kexec
-a always,exit -F arch=b32 -S sys_kexec_load -F key=kexecwatch-kexec
-a always,exit -F arch=b64 -S setpgid,setsid -F key=kexecwatch-session
-a always,exit -F arch=b32 -S setpgid,setsid -F key=kexecwatch-session
"""
ADM = 4
SVC_UID = 990

HEALTHY = Facts(
    status=AuditStatus(enabled=1, pid=321, backlog_limit=8192, lost=0, backlog=0, rate_limit=0),
    audit_pid_comm="auditd",
    auditd_pids=(321,),
    loaded_rules=LOADED,
    expected_rules=RULES,
    expected_rules_path="/etc/audit/rules.d/kexecwatch.rules",
    auditd_conf={"log_format": "ENRICHED", "log_group": "adm", "name_format": "NONE"},
    log=FileFacts("/var/log/audit/audit.log", True, 0, ADM, 0o100640),
    log_dirs=(
        FileFacts("/", True, 0, 0, 0o40755, True),
        FileFacts("/var/log/audit", True, 0, ADM, 0o40750, True),
    ),
    user=UserFacts(
        "kexecwatch", True, SVC_UID, frozenset({989, ADM}), frozenset({"kexecwatch", "adm"})
    ),
    kexec_load_disabled="0\n",
    lockdown="[none] integrity confidentiality\n",
    kexec_loaded="0\n",
    kexec_crash_loaded="0\n",
    service=ServiceFacts(systemd=True, active="active"),
    checkpoint=CheckpointFacts(
        "/var/lib/kexecwatch/checkpoint.json",
        True,
        12.0,
        {"path": "/var/log/audit/audit.log", "offset": 1234},
    ),
)


def check(facts: Facts, cid: str) -> Check:
    return next(c for c in assess(facts).checks if c.id == cid)


def test_healthy_host_passes_everything() -> None:
    report = assess(HEALTHY)
    assert [c.id for c in report.checks] == list(CHECK_IDS)
    assert {c.status for c in report.checks} == {Status.PASS}
    assert report.effect is Effect.OK
    assert report.to_dict()["exit_code"] == 0


def test_every_non_pass_has_a_fix() -> None:
    broken = Facts(status=None, status_error="auditctl: Operation not permitted")
    for c in assess(broken).checks:
        assert c.status is Status.PASS or c.fix, c


BLINDING = [
    ("auditd-running", replace(HEALTHY, status=replace(HEALTHY.status, pid=0))),  # type: ignore[type-var]
    ("auditd-running", replace(HEALTHY, audit_pid_comm="osqueryd")),
    ("auditd-running", replace(HEALTHY, status=None, auditd_pids=(), status_error="x")),
    ("audit-enabled", replace(HEALTHY, status=replace(HEALTHY.status, enabled=0))),  # type: ignore[type-var]
    ("audit-rules", replace(HEALTHY, loaded_rules="No rules\n")),
    ("audit-rules", replace(HEALTHY, expected_rules=None, loaded_rules="No rules\n")),
    ("log-readable", replace(HEALTHY, log=FileFacts("/var/log/audit/audit.log", False))),
    ("log-readable", replace(HEALTHY, log=replace(HEALTHY.log, mode=0o100600))),
    (
        "log-readable",
        replace(HEALTHY, log_dirs=(FileFacts("/var/log/audit", True, 0, 0, 0o40700, True),)),
    ),
    ("log-readable", replace(HEALTHY, user=replace(HEALTHY.user, gids=frozenset({989})))),
    ("log-format", replace(HEALTHY, auditd_conf={"write_logs": "no"})),
    ("log-format", replace(HEALTHY, auditd_conf={"log_format": "NOLOG"})),
]


@pytest.mark.parametrize(("cid", "facts"), BLINDING)
def test_blinding_failures(cid: str, facts: Facts) -> None:
    c = check(facts, cid)
    assert (c.status, c.effect) == (Status.FAIL, Effect.BLIND)
    assert assess(facts).effect is Effect.BLIND


DEGRADING = [
    ("audit-rules", replace(HEALTHY, loaded_rules="\n".join(LOADED.splitlines()[2:]))),
    ("audit-rules", replace(HEALTHY, expected_rules=None)),
    ("audit-rules", replace(HEALTHY, loaded_rules=None, loaded_rules_error="denied")),
    ("audit-backlog", replace(HEALTHY, status=replace(HEALTHY.status, lost=5))),  # type: ignore[type-var]
    ("audit-backlog", replace(HEALTHY, status=replace(HEALTHY.status, backlog_limit=64))),  # type: ignore[type-var]
    ("audit-backlog", replace(HEALTHY, status=replace(HEALTHY.status, rate_limit=100))),  # type: ignore[type-var]
    ("log-readable", replace(HEALTHY, user=UserFacts("kexecwatch", exists=False))),
    ("log-readable", replace(HEALTHY, auditd_conf={"log_group": "root"})),
    ("log-format", replace(HEALTHY, auditd_conf=None)),
    ("log-format", replace(HEALTHY, auditd_conf={"log_format": "JSON"})),
    ("kexec-loaded", replace(HEALTHY, kexec_loaded="1\n")),
    ("kexec-crash-loaded", replace(HEALTHY, kexec_crash_loaded="1\n")),
    ("service", replace(HEALTHY, service=ServiceFacts(systemd=True, active="failed"))),
    ("service", replace(HEALTHY, service=ServiceFacts(systemd=False))),
    ("checkpoint", replace(HEALTHY, checkpoint=CheckpointFacts("/x/checkpoint.json", False))),
    ("checkpoint", replace(HEALTHY, checkpoint=replace(HEALTHY.checkpoint, age_s=7200.0))),
    ("checkpoint", replace(HEALTHY, checkpoint=CheckpointFacts("/x", True, 1.0, None, "bad"))),
]


@pytest.mark.parametrize(("cid", "facts"), DEGRADING)
def test_degrading_problems(cid: str, facts: Facts) -> None:
    c = check(facts, cid)
    assert c.status is Status.WARN
    assert c.effect is Effect.DEGRADED
    assert assess(facts).effect is Effect.DEGRADED


def test_partial_rules_say_how_many_are_missing() -> None:
    loaded = LOADED.splitlines()
    facts = replace(HEALTHY, loaded_rules="\n".join(loaded[:3] + loaded[4:]))
    c = check(facts, "audit-rules")
    assert "1 of 6 rules" in c.summary
    assert "sys_kexec_load" not in c.summary  # names the expected rule, as written
    assert "-S 283" in c.summary


def test_immutable_audit_passes_and_changes_the_rules_fix() -> None:
    locked = replace(
        HEALTHY,
        status=replace(HEALTHY.status, enabled=2),  # type: ignore[type-var]
        loaded_rules="No rules\n",
    )
    assert check(locked, "audit-enabled").status is Status.PASS
    assert "reboot" in check(locked, "audit-rules").fix


def test_root_reads_everything_and_ignores_log_group() -> None:
    root = UserFacts("root", True, 0, frozenset({0}), frozenset({"root"}))
    facts = replace(
        HEALTHY,
        user=root,
        log=replace(HEALTHY.log, mode=0o100600, gid=0),
        auditd_conf={"log_group": "root"},
    )
    assert check(facts, "log-readable").status is Status.PASS


def test_other_readable_log_without_the_group() -> None:
    facts = replace(
        HEALTHY,
        log=replace(HEALTHY.log, mode=0o100644),
        log_dirs=(FileFacts("/var/log/audit", True, 0, ADM, 0o40755, True),),
        user=replace(HEALTHY.user, gids=frozenset({989}), group_names=frozenset({"kexecwatch"})),
        auditd_conf={"log_group": "adm"},
    )
    # Readable now through "other", but rotation recreates it with log_group adm only.
    assert check(facts, "log-readable").status is Status.WARN


@pytest.mark.parametrize(
    ("cid", "facts", "words"),
    [
        ("kexec-load-disabled", replace(HEALTHY, kexec_load_disabled=None), "not built in"),
        ("kexec-load-disabled", replace(HEALTHY, kexec_load_disabled="1\n"), "= 1"),
        (
            "lockdown",
            replace(HEALTHY, lockdown="none [integrity] confidentiality\n"),
            "lockdown integrity",
        ),
        ("lockdown", replace(HEALTHY, lockdown=None), "absent"),
        ("kexec-loaded", replace(HEALTHY, kexec_loaded=None), "absent"),
        ("log-format", replace(HEALTHY, auditd_conf={"name_format": "hostname"}), "node="),
        ("service", replace(HEALTHY, service=ServiceFacts(False, pids=(77,))), "77"),
    ],
)
def test_informational_passes(cid: str, facts: Facts, words: str) -> None:
    c = check(facts, cid)
    assert c.status is Status.PASS
    assert words in c.summary


def test_checkpoint_shows_the_daemons_nested_position() -> None:
    content: dict[str, object] = {
        "kind": "kexecwatch-checkpoint",
        "saved_at_ms": 1,
        "position": {"path": "/var/log/audit/audit.log", "offset": 99, "identity": {}},
    }
    facts = replace(HEALTHY, checkpoint=replace(HEALTHY.checkpoint, content=content))
    assert "path=/var/log/audit/audit.log, offset=99" in check(facts, "checkpoint").summary
    facts = replace(HEALTHY, checkpoint=replace(HEALTHY.checkpoint, content={"x": 1}))
    assert "keys x" in check(facts, "checkpoint").summary


def test_blocking_directory_is_named_with_its_own_mode() -> None:
    facts = replace(HEALTHY, log_dirs=(FileFacts("/var/log/audit", True, 0, 0, 0o40700, True),))
    assert (
        "directory /var/log/audit (owner 0, group 0, mode 0700)"
        in check(facts, "log-readable").summary
    )


def test_staged_kernel_is_loud() -> None:
    c = check(replace(HEALTHY, kexec_loaded="1\n"), "kexec-loaded")
    assert c.summary.startswith("!!!")


def test_status_unknown_but_auditd_seen_is_degraded_not_blind() -> None:
    facts = replace(HEALTHY, status=None, status_error="auditctl: permission denied")
    c = check(facts, "auditd-running")
    assert (c.status, c.effect) == (Status.WARN, Effect.DEGRADED)
    assert "root" in c.fix


def test_report_json_shape() -> None:
    report = Report((Check("a", Status.WARN, Effect.DEGRADED, "s", "f"),))
    assert report.to_dict() == {
        "format": 1,
        "verdict": "degraded",
        "exit_code": 1,
        "checks": [{"id": "a", "status": "WARN", "effect": "degraded", "summary": "s", "fix": "f"}],
    }
    assert Report(()).effect is Effect.OK


STATUS_OF = {Effect.OK: Status.PASS, Effect.DEGRADED: Status.WARN, Effect.BLIND: Status.FAIL}


@pytest.mark.parametrize(("cid", "facts"), BLINDING + DEGRADING)
def test_status_word_follows_the_effect(cid: str, facts: Facts) -> None:
    for c in assess(facts).checks:
        assert c.status is STATUS_OF[c.effect], c


def test_service_not_running_is_a_warning() -> None:
    for service in (ServiceFacts(systemd=True, active="failed"), ServiceFacts(systemd=False)):
        c = check(replace(HEALTHY, service=service), "service")
        assert (c.status, c.effect) == (Status.WARN, Effect.DEGRADED)


def test_a_check_cannot_say_fail_for_a_degraded_effect() -> None:
    with pytest.raises(ValueError, match="FAIL"):
        Check("x", Status.FAIL, Effect.DEGRADED, "s", "f")


def test_execve_rules_of_every_arch_are_counted() -> None:
    c = check(replace(HEALTHY, expected_rules=None), "audit-rules")
    assert "execve is audited by 2 rules (b64, b32)" in c.summary
    only64 = replace(HEALTHY, expected_rules=None, loaded_rules=LOADED.splitlines()[0])
    assert "execve is audited by 1 rule (b64)" in check(only64, "audit-rules").summary


def test_missing_rules_fix_works_after_a_pip_install() -> None:
    for facts in (
        replace(HEALTHY, expected_rules=None, loaded_rules="No rules\n"),
        replace(HEALTHY, expected_rules=None),
    ):
        fix = check(facts, "audit-rules").fix
        assert "kexecwatch audit-rules > /etc/audit/rules.d/kexecwatch.rules" in fix
        assert "etc/audit.rules" not in fix.replace("/etc/audit/rules.d", "")
