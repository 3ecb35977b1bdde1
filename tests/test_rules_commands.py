"""`kexecwatch rules list` and `kexecwatch audit-rules`, driven as real processes."""

from __future__ import annotations

import json
from pathlib import Path

from kexecwatch.rules import BUILTIN_RULE_FILES
from tests.test_cli import kexecwatch

ROOT = Path(__file__).resolve().parent.parent
V7_ID = "4d4c35f4-414e-4d0c-bb7e-6db7c80a6957"


def test_rules_list_json_has_every_builtin_rule_and_its_needs() -> None:
    done = kexecwatch("rules", "list", "--format", "json")
    assert done.returncode == 0, done.stderr
    rules = {r["id"]: r for r in json.loads(done.stdout)["rules"]}
    assert len(rules) == len(BUILTIN_RULE_FILES)
    v7 = rules[V7_ID]
    assert (v7["name"], v7["severity"], v7["risk_score"], v7["version"]) == (
        "Kernel Load or Unload via Kexec Detected",
        "medium",
        47,
        7,
    )
    assert v7["ruleset"] == "upstream" and v7["license"] == "Elastic License v2"
    assert [n["key"] for n in v7["needs"]] == ["kexecwatch-exec"]
    syscall = rules["af636c69-b83f-49ae-8df4-73be349a65e8"]
    assert [n["key"] for n in syscall["needs"]] == ["kexecwatch-kexec"]
    assert set(syscall["needs"][0]["syscalls"]) == {"kexec_load", "kexec_file_load"}
    gap = rules["90e35c4d-3187-4bd6-b4a8-8404a3e7090f"]
    assert [n["key"] for n in gap["needs"]] == [None]


def test_rules_list_text_and_ruleset() -> None:
    done = kexecwatch("rules", "list", "--ruleset", "upstream")
    assert done.returncode == 0
    out = done.stdout.decode()
    assert out.splitlines()[0] == f"{V7_ID}  Kernel Load or Unload via Kexec Detected"
    assert "severity medium, risk 47, version 7, rule set upstream" in out
    assert "needs: kexecwatch-exec (execve, execveat of kexec)" in out
    assert "Kexec System Call" not in out


def test_audit_rules_prints_the_packaged_rules() -> None:
    full = kexecwatch("audit-rules")
    low = kexecwatch("audit-rules", "--low-volume")
    assert full.returncode == low.returncode == 0
    assert full.stdout == (ROOT / "etc" / "audit.rules").read_bytes()
    assert low.stdout == (ROOT / "etc" / "audit-lowvolume.rules").read_bytes()
    assert b"-S execve,execveat -k kexecwatch-exec" in full.stdout
    assert b"-F exe=/usr/sbin/kexec" in low.stdout


def test_etc_and_the_package_share_one_copy() -> None:
    for name in ("audit.rules", "audit-lowvolume.rules"):
        link = ROOT / "etc" / name
        assert link.is_symlink()
        assert link.resolve() == ROOT / "kexecwatch" / "auditrules" / name


def test_rules_alone_prints_its_help_and_exits_2() -> None:
    done = kexecwatch("rules")
    assert done.returncode == 2
    err = done.stderr.decode()
    assert err.startswith("usage: kexecwatch rules ")
    assert "    list" in err  # the actions, where a newcomer looks first
    assert err.endswith("kexecwatch: error: an ACTION is required (see the list above)\n")
