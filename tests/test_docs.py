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


def test_readme_and_help_give_replay_default_path() -> None:
    from kexecwatch.sources import DEFAULT_LOG_DIR

    section = README[README.index("### `kexecwatch replay") :]
    section = section[: section.index("\n### ")]
    assert f"`{DEFAULT_LOG_DIR}`" in section
    assert "no audit record" in section
    help_text = subcommands()["replay"].format_help()
    assert DEFAULT_LOG_DIR in help_text
    assert "no audit record" in help_text
