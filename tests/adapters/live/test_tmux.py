"""``kexecwatch live`` in a real terminal: tmux, send-keys and capture-pane.

Each test starts a private tmux server (``-L kxw-test-<pid>-<n>``) running a plain
bash, types the command line into it, and reads the screen back. The command writes its
exit status and the terminal settings (``stty -a``) to files after it ends, so the
tests see what an operator's shell would get back.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kexecwatch.adapters.live.feeds import ReplayFeed, line_time_ms
from kexecwatch.adapters.live.state import DashboardState, LiveModel
from kexecwatch.adapters.sources import expand_paths
from kexecwatch.rules import load_builtin_rules
from tests.adapters.live.live_logs import scenario_log

# scripts/test installs tmux; without it these tests fail rather than skip.
assert shutil.which("tmux"), "the live view's terminal tests need tmux (apt install tmux)"

ROOT = Path(__file__).resolve().parents[3]
TITLE = "kexecwatch live │"
HEADER = " kexecwatch live │ replay"
_counter = itertools.count()
# The synthetic scenario is built for the upstream rule: its counts are that rule's.
UPSTREAM = ("--ruleset", "upstream")


class Tmux:
    """One private tmux server with one pane running bash."""

    def __init__(self, workdir: Path, width: int, height: int) -> None:
        self.socket = f"kxw-test-{os.getpid()}-{next(_counter)}"
        self.workdir = workdir
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(workdir),
            "LANG": "C.UTF-8",
            "TERM": "xterm-256color",
            "PS1": "$ ",
        }
        shell = "exec bash --norc --noprofile"
        self.tmux(
            "-u",
            "new-session",
            "-d",
            "-x",
            str(width),
            "-y",
            str(height),
            "-s",
            "t",
            f"cd {ROOT} && {shell}",
        )
        self.wait_for(lambda screen: screen.strip() != "")  # the prompt
        self.socket_path = Path(self.tmux("display", "-p", "#{socket_path}").strip())

    def tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args],
            capture_output=True,
            text=True,
            env=self.env,
            check=True,
            timeout=10,
        )
        return done.stdout

    def send(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "t", *keys)

    def type_line(self, line: str) -> None:
        self.send("-l", line)
        self.send("Enter")

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "t")

    def title(self) -> str:
        return self.tmux("display", "-p", "-t", "t", "#{pane_title}").strip()

    def wait_for(self, check: Callable[[str], bool], timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if check(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; the screen was:\n{screen}")
            time.sleep(0.1)

    def wait_settled(self, check: Callable[[str], bool], timeout: float = 15.0) -> str:
        """Like :meth:`wait_for`, on a whole frame: a redraw arrives in pieces, so the
        screen must also read the same twice in a row."""
        previous = ""

        def settled(screen: str) -> bool:
            nonlocal previous
            same, previous = screen == previous, screen
            if not same:
                time.sleep(0.1)
            return same and check(screen)

        return self.wait_for(settled, timeout)

    def kill(self) -> None:
        subprocess.run(
            ["tmux", "-L", self.socket, "kill-server"],
            capture_output=True,
            env=self.env,
            check=False,
            timeout=10,
        )
        if hasattr(self, "socket_path"):
            self.socket_path.unlink(missing_ok=True)


class Session:
    """A tmux pane plus the files the command's shell line writes at its end."""

    def __init__(self, tmux: Tmux, workdir: Path) -> None:
        self.tmux = tmux
        self.exit_file = workdir / "exit"
        self.stty_file = workdir / "stty"

    def start_live(self, *args: str, prefix: str = "") -> None:
        command = " ".join([prefix, sys.executable, "-m", "kexecwatch", "live", *args]).strip()
        self.tmux.type_line(
            f"clear; {command}; echo $? > {self.exit_file}; stty -a > {self.stty_file}; "
            "echo KXW-DONE"
        )

    def wait_exit(self) -> tuple[int, str]:
        screen = self.tmux.wait_for(lambda s: "KXW-DONE" in s and self.stty_file.exists())
        time.sleep(0.1)
        return int(self.exit_file.read_text()), screen

    def assert_terminal_restored(self, screen: str) -> None:
        assert TITLE not in screen  # the alternate screen was left: the shell is back
        stty = self.stty_file.read_text().split()
        for flag in ("icanon", "echo", "isig", "icrnl", "ixon"):
            assert flag in stty, f"terminal left with -{flag}"


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Callable[[int, int], Session]]:
    servers: list[Tmux] = []

    def open_terminal(width: int, height: int) -> Session:
        tmux = Tmux(tmp_path, width, height)
        servers.append(tmux)
        return Session(tmux, tmp_path)

    try:
        yield open_terminal
    finally:
        for tmux in servers:
            tmux.kill()


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    log = tmp_path / "scenario.log"
    log.write_bytes(scenario_log())
    return log


def finished(screen: str) -> bool:
    return "replay finished" in screen


@pytest.mark.parametrize(("width", "height"), [(100, 30), (80, 24)])
def test_replay_shows_counts_alerts_and_reasons_then_q_restores(
    terminal: Callable[[int, int], Session], scenario: Path, width: int, height: int
) -> None:
    session = terminal(width, height)
    session.start_live(
        "--replay", str(scenario), "--speed", "max", "--host-name", "tmuxhost", *UPSTREAM
    )
    screen = session.tmux.wait_settled(finished)
    lines = screen.splitlines()
    assert lines[0].startswith(HEADER)
    assert "alerts 3 " in screen
    assert "lost events 0" in screen and "parse issues 0" in screen
    assert "Kernel Load or Unload via Kexec" in screen
    assert "tmuxhost" in screen
    assert "systemd → bash → kexec" in screen
    assert "excluded: process.parent.name kdumpctl" in screen
    assert "process.args not in list" in screen
    assert " q quit" in lines[-1] or " q quit" in lines[-2]
    session.tmux.send("q")
    code, screen = session.wait_exit()
    assert code == 0
    session.assert_terminal_restored(screen)


def test_hostile_arguments_are_shown_escaped_and_change_nothing(
    terminal: Callable[[int, int], Session], scenario: Path
) -> None:
    session = terminal(160, 40)
    tmux = session.tmux
    # Control: this tmux does let a program set the pane title, so the check below can fail.
    tmux.type_line("printf '\\033]2;pwned-control\\007'")
    deadline = time.monotonic() + 5
    while tmux.title() != "pwned-control" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert tmux.title() == "pwned-control"
    tmux.type_line("printf '\\033]2;clean\\007'")
    while tmux.title() != "clean" and time.monotonic() < deadline + 5:
        time.sleep(0.1)
    session.start_live("--replay", str(scenario), "--speed", "max", *UPSTREAM)
    screen = tmux.wait_settled(finished)
    lines = screen.splitlines()
    assert lines[0].startswith(HEADER)  # not cleared, not scrolled
    assert "alerts 3 " in lines[2]
    assert (
        r"kexec -l \x1b[2J\x1b]0;pwned\x07\x1b]2;pwned\x07\x1b]8;;http://x\x07[bold red]x[/]"
        in (screen)
    )
    assert tmux.title() == "clean"
    # the long argument is cut with an ellipsis, not wrapped onto other lines
    long_row = next(line for line in lines if "$ kexec -u AAAA" in line)
    assert long_row.rstrip().endswith("… │")
    assert "END" not in screen
    # the JSON view of the hostile alert: down once from the newest, then Enter
    tmux.send("j")
    tmux.send("Enter")
    tmux.wait_for(lambda s: "Esc/q back" in s)
    wanted = r'"command_line": "kexec -l \u001b[2J\u001b]0;pwned\u0007\u001b]2;pwned\u0007'
    for _ in range(10):  # page down to process.command_line
        if wanted in tmux.screen():
            break
        tmux.send("NPage")
        time.sleep(0.3)
    assert wanted in tmux.screen()
    assert tmux.title() == "clean"
    tmux.send("q")
    tmux.wait_for(lambda s: " q quit" in s)
    tmux.send("q")
    code, screen = session.wait_exit()
    assert code == 0
    assert tmux.title() == "clean"
    session.assert_terminal_restored(screen)


def test_ctrl_c_and_sigterm_exit_cleanly(
    terminal: Callable[[int, int], Session], scenario: Path
) -> None:
    session = terminal(100, 30)
    session.start_live("--replay", str(scenario), "--speed", "max", *UPSTREAM)
    session.tmux.wait_settled(finished)
    session.tmux.send("C-c")
    code, screen = session.wait_exit()
    assert code == 130
    session.assert_terminal_restored(screen)
    session.stty_file.unlink()
    session.start_live(
        "--replay",
        str(scenario),
        "--speed",
        "max",
        *UPSTREAM,
        prefix="timeout --foreground --preserve-status -s TERM 2",
    )
    code, screen = session.wait_exit()
    assert code == 143
    session.assert_terminal_restored(screen)


def test_resize_redraws_to_the_new_size(
    terminal: Callable[[int, int], Session], scenario: Path
) -> None:
    session = terminal(120, 40)
    session.start_live("--replay", str(scenario), "--speed", "max", *UPSTREAM)
    session.tmux.wait_settled(finished)
    session.tmux.tmux("resize-window", "-t", "t", "-x", "80", "-y", "24")

    def redrawn(screen: str) -> bool:
        lines = screen.splitlines()
        return (
            len(lines) == 24
            and lines[0].startswith(HEADER)
            and lines[-1].startswith(" q quit")
            and "alerts 3 " in lines[2]
            and sum(line.startswith("╰") and len(line) == 80 for line in lines) == 2
        )

    screen = session.tmux.wait_for(redrawn)
    assert max(len(line) for line in screen.splitlines()) <= 80
    session.tmux.send("q")
    code, _ = session.wait_exit()
    assert code == 0


# -- recorded fixtures (branch `fixtures`: fixtures/audit/raw/*.log + scenarios.toml) --------

FIXTURES = ROOT / "fixtures" / "audit" / "raw"
MANIFEST = ROOT / "fixtures" / "scenarios.toml"


def recorded(*names: str) -> list[Path]:
    paths = [FIXTURES / f"{name}.log" for name in names]
    missing = [p.name for p in paths if not p.exists()] + (
        [] if MANIFEST.exists() else [MANIFEST.name]
    )
    if missing:
        pytest.skip(f"recorded fixtures not present: {', '.join(missing)}")
    return paths


def upstream_alerts(*names: str) -> int:
    """How many v7 alerts the manifest states, by hand, for these scenarios."""
    scenarios = tomllib.loads(MANIFEST.read_text(encoding="utf-8"))["scenario"]
    return sum(len(s.get("upstream", [])) for s in scenarios if s["name"] in names)


def replayed(paths: list[Path]) -> DashboardState:
    """What the view must show at the end: the same model, without a terminal."""
    model = LiveModel(load_builtin_rules(), host_name="h")
    feed = ReplayFeed(expand_paths([str(p) for p in paths]), None)
    while feed.pump(model, 0.0, budget_s=5.0) is not None:
        pass
    model.tick(0.0)
    return model.state


@pytest.mark.parametrize(("width", "height"), [(100, 30), (80, 24)])
def test_recorded_fixtures_show_counts_alerts_and_reasons(
    terminal: Callable[[int, int], Session], width: int, height: int
) -> None:
    names = ("v7-exec-short", "v7-unlisted-args", "v7-excluded-parents")
    # One stream must run forward in time, or the assembler rightly tears events apart.
    paths = sorted(recorded(*names), key=lambda p: line_time_ms(p.read_bytes()[:200]) or 0)
    expected = replayed(paths)
    # The default rule set: the upstream alerts plus kexecwatch's own (unlisted options
    # parsed as loads, kdump parents that are not the packaged tools).
    assert expected.alerts > upstream_alerts(*names) > 0
    session = terminal(width, height)
    session.start_live("--replay", *map(str, paths), "--speed", "max")
    screen = session.tmux.wait_settled(finished)
    lines = screen.splitlines()
    assert lines[0].startswith(HEADER)
    assert f"records {expected.records:,} " in lines[1]
    assert f"events {expected.events:,} " in lines[1]
    assert f"alerts {expected.alerts} " in lines[2]
    assert f"lost events {expected.lost_events} " in lines[2]
    assert f"parse issues {expected.parse_issues} " in lines[2]
    assert f"Alerts ({expected.alerts})" in screen
    assert "Kernel Load or Unload via Kexec" in screen
    assert "$ kexec -e" in screen or "$ kexec --exec" in screen
    # the newest kexec runs have kdump parents that are not the packaged tools: the
    # upstream rule excludes them by name while kexecwatch's own rule alerts, and the
    # row says which rule did which (never "ALERT  excluded: ...")
    assert any(
        row.alerted
        and row.reason.startswith("Kexec Run by a Process Posing as the Kdump Service alerted; ")
        and row.reason.endswith("did not: excluded: process.parent.name unload.sh")
        for row in expected.activity
    )
    assert "ALERT  Kexec Run by a Process Posing" in screen
    assert "ALERT  excluded" not in screen
    assert "kdumpctl" in screen or width < 100
    assert "process.args not in list" in screen
    if width >= 100:
        assert "Kexec Run by a Process Posing" in screen or "Kexec Kernel Load or Exec" in screen
    session.tmux.send("q")
    code, screen = session.wait_exit()
    assert code == 0
    session.assert_terminal_restored(screen)


def test_recorded_hostile_fixture_is_shown_escaped(
    terminal: Callable[[int, int], Session],
) -> None:
    [path] = recorded("v7-hostile-args")
    assert replayed([path]).alerts == upstream_alerts("v7-hostile-args") == 3
    session = terminal(160, 40)
    tmux = session.tmux
    tmux.type_line("printf '\\033]2;clean\\007'")
    deadline = time.monotonic() + 5
    while tmux.title() != "clean" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert tmux.title() == "clean"
    session.start_live("--replay", str(path), "--speed", "max")
    screen = tmux.wait_settled(finished)
    lines = screen.splitlines()
    assert lines[0].startswith(HEADER)
    assert "alerts 3 " in lines[2]
    assert r"$ kexec -l \x1b[2J \x1b]0;pwned\x07 [bold red]x[/]" in screen
    assert r"$ kexec -l /srv/kxlab/with space two\nlines" in screen
    assert r"$ kexec -u \xff\xfe" in screen
    assert tmux.title() == "clean"
    tmux.send("q")
    code, screen = session.wait_exit()
    assert code == 0
    assert tmux.title() == "clean"
    session.assert_terminal_restored(screen)


def test_at_80x24_c_toggles_between_eight_one_line_alerts_and_two_line_alerts(
    terminal: Callable[[int, int], Session], tmp_path: Path
) -> None:
    from tests.builders import exec_lines, join

    log = tmp_path / "ten.log"
    lines: list[bytes] = []
    for i in range(10):
        lines += exec_lines(i + 1, t=f"17000000{i:02d}.000", pid=100 + i, args=("kexec", "-e"))
    log.write_bytes(join(lines))
    session = terminal(80, 24)
    session.start_live("--replay", str(log), "--speed", "max", *UPSTREAM)

    def alert_rows(screen: str) -> list[str]:
        return [line for line in screen.splitlines() if "MEDIUM" in line]

    screen = session.tmux.wait_settled(lambda s: finished(s) and len(alert_rows(s)) >= 8)
    assert all("$ kexec -e" in row for row in alert_rows(screen))
    assert "c two lines" in screen.splitlines()[-1]
    session.tmux.send("c")
    screen = session.tmux.wait_settled(lambda s: "c compact" in s)
    assert 1 <= len(alert_rows(screen)) < 8
    session.tmux.send("c")
    screen = session.tmux.wait_settled(lambda s: "c two lines" in s)
    assert len(alert_rows(screen)) >= 8
    session.tmux.send("q")
    code, screen = session.wait_exit()
    assert code == 0
