"""One bad event must not cost the others (issue 16 §2), in a running daemon.

The fault is injected through the documented test hook ``KEXECWATCH_TEST_FAULT``
(:mod:`kexecwatch.testhooks`) into one kexec run of the all-scenarios recording, written
record by record into the followed file. The daemon must go on: every other alert out,
the failure logged with its file and line and counted. And whatever happens, no
checkpoint may pass lines that were not handled: a restart without the fault must bring
every other alert that a first run did not deliver.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.daemon.harness import Daemon
from tests.daemon.test_time_policy_daemon import EXPECTED, RECORDING, write_records
from tests.test_one_bad_event import BAD_ID, MARKER

pytestmark = pytest.mark.slow


def test_a_failing_event_is_skipped_counted_and_named(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.touch(mode=0o600)
    d = Daemon(tmp_path, log, env={"KEXECWATCH_TEST_FAULT": MARKER})
    write_records(log, RECORDING)
    d.wait_alerts(EXPECTED - 1, timeout=60)
    time.sleep(1.5)  # status lines, and anything else that would come
    first = d.alert_ids()
    err = d.stderr()
    assert d.proc.poll() is None, err[-3000:]  # still running
    assert d.stop() == 0
    assert len(first) == EXPECTED - 1 and not any(BAD_ID in a for a in first)
    line = 1 + RECORDING.split(b"\n").index(
        next(x for x in RECORDING.split(b"\n") if MARKER.encode() in x)
    )
    assert "event_error" in err and f"line={line}" in err and str(log) in err, err[-3000:]
    assert "event_errors=1" in err


def test_no_checkpoint_passes_lines_that_were_not_handled(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.touch(mode=0o600)
    d = Daemon(tmp_path, log, env={"KEXECWATCH_TEST_FAULT": MARKER})
    write_records(log, RECORDING)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(d.alert_ids()) < EXPECTED - 1:
        if d.proc.poll() is not None:
            break  # a daemon that dies on the fault must not lose what follows it
        time.sleep(0.1)
    if d.proc.poll() is None:
        d.stop()
    else:
        d.kill()
    first = set(d.alert_ids())
    d2 = Daemon(tmp_path, log, alerts_name="alerts2.ndjson")
    time.sleep(3.0)
    both = first | set(d2.alert_ids())
    assert d2.stop() == 0
    others = EXPECTED - 1
    assert len({a for a in both if BAD_ID not in a}) == others, sorted(both)
