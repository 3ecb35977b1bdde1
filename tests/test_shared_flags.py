"""Flags that replay, run and live share: --no-builtin-rules needs a --rule, and one name
for the event window (the old --window still works)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.builders import exec_lines, join
from tests.test_cli import kexecwatch


@pytest.mark.parametrize("command", ["replay", "live --replay", "run --log"])
def test_no_builtin_rules_without_a_rule_is_a_usage_error(command: str, tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(join(exec_lines(1)))
    extra = ["--state-dir", str(tmp_path / "s")] if command.startswith("run") else []
    result = kexecwatch(*command.split(), str(log), *extra, "--no-builtin-rules")
    assert result.returncode == 2
    [line] = result.stderr.decode().splitlines()
    assert "--no-builtin-rules needs at least one --rule" in line


def test_builtin_rules_false_in_the_config_without_rules_is_an_error(tmp_path: Path) -> None:
    config = tmp_path / "k.toml"
    config.write_text("builtin-rules = false\n")
    result = kexecwatch(
        "run", "--config", str(config), "--log", str(tmp_path / "a.log"), "--state-dir",
        str(tmp_path / "s"),
    )  # fmt: skip
    assert result.returncode == 2
    assert b"no rule would run" in result.stderr


def test_event_window_ms_and_the_old_window_name(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(join(exec_lines(1)))
    for flag in ("--event-window-ms", "--window"):
        assert kexecwatch("replay", flag, "100", str(log)).returncode == 1
        result = kexecwatch("replay", flag, "-1", str(log))
        assert result.returncode == 2
        assert b"--event-window-ms must be >= 0" in result.stderr
