"""The safe opening of state files, in process (the daemon tests drive the same paths)."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from kexecwatch.adapters.daemon.journal import Journal
from kexecwatch.adapters.daemon.statefiles import (
    MAX_STATE_BYTES,
    TooLarge,
    UnsafeFile,
    append_private,
    lock_dir,
    read_private,
    write_atomic,
)
from kexecwatch.errors import ConfigError


def test_the_lock_is_exclusive_and_names_its_holder(tmp_path: Path) -> None:
    fd = lock_dir(str(tmp_path))
    try:
        with pytest.raises(ConfigError, match=f"in use .*pid {os.getpid()}"):
            lock_dir(str(tmp_path))
    finally:
        os.close(fd)
    os.close(lock_dir(str(tmp_path)))  # released with its descriptor


def test_read_private_refuses_what_it_must_not_read(tmp_path: Path) -> None:
    f = tmp_path / "f"
    assert read_private(str(f)) is None
    f.write_bytes(b"x" * 11)
    assert read_private(str(f), limit=11) == b"x" * 11
    with pytest.raises(TooLarge, match="too large"):
        read_private(str(f), limit=10)
    os.chown(f, pwd.getpwnam("nobody").pw_uid, -1)
    with pytest.raises(UnsafeFile, match="owned by uid"):
        read_private(str(f))
    assert read_private(str(f), any_owner=True) == b"x" * 11
    f.chmod(0o620)
    os.chown(f, os.geteuid(), -1)
    with pytest.raises(UnsafeFile, match="writable by others"):
        append_private(str(f))


def test_write_atomic_replaces_a_leftover_temporary_file_without_opening_it(
    tmp_path: Path,
) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (tmp_path / "cp.tmp").symlink_to(victim)
    write_atomic(str(tmp_path / "cp"), b"new")
    assert (tmp_path / "cp").read_bytes() == b"new"
    assert victim.read_text() == "keep"
    assert not (tmp_path / "cp.tmp").exists()


def test_an_oversized_journal_is_set_aside_unread(tmp_path: Path) -> None:
    with open(tmp_path / "alerts.journal", "wb") as fh:
        fh.seek(MAX_STATE_BYTES)  # sparse, and whole lines: no torn tail to cut
        fh.write(b"\n")
    journal = Journal(str(tmp_path))
    try:
        assert journal.read().emitted == {}
        (aside,) = tmp_path.glob("alerts.journal.corrupt-*")
        assert aside.stat().st_size == MAX_STATE_BYTES + 1
        assert (tmp_path / "alerts.journal").stat().st_size == 0  # a fresh journal
    finally:
        journal.close()
