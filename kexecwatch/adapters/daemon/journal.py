"""The alert journal: what was handed to each output, and what was delivered.

Rule 1: every hand-off and every delivery is written to the journal
(``<state-dir>/alerts.journal``) with plain ``write()``, which survives ``kill -9``. A
restart reads it back: alerts emitted after the last checkpoint are not emitted again,
and records not yet delivered to an output are queued for it again. The journal is
emptied after each checkpoint, which carries the same facts (recent ids, undelivered).
A journal with a line that is not a hand-off or a delivery (other than a torn last line),
or one too large to read, is renamed aside to ``alerts.journal.corrupt-<ts>`` and
reported; the lines that did parse are still used.

The fan-out (:mod:`kexecwatch.adapters.daemon.fanout`) writes it; the daemon reads it back
at start.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from dataclasses import dataclass, field

from kexecwatch.adapters.daemon import fileio
from kexecwatch.adapters.daemon.daemonlog import kv
from kexecwatch.adapters.daemon.sinks import SinkRecord
from kexecwatch.adapters.daemon.statefiles import TooLarge, append_private, read_private, set_aside

__all__ = ["JOURNAL", "Journal", "JournalReplay"]

log = logging.getLogger(__name__)

JOURNAL = "alerts.journal"
#: Disk space kept allocated ahead of the journal: about 2,000 alerts with one output
#: (a hand-off of a typical alert takes 4 KB of journal).
JOURNAL_RESERVE = 8 << 20


@dataclass(slots=True)
class JournalReplay:
    """What the journal says happened after the last checkpoint."""

    emitted: dict[str, SinkRecord] = field(default_factory=dict)
    delivered: set[tuple[str, str]] = field(default_factory=set)


class Journal:
    """Append-only record of hand-offs (``e``) and deliveries (``d``).

    Write failures: a write that fails part-way is cut back to the length before it, so
    the journal only ever holds whole lines; a failed write is counted and logged, never
    raised, because an alert must go out even when it cannot be journalled. To keep that
    rare, disk space for ``reserve`` bytes is allocated ahead of the journal at start and
    after every reset: a state file system that fills up between two checkpoints does not
    stop the journal until that much was written, so ``kill -9`` still repeats nothing.

    Raises:
        UnsafeFile: the journal is a symlink, not a regular file, or not the daemon's own.
    """

    def __init__(self, state_dir: str, *, reserve: int = JOURNAL_RESERVE) -> None:
        self.path = os.path.join(state_dir, JOURNAL)
        self._fd = append_private(self.path, readable=True)  # readable: see cut_torn_tail
        self._lock = threading.Lock()
        self.failures = 0
        self._want = reserve
        self.reserved = -1
        self._cut_to: int | None = None  # a failed write's start, if cutting back failed
        self._empty = False
        fileio.cut_torn_tail(self._fd, self.path)
        self._reserve()

    def _reserve(self) -> None:
        got, why = fileio.reserve(self._fd, self._want)
        if got < self._want and got != self.reserved:
            log.warning(
                "journal_reserve_short", extra=kv(reserved=got, wanted=self._want, error=why)
            )
        self.reserved = got

    def _append(self, obj: dict[str, object]) -> None:
        line = json.dumps(obj, separators=(",", ":")).encode() + b"\n"
        with self._lock:
            start = None
            try:
                if self._cut_to is not None:
                    os.ftruncate(self._fd, self._cut_to)
                    self._cut_to = None
                start = os.fstat(self._fd).st_size
                fileio.write_all(self._fd, line)
                self._empty = False
            except OSError as exc:
                self.failures += 1
                log.error(
                    "journal_write_failed", extra=kv(error=exc.strerror, failures=self.failures)
                )
                if start is not None:
                    self._cut_to = start
                    with contextlib.suppress(OSError):
                        os.ftruncate(self._fd, start)
                        self._cut_to = None

    def emitted(self, record: SinkRecord) -> None:
        """Note a record handed to the outputs."""
        self._append({"e": record.to_dict()})

    def delivered(self, spec: str, alert_id: str, *, dropped: bool = False) -> None:
        """Note a record one output is done with: delivered, or dropped for good."""
        self._append({"d": alert_id, "s": spec, **({"dropped": 1} if dropped else {})})

    def read(self) -> JournalReplay:
        """Parse the journal; a torn last line (crash mid-write) is ignored.

        Any other line that is not a hand-off or a delivery, or a journal too large to
        read, sets the journal aside (the parsed lines still count) and starts a new one.
        """
        replay = JournalReplay()
        try:
            data = read_private(self.path)
        except TooLarge as exc:
            self._set_aside(str(exc))
            return replay
        except OSError:
            return replay
        lines = (data or b"").split(b"\n")
        bad = 0
        for i, raw in enumerate(lines):
            if not raw:
                continue
            if not _replay_line(raw, replay) and i < len(lines) - 1:
                bad += 1  # the last piece has no newline: a torn write, not corruption
        if bad:
            self._set_aside(f"{bad} lines are not hand-offs or deliveries")
        return replay

    def _set_aside(self, reason: str) -> None:
        with self._lock:
            moved_to = set_aside(self.path)
            os.close(self._fd)
            self._fd = append_private(self.path, readable=True)
            self._reserve()
        log.warning("journal_rejected", extra=kv(reason=reason, moved_to=moved_to))

    def sync_and_reset(self) -> None:
        """Empty the journal (call right after a checkpoint was saved)."""
        with self._lock:
            if self._empty:
                return
            try:
                os.ftruncate(self._fd, 0)
            except OSError as exc:
                log.error("journal_reset_failed", extra=kv(error=exc.strerror))
                return
            self._cut_to = None
            self._empty = True
            self._reserve()  # truncating freed the reserved space too

    def close(self) -> None:
        """Close the journal file."""
        os.close(self._fd)


def _replay_line(raw: bytes, replay: JournalReplay) -> bool:
    """Fold one journal line into ``replay``; False when it is not a journal line."""
    try:
        obj = json.loads(raw)
        if not isinstance(obj, dict):
            return False
        if "e" in obj:
            rec = SinkRecord.from_dict(obj["e"])
            replay.emitted[rec.alert_id] = rec
        elif "d" in obj:
            replay.delivered.add((str(obj["s"]), str(obj["d"])))
        else:
            return False
    except (ValueError, KeyError, TypeError, RecursionError):
        return False
    return True
