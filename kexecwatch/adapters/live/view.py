"""``kexecwatch live``: a full-screen terminal view of detection.

The shell around three pure-ish parts: a feed (:mod:`.feeds`) puts log bytes
into a :class:`~kexecwatch.adapters.live.state.LiveModel`, and
:func:`~kexecwatch.adapters.live.render.render_dashboard` draws its state through
``rich.live.Live`` on the alternate screen.

Theory of operation: one thread, one loop. Each turn feeds what is due (at most about
50 ms of work), redraws if something changed and the last redraw is at least 0.25 s
old (or 1 s old when nothing changed, for the clocks), and then waits in ``select`` on
the terminal and a signal wake-up pipe until a key, a signal, the next due record or
the next redraw. The terminal is put in cbreak mode without signal keys, so Ctrl-C is
read as a key and ends the loop like ``q`` does; SIGTERM, SIGHUP and SIGINT set a flag
that ends it too. The terminal settings, the screen and the signal handlers are
restored in ``finally`` blocks on every way out.
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import signal
import socket
import sys
import termios
import time
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from kexecwatch.errors import InputError
from kexecwatch.hostid import check_host_id, machine_id

if TYPE_CHECKING:
    from kexecwatch.adapters.live.state import LiveModel

__all__ = ["DEFAULT_LOG", "add_live_arguments", "live_command", "run_dashboard"]

DEFAULT_LOG = "/var/log/audit/audit.log"
#: Shortest time between two redraws (at most 4 a second).
REFRESH_S = 0.25
#: Redraw at least this often, for the uptime and the rates.
IDLE_REFRESH_S = 1.0
EXIT_OK = 0
_SIGNAL_EXIT: dict[int, int] = {signal.SIGINT: 130, signal.SIGHUP: 129, signal.SIGTERM: 143}


class Feed(Protocol):
    """What the loop needs of a feed (see :mod:`kexecwatch.adapters.live.feeds`)."""

    def pump(self, model: LiveModel, now: float, budget_s: float = ...) -> float | None: ...
    def pause(self, now: float) -> None: ...
    def resume(self, now: float) -> None: ...
    def close(self) -> None: ...


def add_live_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``live`` subcommand's arguments to ``parser``."""
    parser.add_argument(
        "path", nargs="?", metavar="PATH", help=f"audit log to follow (default {DEFAULT_LOG})"
    )
    parser.add_argument(
        "--replay",
        nargs="+",
        metavar="FILE",
        help="replay recorded logs (files, .gz, or a directory's audit.log* set) instead",
    )
    parser.add_argument(
        "--speed",
        default="1",
        metavar="N|max",
        help="replay pace: N times the recorded pace (default 1), or max for at once",
    )
    from kexecwatch.core import DEFAULT_WINDOW_MS
    from kexecwatch.options import REPLAY_WINDOW_WHY, add_event_window_option, add_rule_options

    add_rule_options(parser)
    add_event_window_option(parser, DEFAULT_WINDOW_MS, REPLAY_WINDOW_WHY)


def parse_speed(text: str) -> float | None:
    """``max`` → ``None``; a positive number → itself.

    Raises:
        InputError: for anything else.
    """
    if text.strip().lower() == "max":
        return None
    try:
        speed = float(text)
    except ValueError:
        speed = 0.0
    if not 0 < speed < float("inf"):
        raise InputError(f"--speed {text!r}: expected a positive number or max")
    return speed


def live_command(args: argparse.Namespace) -> int:
    """Run ``kexecwatch live`` with parsed ``args``; return the exit code.

    0 after ``q``; 130 after Ctrl-C or SIGINT, 143 after SIGTERM, 129 after SIGHUP.

    Raises:
        InputError: for a bad ``--speed``, for both ``PATH`` and ``--replay``, for a
            log that cannot be read, or without a terminal (checked last, so that
            mistakes are reported even in a pipe).
        RuleError: when a rule file cannot be loaded.
    """
    from kexecwatch.adapters.sources import expand_paths
    from kexecwatch.options import load_rules

    speed = parse_speed(args.speed)
    if args.event_window_ms < 0:
        raise InputError("--event-window-ms must be >= 0")
    if args.replay and args.path:
        raise InputError("give either PATH to follow or --replay FILE..., not both")
    if not args.replay and args.speed != "1":
        raise InputError("--speed only applies to --replay")
    if args.replay and "-" in args.replay:
        raise InputError("--replay cannot read standard input: the view reads keys from it")
    path = args.path or DEFAULT_LOG
    sources = expand_paths(args.replay) if args.replay else None
    if sources is None:
        _check_readable(path)
    rules = load_rules(
        args.rule, builtin=not args.no_builtin_rules, ruleset=args.ruleset, cache=args.rule_cache
    )
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise InputError("live needs a terminal; use `kexecwatch replay` for pipes and files")
    from kexecwatch.adapters.live.state import LiveModel

    host = args.host_name or socket.gethostname()
    host_id = None if args.host_id is None else check_host_id(args.host_id)
    from kexecwatch.adapters.live.feeds import FollowFeed, ReplayFeed

    following = sources is None
    model = LiveModel(
        rules,
        host_name=host,
        host_id=(host_id or machine_id()) if following else host_id,
        live=following,  # /proc speaks of this host's own log only
        window_ms=args.event_window_ms,
        events_as=args.events_as,
    )
    feed: Feed
    if sources is None:
        feed = FollowFeed(path)
        model.state.path = path
    else:
        feed = ReplayFeed(sources, speed)
    try:
        return run_dashboard(model, feed)
    finally:
        feed.close()


def _check_readable(path: str) -> None:
    from kexecwatch.adapters.sources import check_regular_file

    if not os.path.lexists(path):
        raise InputError(f"{path}: no such file (is auditd running? --replay reads copies)")
    check_regular_file(path)


def run_dashboard(model: LiveModel, feed: Feed, *, fd: int | None = None) -> int:
    """Show the dashboard on the controlling terminal until the user quits.

    Args:
        model: the model to feed and draw.
        feed: where the bytes come from.
        fd: the terminal to read keys from (standard input by default).

    Returns:
        The exit code (see :func:`live_command`).
    """
    from rich.console import Console
    from rich.live import Live

    from kexecwatch.adapters.live.keys import handle_key
    from kexecwatch.adapters.live.render import HEADER_LINES, render_dashboard

    console = Console(highlight=False, markup=False, emoji=False, soft_wrap=False)
    state = model.state
    capture = _NoteHandler(model)
    root = logging.getLogger()
    root.addHandler(capture)
    try:
        with (
            _Terminal(sys.stdin.fileno() if fd is None else fd) as term,
            Live(
                console=console,
                screen=True,
                auto_refresh=False,
                redirect_stdout=False,
                redirect_stderr=False,
            ) as live,
        ):
            due: float | None = time.monotonic()
            last_draw = -1e9
            dirty = True
            page = 10
            while term.stop_signal is None:
                now = time.monotonic()
                if not state.paused and due is not None and now >= due:
                    version = model.version
                    wait = feed.pump(model, now)
                    due = None if wait is None else now + wait
                    dirty = dirty or wait is None or model.version != version
                if now - last_draw >= (REFRESH_S if dirty else IDLE_REFRESH_S):
                    model.tick(now)
                    width, height = console.size
                    state.height = height  # what the c key toggles from
                    live.update(render_dashboard(state, width, height), refresh=True)
                    last_draw, dirty = now, False
                    page = max(1, height - HEADER_LINES - 3)
                next_draw = last_draw + (REFRESH_S if dirty else IDLE_REFRESH_S)
                wake = next_draw if due is None or state.paused else min(next_draw, due)
                paused = state.paused
                for key in term.read_keys(max(0.0, wake - time.monotonic())):
                    if handle_key(state, key, page=page):
                        return 130 if key == "interrupt" else EXIT_OK
                    dirty = True
                if term.resized:
                    term.resized, dirty = False, True
                if state.paused != paused:
                    (feed.pause if state.paused else feed.resume)(time.monotonic())
            return _SIGNAL_EXIT.get(term.stop_signal, 1)
    finally:
        root.removeHandler(capture)


class _NoteHandler(logging.Handler):
    """Log records from the adapters would tear the screen: show them in the footer."""

    def __init__(self, model: LiveModel) -> None:
        super().__init__(logging.WARNING)
        self._model = model

    def emit(self, record: logging.LogRecord) -> None:
        self._model.note(record.getMessage())


class _Terminal:
    """cbreak mode without signal keys, plus signal and resize wake-ups; all undone on exit."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.stop_signal: int | None = None
        self.resized = False
        self._saved: list[Any] | None = None
        self._old_handlers: dict[int, object] = {}
        self._pipe: tuple[int, int] | None = None
        self._old_wakeup = -1

    def __enter__(self) -> _Terminal:
        self._saved = termios.tcgetattr(self.fd)
        mode = termios.tcgetattr(self.fd)
        mode[0] &= ~(termios.IXON | termios.ICRNL)  # Ctrl-S must not freeze the view
        mode[3] &= ~(termios.ICANON | termios.ECHO | termios.ISIG | termios.IEXTEN)
        mode[6][termios.VMIN] = 1
        mode[6][termios.VTIME] = 0
        try:
            termios.tcsetattr(self.fd, termios.TCSANOW, mode)
            self._pipe = os.pipe()
            for end in self._pipe:
                os.set_blocking(end, False)
            self._old_wakeup = signal.set_wakeup_fd(self._pipe[1], warn_on_full_buffer=False)
            for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
                self._old_handlers[sig] = signal.signal(sig, self._on_stop)
            self._old_handlers[signal.SIGWINCH] = signal.signal(signal.SIGWINCH, self._on_resize)
        except BaseException:
            self._restore()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._restore()

    def _restore(self) -> None:
        if self._saved is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            self._saved = None
        for sig, handler in self._old_handlers.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._old_handlers.clear()
        if self._pipe is not None:
            signal.set_wakeup_fd(self._old_wakeup)
            for end in self._pipe:
                os.close(end)
            self._pipe = None

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stop_signal = signum

    def _on_resize(self, signum: int, frame: FrameType | None) -> None:
        self.resized = True

    def read_keys(self, timeout: float) -> list[str]:
        """Wait up to ``timeout`` seconds for keys (or a signal); return their names."""
        if self.stop_signal is not None:
            return []
        assert self._pipe is not None
        ready, _, _ = select.select([self.fd, self._pipe[0]], [], [], timeout)
        if self._pipe[0] in ready:
            while True:
                try:
                    if not os.read(self._pipe[0], 512):
                        break
                except BlockingIOError:
                    break
        if self.fd not in ready:
            return []
        data = os.read(self.fd, 1024)
        if not data:  # the terminal went away
            self.stop_signal = signal.SIGHUP
            return []
        from kexecwatch.adapters.live.keys import parse_keys

        return parse_keys(data)
