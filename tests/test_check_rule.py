"""`kexecwatch check-rule`, driven as a real process: every problem of every file, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_cli import kexecwatch

ROOT = Path(__file__).resolve().parent.parent
V7 = (
    ROOT / "kexecwatch/rules/privilege_escalation_load_and_unload_of_kernel_via_kexec.toml"
).read_text(encoding="utf-8")


def rule_file(tmp_path: Path, name: str, *edits: tuple[str, str]) -> Path:
    text = V7
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def check(*args: str) -> tuple[int, str]:
    done = kexecwatch("check-rule", *args)
    assert done.stderr == b""
    return done.returncode, done.stdout.decode()


def test_valid_rule_exits_0(tmp_path: Path) -> None:
    code, out = check(str(rule_file(tmp_path, "v7.toml")))
    assert code == 0
    assert "v7.toml: ok: 'Kernel Load or Unload via Kexec Detected'" in out


def test_unknown_toml_key_is_an_error_at_its_line(tmp_path: Path) -> None:
    path = rule_file(tmp_path, "typo.toml", ('severity = "medium"', 'severty = "medium"'))
    line = path.read_text().splitlines().index('severty = "medium"') + 1
    code, out = check(str(path))
    assert code == 2
    assert f"{path}:{line}:1: error: unknown key rule.severty (did you mean rule.severity?)" in out
    assert f"{path}: error: missing required key rule.severity" in out


def test_misspelt_field_is_a_warning_naming_the_fields_kexecwatch_sets(tmp_path: Path) -> None:
    path = rule_file(tmp_path, "nmae.toml", ('process.name == "kexec"', 'process.nmae == "kexec"'))
    code, out = check(str(path))
    assert code == 0  # a warning only
    warning = next(ln for ln in out.splitlines() if ": warning: " in ln)
    assert "field process.nmae is never set by kexecwatch" in warning
    assert "did you mean process.name?" in warning
    assert "process.parent.name" in warning and "process.args" in warning
    assert "^" in out  # the query line and a caret under the field
    code, out = check("--strict", str(path))
    assert code == 2
    assert "error: field process.nmae" in out and ": ok" not in out


def test_optional_field_is_not_reported(tmp_path: Path) -> None:
    path = rule_file(tmp_path, "opt.toml", ('process.name == "kexec"', '?process.nmae == "kexec"'))
    code, out = check("--strict", str(path))
    assert code == 0, out
    assert "warning" not in out


def test_category_kexecwatch_never_produces_is_a_warning(tmp_path: Path) -> None:
    path = rule_file(tmp_path, "net.toml", ("\nprocess where", "\nnetwork where"))
    code, out = check(str(path))
    assert code == 0
    assert "event category 'network' is never produced by kexecwatch" in out
    assert "kexecwatch produces: any, process" in out
    assert check("--strict", str(path))[0] == 2


def test_all_missing_keys_at_once(tmp_path: Path) -> None:
    path = rule_file(
        tmp_path,
        "missing.toml",
        ('name = "Kernel Load or Unload via Kexec Detected"\n', ""),
        ('rule_id = "4d4c35f4-414e-4d0c-bb7e-6db7c80a6957"\n', ""),
        ('maturity = "production"\n', ""),
    )
    code, out = check(str(path))
    assert code == 2
    assert out.splitlines()[0] == (
        f"{path}: error: missing required keys metadata.maturity, rule.name, rule.rule_id"
    )


def test_every_file_gets_its_result(tmp_path: Path) -> None:
    good = rule_file(tmp_path, "good.toml")
    bad = rule_file(tmp_path, "bad.toml", ("risk_score = 47", "risk_score = 470"))
    gone = tmp_path / "gone.toml"
    code, out = check(str(bad), str(gone), str(good))
    assert code == 2
    lines = out.splitlines()
    assert lines[0] == f"{bad}: error: rule.risk_score must be between 0 and 100"
    assert lines[1] == f"{gone}: error: no such rule file"
    assert lines[2].startswith(f"{good}: ok: ")
    assert lines[3] == "1 of 3 rule files are valid"


def test_json_lists_every_files_result(tmp_path: Path) -> None:
    good = rule_file(tmp_path, "good.toml")
    typo = rule_file(
        tmp_path,
        "typo.toml",
        ('severity = "medium"', 'severty = "medium"'),
        ('process.name == "kexec"', 'process.nmae == "kexec"'),
    )
    done = kexecwatch("check-rule", "--format", "json", str(good), str(typo))
    assert done.returncode == 2
    doc = json.loads(done.stdout)
    assert doc["format"] == 1 and doc["ok"] is False
    first, second = doc["files"]
    assert first["path"] == str(good) and first["ok"] is True and first["errors"] == []
    assert first["rule"]["id"] == "4d4c35f4-414e-4d0c-bb7e-6db7c80a6957"
    assert first["rule"]["prefilter"]["process.name"] == ["kexec"]
    assert second["ok"] is False and second["rule"] is None
    assert [e["message"] for e in second["errors"]] == [
        "unknown key rule.severty (did you mean rule.severity?)",
        "missing required key rule.severity",
    ]
    assert second["errors"][0]["line"] is not None
    (warning,) = second["warnings"]
    assert warning["message"].startswith("field process.nmae is never set")
    assert warning["line"] and warning["column"] and "^" in warning["detail"]


@pytest.mark.parametrize("where", ["replay", "check-rule"])
def test_replay_refuses_an_unknown_key_too(tmp_path: Path, where: str) -> None:
    path = rule_file(tmp_path, "typo.toml", ("risk_score = 47", "risk_scor = 47"))
    if where == "replay":
        done = kexecwatch("replay", "--rule", str(path), "-")
        assert done.returncode == 2
        err = done.stderr.decode()
        assert "unknown key rule.risk_scor (did you mean rule.risk_score?)" in err
        assert "(and 1 more: run kexecwatch check-rule" in err
    else:
        assert check(str(path))[0] == 2
