"""``run``'s exit codes in a real process: a fatal error is 3, never 1 (1 means alerts)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# The daemon's main loop is made to fail the way an unexpected bug would; everything
# before it (configuration, state directory, rules, outputs) is the real code.
_FATAL = """
import sys
from kexecwatch.adapters.daemon import run

def broken(self):
    raise RuntimeError("injected fatal error")

run.Daemon.run = broken
sys.exit(run.main(sys.argv[1:]))
"""


def test_a_fatal_error_exits_3_with_one_fatal_log_line(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.touch()
    r = subprocess.run(
        [sys.executable, "-c", _FATAL, "--log", str(log), "--state-dir", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 3, r.stderr
    fatal = [line for line in r.stderr.splitlines() if "msg=fatal" in line]
    assert len(fatal) == 1 and "level=error" in fatal[0]
    assert 'error="RuntimeError: injected fatal error"' in fatal[0]


def test_a_usage_error_exits_2(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.touch()
    r = subprocess.run(
        [sys.executable, "-m", "kexecwatch", "run", "--log", str(log)]
        + ["--state-dir", str(tmp_path / "s"), "--no-builtin-rules"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1


# SIGTERM while the daemon is still loading its configuration (the handlers of the main
# loop are not in place yet), as a service manager stopping it right after a start does.
_STOP_WHILE_STARTING = """
import os, signal, sys
from kexecwatch.adapters.daemon import run

real_resolve = run._resolve

def resolve_then_get_stopped(args):
    os.kill(os.getpid(), signal.SIGTERM)
    return real_resolve(args)

run._resolve = resolve_then_get_stopped
sys.exit(run.main(sys.argv[1:]))
"""


def test_a_stop_while_starting_is_a_clean_stop_with_a_checkpoint(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.touch()
    r = subprocess.run(
        [sys.executable, "-c", _STOP_WHILE_STARTING, "--log", str(log)]
        + ["--state-dir", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0, r.stderr  # before: killed by the signal (-15), no checkpoint
    assert (tmp_path / "s" / "checkpoint.json").exists()
    shutdown = [line for line in r.stderr.splitlines() if "event=shutdown" in line]
    assert len(shutdown) == 1 and "signal=SIGTERM" in shutdown[0]
