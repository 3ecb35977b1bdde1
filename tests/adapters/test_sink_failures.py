"""Outputs that cannot be jammed (issue 16 §4): real full file systems, real sockets."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kexecwatch.adapters.sinks import JsonFileSink, SinkRecord
from tests.smallfs import PAGE, fill, small_tmpfs


def record(n: int, size: int = 0) -> SinkRecord:
    return SinkRecord(f"id{n}", json.dumps({"n": n, "pad": "x" * size}), f"alert {n}")


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    with small_tmpfs(tmp_path / "tmpfs", "256k") as mnt:
        yield mnt


def test_a_partial_write_on_a_full_disk_is_cut_back_before_the_retry(tmpfs: Path) -> None:
    path = tmpfs / "alerts.ndjson"
    sink = JsonFileSink(f"json:{path}", str(path))
    sink.send(record(1))
    fill(tmpfs / "filler", leave=PAGE)  # room for a page of the next line, not all of it
    big = record(2, 3 * PAGE)
    with pytest.raises(OSError, match=os.strerror(errno.ENOSPC)):
        sink.send(big)
    assert path.read_text() == record(1).json_line + "\n"  # nothing of the failed line left
    (tmpfs / "filler").unlink()
    sink.send(big)  # the hub's retry
    sink.close()
    assert path.read_text().splitlines() == [record(1).json_line, big.json_line]


def test_a_torn_last_line_left_by_a_crash_is_cut_before_appending(tmp_path: Path) -> None:
    # What kill -9 in the middle of a large write() leaves: the start of a line, no newline.
    path = tmp_path / "alerts.ndjson"
    path.write_text(record(1).json_line + "\n" + record(2).json_line[:10])
    sink = JsonFileSink(f"json:{path}", str(path))
    sink.send(record(2))
    sink.close()
    assert path.read_text().splitlines() == [record(1).json_line, record(2).json_line]
