"""The ``kexecwatch`` command line.

Exit codes (every subcommand): 0 success and nothing found, 1 alerts found
(``replay``) or a runtime failure, 2 usage, configuration, rule or input
error. Each error is one line on stderr that names the problem.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TextIO

from kexecwatch import __version__
from kexecwatch.adapters.sources import DEFAULT_LOG_DIR
from kexecwatch.errors import InputError, KexecwatchError
from kexecwatch.native.choice import ScannerChoice, install, scanner_text
from kexecwatch.options import (
    EXIT_ALERTS,
    EXIT_ERROR,
    EXIT_OK,
    REPLAY_WINDOW_WHY,
    add_event_window_option,
    add_rule_options,
    load_rules,
    missing_subcommand,
)
from kexecwatch.textio import stderr_text

if TYPE_CHECKING:
    from kexecwatch.core import DetectorOptions, Stats

__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors exit 2 with one line naming the problem."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_ERROR, f"kexecwatch: error: {message} (see --help)\n")


class _Version(argparse.Action):
    """``--version``: one line, never wrapped (the scanner's reason may be long)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        sys.stdout.write(f"{parser.get_default('version_text')}\n")
        sys.stdout.flush()
        parser.exit(0)


def build_parser(
    choice: ScannerChoice | None = None, command: str | None = None, *, alone: bool = False
) -> argparse.ArgumentParser:
    """The argument parser with every subcommand (``choice``: the scanner ``--version``
    names; by default the one installed).

    ``command``: set up only that subcommand's arguments (the one being run); the others
    keep their name and help line for ``kexecwatch --help`` and usage errors. A command
    then imports only the modules it uses (``tests/test_startup_imports.py``).
    ``alone`` (with a known ``command`` that is the command line's first word): add no
    other subcommand at all. Nothing can then reach them: the top level has only ``--help``
    and ``--version``, which would come first, and argparse names the choices only for an
    unknown command. Each one costs a parser (``tests/test_cli.py`` holds the two equal).
    """
    parser = _Parser(
        prog="kexecwatch",
        description="Detect kernels loaded or unloaded with kexec, from the Linux audit trail.",
    )
    parser.add_argument(
        "--version",
        action=_Version,
        nargs=0,
        help="print the version and the scanner in use (native or python, and why), and exit",
    )
    parser.set_defaults(version_text=f"kexecwatch {__version__} (scanner: {scanner_text(choice)})")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    parser.set_defaults(handler=lambda _args: missing_subcommand(parser))
    known = command in {name for name, _help, _configure in _COMMANDS}
    for name, help_line, configure in _COMMANDS:
        if alone and known and name != command:
            continue
        command_parser = sub.add_parser(name, help=help_line)
        if not known or name == command:
            configure(command_parser)
    return parser


def _command_in(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` names: its first word that is not an option (the top level
    has only ``--version`` and ``--help``, which take no value)."""
    return next((word for word in argv if not word.startswith("-")), None)


def _configure_replay(replay: argparse.ArgumentParser) -> None:
    from kexecwatch.core import DEFAULT_WINDOW_MS

    replay.description = (
        "Replay audit logs (regular files, - for standard input, gzip files, or a "
        "directory meaning its audit.log* set, oldest first) through the rules. Without "
        f"PATH: the audit log set in {DEFAULT_LOG_DIR}. Exit 0: no alert; 1: alerts; "
        "2: error, including input that holds no audit record."
    )
    replay.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help=f"log files, directories or - (default: {DEFAULT_LOG_DIR})",
    )
    replay.add_argument(
        "--format",
        choices=("json", "text"),
        default="json",
        dest="out_format",
        help="json: one ECS document per line (default); text: one safe line each",
    )
    replay.add_argument(
        "--events", action="store_true", help="print every process event instead of alerts"
    )
    add_rule_options(replay)
    replay.add_argument(
        "--since",
        metavar="TIME",
        help="only events at or after TIME (ISO date, common formats, now-9m)",
    )
    replay.add_argument("--until", metavar="TIME", help="only events before TIME")
    add_event_window_option(replay, DEFAULT_WINDOW_MS, REPLAY_WINDOW_WHY)
    replay.add_argument(
        "--progress",
        choices=("auto", "always", "never"),
        default="auto",
        help="progress bar on stderr (auto: when stderr is a terminal)",
    )
    replay.add_argument("--quiet", action="store_true", help="no summary on stderr")
    replay.add_argument(
        "--per-host",
        action="store_true",
        help="each PATH is its own host (named after the directory, or the file up to .log): "
        "its own stream and process table; one output merged by @timestamp, then host",
    )
    replay.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="with --per-host: replay up to N hosts at once, in parallel processes "
        "(default 1; the output is the same whatever N)",
    )
    replay.set_defaults(handler=_replay_command)


def _configure_run(run: argparse.ArgumentParser) -> None:
    from kexecwatch.adapters.daemon.config import add_run_arguments

    run.description = (
        "Follow audit.log through rotation, restarts and crashes; exit 0 on "
        "SIGTERM/SIGINT, 1 on a runtime failure, 2 on a usage, config or rule error."
    )
    add_run_arguments(run)
    run.set_defaults(handler=_run_command)


def _configure_doctor(doctor: argparse.ArgumentParser) -> None:
    from kexecwatch.adapters.doctor import add_doctor_arguments, doctor_command

    doctor.description = (
        "Check auditd, the audit rules, log access, kernel kexec state, the "
        "service and its checkpoint; one line per check. Exit 0: detection works; "
        "1: degraded; 2: blind."
    )
    add_doctor_arguments(doctor)
    doctor.set_defaults(handler=doctor_command)


def _configure_live(live: argparse.ArgumentParser) -> None:
    from kexecwatch.adapters.live.view import add_live_arguments, live_command

    live.description = (
        "Follow an audit log (default /var/log/audit/audit.log) or replay recorded logs "
        "in a full-screen view: counters, alerts with their parent chain, and every kexec "
        "run with the reason it did or did not alert. Keys: q quit, p pause, c one or two "
        "lines per alert, up/down or "
        "j/k select an alert, Enter show it as JSON, Esc/q back."
    )
    add_live_arguments(live)
    live.set_defaults(handler=live_command)


def _configure_check_rule(parser: argparse.ArgumentParser) -> None:
    from kexecwatch.rulecmds import configure_check_rule

    configure_check_rule(parser)


def _configure_rules(parser: argparse.ArgumentParser) -> None:
    from kexecwatch.rulecmds import configure_rules

    configure_rules(parser)


def _configure_audit_rules(parser: argparse.ArgumentParser) -> None:
    from kexecwatch.rulecmds import configure_audit_rules

    configure_audit_rules(parser)


#: Every subcommand, in the order ``kexecwatch --help`` lists them: its name, its help
#: line, and what adds its description, arguments and handler (importing what it needs).
_COMMANDS: tuple[tuple[str, str, Callable[[argparse.ArgumentParser], None]], ...] = (
    ("replay", "run the rules over recorded audit logs", _configure_replay),
    (
        "check-rule",
        "load and compile rule files, and say what each one reads",
        _configure_check_rule,
    ),
    ("rules", "the built-in rules, and what kexecwatch can do with a rule set", _configure_rules),
    ("audit-rules", "print the audit rules kexecwatch needs", _configure_audit_rules),
    ("run", "follow the audit log as a service and raise alerts", _configure_run),
    (
        "doctor",
        "say whether kexec detection works on this host, or why it is blind",
        _configure_doctor,
    ),
    (
        "live",
        "full-screen terminal view: follow the audit log, or replay recorded logs",
        _configure_live,
    ),
)


def main(argv: Sequence[str] | None = None, *, collector_paused: bool = False) -> int:
    """Run the command line; return the exit code.

    ``collector_paused``: the caller disabled the garbage collector for start-up
    (:mod:`kexecwatch.program`); it is enabled again when start-up ends (see
    :func:`_end_start_up`).
    """
    try:
        # The scanner every detector of this process uses (KEXECWATCH_SCANNER).
        choice = install()
    except KexecwatchError as exc:
        stderr_text().write(f"kexecwatch: error: {exc}\n")
        return EXIT_ERROR
    words = sys.argv[1:] if argv is None else argv
    command = _command_in(words)
    parser = build_parser(choice, command, alone=bool(words) and words[0] == command)
    args = parser.parse_args(words)
    args.collector_paused = collector_paused
    if args.handler is not _replay_command:  # replay ends its start-up itself
        _end_start_up(collector_paused, freeze=False)
    try:
        code: int = args.handler(args)
    except KexecwatchError as exc:
        stderr_text().write(f"kexecwatch: error: {exc}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        stderr_text().write("kexecwatch: interrupted\n")
        return 130
    except BrokenPipeError:
        # The reader went away (| head): not an error of ours.
        sys.stderr.close()
        return EXIT_OK
    return code


def _end_start_up(collector_paused: bool, *, freeze: bool) -> None:
    """Start-up is over: with ``freeze``, take what it built (modules, the compiled rules),
    which lives as long as the process, out of the garbage collector's passes, which would
    otherwise walk it again and again while the stream's objects come and go; and enable
    the collector again if the entry point paused it.

    No pass runs first: one over everything start-up built cost about as much as the pause
    saved. What a frozen start-up keeps that a pass would have freed is the few cycles it
    leaves, about 0.1 MB (the classes ``@dataclass(slots=True)`` replaces), once."""
    import gc

    if freeze:
        gc.freeze()
    if collector_paused:
        gc.enable()


def _run_command(args: argparse.Namespace) -> int:
    # The daemon's modules (file watching, outputs) load only when it runs.
    from kexecwatch.adapters.daemon.run import run_command

    return run_command(args)


def _replay_command(args: argparse.Namespace) -> int:
    import os

    from kexecwatch.adapters.replay import replay, summary
    from kexecwatch.adapters.sources import expand_paths
    from kexecwatch.core import DetectorOptions
    from kexecwatch.hostid import check_host_id
    from kexecwatch.testhooks import fault_marker

    since, until = _time_window(args.since, args.until)
    if since is not None and until is not None and since >= until:
        raise InputError(f"--since {args.since!r} is not before --until {args.until!r}")
    if args.event_window_ms < 0:
        raise InputError("--event-window-ms must be >= 0")
    if args.jobs < 1:
        raise InputError(f"--jobs must be at least 1, not {args.jobs}")
    if args.jobs > 1 and not args.per_host:
        raise InputError("--jobs needs --per-host (without it, all paths form one stream)")
    if args.per_host and args.host_name:
        raise InputError(
            "--host-name cannot be used with --per-host: each host is named after its path"
        )
    if args.per_host and args.host_id:
        raise InputError("--host-id cannot be used with --per-host: each host is its own")
    host_id = None if args.host_id is None else check_host_id(args.host_id)
    rules = load_rules(
        args.rule, builtin=not args.no_builtin_rules, ruleset=args.ruleset, cache=args.rule_cache
    )
    options = DetectorOptions(
        window_ms=args.event_window_ms,
        emit_events=args.events,
        since_ms=since,
        until_ms=until,
        fault_on=fault_marker(),
        events_as=args.events_as,
    )
    _end_start_up(args.collector_paused, freeze=True)
    err = stderr_text()
    if args.per_host:
        return _replay_per_host(args, options, err)
    if not args.paths:
        err.write(
            f"kexecwatch: no PATH given: replaying {DEFAULT_LOG_DIR} (audit.log and its "
            "rotations, oldest first; - reads standard input)\n"
        )
    sources = expand_paths(args.paths or [DEFAULT_LOG_DIR])
    progress = args.progress == "always" or (args.progress == "auto" and err.isatty())
    result = replay(
        sources,
        rules,
        # The host name socket.gethostname() gives on Linux, without loading socket.
        host_name=args.host_name or os.uname().nodename,
        host_id=host_id,
        options=options,
        out_format=args.out_format,
        stderr=err,
        progress=progress,
    )
    problem = result.input_error()
    if problem is not None:
        raise problem
    if not args.quiet:
        err.write(
            f"kexecwatch: {summary(result.detector.stats, len(sources), result.bytes_read)} "
            f"in {result.seconds:.2f} s)\n"
        )
    return _exit_code(args, [result.detector.stats])


def _time_window(since: str | None, until: str | None) -> tuple[int | None, int | None]:
    """``--since`` and ``--until`` in ms (``None`` when not given); they must be in order."""
    if since is None and until is None:
        return None, None
    from datetime import UTC, datetime

    from kexecwatch.timespec import parse_time_ms

    now = datetime.now(UTC)
    since_ms = parse_time_ms(since, now=now, option="--since") if since else None
    until_ms = parse_time_ms(until, now=now, option="--until") if until else None
    return since_ms, until_ms


def _exit_code(args: argparse.Namespace, stats: Sequence[Stats]) -> int:
    """1 when alerts were found; otherwise 2 if an event could not be handled (each is
    named on stderr: "no alert" is then not sure), else 0. Never 1 for an error."""
    if not args.events and any(s.alerts for s in stats):
        return EXIT_ALERTS
    return EXIT_ERROR if any(s.event_errors for s in stats) else EXIT_OK


def _replay_per_host(args: argparse.Namespace, options: DetectorOptions, err: TextIO) -> int:
    import time

    from kexecwatch.adapters.perhost import RuleChoice, plan_hosts, replay_hosts, report

    if not args.paths:
        raise InputError("--per-host needs PATH arguments, one per host")
    hosts = plan_hosts(args.paths)
    started = time.monotonic()
    results = replay_hosts(
        hosts,
        RuleChoice(tuple(args.rule), not args.no_builtin_rules, args.ruleset, args.rule_cache),
        jobs=args.jobs,
        options=options,
        out_format=args.out_format,
        stdout=sys.stdout.buffer,
    )
    report(results, err, quiet=args.quiet, seconds=time.monotonic() - started)
    if any(r.error is not None for r in results):
        return EXIT_ERROR
    return _exit_code(args, [r.stats for r in results])
