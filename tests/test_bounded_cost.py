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

from kexecwatch.core.audit.assembler import MAX_NODES
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


def test_the_dropped_fields_are_named_with_the_file_and_line_of_their_record(
    tmp_path: Path,
) -> None:
    # Every other parse issue names its file; this one said only "line 1", and the line of
    # the event's SYSCALL record instead of the EXECVE record that holds the fields.
    lines = exec_lines(1, args=("kexec", "-l", "vmlinuz"))
    lines[1] += b' a99999999="x"'
    log = tmp_path / "far-index.log"
    log.write_bytes(join([b"type=USER_START msg=audit(1699999999.000:0): pid=1 uid=0", *lines]))
    stderr = replay("--ruleset", "upstream", str(log)).stderr.decode()
    issue = next(line for line in stderr.splitlines() if "argument table bounded" in line)
    assert issue.startswith(f"kexecwatch: {log}:3: parse issue: "), issue


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


def _distinct_nodes(count: int) -> bytes:
    return b"".join(
        b"node=h%d type=USER_START msg=audit(1700000000.%03d:%d): pid=1 uid=0 auid=0 ses=1 "
        b"msg='op=PAM:session_open acct=\"root\" res=success'\n" % (i, i % 1000, i + 1)
        for i in range(count)
    )


def test_many_distinct_nodes_cost_linear_time(tmp_path: Path) -> None:
    # 80,000 nodes took 56 s when every record scanned every node's watermark.
    log = tmp_path / "nodes.log"
    log.write_bytes(_distinct_nodes(80_000))
    result = replay(str(log), timeout=25)
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr[-2000:]
    assert "80000 records, 80000 events" in stderr
    beyond = 80_000 - MAX_NODES
    assert f"{beyond} parse issues" in stderr
    assert f"more than {MAX_NODES} nodes" in stderr
