"""Checkpoint store: atomic writes, distrust of bad checkpoints, the state directory."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import pytest

from kexecwatch.adapters.daemon.checkpoint import (
    Checkpoint,
    CheckpointStore,
    ensure_state_dir,
)
from kexecwatch.adapters.daemon.logfiles import FileIdentity, Position
from kexecwatch.errors import ConfigError


def sample(host: str = "h1") -> Checkpoint:
    ident = FileIdentity(1, 2, "ab" * 32, 1024)
    return Checkpoint(
        position=Position(ident, 77, "/x/audit.log"),
        file_mtime_ns=5,
        detector_state={"version": 1},
        recent_alert_ids=("a", "b"),
        undelivered={"stdout": [{"id": "a", "json": "{}", "text": "t"}]},
        host_name=host,
        boot_id="boot",
        saved_at_ms=9,
    )


def test_round_trip(tmp_path: Path) -> None:
    store = CheckpointStore(str(tmp_path), "h1")
    assert store.load().checkpoint is None
    assert store.save(sample())
    assert store.load().checkpoint == sample()
    assert not (tmp_path / "checkpoint.json.tmp").exists()


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b'{"kind": "kexecwatch-checkpoint", "schema": 1, "posit', ""),
        (b'{"kind": "something-else"}', "not a kexecwatch checkpoint"),
        (b'{"kind": "kexecwatch-checkpoint", "schema": 0}', "schema 0"),
        (b"\xff\xfe", ""),
    ],
)
def test_bad_checkpoint_is_set_aside_not_trusted(tmp_path: Path, content: bytes, why: str) -> None:
    (tmp_path / "checkpoint.json").write_bytes(content)
    res = CheckpointStore(str(tmp_path), "h1").load()
    assert res.checkpoint is None
    assert res.problem is not None
    assert why in res.problem.lower()
    assert res.moved_to is not None
    assert Path(res.moved_to).read_bytes() == content
    assert ".corrupt-" in res.moved_to
    assert not (tmp_path / "checkpoint.json").exists()


def test_foreign_host_checkpoint_is_set_aside(tmp_path: Path) -> None:
    CheckpointStore(str(tmp_path), "other").save(sample("other"))
    res = CheckpointStore(str(tmp_path), "h1").load()
    assert res.checkpoint is None
    assert "other" in (res.problem or "")


def test_failed_write_keeps_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = CheckpointStore(str(tmp_path), "h1")
    store.save(sample())
    before = (tmp_path / "checkpoint.json").read_bytes()

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    newer = Checkpoint(None, None, None, host_name="h1")
    assert store.save(newer) is False
    assert store.failures == 1
    assert (tmp_path / "checkpoint.json").read_bytes() == before
    assert not (tmp_path / "checkpoint.json.tmp").exists()
    monkeypatch.undo()
    assert store.save(newer)
    assert json.loads((tmp_path / "checkpoint.json").read_bytes())["position"] is None


def test_state_dir_is_created_0700(tmp_path: Path) -> None:
    target = tmp_path / "a" / "state"
    old = os.umask(0o022)
    try:
        ensure_state_dir(str(target))
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o700


def test_symlinked_state_dir_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(ConfigError, match="symlink"):
        ensure_state_dir(str(link))
