"""Follower behaviour against real files (rotation, truncation, recreation), in process."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from kexecwatch.adapters.daemon.follower import (
    BUSY_RATE,
    BUSY_SETTLE,
    MAX_LINE,
    READ_BUDGET,
    WATCHED_POLL_FACTOR,
    DroppedTail,
    Follower,
    FollowerOutput,
    Gap,
    Lines,
    Switched,
    Unreadable,
)
from kexecwatch.adapters.daemon.logfiles import Position


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def rec(n: int) -> bytes:
    return (
        f"type=SYSCALL msg=audit(1700000000.{n % 1000:03d}:{n}): syscall=59 "
        f'comm="c{n}" exe="/bin/true"\n'
    ).encode()


def append(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def rotate(path: Path, num_logs: int = 5) -> None:
    """auditd's rotate_logs(): shift .N-1→.N ... .1→.2, audit.log→.1, create a new one."""
    for i in range(num_logs - 2, 0, -1):
        src = Path(f"{path}.{i}")
        if src.exists():
            os.replace(src, f"{path}.{i + 1}")
    os.replace(path, f"{path}.1")
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def drain(f: Follower, out: list[FollowerOutput] | None = None) -> bytes:
    data = b""
    for _ in range(50):
        items = f.read()
        if out is not None:
            out.extend(items)
        if not items:
            break
        data += b"".join(i.data for i in items if isinstance(i, Lines))
    return data


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return tmp_path / "audit.log"


def test_partial_line_is_held_until_its_newline(log: Path) -> None:
    append(log, rec(1) + b"type=SYSCALL msg=audit(1700")
    f = Follower(str(log))
    out: list[FollowerOutput] = []
    assert drain(f, out) == rec(1)
    pos = f.position
    assert pos is not None
    assert pos.offset == len(rec(1))
    append(log, b"000000.002:2): x\n")
    assert drain(f) == b"type=SYSCALL msg=audit(1700000000.002:2): x\n"
    assert f.position is not None
    assert f.position.offset == log.stat().st_size
    f.close()


def test_rename_rotation_reads_old_then_new_once(log: Path) -> None:
    append(log, rec(1))
    f = Follower(str(log))
    assert drain(f) == rec(1)
    append(log, rec(2))  # not read yet when the rotation happens
    rotate(log)
    append(log, rec(3))
    out: list[FollowerOutput] = []
    assert drain(f, out) == rec(2) + rec(3)
    assert [s.reason for s in out if isinstance(s, Switched)] == ["rotated"]
    f.close()


def test_several_rotations_while_lagging_are_read_oldest_first(log: Path) -> None:
    append(log, rec(1))
    f = Follower(str(log))
    drain(f)
    for n in (2, 3, 4):
        append(log, rec(n))
        rotate(log)
    append(log, rec(5))
    assert drain(f) == b"".join(rec(n) for n in (2, 3, 4, 5))
    f.close()


def test_copytruncate_reads_the_unread_rest_from_the_copy(log: Path) -> None:
    append(log, b"".join(rec(n) for n in range(1, 40)))  # > 1 KiB: full fingerprint
    f = Follower(str(log))
    drain(f)
    append(log, rec(40))
    shutil.copyfile(log, f"{log}.1")
    os.truncate(log, 0)
    append(log, rec(41))
    out: list[FollowerOutput] = []
    assert drain(f, out) == rec(40) + rec(41)
    assert [s.reason for s in out if isinstance(s, Switched)] == ["copied", "rotated"]
    f.close()


def test_truncation_to_zero_restarts_at_zero(log: Path) -> None:
    append(log, rec(1) + rec(2))
    f = Follower(str(log))
    drain(f)
    os.truncate(log, 0)
    append(log, rec(3))
    out: list[FollowerOutput] = []
    assert drain(f, out) == rec(3)
    assert any(isinstance(s, Switched) and s.reason == "truncated" for s in out)
    f.close()


def test_truncate_and_regrow_past_offset_is_caught_by_fingerprint(log: Path) -> None:
    append(log, rec(1))
    f = Follower(str(log))
    drain(f)
    os.truncate(log, 0)
    append(log, rec(7) + rec(8) + rec(9))  # longer than before: size alone misses it
    assert drain(f) == rec(7) + rec(8) + rec(9)
    f.close()


def test_delete_and_recreate(log: Path) -> None:
    append(log, rec(1))
    f = Follower(str(log))
    drain(f)
    append(log, rec(2))
    log.unlink()
    append(log, rec(3))
    assert drain(f) == rec(2) + rec(3)
    f.close()


def test_rotated_file_ending_mid_line_waits_then_drops_the_tail(log: Path) -> None:
    clock = Clock()
    append(log, rec(1) + b"type=SYS")
    f = Follower(str(log), clock=clock, rotate_grace=2.0)
    drain(f)
    rotate(log)
    append(log, rec(2))
    assert drain(f) == b""  # within the grace period the old file may still complete
    clock.now = 3.0
    out: list[FollowerOutput] = []
    assert drain(f, out) == rec(2)
    assert [d.reason for d in out if isinstance(d, DroppedTail)] == [
        "unterminated line at the end of a rotated file"
    ]
    f.close()


def test_overlong_unterminated_line_is_not_buffered_without_bound(log: Path) -> None:
    # (A long line that arrives whole is the core's to report; this is about memory.)
    append(log, b"x" * (MAX_LINE + 10))
    f = Follower(str(log))
    out: list[FollowerOutput] = []
    assert drain(f, out) == b""
    append(log, b"x" * 100 + b"\n" + rec(1))
    assert drain(f, out) == rec(1)
    assert any(isinstance(d, DroppedTail) for d in out)
    f.close()


def test_missing_log_is_retried_with_backoff(log: Path) -> None:
    clock = Clock()
    f = Follower(str(log), clock=clock)
    first = f.read()
    assert isinstance(first[0], Unreadable)
    assert f.read() == []  # backing off
    append(log, rec(1))
    clock.now = 1.0
    assert drain(f) == rec(1)
    f.close()


def _position_after(log: Path, data: bytes) -> tuple[Position, int]:
    append(log, data)
    f = Follower(str(log))
    drain(f)
    pos, mtime = f.position, f.current_mtime_ns()
    f.close()
    assert pos is not None
    assert mtime is not None
    return pos, mtime


def test_resume_in_place(log: Path) -> None:
    pos, mtime = _position_after(log, rec(1))
    append(log, rec(2))
    f = Follower(str(log), resume=pos, resume_mtime_ns=mtime)
    out: list[FollowerOutput] = []
    assert drain(f, out) == rec(2)
    assert isinstance(out[0], Switched)
    assert out[0].reason == "resumed"
    f.close()


@pytest.mark.parametrize("rotations", [1, 3])
def test_resume_after_rotations_while_stopped(log: Path, rotations: int) -> None:
    pos, mtime = _position_after(log, rec(1))
    expected = b""
    for n in range(2, 2 + rotations):
        append(log, rec(n))
        expected += rec(n)
        rotate(log)
    append(log, rec(99))
    f = Follower(str(log), resume=pos, resume_mtime_ns=mtime)
    assert drain(f) == expected + rec(99)
    f.close()


def test_resume_when_checkpointed_file_was_destroyed_reports_a_gap(log: Path) -> None:
    pos, mtime = _position_after(log, rec(1))
    append(log, rec(2))
    rotate(log, num_logs=2)
    append(log, rec(3))
    rotate(log, num_logs=2)  # .1 (our file) renamed over: gone
    append(log, rec(4))
    f = Follower(str(log), resume=pos, resume_mtime_ns=mtime)
    out: list[FollowerOutput] = []
    assert drain(f, out) == rec(3) + rec(4)  # the survivors, oldest first
    gaps = [g for g in out if isinstance(g, Gap)]
    assert len(gaps) == 1
    assert str(pos.offset) in gaps[0].describe()
    f.close()


def test_resume_rejects_a_reused_inode_with_other_content(log: Path) -> None:
    pos, mtime = _position_after(log, rec(1) * 3)
    # Same inode, new content (what inode reuse looks like to a checkpoint).
    with open(log, "r+b") as fh:
        fh.truncate(0)
        fh.write(rec(5) * 4)
    f = Follower(str(log), resume=pos, resume_mtime_ns=mtime)
    out: list[FollowerOutput] = []
    assert drain(f, out) == rec(5) * 4
    assert any(isinstance(g, Gap) for g in out)
    f.close()


def test_event_time_wakeup_comes_from_the_directory_watch(log: Path) -> None:
    import time

    append(log, rec(1))
    f = Follower(str(log), poll_interval=30)
    f.start()
    drain(f)
    t0 = time.monotonic()
    append(log, rec(2))
    f.wait()
    assert time.monotonic() - t0 < 5  # woke by inotify, not by the 30 s poll
    assert drain(f) == rec(2)
    f.close()


def test_truncate_and_regrow_to_exactly_the_old_size(log: Path) -> None:
    append(log, rec(1))
    f = Follower(str(log))
    drain(f)
    os.truncate(log, 0)
    append(log, rec(2))  # same length as rec(1): size and offset both unchanged
    os.utime(log, ns=(1, 10**18))  # make sure mtime moved even on a coarse clock
    assert drain(f) == rec(2)
    f.close()


def assert_a_write_after_a_quiet_spell_is_read_at_once(f: Follower, log: Path, data: bytes) -> None:
    import time

    time.sleep(0.5)  # quiet
    t0 = time.monotonic()
    append(log, data)
    f.wait()
    assert time.monotonic() - t0 < f.settle  # not held back: nothing was read lately
    assert drain(f) == data


def test_a_busy_writer_is_read_in_batches_and_a_quiet_one_at_once(log: Path) -> None:
    """A writer that appends every millisecond wakes the reader at most once per settle
    delay (each wake-up costs far more than the bytes it reads); after a quiet spell, a
    single write is read without that delay."""
    import threading
    import time

    append(log, rec(0))
    f = Follower(str(log), poll_interval=30)
    f.start()
    try:
        written = b"".join(rec(n) for n in range(1, 1001))
        got = drain(f)

        def write_one_a_millisecond() -> None:
            for n in range(1, 1001):
                append(log, rec(n))
                time.sleep(0.001)

        writer = threading.Thread(target=write_one_a_millisecond)
        t0 = time.monotonic()
        writer.start()
        reads = 0
        got = b""
        while len(got) < len(written) and time.monotonic() - t0 < 60:
            f.wait()
            chunk = drain(f)
            reads += bool(chunk)
            got += chunk
        writer.join()
        seconds = time.monotonic() - t0
        assert got == written
        # One read per settle delay, plus a few for a machine too slow to keep the pace.
        assert reads <= seconds / f.settle + 10, (reads, seconds)

        assert_a_write_after_a_quiet_spell_is_read_at_once(f, log, rec(1001))
    finally:
        f.close()


def test_more_to_read_says_whether_a_read_stopped_at_its_budget(log: Path) -> None:
    append(log, rec(1) * 100)
    f = Follower(str(log))
    first = f.read(budget=len(rec(1)) * 10)
    assert f.more_to_read
    rest = f.read()
    assert not f.more_to_read
    got = b"".join(i.data for i in first + rest if isinstance(i, Lines))
    assert got == rec(1) * 100
    f.close()


def test_a_read_takes_in_at_most_read_budget_bytes_by_default(log: Path) -> None:
    # What one read takes in is what the daemon holds at once (the bytes, the scanner's
    # copy, and glibc keeping the freed blocks in its heap): a backlog of a few MiB once
    # read in 4 MiB gulps put the daemon's peak RSS above 64 MB.
    backlog = b"".join(rec(n) for n in range(40_000))  # ~3 MiB
    append(log, backlog)
    f = Follower(str(log))
    got = []
    reads = 0
    while True:
        lines = b"".join(i.data for i in f.read() if isinstance(i, Lines))
        reads += 1
        # The budget, and the end of a line the previous read had begun.
        assert len(lines) <= READ_BUDGET + len(rec(40_000))
        got.append(lines)
        if not f.more_to_read:
            break
    assert b"".join(got) == backlog
    assert READ_BUDGET == 256 * 1024
    assert reads >= len(backlog) // READ_BUDGET
    f.close()


def test_with_a_working_watch_the_safety_poll_is_ten_times_rarer(log: Path) -> None:
    """An idle follower with a directory watch wakes every WATCHED_POLL_FACTOR poll
    intervals, not every one (each wake-up of an idle daemon costs CPU for nothing); a
    write through the log's name still wakes it at once."""
    import time

    append(log, rec(1))
    f = Follower(str(log), poll_interval=0.2)
    f.start()
    assert drain(f) == rec(1)
    assert WATCHED_POLL_FACTOR == 10
    assert f.safety_poll == pytest.approx(2.0)
    t0 = time.monotonic()
    f.wait()
    assert time.monotonic() - t0 >= 1.9  # was 0.2: a wake-up every poll interval
    t0 = time.monotonic()
    append(log, rec(2))
    f.wait()
    assert time.monotonic() - t0 < 1.5  # the notification, not the safety poll
    assert drain(f) == rec(2)
    assert f.safety_poll == pytest.approx(2.0)
    f.close()


def test_a_write_no_notification_announced_brings_the_short_safety_poll_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A write the watch never sees (here through a hard link in another directory: the
    directory watch hears only of names in its directory, as a log written by another
    host over a network filesystem is never announced) is found by the safety poll, and
    from then on the safety poll is every poll_interval again, with one warning."""
    import logging
    import time

    (tmp_path / "logs").mkdir()
    log = tmp_path / "logs" / "audit.log"
    append(log, rec(1))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.link(log, elsewhere / "audit-link")
    f = Follower(str(log), poll_interval=0.1)
    f.start()
    assert drain(f) == rec(1)
    assert f.safety_poll == pytest.approx(1.0)
    append(elsewhere / "audit-link", rec(2))
    with caplog.at_level(logging.WARNING):
        t0 = time.monotonic()
        f.wait()
        assert time.monotonic() - t0 >= 0.9  # nothing woke it: the safety poll did
        assert drain(f) == rec(2)
    assert f.safety_poll == pytest.approx(0.1)
    assert [r.getMessage() for r in caplog.records] == ["watch_missed_write"]
    # A write through the log's own name after a timed-out wait is announced: no miss.
    f.wait(timeout=0.05)
    append(log, rec(3))
    assert drain(f) == rec(3)
    f.close()


def test_an_announced_write_read_after_a_timed_out_wait_is_no_miss(log: Path) -> None:
    """The wait ends by its time limit, then the writer appends before the read: its
    notification is queued, so the watch missed nothing and the safety poll stays long;
    the queued notice still wakes the next wait (nothing was consumed)."""
    import time

    append(log, rec(1))
    f = Follower(str(log), poll_interval=0.2)
    f.start()
    drain(f)
    f.wait(timeout=0.05)
    append(log, rec(2))
    assert drain(f) == rec(2)
    assert f.safety_poll == pytest.approx(2.0)
    t0 = time.monotonic()
    f.wait()
    assert time.monotonic() - t0 < 1.5  # the notice of rec(2), still queued
    f.close()


def test_a_writer_slower_than_the_settle_delay_costs_one_wake_up_a_write(log: Path) -> None:
    """After a read that returned lines, the settle delay holds a notification back only
    when one comes within it: a write after the delay ends the wait in one sleep, without
    a wake-up at the end of the settle delay first (before: one extra wake-up a write)."""
    import threading
    import time

    append(log, rec(1))
    f = Follower(str(log), poll_interval=30, settle=0.5)  # long: a loaded machine is slow
    f.start()
    assert drain(f) == rec(1)
    watch = f._watch
    assert watch is not None
    sleeps: list[float] = []
    real_sleep = watch.sleep

    def counted_sleep(seconds: float) -> bool:
        sleeps.append(seconds)
        return real_sleep(seconds)

    watch.sleep = counted_sleep  # type: ignore[method-assign]
    timer = threading.Timer(0.8, append, (log, rec(2)))
    timer.start()
    t0 = time.monotonic()
    f.wait()
    timer.join()
    assert 0.7 <= time.monotonic() - t0 < 5
    assert sleeps == []  # no settle wake-up: the write came after the delay
    assert drain(f) == rec(2)
    # A write within the settle delay is held back until the delay is over.
    append(log, rec(3))
    f.wait()
    assert len(sleeps) == 1 and 0 < sleeps[0] <= f.settle
    assert drain(f) == rec(3)
    f.close()


def test_a_read_after_a_write_costs_one_fstat_and_no_second_hash(
    log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each wake-up of a busy daemon pays for every system call and hash it makes: a
    read that takes in an appended write does one ``fstat`` (the bytes it then reads end
    where that ``fstat`` said), one ``pread`` of the new bytes, one ``pread`` of the
    fingerprinted head, compared byte for byte with the head it verified last (not hashed
    again), and one ``stat`` of the path (rotation)."""
    import hashlib

    from kexecwatch.adapters.daemon import logfiles

    head = b"".join(rec(i) for i in range(20))
    assert len(head) > logfiles.FINGERPRINT_MAX
    append(log, head)
    f = Follower(str(log))
    assert drain(f) == head
    append(log, rec(20))
    assert drain(f) == rec(20)  # a first check after a change may hash
    append(log, rec(21))
    calls: dict[str, int] = {"fstat": 0, "pread": 0, "stat": 0, "sha256": 0}

    def counted(name: str, real: object) -> object:
        def call(*args: object, **kwargs: object) -> object:
            calls[name] += 1
            return real(*args, **kwargs)  # type: ignore[operator]

        return call

    for name in ("fstat", "pread", "stat"):
        monkeypatch.setattr(os, name, counted(name, getattr(os, name)))
    monkeypatch.setattr(logfiles.hashlib, "sha256", counted("sha256", hashlib.sha256))
    out = f.read()
    monkeypatch.undo()
    assert [i.data for i in out if isinstance(i, Lines)] == [rec(21)]
    assert calls == {"fstat": 1, "pread": 2, "stat": 1, "sha256": 0}
    f.close()


def test_a_log_written_faster_than_busy_rate_is_read_every_busy_settle(log: Path) -> None:
    """A log that takes in more than ``BUSY_RATE`` bytes a second (measured over the last
    read) is read at most once per ``BUSY_SETTLE`` (a wake-up costs the same whatever it
    reads, so a busy daemon wakes half as often); a slower log keeps the short ``settle``,
    and a write after a quiet spell is read at once."""
    import threading
    import time

    assert 0 < Follower(str(log)).settle < BUSY_SETTLE <= 0.05  # the documented bound
    append(log, rec(0))
    f = Follower(str(log), poll_interval=30)
    f.start()
    try:
        drain(f)
        chunk = b"".join(rec(n) for n in range(1, 25))  # about 2 KB
        assert len(chunk) * 1000 > 2 * BUSY_RATE  # a write a millisecond: twice the rate

        def write_2k_a_millisecond(stop: float) -> None:
            while time.monotonic() < stop:
                append(log, chunk)
                time.sleep(0.001)

        t0 = time.monotonic()
        writer = threading.Thread(target=write_2k_a_millisecond, args=(t0 + 1.5,))
        writer.start()
        reads = 0
        holds = set()
        while writer.is_alive() or f.read():
            f.wait(1.0)
            reads += bool(drain(f))
            holds.add(f.hold)
        writer.join()
        seconds = time.monotonic() - t0
        assert BUSY_SETTLE in holds
        # One read per busy settle delay (the first ones at the short one), a few more
        # for a machine too slow to keep the pace; the short delay alone would allow
        # seconds / settle.
        assert reads <= seconds / BUSY_SETTLE + 8, (reads, seconds)

        assert_a_write_after_a_quiet_spell_is_read_at_once(f, log, rec(2000))
        assert f.hold == f.settle  # a record after a quiet spell is no busy log
    finally:
        f.close()
