import gzip
import os
from pathlib import Path

import pytest

from kexecwatch.adapters.sources import expand_paths, read_chunks
from kexecwatch.errors import InputError


def test_directory_means_the_rotated_set_oldest_first(tmp_path: Path) -> None:
    for name in ["audit.log", "audit.log.1", "audit.log.2.gz", "audit.log.10", "other.log"]:
        (tmp_path / name).write_bytes(b"x\n")
    stamped = tmp_path / "audit.log-20260101"
    stamped.write_bytes(b"x\n")
    os.utime(stamped, (1, 1))
    names = [Path(s.name).name for s in expand_paths([str(tmp_path)])]
    assert names == [
        "audit.log-20260101",
        "audit.log.10",
        "audit.log.2.gz",
        "audit.log.1",
        "audit.log",
    ]


def test_gzip_is_read_transparently(tmp_path: Path) -> None:
    path = tmp_path / "audit.log.1.gz"
    path.write_bytes(gzip.compress(b"line one\nline two\n"))
    [source] = expand_paths([str(path)])
    assert b"".join(read_chunks(source, 4)) == b"line one\nline two\n"


def test_missing_file_and_empty_directory_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        expand_paths([str(tmp_path / "nope.log")])
    with pytest.raises(InputError, match=r"no audit\.log"):
        expand_paths([str(tmp_path)])


def test_broken_gzip_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "audit.log.gz"
    data = gzip.compress(os.urandom(50_000))
    path.write_bytes(data[: len(data) // 2])
    [source] = expand_paths([str(path)])
    with pytest.raises(InputError, match="read failed"):
        b"".join(read_chunks(source))
