"""A real, small file system for tests that need ENOSPC: a tmpfs mounted for the test."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")


@contextlib.contextmanager
def small_tmpfs(mnt: Path, size: str = "1m") -> Iterator[Path]:
    """Mount a tmpfs of ``size`` on ``mnt`` (created), unmount it afterwards. Needs root."""
    mnt.mkdir(exist_ok=True)
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(mnt)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, f"mount tmpfs needs root: {r.stderr}"
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(path: Path, leave: int = 0) -> None:
    """Fill the file system holding ``path`` (a new file) until ENOSPC, then free ``leave`` bytes.

    ``leave`` is rounded to whole pages, the unit tmpfs counts in.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * PAGE)
        if leave:
            size = os.fstat(fd).st_size
            os.ftruncate(fd, max(0, size - -(-leave // PAGE) * PAGE))
    finally:
        os.close(fd)
