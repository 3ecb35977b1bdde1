"""The session all three commands share: record time, the idle clock, follower words."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from kexecwatch.adapters.daemon.coreglue import OutputLog
from kexecwatch.adapters.daemon.follower import DroppedTail, Switched, Unreadable
from kexecwatch.adapters.daemon.logfiles import FileIdentity
from kexecwatch.adapters.live.state import LiveModel
from kexecwatch.adapters.replay import replay
from kexecwatch.adapters.session import Session, notice
from kexecwatch.adapters.sources import expand_paths
from kexecwatch.core.audit.record import line_time_ms, record_times
from kexecwatch.core.detect.detector import DetectorOptions
from kexecwatch.rules import load_builtin_rules
from tests.builders import exec_lines, join

WINDOW_MS = 2_000


def session() -> Session:
    return Session(
        load_builtin_rules("upstream"),
        host_name="h",
        options=DetectorOptions(window_ms=WINDOW_MS),
    )


def kexec_without_proctitle() -> bytes:
    """One kexec exec whose last record (PROCTITLE) has not been written yet."""
    lines = exec_lines(1, t="1700000000.250", args=("kexec", "-e"))
    return join(lines[:-1])


def test_record_time_is_read_as_the_detector_reads_it() -> None:
    assert line_time_ms(b"type=X msg=audit(1700000001.234:9): a=b") == 1_700_000_001_234
    assert line_time_ms(b"node=n1 type=X msg=audit(1700000001.000:9):") == 1_700_000_001_000
    assert line_time_ms(b"garbage") is None
    data = b"type=A msg=audit(1.001:2): x\ntype=B msg=audit(2.002:3): y\n"
    assert list(record_times(data)) == [(7, 1001), (36, 2002)]


def test_the_last_record_time_counts_events_still_in_flight() -> None:
    s = session()
    s.feed(kexec_without_proctitle(), now=0.0)
    assert s.detector.stats.last_time_ms == 0  # no event handled yet
    assert s.detector.last_record_ms == 1_700_000_000_250


def test_idle_expires_once_after_a_window_of_quiet() -> None:
    s = session()
    assert s.idle(100.0) == []  # nothing read: nothing to age
    s.feed(kexec_without_proctitle(), now=10.0)
    assert s.expire_due == 12.0
    assert s.idle(11.9) == []
    assert s.detector.stats.events == 0
    alerts = s.idle(12.5)
    assert [type(a).__name__ for a in alerts] == ["Alert"]
    assert s.detector.stats.incomplete_events == 1
    assert s.expire_due is None and s.idle(20.0) == []


def test_idle_waits_while_the_writer_is_mid_line() -> None:
    s = session()
    s.feed(kexec_without_proctitle(), now=10.0)
    assert s.idle(30.0, mid_line=True) == []
    assert s.expire_due == 32.0  # looked at again a window later
    assert s.detector.stats.events == 0


def test_follower_outputs_are_put_into_words_once() -> None:
    ident = FileIdentity(1, 2, "ab", 2)
    opened = notice(Switched("opened", "/l/audit.log", ident, 0))
    assert opened is not None and opened.text is None and opened.level == logging.INFO
    rotated = notice(Switched("rotated", "/l/audit.log", ident, 0))
    assert rotated is not None and rotated.text == "rotated: now reading /l/audit.log"
    assert rotated.fields == {
        "reason": "rotated",
        "path": "/l/audit.log",
        "file_dev": 1,
        "file_ino": 2,
        "offset": 0,
    }
    dropped = notice(DroppedTail("/l/audit.log", 10, 5, "truncated"))
    assert dropped is not None and dropped.event == "dropped_tail"
    assert dropped.text == "5 bytes dropped in /l/audit.log: truncated"
    gone = notice(Unreadable("/l/audit.log", "EACCES", 1.0))
    assert gone is not None and gone.text == "cannot read /l/audit.log: EACCES; retrying"


def test_lost_events_have_one_wording_in_every_command(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """replay's stderr, the live view's status line and the daemon's log say it alike."""
    log = tmp_path / "audit.log"
    log.write_bytes(join(exec_lines(1, t="1700000000.000") + exec_lines(5, t="1700000001.000")))
    said = f"{log}: 3 event(s) lost: serials 2-4 missing before 1700000001.000:5"
    rules = load_builtin_rules("upstream")

    err = io.StringIO()
    replay(
        expand_paths([str(log)]),
        rules,
        host_name="h",
        options=DetectorOptions(),
        out_format="json",
        stdout=io.StringIO(),
        stderr=err,
    )
    assert f"kexecwatch: {said}\n" in err.getvalue()

    model = LiveModel(rules, host_name="h")
    model.switch_source(str(log))
    model.feed(log.read_bytes())
    model.flush()
    assert model.state.message == said

    s = session()
    s.detector.switch_source(str(log))
    outputs = s.feed(log.read_bytes()) + s.detector.flush()
    with caplog.at_level(logging.WARNING):
        s.deliver(outputs, OutputLog(s.detector))
    [line] = [r for r in caplog.records if r.getMessage() == "events_lost"]
    assert line.__dict__["kexecwatch_fields"]["detail"] == said
