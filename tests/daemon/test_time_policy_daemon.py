"""Event time in a running daemon (issue 16 §1): a real ``kexecwatch run`` process
follows a real file into which the all-scenarios recording is written record by record,
perturbed by one misdated record or by a clock step. Each run must give the FULL alert
set of the unperturbed recording (for clock steps: the same alerts, dated differently).
The event window is the harness's 500 ms, so a 1 s step is already a jump.
"""

from __future__ import annotations

import json
import os
import re
import time
from functools import cache
from pathlib import Path

import pytest

from tests.daemon.harness import Daemon, FakeAuditd, audit_ids
from tests.timeshift import (
    OUTLIERS,
    RECORDINGS,
    STEPS,
    YEAR_10000,
    alert_set,
    insert_outlier,
    step_clock,
    timeless,
)

pytestmark = pytest.mark.slow

RECORDING = RECORDINGS["raw"].read_bytes()


def write_records(log: Path, data: bytes) -> None:
    """Append ``data`` one record per write, as auditd does."""
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        for line in data.splitlines(keepends=True):
            os.write(fd, line)
    finally:
        os.close(fd)


#: Alerts of the unperturbed recording with every built-in rule (as replay counts them).
EXPECTED = 24


def last_time_ms(data: bytes) -> int:
    stamp = re.findall(rb"msg=audit\((\d+)\.(\d{3}):", data)[-1]
    return int(stamp[0]) * 1000 + int(stamp[1])


def run_daemon(tmp: Path, data: bytes, log_has: str = "") -> list[str]:
    """The alert documents a fresh daemon writes for ``data`` (sorted canonical JSON);
    its log must hold ``log_has``."""
    log = tmp / "audit.log"
    log.touch(mode=0o600)
    d = Daemon(tmp, log)
    write_records(log, data if data.endswith(b"\n") else data + b"\n")
    d.wait_alerts(EXPECTED, timeout=60)
    time.sleep(1.5)  # more than the window and a poll: whatever else would come, has
    docs = alert_set(d.alerts.read_text() if d.alerts.exists() else "")
    err = d.stderr()
    assert d.stop() == 0, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    assert log_has in err, err[-3000:]
    return docs


@cache
def baseline(tmp_root: str) -> tuple[str, ...]:
    docs = run_daemon(Path(tmp_root), RECORDING)
    assert len(docs) == EXPECTED
    return tuple(docs)


@pytest.fixture(scope="module")
def unperturbed(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    return list(baseline(str(tmp_path_factory.mktemp("baseline"))))


@pytest.mark.parametrize("shift", OUTLIERS, ids=str)
def test_one_record_dated_off_changes_no_alert(
    tmp_path: Path, unperturbed: list[str], shift: int | str
) -> None:
    # Jumps of a second or more are logged with the file and line of the record.
    line = 1 + RECORDING.split(b"\n").index(
        next(x for x in RECORDING.split(b"\n") if b"type=SYSCALL" in x and b'comm="kexec"' in x)
    )
    said = (
        "beyond year 9999"
        if shift == "year-10000"
        else f"time_jump file={tmp_path / 'audit.log'} line={line}"
        if abs(int(shift)) > 1
        else ""
    )
    got = run_daemon(tmp_path, insert_outlier(RECORDING, shift), said)
    assert got == unperturbed


@pytest.mark.parametrize("step", STEPS, ids=str)
def test_a_clock_step_changes_no_alert(tmp_path: Path, unperturbed: list[str], step: int) -> None:
    got = run_daemon(tmp_path, step_clock(RECORDING, step))
    assert timeless(got) == timeless(unperturbed)


def test_a_year_10000_record_does_not_silence_kexec_after_a_restart(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.touch(mode=0o600)
    d = Daemon(tmp_path, log)
    write_records(log, insert_outlier(RECORDING, "year-10000") + b"\n")
    d.wait_alerts(EXPECTED, timeout=60)
    assert d.stop() == 0
    state = json.loads((tmp_path / "state" / "checkpoint.json").read_text())
    marks = state["detector_state"]["assembler"]["watermark"]
    assert marks and all(t < YEAR_10000 * 1000 for _, t in marks)
    # After the restart, kexec runs of the present still alert, arguments and all.
    w = FakeAuditd(log)
    w.t = last_time_ms(RECORDING) + 1000
    d2 = Daemon(tmp_path, log)
    for _ in range(3):
        w.emit(kexec=True)
    ids = audit_ids(d2.wait_alerts(EXPECTED + 3))
    assert set(w.expected) <= set(ids)
    docs = [json.loads(x) for x in d2.alerts.read_text().splitlines()]
    fresh = [x for x in docs if x["auditd"]["id"] in w.expected]
    assert fresh and all(x["process"]["args"] == ["kexec", "-l", "/boot/vmlinuz"] for x in fresh)
    assert d2.stop() == 0


def test_a_checkpoint_with_a_year_10000_watermark_is_sanitised(tmp_path: Path) -> None:
    # As an older version saved it: every later event expired on its first record.
    log = tmp_path / "audit.log"
    w = FakeAuditd(log)
    d = Daemon(tmp_path, log)
    w.emit(kexec=True)
    d.wait_alerts(1)
    assert d.stop() == 0
    path = tmp_path / "state" / "checkpoint.json"
    state = json.loads(path.read_text())
    state["detector_state"]["assembler"]["watermark"] = [[None, YEAR_10000 * 1000]]
    with open(path, "r+", encoding="utf-8") as fh:  # same file, same owner and mode
        fh.write(json.dumps(state))
        fh.truncate()
    d2 = Daemon(tmp_path, log)
    for _ in range(3):
        w.emit(kexec=True)
    d2.wait_alerts(4)
    docs = [json.loads(x) for x in d2.alerts.read_text().splitlines()]
    assert sorted(audit_ids([x["event"]["id"] for x in docs])) == sorted(w.expected)
    assert all(x["process"]["args"] == ["kexec", "-l", "/boot/vmlinuz"] for x in docs)
    assert d2.stop() == 0
