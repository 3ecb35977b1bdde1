"""Replay pacing and following, feeding a LiveModel from real files."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from kexecwatch.adapters.live.feeds import FollowFeed, ReplayFeed, line_time_ms
from kexecwatch.adapters.live.state import LiveModel
from kexecwatch.adapters.sources import expand_paths
from kexecwatch.rules import load_builtin_rules
from tests.adapters.live.live_logs import scenario_log

RECORDS_PER_EVENT = 5


def model() -> LiveModel:
    return LiveModel(load_builtin_rules("upstream"), host_name="h")


def run_out(feed: ReplayFeed, m: LiveModel) -> None:
    for _ in range(1000):
        if feed.pump(m, 0.0) is None:
            return
    raise AssertionError("replay did not finish")


def test_line_time_ms() -> None:
    assert line_time_ms(b"type=X msg=audit(1700000001.234:9): a=b") == 1_700_000_001_234
    assert line_time_ms(b"node=n1 type=X msg=audit(1700000001.000:9):") == 1_700_000_001_000
    assert line_time_ms(b"garbage") is None


def test_max_speed_replays_everything_and_finishes(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(scenario_log())
    m = model()
    feed = ReplayFeed(expand_paths([str(log)]), None)
    run_out(feed, m)
    m.tick(1.0)
    state = m.state
    assert state.finished and state.alerts == 3
    assert (state.offset, state.lag) == (log.stat().st_size, 0)
    assert state.source == "replay" and state.path == str(log)
    assert state.status == "replaying as fast as possible"


def test_paced_replay_follows_record_time_and_pauses(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(scenario_log())  # one event per second of log time
    m = model()
    feed = ReplayFeed(expand_paths([str(log)]), 10.0)
    records = m.detector.stats
    assert feed.pump(m, 100.0) == pytest.approx(0.1)
    assert records.records == RECORDS_PER_EVENT
    assert feed.pump(m, 100.05) == pytest.approx(0.05)
    assert records.records == RECORDS_PER_EVENT
    assert feed.pump(m, 100.1) == pytest.approx(0.1)
    assert records.records == 2 * RECORDS_PER_EVENT
    feed.pause(100.1)
    feed.resume(105.1)  # five paused seconds do not count
    assert feed.pump(m, 105.15) == pytest.approx(0.05)
    assert records.records == 2 * RECORDS_PER_EVENT
    feed.pump(m, 105.2)
    assert records.records == 3 * RECORDS_PER_EVENT
    assert m.state.status == "replaying at 10x"
    assert 0 < m.state.offset < log.stat().st_size
    assert m.state.lag == log.stat().st_size - m.state.offset


def test_several_files_are_one_stream(tmp_path: Path) -> None:
    data = scenario_log().splitlines(keepends=True)
    first, second = tmp_path / "1.log", tmp_path / "2.log"
    first.write_bytes(b"".join(data[:12]))  # cuts the third event's records in two
    second.write_bytes(b"".join(data[12:]))
    m = model()
    feed = ReplayFeed(expand_paths([str(first), str(second)]), None)
    run_out(feed, m)
    m.tick(0.0)
    assert m.state.alerts == 3
    assert m.state.path == f"{second} (2/2)"


def test_gzip_has_no_lag_figure(tmp_path: Path) -> None:
    log = tmp_path / "a.log.gz"
    log.write_bytes(gzip.compress(scenario_log()))
    m = model()
    run_out(ReplayFeed(expand_paths([str(log)]), None), m)
    m.tick(0.0)
    assert (m.state.alerts, m.state.lag) == (3, None)


def test_follow_reads_what_is_appended(tmp_path: Path) -> None:
    data = scenario_log().splitlines(keepends=True)
    log = tmp_path / "audit.log"
    log.write_bytes(b"".join(data[:15]))
    data, last = data[:-1], data[-1:]
    m = model()
    feed = FollowFeed(str(log), poll_s=0.01)
    try:
        assert feed.pump(m, 0.0) == 0.0
        assert feed.pump(m, 0.0) == 0.01  # idle: poll again later
        m.tick(0.0)
        assert (m.state.alerts, m.state.path, m.state.lag) == (1, str(log), 0)
        with log.open("ab") as f:
            f.write(b"".join(data[15:]))
        feed.pump(m, 1.0)
        m.tick(1.0)
        assert m.state.alerts == 2  # the last event has no PROCTITLE yet: still in flight
        with log.open("ab") as f:
            f.write(last[0])
        feed.pump(m, 2.0)
        m.tick(2.0)
        assert m.state.alerts == 3
        assert m.state.offset == log.stat().st_size
        assert m.state.source == "follow" and m.state.status == "following"
    finally:
        feed.close()


def test_follow_reports_a_missing_file_and_keeps_trying(tmp_path: Path) -> None:
    m = model()
    feed = FollowFeed(str(tmp_path / "audit.log"), poll_s=0.01)
    try:
        assert feed.pump(m, 0.0) == 0.01
        assert "cannot read" in m.state.message
    finally:
        feed.close()


def test_follow_idle_completes_events_in_record_time(tmp_path: Path) -> None:
    data = scenario_log().splitlines(keepends=True)
    log = tmp_path / "audit.log"
    log.write_bytes(b"".join(data[:-1]))  # the last event lacks its last record
    m = model()
    feed = FollowFeed(str(log), poll_s=0.01)
    try:
        feed.pump(m, 0.0)
        feed.pump(m, 3.0)  # idle for 3 s of a 5 s window: still waiting
        m.tick(3.0)
        assert m.state.alerts == 2
        feed.pump(m, 6.0)  # idle for 6 s: the event is complete enough
        m.tick(6.0)
        assert m.state.alerts == 3
    finally:
        feed.close()


def test_follow_waits_while_the_writer_is_mid_record(tmp_path: Path) -> None:
    """Idle means expire only when the log is quiet between lines: a half-written record
    is its event still being written (as under `run`), however long it takes."""
    data = scenario_log().splitlines(keepends=True)
    log = tmp_path / "audit.log"
    last = data[-1]
    log.write_bytes(b"".join(data[:-1]) + last[:20])
    m = model()
    feed = FollowFeed(str(log), poll_s=0.01)
    try:
        feed.pump(m, 0.0)
        feed.pump(m, 30.0)  # quiet for six windows, but mid-line
        m.tick(30.0)
        assert m.state.alerts == 2
        with log.open("ab") as f:
            f.write(last[20:])
        feed.pump(m, 31.0)
        m.tick(31.0)
        assert m.state.alerts == 3
        assert m.detector.stats.incomplete_events == 0  # the event waited for its last record
    finally:
        feed.close()


def test_follow_expires_once_per_quiet_spell(tmp_path: Path) -> None:
    data = scenario_log().splitlines(keepends=True)
    log = tmp_path / "audit.log"
    log.write_bytes(b"".join(data[:-1]))
    m = model()
    feed = FollowFeed(str(log), poll_s=0.01)
    try:
        feed.pump(m, 0.0)
        assert m.session.expire_due == 5.0  # one window of quiet from the last data
        feed.pump(m, 6.0)
        assert m.detector.stats.incomplete_events == 1
        assert m.session.expire_due is None  # nothing more to age until data comes
    finally:
        feed.close()
