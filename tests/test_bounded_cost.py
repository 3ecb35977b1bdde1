"""Issue 16 §3: bounded cost per record, driven through a real ``replay`` process.

Each case runs under an address-space limit and a timeout, so a regression
fails (MemoryError, timeout) instead of exhausting the machine. Absolute
figures live in ``bench/hostile.py``.
"""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

from tests.builders import exec_lines, join

MEMORY_LIMIT = 1 << 30


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def replay(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "kexecwatch", "replay", *args],
        capture_output=True,
        timeout=timeout,
        check=False,
        preexec_fn=_limit_memory,
    )


def test_one_far_argument_index_costs_nothing(tmp_path: Path) -> None:
    lines = exec_lines(1, args=("kexec", "-l", "vmlinuz"))
    lines[1] += b' a99999999="x"'
    log = tmp_path / "far-index.log"
    log.write_bytes(join(lines))
    result = replay("--ruleset", "upstream", str(log))
    assert result.returncode == 1, result.stderr.decode()[-2000:]
    assert len(result.stdout) < 20_000
    assert "1 alerts" in result.stderr.decode()
    assert "1 parse issues" in result.stderr.decode()
    assert b'"args":["kexec","-l","vmlinuz"]' in result.stdout.replace(b" ", b"")


def test_a_file_of_far_argument_indices_is_linear(tmp_path: Path) -> None:
    lines = exec_lines(1, args=("kexec", "-l", "vmlinuz"))
    lines[1] += b"".join(b' a%d="x"' % (99_999_999 - i) for i in range(30_000))
    log = tmp_path / "far-indices.log"
    log.write_bytes(join(lines))
    result = replay("--ruleset", "upstream", str(log), timeout=30)
    assert result.returncode == 1, result.stderr.decode()[-2000:]
    assert len(result.stdout) < 20_000
    assert "1 alerts" in result.stderr.decode()
    assert "1 parse issues" in result.stderr.decode()
