"""``--rule DIR``: a directory of rules (a detection-rules checkout) as a rule source.

Driven as real processes on recorded fixtures. Rule files are variants of the shipped v7
rule, written into temporary checkouts; the snapshot of Elastic's detection-rules in
../shared is read (never copied) and the tests that need it skip, saying so, without it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kexecwatch.rules import load_rules
from kexecwatch.rules.source import load_rule_source
from tests.test_check_rule import rule_file
from tests.test_cli import kexecwatch

ROOT = Path(__file__).resolve().parent.parent
LOG = ROOT / "fixtures" / "audit" / "raw" / "v7-exec-long.log"
V7_ID = "4d4c35f4-414e-4d0c-bb7e-6db7c80a6957"
SHARED = next(
    (p for p in (ROOT.parent / "shared", ROOT.parent.parent / "shared") if p.is_dir()),
    ROOT.parent / "shared",
)
SNAPSHOT = SHARED / "detection-rules"
needs_snapshot = pytest.mark.skipif(
    not (SNAPSHOT / "rules").is_dir(),
    reason=f"the detection-rules snapshot is absent ({SNAPSHOT})",
)


def checkout(tmp_path: Path, *, lock: object = None) -> Path:
    """A small detection-rules checkout: rules of every kind, nested, plus stray files."""
    rules = tmp_path / "rules" / "linux"
    (rules / "nested").mkdir(parents=True)
    unversioned = ("version = 7\n", "")
    rule_file(rules, "a_kexec.toml", unversioned)
    rule_file(
        rules / "nested",
        "b_kexec_again.toml",
        unversioned,
        (V7_ID, "00000000-0000-4000-8000-000000000002"),
        ('name = "Kernel Load', 'name = "Copy of Kernel Load'),
    )
    rule_file(rules, "c_kql.toml", ('language = "eql"', 'language = "kuery"'))
    rule_file(rules, "d_esql.toml", ('language = "eql"', 'language = "esql"'))
    rule_file(rules, "e_windows.toml", ('"OS: Linux"', '"OS: Windows"'))
    rule_file(rules, "f_broken.toml", ("process where", "process wher"))
    (rules / "README.md").write_text("not a rule\n")
    (rules / "g_hunt.toml").write_text('[hunt]\nname = "a hunting query"\n')
    if lock is not None:
        etc = tmp_path / "detection_rules" / "etc"
        etc.mkdir(parents=True)
        text = lock if isinstance(lock, str) else json.dumps(lock)
        (etc / "version.lock.json").write_text(text)
    return rules


def replay_alerts(*rule_args: str) -> tuple[int, list[dict[str, object]], str]:
    done = kexecwatch(
        "replay", "--no-builtin-rules", *rule_args, "--format", "json", "--quiet", str(LOG)
    )
    alerts = [json.loads(line) for line in done.stdout.splitlines()]
    return done.returncode, alerts, done.stderr.decode()


def test_a_directory_loads_its_rules_recursively_with_locked_versions(tmp_path: Path) -> None:
    lock = {V7_ID: {"rule_name": "x", "sha256": "0", "type": "eql", "version": 11}}
    rules = checkout(tmp_path, lock=lock)
    code, alerts, err = replay_alerts("--rule", str(rules))
    assert code == 1, err
    by_name = {a["rule"]["name"]: a["rule"] for a in alerts}  # type: ignore[index]
    assert set(by_name) == {
        "Kernel Load or Unload via Kexec Detected",
        "Copy of Kernel Load or Unload via Kexec Detected",
    }
    assert by_name["Kernel Load or Unload via Kexec Detected"]["version"] == "11"
    # Not in the lock file: version 1.
    assert by_name["Copy of Kernel Load or Unload via Kexec Detected"]["version"] == "1"
    lines = err.splitlines()
    assert lines[0].startswith(f"kexecwatch: rules: {rules}/f_broken.toml:"), err
    assert lines[1] == (
        f"kexecwatch: rules: {rules}: 2 rules loaded (versions from "
        f"{tmp_path}/detection_rules/etc/version.lock.json); skipped 1 KQL, 1 ES|QL, "
        f"1 not for Linux, 1 not rules; 1 did not load (see kexecwatch rules check {rules})"
    )
    assert len(lines) == 2


def test_a_rule_file_keeps_its_own_version_over_the_lock(tmp_path: Path) -> None:
    lock = {V7_ID: {"version": 11}}
    checkout(tmp_path, lock=lock)
    path = rule_file(tmp_path / "rules", "own.toml")
    code, alerts, _ = replay_alerts("--rule", str(path))
    assert code == 1
    assert [a["rule"]["version"] for a in alerts] == ["7"]  # type: ignore[index]


def test_a_broken_lock_file_is_reported_and_versions_stay_1(tmp_path: Path) -> None:
    rules = checkout(tmp_path, lock="{not json")
    code, alerts, err = replay_alerts("--rule", str(rules))
    assert code == 1
    assert {a["rule"]["version"] for a in alerts} == {"1"}  # type: ignore[index]
    assert "version.lock.json: the version lock is not JSON: " in err


def test_files_and_directories_mix_in_one_run(tmp_path: Path) -> None:
    rules = checkout(tmp_path)
    single = rule_file(
        tmp_path,
        "single.toml",
        (V7_ID, "00000000-0000-4000-8000-000000000003"),
        ('name = "Kernel Load', 'name = "Single Kernel Load'),
    )
    code, alerts, _ = replay_alerts("--rule", str(single), "--rule", str(rules))
    assert code == 1
    assert len({a["rule"]["id"] for a in alerts}) == 3  # type: ignore[index]


def test_a_broken_file_named_alone_is_still_an_error(tmp_path: Path) -> None:
    broken = rule_file(tmp_path, "broken.toml", ("process where", "process wher"))
    code, alerts, err = replay_alerts("--rule", str(broken))
    assert (code, alerts) == (2, [])
    assert err.startswith(f"kexecwatch: error: {broken}:") and err.count("\n") <= 3


@pytest.mark.parametrize("what", ["empty", "only-kql", "missing"])
def test_a_directory_without_a_runnable_rule_is_an_error(tmp_path: Path, what: str) -> None:
    target = tmp_path / "rules"
    if what != "missing":
        target.mkdir()
    if what == "only-kql":
        rule_file(target, "kql.toml", ('language = "eql"', 'language = "kuery"'))
    code, alerts, err = replay_alerts("--rule", str(target))
    assert (code, alerts) == (2, [])
    assert err.count("\n") == 1, err
    if what == "missing":
        assert err == f"kexecwatch: error: {target}: no such rule file or directory\n"
    else:
        assert "no rule kexecwatch can run in this directory" in err


def test_the_config_key_rules_takes_directories(tmp_path: Path) -> None:
    from kexecwatch.adapters.daemon.config import load_config

    rules = checkout(tmp_path, lock={V7_ID: {"version": 11}})
    config = tmp_path / "kexecwatch.toml"
    config.write_text(f'rules = ["{rules}"]\nbuiltin-rules = false\n')
    cfg = load_config(str(config))
    notes: list[str] = []
    loaded = load_rules(cfg.rules, builtin=cfg.builtin_rules, report=notes.append)
    assert sorted(r.version for r in loaded) == [1, 11]
    assert notes[-1].startswith(f"{rules}: 2 rules loaded")


@needs_snapshot
def test_the_snapshot_loads_with_counts_and_lock_versions() -> None:
    loaded = load_rule_source(str(SNAPSHOT / "rules"))
    skipped = {kind: len(files) for kind, files in loaded.skipped.items()}
    # The snapshot's Linux rules: 75 KQL and 19 ES|QL among them; the cross-platform
    # rules for other systems only are skipped whatever their language.
    assert skipped["kql"] + skipped["esql"] + skipped.get("not-linux", 0) >= 94
    assert len(loaded.rules) + len(loaded.failed) >= 343
    lock = json.loads((SNAPSHOT / "detection_rules/etc/version.lock.json").read_text())
    for rule in loaded.rules:
        # A rule newer than the lock file's last update has no entry yet: version 1.
        assert rule.version == lock.get(rule.rule_id, {"version": 1})["version"], rule.source
