"""The checkpoint: where to resume, what was in flight, which alerts already went out.

Rule 1: a checkpoint is written only after the alerts of everything it covers have been
handed to the outputs (the daemon enforces the order; a test asserts it).

Rule 2: a checkpoint is replaced atomically (temporary file, fsync, ``os.replace``,
directory fsync). A failed write (``ENOSPC``, ``EIO``) leaves the previous one intact.

Rule 3: a checkpoint that does not parse, has the wrong shape or another schema, is too
large, or belongs to another host is never trusted: it is renamed aside to
``checkpoint.json.corrupt-<ts>`` and reported. One that is not a regular file of the
daemon's own is refused (:mod:`kexecwatch.adapters.daemon.statefiles`).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from kexecwatch.adapters.daemon.daemonlog import kv
from kexecwatch.adapters.daemon.logfiles import Position
from kexecwatch.adapters.daemon.sinks import SinkRecord
from kexecwatch.adapters.daemon.statefiles import (
    TooLarge,
    UnsafeFile,
    ensure_state_dir,
    read_private,
    set_aside,
    write_atomic,
)
from kexecwatch.core import jsontext
from kexecwatch.errors import ConfigError

__all__ = [
    "SCHEMA",
    "Checkpoint",
    "CheckpointStore",
    "LoadResult",
    "ensure_state_dir",
    "read_boot_id",
]

log = logging.getLogger(__name__)

SCHEMA = 1
KIND = "kexecwatch-checkpoint"
FILENAME = "checkpoint.json"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Everything a restart needs.

    Attributes:
        position: resume point (line boundary) or ``None`` before the log was opened.
        file_mtime_ns: mtime of the checkpointed file; orders survivors after a gap.
        detector_state: ``Detector.to_state()`` (in-flight events, process table, limiter);
            when saved, its process table may be ``jsontext.JsonText``
            (``to_state(table_text=True)``), written as it is.
        recent_alert_ids: ids of recently emitted alerts, oldest first (bounded).
        undelivered: per output spec, records handed over but not yet delivered.
        host_name: the host the daemon ran as.
        boot_id: ``/proc/sys/kernel/random/boot_id`` when written.
        saved_at_ms: wall-clock time of the write (informational).
    """

    position: Position | None
    file_mtime_ns: int | None
    detector_state: dict[str, Any] | None
    recent_alert_ids: tuple[str, ...] = ()
    undelivered: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    host_name: str = ""
    boot_id: str = ""
    saved_at_ms: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, with schema version and kind."""
        return {
            "kind": KIND,
            "schema": SCHEMA,
            "host_name": self.host_name,
            "boot_id": self.boot_id,
            "saved_at_ms": self.saved_at_ms,
            "position": self.position.to_dict() if self.position else None,
            "file_mtime_ns": self.file_mtime_ns,
            "detector_state": self.detector_state,
            "recent_alert_ids": list(self.recent_alert_ids),
            "undelivered": self.undelivered,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Checkpoint:
        """Validate and build; raises ``ValueError`` naming what is wrong."""
        if not isinstance(data, dict) or data.get("kind") != KIND:
            raise ValueError("not a kexecwatch checkpoint")
        if data.get("schema") != SCHEMA:
            raise ValueError(f"schema {data.get('schema')!r}, expected {SCHEMA}")
        try:
            pos = data["position"]
            state = data["detector_state"]
            ids = data["recent_alert_ids"]
            undelivered = data.get("undelivered", {})
            if state is not None and not isinstance(state, dict):
                raise TypeError("detector_state is not an object")
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise TypeError("recent_alert_ids is not a list of strings")
            if not isinstance(undelivered, dict):
                raise TypeError("undelivered is not an object")
            mtime = data.get("file_mtime_ns")
            return cls(
                position=Position.from_dict(pos) if pos is not None else None,
                file_mtime_ns=int(mtime) if mtime is not None else None,
                detector_state=state,
                recent_alert_ids=tuple(ids),
                undelivered={str(k): _records(v) for k, v in undelivered.items()},
                host_name=str(data.get("host_name", "")),
                boot_id=str(data.get("boot_id", "")),
                saved_at_ms=int(data.get("saved_at_ms", 0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed checkpoint: {exc!r}") from exc


def _records(value: Any) -> list[dict[str, str]]:
    """``value`` if it is a list of sink records; raises ``TypeError``/``KeyError`` if not."""
    if not isinstance(value, list):
        raise TypeError("undelivered records are not a list")
    for rec in value:
        SinkRecord.from_dict(rec)
    return value


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What loading found: a trusted checkpoint, or a problem (never both)."""

    checkpoint: Checkpoint | None
    problem: str | None = None
    moved_to: str | None = None


def read_boot_id() -> str:
    """This boot's id, or ``""`` when the kernel does not expose one."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
            return fh.read().strip()
    except OSError:
        return ""


class CheckpointStore:
    """Loads and atomically saves ``<state-dir>/checkpoint.json``.

    Args:
        state_dir: an existing directory (see :func:`ensure_state_dir`).
        host_name: a checkpoint written for another host is foreign.
    """

    def __init__(self, state_dir: str, host_name: str) -> None:
        self.path = os.path.join(state_dir, FILENAME)
        self._host = host_name
        self.failures = 0

    def load(self) -> LoadResult:
        """Read the checkpoint; set an untrustworthy one aside (never raises for content).

        Raises:
            ConfigError: the checkpoint is not a regular file of the daemon's own (a
                directory, FIFO, device or symlink), or cannot be read.
        """
        try:
            raw = read_private(self.path)
            if raw is None:
                return LoadResult(None)
            cp = Checkpoint.from_dict(json.loads(raw))
            if cp.host_name != self._host:
                raise ValueError(f"written for host {cp.host_name!r}, not {self._host!r}")
        # JSONDecodeError and UnicodeDecodeError are ValueErrors; deep nesting is a
        # RecursionError.
        except (TooLarge, ValueError, RecursionError) as exc:
            problem = str(exc) if not isinstance(exc, RecursionError) else "nested too deeply"
            return LoadResult(None, problem, set_aside(self.path))
        except UnsafeFile as exc:
            raise ConfigError(f"checkpoint {exc}; refusing to start") from exc
        except OSError as exc:
            raise ConfigError(f"checkpoint {self.path}: cannot read: {exc.strerror}") from exc
        return LoadResult(cp)

    def save(self, cp: Checkpoint) -> bool:
        """Write ``cp`` atomically. Returns False (and logs) when the write failed."""
        data = jsontext.ascii_compact_with(cp.to_dict())
        try:
            write_atomic(self.path, data)
        except OSError as exc:
            self.failures += 1
            log.error(
                "checkpoint_failed",
                extra=kv(
                    path=self.path,
                    error=exc.strerror or str(exc),
                    failures=self.failures,
                    kept="previous",
                ),
            )
            return False
        return True
