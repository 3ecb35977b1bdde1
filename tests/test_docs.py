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


def readme_section(heading: str) -> str:
    start = README.index(heading)
    end = README.find("\n### ", start + len(heading))
    stop = README.find("\n## ", start + len(heading))
    ends = [e for e in (end, stop) if e != -1]
    return README[start : min(ends)] if ends else README[start:]


def options_of(parser: argparse.ArgumentParser) -> set[str]:
    return {
        opt
        for action in parser._actions
        for opt in action.option_strings
        if opt.startswith("--") and opt != "--help"
    }


def test_rule_commands_document_their_flags() -> None:
    commands = subcommands()
    rules_list = next(
        a for a in commands["rules"]._actions if isinstance(a, argparse._SubParsersAction)
    ).choices["list"]
    for heading, parser in (
        ("### `kexecwatch check-rule", commands["check-rule"]),
        ("### `kexecwatch rules list`", rules_list),
        ("### `kexecwatch audit-rules`", commands["audit-rules"]),
    ):
        section = readme_section(heading)
        for option in options_of(parser):
            assert f"`{option}" in section, f"{heading} does not document {option}"


def test_readme_field_table_lists_every_field_a_rule_can_read() -> None:
    from kexecwatch.core.process.docfields import process_fields

    table = readme_section("### The fields of a process event")
    documented = set(re.findall(r"`([@a-z_.0-9]+)`", table))
    assert process_fields() <= documented, sorted(process_fields() - documented)
    fields_like = {f for f in documented if "." in f and f.split(".")[0] in {"process", "user"}}
    assert fields_like <= process_fields(), sorted(fields_like - process_fields())


def test_readme_names_every_option_of_run_replay_and_live() -> None:
    commands = subcommands()
    for name in ("run", "replay", "live"):
        section = readme_section(f"### `kexecwatch {name}")
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
    assert "no checkpoint: reading" in readme_section("### `kexecwatch run`")


def test_one_event_window_option_in_replay_run_and_live() -> None:
    commands = subcommands()
    for name in ("replay", "run", "live"):
        text = " ".join(commands[name].format_help().split())
        assert "--event-window-ms MS" in text, name
        assert "--window" not in text, name  # the old name stays, hidden
        assert "run uses 1000" in text or "replay and live use 5000" in text, name


def test_readme_and_help_give_replay_default_path() -> None:
    from kexecwatch.adapters.sources import DEFAULT_LOG_DIR

    section = readme_section("### `kexecwatch replay")
    assert f"`{DEFAULT_LOG_DIR}`" in section
    assert "no audit record" in section
    help_text = subcommands()["replay"].format_help()
    assert DEFAULT_LOG_DIR in help_text
    assert "no audit record" in help_text


def test_readme_and_help_say_how_per_host_replay_merges_and_fails() -> None:
    section = " ".join(readme_section("### `kexecwatch replay").split())
    for fact in (
        "by `@timestamp`, then host name, then the host's own order",
        "whatever `--jobs` is",
        "ends that host only",
        "`web-1`",
        "`mail-7`",
        "exit 2",
    ):
        assert fact in section, fact
    help_text = " ".join(subcommands()["replay"].format_help().split())
    assert "merged by @timestamp, then host" in help_text
    assert "the same whatever N" in help_text


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_readme_links_to_its_own_sections_resolve() -> None:
    anchors = {_slug(h) for h in re.findall(r"^#+ (.+)$", README, re.M)}
    links = re.findall(r"\]\(#([^)]+)\)", README)
    assert "time-policy" in links  # the threat model points at the time policy
    assert [a for a in links if a not in anchors] == []


def test_threat_model_states_the_fuzzing_bounds_the_campaign_uses() -> None:
    from tools import fuzzlab

    section = README[README.index("## Threat model") : README.index("## Design")]
    assert f"{fuzzlab.MAX_CPU_S:g} s of CPU time" in section
    assert f"{fuzzlab.MAX_RSS_MB:g} MB of peak RSS" in section
    assert "KEXECWATCH_FUZZ_SECONDS" in section and "KEXECWATCH_FUZZ_SEED" in section
    for who in ("### The audit log", "### Local users", "### Rule files", "### The state"):
        assert who in section


def test_readme_quotes_the_collector_config_the_fleet_test_runs() -> None:
    snippet = (ROOT / "examples" / "collector" / "rsyslog-kexecwatch.conf").read_text()
    section = readme_section("### The collector")
    assert f"```text\n{snippet}```" in section
