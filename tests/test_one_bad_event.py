"""One bad event must not cost the others (issue 16 §2), in replay.

A fault is injected through the documented test hook ``KEXECWATCH_TEST_FAULT``
(:mod:`kexecwatch.testhooks`): handling the event whose records contain the marker raises.
Every other alert must still come out, the failure must be counted and named with its
``file:line``, and replay must never exit 1 for it (1 means alerts).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.builders import exec_lines, join
from tests.timeshift import RECORDINGS, alert_set

#: The SYSCALL record of one kexec run of the recording (kexec --unload, pid 30041).
MARKER = " pid=30041 "
BAD_ID = "1796012994.958:23096"


def replay(
    log: Path, *extra: str, fault: str | None = MARKER
) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "KEXECWATCH_TEST_FAULT"}
    if fault is not None:
        env["KEXECWATCH_TEST_FAULT"] = fault
    return subprocess.run(
        [sys.executable, "-m", "kexecwatch", "replay", "--host-name", "h", *extra, str(log)],
        capture_output=True,
        timeout=120,
        check=False,
        env=env,
    )


def bad_line(log: Path) -> int:
    for no, line in enumerate(log.read_bytes().split(b"\n"), 1):
        if MARKER.encode() in line:
            return no
    raise AssertionError("marker not in the log")


def test_the_other_alerts_come_out_and_the_failure_is_named() -> None:
    log = RECORDINGS["raw"]
    want = [d for d in alert_set(replay(log, fault=None).stdout) if BAD_ID not in d]
    assert len(want) == 23
    result = replay(log)
    err = result.stderr.decode()
    assert "Traceback" not in err, err[-3000:]
    assert result.returncode == 1, err[-3000:]  # alerts found
    assert alert_set(result.stdout) == want
    line = bad_line(log)
    assert re.search(
        rf"{re.escape(str(log))}:{line}: error: event {BAD_ID} could not be handled \(skipped\): "
        r"InjectedFault: injected fault",
        err,
    ), err[-3000:]
    assert ", 1 event errors" in err.splitlines()[-1]


def test_without_alerts_a_failed_event_is_exit_2_never_1(tmp_path: Path) -> None:
    log = tmp_path / "quiet.log"
    log.write_bytes(
        join(exec_lines(1, pid=10, comm="ls", exe="/usr/bin/ls", args=("ls",)))
        + join(exec_lines(2, pid=11, comm="cat", exe="/usr/bin/cat", args=("cat",)))
    )
    result = replay(log, "--events", fault=" pid=10 ")
    err = result.stderr.decode()
    assert "Traceback" not in err and result.returncode == 2, err
    [doc] = [json.loads(x) for x in result.stdout.splitlines()]
    assert doc["process"]["pid"] == 11
    assert f"{log}:1: error: event 1700000000.000:1 could not be handled" in err
    ok = replay(log, "--events", fault=None)
    assert ok.returncode == 0 and len(ok.stdout.splitlines()) == 2
