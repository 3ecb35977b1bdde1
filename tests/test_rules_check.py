"""``kexecwatch rules check``: rule by rule, whether a rule loads and can fire, and why not.

The coverage analysis is checked on queries written here; the command runs as a real
process on a temporary checkout and on the detection-rules snapshot in ../shared (the
counts are asserted so that a regression shows; the test skips, saying so, without it).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kexecwatch.core.detect.rule import compile_query
from kexecwatch.core.detect.rule.coverage import Coverage, coverage
from tests.test_check_rule import rule_file
from tests.test_cli import kexecwatch
from tests.test_rule_source import SNAPSHOT, checkout, needs_snapshot

#: Every event.action of the default vocabulary, as the blockers list them.
ACTIONS = (
    "capset, executed, exit, exit_group, finit_module, init_module, kexec_file_load, "
    "kexec_load, killed-pid, prctl, setfsgid, setfsuid, setgid, setregid, setresgid, "
    "setresuid, setreuid, setsid, setuid"
)


def verdict(query: str) -> tuple[bool, list[str]]:
    found = coverage(compile_query(query))
    return found.can_fire, [b.message for b in found.blockers]


@pytest.mark.parametrize(
    "query",
    [
        'process where process.name == "bash"',
        'process where event.action == "executed" and process.args : "-c"',
        'process where event.action in ("exec", "executed")',
        'process where event.type == "start" or event.action == "exec"',
        'process where process.name == "x" or file.path == "/tmp"',  # one branch suffices
        'process where not host.id == "abc"',  # a missing field is not "abc"
        "any where true",
        'process where event.action == "kexec_load" and event.type == "info"',
        # audited process system calls (README, "Auditing more than execs")
        'process where event.type == "end" and process.name == "sshd"',
        'process where auditd.data.syscall == "prctl" and auditd.data.a0 == "f"',
        'process where event.action == "killed-pid" and auditd.data.syscall == "kill"',
    ],
)
def test_queries_that_can_fire(query: str) -> None:
    assert verdict(query) == (True, [])


@pytest.mark.parametrize(
    ("query", "why"),
    [
        (
            'process where event.action in ("exec", "exec_event") and process.name == "sh"',
            f"event.action in exec, exec_event never holds: kexecwatch emits {ACTIONS}",
        ),
        ('file where file.path == "/etc/shadow"', "event category 'file' is never produced"),
        (
            'process where container.id == "abc" and process.name == "sh"',
            "field container.id is never set",
        ),
        ("process where container.id != null", "field container.id is never set"),
        ('process where event.type == "creation"', "event.type == creation never holds"),
        # only the syscalls kexecwatch turns into process events
        ('process where auditd.data.syscall == "socket"', "auditd.data.syscall == socket never"),
        # A start is only ever an exec: the two facets together never hold.
        ('process where event.type == "start" and event.action == "kexec_load"', ""),
        ('process where host.os.type == "windows"', "host.os.type == windows never holds"),
    ],
)
def test_queries_that_never_fire_and_why(query: str, why: str) -> None:
    can_fire, blockers = verdict(query)
    assert not can_fire and blockers
    assert any(why in b for b in blockers), blockers


def test_blockers_common_to_every_kind_of_event_are_the_ones_named() -> None:
    # event.type "start" holds for an exec, but the action is wrong for every event kind:
    # the action alone is the reason, not the type.
    _, blockers = verdict('process where event.type == "start" and event.action == "exec"')
    assert blockers == [f"event.action == exec never holds: kexecwatch emits {ACTIONS}"]


def test_rules_check_reports_every_rule_and_the_counts(tmp_path: Path) -> None:
    rules = checkout(tmp_path)
    rule_file(rules, "h_defend.toml", ('"executed", ', ""), ('"exec", ', ""))
    done = kexecwatch("rules", "check", str(rules))
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode()
    lines = {line.split(": ", 1)[0]: line for line in out.splitlines() if ": " in line}
    v7 = "'Kernel Load or Unload via Kexec Detected'"
    assert lines[f"{rules}/a_kexec.toml"] == f"{rules}/a_kexec.toml: can fire: {v7}"
    assert lines[f"{rules}/c_kql.toml"].endswith(": skipped: KQL")
    assert lines[f"{rules}/d_esql.toml"].endswith(": skipped: ES|QL")
    assert lines[f"{rules}/e_windows.toml"].endswith(": skipped: not for Linux")
    assert lines[f"{rules}/g_hunt.toml"].endswith(": skipped: not rules")
    assert lines[f"{rules}/f_broken.toml"].startswith(f"{rules}/f_broken.toml: does not load: ")
    assert lines[f"{rules}/h_defend.toml"] == (
        f"{rules}/h_defend.toml: never fires: {v7}: event.action in exec_event, "
        f"process_started never holds: kexecwatch emits {ACTIONS}"
    )
    tail = out[out.index("\n\n") + 2 :]
    assert tail.splitlines()[:5] == [
        "8 rule files",
        "6 Linux rules (tagged OS: Linux): 4 EQL, 1 KQL, 1 ES|QL",
        "  EQL: 4 single-event, 0 sequences, 0 samples",
        "  load: 3 of 4",
        "    1 do not: expected 'where', found 'wher'",
    ]
    assert "  can fire on kexecwatch's events: 2 of 3\n" in tail
    assert "    1 cannot: event.action value (1 for that alone)\n" in tail
    assert tail.endswith("not run: 1 KQL, 1 ES|QL, 1 not for Linux, 1 not rules\n")


def test_rules_check_json(tmp_path: Path) -> None:
    rules = checkout(tmp_path, lock={"4d4c35f4-414e-4d0c-bb7e-6db7c80a6957": {"version": 9}})
    done = kexecwatch("rules", "check", "--format", "json", str(rules / "a_kexec.toml"))
    assert done.returncode == 0
    doc = json.loads(done.stdout)
    [rule] = doc["rules"]
    assert (rule["status"], rule["version"], rule["shape"], rule["platform"]) == (
        "fires",
        9,
        "single",
        "linux",
    )
    assert doc["counts"]["linux"]["can_fire"] == 1


@pytest.mark.parametrize("what", ["missing", "empty"])
def test_rules_check_needs_rule_files(tmp_path: Path, what: str) -> None:
    target = tmp_path / "rules"
    if what == "empty":
        target.mkdir()
    done = kexecwatch("rules", "check", str(target))
    assert done.returncode == 2 and done.stdout == b""
    assert done.stderr.decode().count("\n") == 1


@needs_snapshot
def test_rules_check_on_the_snapshot_counts() -> None:
    """The figures of README's "Elastic's Linux rules": update both together."""
    done = kexecwatch("rules", "check", "--format", "json", str(SNAPSHOT))
    assert done.returncode == 0
    doc = json.loads(done.stdout)
    linux = doc["counts"]["linux"]
    assert linux["rules"] == 437
    assert linux["languages"] == {"EQL": 343, "KQL": 75, "ES|QL": 19}
    assert linux["eql_shapes"] == {"single": 265, "sequence": 75, "sample": 3}
    assert linux["loaded"] == 343
    assert linux["can_fire"] == 104
    assert linux["cannot_fire_alone"]["event.action value"] == 109
    assert doc["skipped"] == {"kql": 78, "esql": 58, "not-linux": 6}


@needs_snapshot
def test_rules_check_with_defends_vocabulary_counts() -> None:
    """With --events-as defend, the rules that failed on event.action alone can fire."""
    done = kexecwatch("rules", "check", "--events-as", "defend", "--format", "json", str(SNAPSHOT))
    assert done.returncode == 0
    linux = json.loads(done.stdout)["counts"]["linux"]
    assert linux["loaded"] == 343
    assert linux["can_fire"] == 220
    assert linux["cannot_fire_alone"]["event.action value"] == 3


def test_a_defend_query_fires_only_in_defends_vocabulary() -> None:
    query = compile_query('process where event.type == "start" and event.action == "exec"')
    assert not coverage(query).can_fire
    assert coverage(query, "defend") == Coverage(True)
