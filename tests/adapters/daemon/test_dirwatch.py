"""The follower's directory watch: real inotify on a temporary directory, in process."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from kexecwatch.adapters.daemon.dirwatch import DirWatch


def test_only_the_logs_names_wake_it(tmp_path: Path) -> None:
    w = DirWatch(str(tmp_path), "audit.log")
    try:
        (tmp_path / "other.txt").write_bytes(b"x")
        assert not w.wait(0.2)
        (tmp_path / "audit.log.1").write_bytes(b"x")  # a rotated member counts
        assert w.wait(5)
        assert not w.pending()  # consumed
        os.replace(tmp_path / "audit.log.1", tmp_path / "audit.log")
        assert w.wait(5)
    finally:
        w.close()


def test_wake_from_a_signal_handler_ends_a_long_wait(tmp_path: Path) -> None:
    w = DirWatch(str(tmp_path), "audit.log")
    old = signal.signal(signal.SIGALRM, lambda signum, frame: w.wake())
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        t0 = time.monotonic()
        assert w.wait(30)
        assert time.monotonic() - t0 < 10
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        assert w.sleep(30)  # the settle sleep ends on a wake-up too
        assert time.monotonic() - t0 < 20
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        w.close()
    w.wake()  # after close: ignored, never written to a reused descriptor


def test_a_recreated_directory_is_watched_again(tmp_path: Path) -> None:
    d = tmp_path / "audit"
    d.mkdir()
    w = DirWatch(str(d), "audit.log")
    try:
        os.rename(d, tmp_path / "gone")
        assert w.wait(5)  # the directory itself moved: wake and look
        d.mkdir()
        assert not w.wait(0.1)  # watched again from here on
        (d / "audit.log").write_bytes(b"x")
        assert w.wait(5)
    finally:
        w.close()


def test_a_missing_directory_is_an_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="No such file") as info:
        DirWatch(str(tmp_path / "nope"), "audit.log")
    assert info.value.filename == str(tmp_path / "nope")


def test_the_watch_uses_watchdogs_inotify_binding_and_refuses_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import sys

    from watchdog.observers import inotify_c

    calls: list[str] = []
    real_init = inotify_c.inotify_init

    def counting_init() -> int:
        calls.append("init")
        return real_init()

    monkeypatch.setattr(inotify_c, "inotify_init", counting_init)
    DirWatch(str(tmp_path), "audit.log").close()
    assert calls == ["init"]

    # Without the binding (not Linux, or watchdog missing) the follower is told to poll.
    monkeypatch.setitem(sys.modules, "watchdog.observers.inotify_c", None)
    with pytest.raises(OSError, match="no inotify binding") as refused:
        DirWatch(str(tmp_path), "audit.log")
    assert refused.value.errno == errno.ENOSYS


def test_pending_reads_a_queue_that_fits_in_one_read_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wake-up's notifications are consumed with one ``read`` when they fit in one (the
    kernel returns whole events and leaves none behind while one more would fit), not a
    second ``read`` that only says the queue is empty."""
    w = DirWatch(str(tmp_path), "audit.log")
    try:
        (tmp_path / "audit.log").write_bytes(b"x")
        deadline = time.monotonic() + 5
        while not w.queued() and time.monotonic() < deadline:
            time.sleep(0.01)
        reads = []
        real_read = os.read

        def read(fd: int, n: int) -> bytes:
            reads.append(fd)
            return real_read(fd, n)

        monkeypatch.setattr(os, "read", read)
        assert w.pending()
        monkeypatch.undo()
        assert len(reads) == 1
        assert not w.pending()  # consumed
    finally:
        w.close()
