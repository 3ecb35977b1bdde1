"""What several commands share: the exit codes, and the options that name rules, hosts,
the event window and the event vocabulary, with the rule loading behind ``--rule``.

The command line (:mod:`kexecwatch.cli`) and the commands it dispatches to (``run``,
``live``, the rule commands) all import this module, and it imports none of them: the
commands never import the command line back.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING

from kexecwatch.core import EVENTS_AS, escape_text
from kexecwatch.textio import stderr_text

if TYPE_CHECKING:
    from kexecwatch.core import DetectionRule
    from kexecwatch.rules.cache import RuleCache

__all__ = [
    "EXIT_ALERTS",
    "EXIT_ERROR",
    "EXIT_OK",
    "REPLAY_WINDOW_WHY",
    "add_event_window_option",
    "add_events_as_option",
    "add_rule_cache_option",
    "add_rule_options",
    "load_rules",
    "missing_subcommand",
    "user_rule_cache",
]

EXIT_OK = 0
EXIT_ALERTS = 1
EXIT_ERROR = 2
#: Why replay and live wait longer for an event's records than ``run`` does.
REPLAY_WINDOW_WHY = (
    "a recorded log costs nothing to wait on, so an event whose records are far apart "
    "stays whole; run uses 1000 so that a live alert is not held up"
)


def missing_subcommand(parser: argparse.ArgumentParser, what: str = "a COMMAND") -> int:
    """``kexecwatch`` (or ``kexecwatch rules``) alone: the help, where a newcomer looks
    first, and exit 2."""
    err = stderr_text()
    parser.print_help(err)
    err.write(f"kexecwatch: error: {what} is required (see the list above)\n")
    return EXIT_ERROR


def load_rules(
    paths: Sequence[str], *, builtin: bool = True, ruleset: str = "all", cache: bool = True
) -> list[DetectionRule]:
    """The built-in rules of ``ruleset`` (unless ``builtin`` is false) plus rule paths
    (files or directories); what a directory skipped or could not load goes to stderr.

    Args:
        cache: use the user's rule cache (``--no-rule-cache``: false).

    Raises:
        RuleError: when a rule file or path cannot be read or compiled.
    """
    from kexecwatch.rules import load_rules as load

    err = stderr_text()

    def report(line: str) -> None:
        err.write(f"kexecwatch: rules: {escape_text(line)}\n")

    rule_cache = user_rule_cache(cache) if paths else None
    return list(load(paths, builtin=builtin, ruleset=ruleset, report=report, cache=rule_cache))


def user_rule_cache(enabled: bool = True) -> RuleCache:
    """The rule cache in the user's cache directory, warning on stderr (disabled:
    a cache that keeps nothing)."""
    from kexecwatch.rules.cache import RuleCache, default_cache_dir

    err = stderr_text()

    def warn(line: str) -> None:
        err.write(f"kexecwatch: warning: rule cache {escape_text(line)}\n")

    return RuleCache(default_cache_dir() if enabled else None, warn=warn)


def add_rule_options(parser: argparse.ArgumentParser) -> None:
    """``--rule``, ``--no-builtin-rules``, ``--ruleset``, ``--host-name``, ``--host-id``
    and ``--events-as``, shared by the commands that read logs offline or in a terminal."""
    parser.add_argument(
        "--rule",
        action="append",
        default=[],
        metavar="PATH",
        help="add a rule file (TOML, detection-rules format) or a directory of them, read "
        "recursively (such as a detection-rules checkout's rules/linux); repeatable",
    )
    parser.add_argument(
        "--no-builtin-rules", action="store_true", help="run only the rules given with --rule"
    )
    add_rule_cache_option(parser)
    parser.add_argument(
        "--ruleset",
        choices=("all", "upstream", "kexecwatch"),
        default="all",
        help="built-in rules to run: upstream (Elastic's v7 rule alone, exact parity), "
        "kexecwatch (kexecwatch's own detections alone) or all (default)",
    )
    parser.add_argument(
        "--host-name",
        metavar="NAME",
        help="host.name for records without node= (default: this host's name)",
    )
    parser.add_argument(
        "--host-id",
        metavar="ID",
        help="host.id for records without node= (default: none when reading files; "
        "/etc/machine-id when following this host's log)",
    )
    add_events_as_option(parser)


def add_rule_cache_option(parser: argparse.ArgumentParser, *, config: bool = False) -> None:
    """``--no-rule-cache`` (dest ``rule_cache``): parse every rule file afresh
    (``config``: ``None`` when not given, the configuration file's value applies)."""
    parser.add_argument(
        "--no-rule-cache",
        action="store_false",
        dest="rule_cache",
        default=None if config else True,
        help="parse every rule file afresh: do not read or write the rule cache "
        "($XDG_CACHE_HOME/kexecwatch/rules.json)",
    )


def add_events_as_option(parser: argparse.ArgumentParser, *, config: bool = False) -> None:
    """``--events-as``: the event vocabulary of process documents (``config``: no default,
    the configuration file's value applies)."""
    parser.add_argument(
        "--events-as",
        choices=EVENTS_AS,
        default=None if config else EVENTS_AS[0],
        help="event.action values of process documents: auditbeat (executed, the default) "
        "or defend (Elastic Defend's exec)",
    )


def add_event_window_option(
    parser: argparse.ArgumentParser, default: int, why: str, *, config: bool = False
) -> None:
    """``--event-window-ms`` (dest ``event_window_ms``), the one name of the event window
    in ``replay``, ``run`` and ``live``, with ``--window`` as a hidden alias.

    Args:
        default: the default shown (and used, unless ``config``: then the option's
            default is ``None`` and the configuration file's value applies).
        why: why this command has this default.
    """
    parser.add_argument(
        "--event-window-ms",
        type=int,
        default=None if config else default,
        metavar="MS",
        dest="event_window_ms",
        help=f"how long, in record time, an incomplete event waits for more records "
        f"(default {default}; {why})",
    )
    parser.add_argument(
        "--window",
        type=int,
        dest="event_window_ms",
        default=argparse.SUPPRESS,
        help=argparse.SUPPRESS,
    )
