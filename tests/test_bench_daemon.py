"""``bench/daemon_bench.py`` shows a daemon that cannot run instead of waiting for it.

The bench measures a real ``kexecwatch run``; one that exits (it could not start: say, the
native scanner forced where its library is missing) must end the bench at once with the
daemon's own words, not look like "no alerts received" and then wait for a sentinel alert
for 900 s. A stand-in ``kexecwatch`` (a shell script) plays the daemon that exits.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Answers --version as a python-scanner kexecwatch does; `run` writes to stderr after
# $DELAY seconds and exits 2.
FAKE = """#!/bin/sh
if [ "$1" = --version ]; then echo "kexecwatch 0.1.0 (scanner: python: forced)"; exit 0; fi
sleep {delay}
echo "kexecwatch: starting" >&2
echo "kexecwatch: error: the stand-in daemon gives up" >&2
exit 2
"""


@pytest.mark.parametrize("delay", [0, 3])
def test_exited_daemon_ends_the_bench_with_its_stderr(tmp_path: Path, delay: int) -> None:
    fake = tmp_path / "kexecwatch"
    fake.write_text(FAKE.format(delay=delay))
    fake.chmod(0o755)
    start = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "daemon_bench.py"),
            "--scanner",
            "python",
            "--baseline",
            str(fake),
            # This checkout's daemon is measured first; a short latency step keeps it short.
            "--only",
            "latency",
            "--events",
            "5",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    took = time.monotonic() - start
    assert done.returncode == 3, done.stdout + done.stderr
    err = done.stderr.strip().splitlines()
    assert err[-1] == (
        "daemon_bench.py: error: kexecwatch run exited with status 2: kexecwatch: starting; "
        "kexecwatch: error: the stand-in daemon gives up"
    )
    # The latency step would wait 30 s for alerts, the sentinel 900 s.
    assert took < 60, took
