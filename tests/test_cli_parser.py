"""The command line parses the same whether the subcommands not run are added or not.

``kexecwatch COMMAND ...`` builds only COMMAND's parser (each other one cost a parser at
every start-up); whatever follows, the outcome must equal the full parser's: the values
parsed, or the help, usage error or version printed, and the exit code.
"""

from __future__ import annotations

import argparse
import contextlib
import io

import pytest

from kexecwatch import cli

NAMES = [name for name, _help, _configure in cli._COMMANDS]

ARGVS: list[list[str]] = [
    *([name, "--help"] for name in NAMES),
    *([name] for name in NAMES),
    *([name, "--no-such-option"] for name in NAMES),
    *([name, "-h", "extra"] for name in NAMES),
    ["replay", "a.log", "b.log", "--format", "text", "--since", "now-9m", "--quiet"],
    ["replay", "--format", "xml"],
    ["replay", "--jobs", "many"],
    ["replay", "a.log", "--version"],
    ["replay", "--ruleset", "upstream", "--rule", "r.toml", "--no-builtin-rules", "-"],
    ["rules", "check", "dir", "--format", "json"],
    ["rules", "nothing"],
    ["check-rule", "r.toml"],
    ["audit-rules", "unexpected"],
    ["doctor", "--help"],
    ["run", "--config", "c.toml"],
    ["live", "a.log"],
]


def outcome(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[object, str, str]:
    """What parsing ``argv`` gives: the namespace (its handler by name) or the exit code,
    and what it wrote on stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            args = vars(parser.parse_args(argv))
        except SystemExit as exc:
            result: object = ("exit", exc.code)
        else:
            handler = args.pop("handler")
            result = (sorted(args.items(), key=repr), handler.__qualname__)
    return result, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("argv", ARGVS, ids=" ".join)
def test_a_command_parses_the_same_alone(argv: list[str]) -> None:
    full = cli.build_parser(None, argv[0])
    alone = cli.build_parser(None, argv[0], alone=True)
    assert outcome(alone, argv) == outcome(full, argv)


def test_alone_adds_only_that_command_and_only_for_a_known_one() -> None:
    def commands(parser: argparse.ArgumentParser) -> list[str]:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        return list(sub.choices)

    assert commands(cli.build_parser(None, "replay", alone=True)) == ["replay"]
    assert commands(cli.build_parser(None, "nosuch", alone=True)) == NAMES
    assert commands(cli.build_parser(None, None, alone=True)) == NAMES
    assert commands(cli.build_parser(None, "replay")) == NAMES
