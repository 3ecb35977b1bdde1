"""The README stays true: every subcommand has help text and a README entry."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

from kexecwatch.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


def test_every_subcommand_has_help_and_a_readme_section() -> None:
    commands = subcommands()
    assert {"replay", "check-rule"} <= set(commands)
    for name, sub in commands.items():
        assert sub.description, f"{name} has no description"
        assert re.search(rf"^### `kexecwatch {re.escape(name)}\b", README, re.M), (
            f"README has no '### `kexecwatch {name}' section"
        )
        result = subprocess.run(
            [sys.executable, "-m", "kexecwatch", name, "--help"],
            capture_output=True,
            check=False,
            timeout=30,
        )
        assert result.returncode == 0
        assert b"usage: kexecwatch " + name.encode() in result.stdout


def test_readme_opens_with_the_two_commands() -> None:
    head = README[: README.index("## Install")]
    assert "./scripts/demo" in head
    assert "./scripts/test" in head
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "exec ./scripts/test" in ci


def test_readme_documents_every_exit_code_of_replay() -> None:
    table = README[README.index("## Exit codes") :]
    for code in ("| 0 |", "| 1 |", "| 2 |"):
        assert code in table


def readme_section(command: str) -> str:
    start = README.index(f"### `kexecwatch {command}")
    end = README.find("\n### ", start + 1)
    return README[start:end]


def test_readme_names_every_option_of_run_replay_and_live() -> None:
    commands = subcommands()
    for name in ("run", "replay", "live"):
        section = readme_section(name)
        for action in commands[name]._actions:
            if action.help == argparse.SUPPRESS:
                continue
            for flag in action.option_strings:
                if flag in ("-h", "--help"):
                    continue
                assert f"`{flag}" in section, f"README's {name} section lacks {flag}"


def test_run_help_shows_the_defaults_and_where_reading_starts() -> None:
    text = " ".join(subcommands()["run"].format_help().split())
    for default in (
        "(default /var/log/audit/audit.log)",
        "(default /var/lib/kexecwatch)",
        "default stdout)",
        "from its start",
    ):
        assert default in text, default
    assert "no checkpoint: reading" in readme_section("run")


def test_one_event_window_option_in_replay_run_and_live() -> None:
    commands = subcommands()
    for name in ("replay", "run", "live"):
        text = " ".join(commands[name].format_help().split())
        assert "--event-window-ms MS" in text, name
        assert "--window" not in text, name  # the old name stays, hidden
        assert "run uses 1000" in text or "replay and live use 5000" in text, name
