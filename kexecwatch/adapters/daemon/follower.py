"""Follow an audit log by name through rotation, truncation and recreation.

Rule 1: filesystem notifications are wake-ups only. What to read is decided from
``fstat``/``stat`` and file contents, never from the events: inotify coalesces identical
events and drops them when its queue overflows (``IN_Q_OVERFLOW``); a rename and a
create in quick succession may also arrive out of order or as one. A slow safety poll
covers the rest: every ``poll_interval`` without a watch, every ``WATCHED_POLL_FACTOR``
times that while the watch works, and every ``poll_interval`` again for good once a safety
poll found lines that no notification announced (a log written by another host over a
network filesystem). The notifications are read in the caller's thread
(:mod:`kexecwatch.adapters.daemon.dirwatch`).

Rule 3: a busy log is read in batches. A wake-up costs far more than the bytes it
reads, and a writer may append a record at a time, so a notification that comes within
the *hold* of a read that returned lines ends the wait only when the hold is over (events
stay queued); a write after a quiet spell is read at once, and a writer slower than that
costs one wake-up a write. The hold is ``settle`` (25 ms), or ``busy_settle`` (50 ms)
after a read that took in lines at ``BUSY_RATE`` (512 KiB a second) or more, counted from
the read before it (auditd at some 500 exec events a second and up). The hold bounds the
alert latency it adds: 25 ms, and 50 ms on a log that busy.

Rule 4: one :meth:`Follower.read` takes in about ``READ_BUDGET`` bytes at most by
default (the budget, and the end of a line the previous read began; a backlog is read in
several). What one read takes in is what the daemon holds at once:
the bytes, the scanner's copy of them, and the blocks glibc keeps in its heap once they are
freed; 4 MiB reads of a backlog cost the daemon 10 MB of peak RSS.

Rule 2: only complete lines leave this module, and every :class:`Lines` carries the
position just after its last newline, so a checkpoint taken after feeding it always sits
at a line boundary. A partial last line stays here until its newline arrives.

Theory of operation: read the current file to EOF with ``pread``.
At EOF, ``fstat`` the open file: a size below our offset, or a first-KiB fingerprint that
changed, means truncation (a copy holding the unread rest is looked for first, then the
file is read from 0). Then ``stat`` the path: another inode (or none) means rotation or
replacement. The old file, already at EOF, is given up (after a short grace if it ends
mid-line) and the files that came after it are opened oldest first: by identity in the
``NAME.<n>`` set when it is still there, else by mtime. On start from a checkpoint the
same search runs; a checkpointed file that cannot be found is reported as a :class:`Gap`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from kexecwatch.adapters.daemon.daemonlog import kv
from kexecwatch.adapters.daemon.dirwatch import DirWatch
from kexecwatch.adapters.daemon.logfiles import (
    FINGERPRINT_MAX,
    FileIdentity,
    Position,
    RotatedFile,
    head_matches,
    identity_of_fd,
    list_rotated,
    matches,
)

__all__ = [
    "BUSY_RATE",
    "BUSY_SETTLE",
    "READ_BUDGET",
    "WATCHED_POLL_FACTOR",
    "DroppedTail",
    "Follower",
    "FollowerOutput",
    "Gap",
    "Lines",
    "Switched",
    "Unreadable",
]

log = logging.getLogger(__name__)

READ_CHUNK = 1 << 20
#: What one :meth:`Follower.read` takes in by default (rule 4).
READ_BUDGET = 256 << 10
#: Seconds between two reads of a log that keeps being written (see rule 3).
SETTLE = 0.025
#: Bytes a second from which a log is busy (rule 3): its reads are ``BUSY_SETTLE`` apart.
BUSY_RATE = 512 << 10
#: Seconds between two reads of a busy log (rule 3); the latency bound it adds.
BUSY_SETTLE = 0.05
#: While the directory watch works, safety polls are this many times further apart than
#: ``poll_interval`` (rule 1): an idle daemon wakes once in ten seconds, not every second.
WATCHED_POLL_FACTOR = 10
MAX_LINE = 64 * 1024
_OPEN_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK


@dataclass(frozen=True, slots=True)
class Lines:
    """Complete lines (each ends in ``\\n``) and the position just after the last one."""

    data: bytes
    position: Position


@dataclass(frozen=True, slots=True)
class Switched:
    """The follower started reading another file (or the same file again from 0)."""

    reason: str  # opened | resumed | rotated | truncated | copied
    path: str
    identity: FileIdentity
    offset: int
    left_mtime_ns: int | None = None  # mtime of the file left behind, if any


@dataclass(frozen=True, slots=True)
class Gap:
    """The checkpointed file is gone beyond recovery: what follows it may be lost."""

    lost: Position
    resumed_from: str

    def describe(self) -> str:
        """One sentence naming the gap."""
        return (
            f"checkpointed log {self.lost.path} (file {self.lost.identity}) was not found "
            f"in the rotated set; records after byte {self.lost.offset} of it, and of any "
            f"file rotated away after it, are lost; resuming with {self.resumed_from}"
        )


@dataclass(frozen=True, slots=True)
class DroppedTail:
    """Bytes that never became a complete line and were given up."""

    path: str
    offset: int
    length: int
    reason: str


@dataclass(frozen=True, slots=True)
class Unreadable:
    """The log (or a rotated member) cannot be opened yet; the follower retries later."""

    path: str
    error: str
    retry_in: float


FollowerOutput = Lines | Switched | Gap | DroppedTail | Unreadable


class _Open:
    """One open member of the stream (mutable, internal)."""

    __slots__ = (
        "committed",
        "discarding",
        "fd",
        "head",
        "identity",
        "offset",
        "partial",
        "partial_since",
        "path",
        "seen",
    )

    def __init__(self, fd: int, path: str, identity: FileIdentity, offset: int) -> None:
        self.fd = fd
        self.path = path
        self.identity = identity
        self.offset = offset  # next byte to read
        self.committed = offset  # just after the last newline handed out
        self.partial = bytearray()
        self.discarding = False  # inside an over-long line, skipping to its newline
        self.partial_since: float | None = None
        self.seen: tuple[int, int] = (-1, -1)  # (size, mtime_ns) at the last check
        self.head: bytes | None = None  # the first bytes last found to match ``identity``

    def position(self) -> Position:
        return Position(self.identity, self.committed, self.path)


class Follower:
    """Reads ``path`` and its rotated successors as one stream of complete lines.

    Args:
        path: the live log name, e.g. ``/var/log/audit/audit.log``.
        resume: checkpointed position, or ``None`` to start at the beginning of ``path``.
        resume_mtime_ns: mtime of the checkpointed file when checkpointed; orders the
            survivors when that file is gone.
        poll_interval: seconds between safety polls without a working watch (rule 1).
        rotate_grace: seconds to wait for a rotated file's unterminated last line.
        settle: seconds a wake-up waits after a read that returned lines (rule 3).
        busy_settle: the same after a read that took in lines at ``BUSY_RATE`` or more.
        clock: monotonic clock (injectable for tests; waiting uses the real one).
    """

    def __init__(
        self,
        path: str,
        *,
        resume: Position | None = None,
        resume_mtime_ns: int | None = None,
        poll_interval: float = 1.0,
        rotate_grace: float = 2.0,
        settle: float = SETTLE,
        busy_settle: float = BUSY_SETTLE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = os.path.abspath(path)
        self._resume = resume
        self._resume_mtime_ns = resume_mtime_ns
        self.poll_interval = poll_interval
        self._grace = rotate_grace
        self.settle = settle
        self.busy_settle = busy_settle
        self.hold = settle  # what a wake-up waits after the last read with lines (rule 3)
        self._clock = clock
        self._cur: _Open | None = None
        self._pending: list[_Open] = []
        self._wake = threading.Event()  # set by wake(): ends a wait at once
        self._watch: DirWatch | None = None
        self._lines_at = -1e9  # time.monotonic() of the last read that returned lines
        self._more = False  # the last read stopped at its budget, not at the end
        self._retry_at = 0.0
        self._retry_delay = 0.1
        self._timed_out = False  # the last wait ended by its time limit, not a wake-up
        self._watch_missed = False  # a safety poll found lines no notification announced

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        """Watch the log's directory (non-recursive); failures fall back to polling."""
        directory = os.path.dirname(self.path)
        try:
            self._watch = DirWatch(directory, os.path.basename(self.path))
        except OSError as exc:
            log.warning("watch_failed", extra=kv(dir=directory, error=str(exc), fallback="poll"))

    def close(self) -> None:
        """Stop watching and close every open file."""
        if self._watch is not None:
            self._watch.close()
            self._watch = None
        for f in ([self._cur] if self._cur else []) + self._pending:
            os.close(f.fd)
        self._cur = None
        self._pending = []

    @property
    def safety_poll(self) -> float:
        """Seconds between safety polls now (rule 1)."""
        watch = self._watch
        if watch is None or not watch.watching or self._watch_missed:
            return self.poll_interval
        return self.poll_interval * WATCHED_POLL_FACTOR

    def wait(self, timeout: float | None = None) -> None:
        """Sleep until a filesystem wake-up, or the safety poll (or ``timeout``) elapses.

        After a read that returned lines, the first :attr:`hold` seconds pass before a
        filesystem wake-up counts (rule 3); :meth:`wake` ends the wait at any time.
        While the log cannot be opened, the sleep also ends when the next attempt is due,
        so the retry delay reported in :class:`Unreadable` is the delay waited; while a
        rotated file ends mid-line, it ends when that line's grace is over.
        """
        limit = self.safety_poll if timeout is None else min(timeout, self.safety_poll)
        if self._cur is None and self._retry_at:
            limit = min(limit, max(0.0, self._retry_at - self._clock()))
        if self._cur is not None and self._cur.partial_since is not None:
            limit = min(limit, max(0.0, self._cur.partial_since + self._grace - self._clock()))
        self._timed_out = False
        watch = self._watch
        if watch is None:
            self._wake.wait(limit)
            self._wake.clear()
            return
        start = time.monotonic()
        try:
            while not watch.wait(start + limit - time.monotonic()):
                if time.monotonic() >= start + limit:
                    self._timed_out = True
                    return
            if self._wake.is_set():  # wake(): at once
                return
            # A notification: if it came within the hold, let the hold pass (rule 3).
            # Only then: a write slower than that is read at once.
            hold = min(start + limit, self._lines_at + self.hold) - time.monotonic()
            if hold > 0:
                watch.sleep(hold)
        finally:
            self._wake.clear()

    def wake(self) -> None:
        """Make a pending :meth:`wait` return at once (for signal handlers)."""
        if self._watch is not None:
            self._watch.wake()
        self._wake.set()

    @property
    def position(self) -> Position | None:
        """Where a restart should resume: just after the last line handed out."""
        return self._cur.position() if self._cur else self._resume

    @property
    def more_to_read(self) -> bool:
        """True when the last :meth:`read` stopped at its budget with bytes left to read
        (read again at once); False when it reached the end (:meth:`wait` first)."""
        return self._more

    @property
    def holds_partial_line(self) -> bool:
        """True while the writer is in the middle of a line (of any file in the stream)."""
        return self._cur is not None and bool(self._cur.partial)

    def lag_bytes(self) -> int:
        """Bytes written to the current file that were not read yet."""
        if self._cur is None:
            return 0
        return max(0, os.fstat(self._cur.fd).st_size - self._cur.offset)

    def current_mtime_ns(self) -> int | None:
        """mtime of the file being read (stored with checkpoints)."""
        if self._cur is None:
            return self._resume_mtime_ns
        return os.fstat(self._cur.fd).st_mtime_ns

    # -- reading ---------------------------------------------------------------------
    def read(self, budget: int = READ_BUDGET) -> list[FollowerOutput]:
        """Read what is available now, up to about ``budget`` bytes (rule 4).

        Returns:
            Outputs in stream order. An empty list means nothing new.
        """
        out: list[FollowerOutput] = []
        watch = self._watch
        # After a wait that timed out, lines with no notification queued before the read
        # nor after it were missed by the watch (queued() consumes nothing: a notice
        # queued by now still wakes the next wait).
        unannounced = self._timed_out and watch is not None and not watch.queued()
        self._timed_out = False
        if self._cur is None and not self._open_first(out):
            return out
        while budget > 0 and self._cur is not None:
            f = self._cur
            st = os.fstat(f.fd)
            size = st.st_size
            # Content is re-verified whenever size or mtime moved: a truncate + regrow
            # to exactly our offset changes neither the size nor the offset.
            changed = (size, st.st_mtime_ns) != f.seen
            f.seen = (size, st.st_mtime_ns)
            if size < f.offset or (changed and not self._same_content(f)):
                self._on_truncated(f, out)
                continue
            if size > f.offset:
                left = size - f.offset
                got = self._read_into(f, out, min(READ_CHUNK, budget, left))
                budget -= max(got, 1)
                if got < left:
                    continue  # at the budget, or raced with a truncation: fstat again
                # The bytes end where that fstat said the file ends: to the end-of-file
                # checks without a second fstat (a later write queues its own wake-up).
            if not self._at_eof(f, out):
                break
        took = sum(len(i.data) for i in out if isinstance(i, Lines))
        if took:
            now = time.monotonic()
            busy = took >= BUSY_RATE * (now - self._lines_at)
            self.hold = self.busy_settle if busy else self.settle
            self._lines_at = now
            if unannounced and watch is not None and not watch.queued():
                self._on_missed()
        self._more = budget <= 0
        return out

    def _on_missed(self) -> None:
        if not self._watch_missed:
            self._watch_missed = True
            log.warning(
                "watch_missed_write",
                extra=kv(path=self.path, safety_poll=self.poll_interval),
            )

    def _read_into(self, f: _Open, out: list[FollowerOutput], size: int) -> int:
        data = os.pread(f.fd, size, f.offset)
        if not data:
            return 0  # raced with a truncation; the next fstat sees it
        f.offset += len(data)
        nl = data.rfind(b"\n")
        if nl < 0:
            self._hold(f, data, out)
            return len(data)
        head, tail = data[: nl + 1], data[nl + 1 :]
        if f.discarding:
            head = head[head.find(b"\n") + 1 :]
            f.discarding = False
        elif f.partial:
            head = bytes(f.partial) + head
            f.partial.clear()
        f.committed = f.offset - len(tail)
        f.partial_since = None
        if head:
            out.append(Lines(head, f.position()))
        self._hold(f, tail, out)
        return len(data)

    def _hold(self, f: _Open, data: bytes, out: list[FollowerOutput]) -> None:
        if f.discarding or not data:
            return
        f.partial += data
        if len(f.partial) > MAX_LINE:
            out.append(
                DroppedTail(
                    f.path, f.committed, len(f.partial), f"line longer than {MAX_LINE} bytes"
                )
            )
            f.partial.clear()
            f.discarding = True

    def _same_content(self, f: _Open) -> bool:
        """Check the fingerprint before reading new bytes, upgrading a short one. The
        head last found to match is kept: while it is unchanged it is compared byte for
        byte instead of hashed again (a busy log pays this check on every read)."""
        head = os.pread(f.fd, f.identity.fp_len, 0)
        if head != f.head and not head_matches(head, f.identity):
            return False
        f.head = head
        if f.identity.fp_len < FINGERPRINT_MAX:
            f.identity = identity_of_fd(f.fd)
            f.head = None
        return True

    def _drop_partial(self, f: _Open, out: list[FollowerOutput], reason: str) -> None:
        if f.partial:
            out.append(DroppedTail(f.path, f.committed, len(f.partial), reason))

    def _on_truncated(self, f: _Open, out: list[FollowerOutput]) -> None:
        # A copytruncate copy holds the bytes we had not read yet: finish it first.
        copy = self._find_copy(f.identity, f.offset, exclude=f.identity)
        restarted = _Open(f.fd, f.path, identity_of_fd(f.fd), 0)
        if copy is not None:
            copy.offset = f.offset
            copy.committed = f.committed
            copy.partial = f.partial
            copy.discarding = f.discarding
            self._cur = copy
            self._pending.insert(0, restarted)
            out.append(Switched("copied", copy.path, copy.identity, copy.offset))
            return
        self._drop_partial(f, out, "file truncated under an unterminated line")
        self._cur = restarted
        out.append(Switched("truncated", f.path, restarted.identity, 0))

    def _at_eof(self, f: _Open, out: list[FollowerOutput]) -> bool:
        """Decide what to do at EOF; True when there is another file to read now."""
        if not self._pending:
            try:
                st: os.stat_result | None = os.stat(self.path)
            except OSError:
                st = None
            if st is not None and f.identity.same_inode(st):
                return False
        if f.partial:
            now = self._clock()
            if f.partial_since is None:
                f.partial_since = now
            if now - f.partial_since < self._grace:
                return False  # the writer may still finish the line on this file
        if not self._pending:
            try:
                self._pending = self._open_newer(f)
            except OSError as exc:
                self._unreadable(exc, out)
                return False
            if not self._pending:
                return False
        self._drop_partial(f, out, "unterminated line at the end of a rotated file")
        left_mtime = os.fstat(f.fd).st_mtime_ns
        os.close(f.fd)
        self._cur = self._pending.pop(0)
        out.append(Switched("rotated", self._cur.path, self._cur.identity, 0, left_mtime))
        return True

    # -- opening ---------------------------------------------------------------------
    def _open(self, path: str, expect: os.stat_result | None = None) -> _Open | None:
        fd = os.open(path, _OPEN_FLAGS)
        if expect is not None and not _same_stat(os.fstat(fd), expect):
            os.close(fd)
            return None  # renamed under us; the next scan sees the new layout
        return _Open(fd, path, identity_of_fd(fd), 0)

    def _open_all(self, members: list[RotatedFile]) -> list[_Open]:
        opened: list[_Open] = []
        try:
            for r in members:
                o = self._open(r.path, r.stat)
                if o is not None:
                    opened.append(o)
        except OSError:
            for o in opened:
                os.close(o.fd)
            raise
        return opened

    def _open_newer(self, f: _Open) -> list[_Open]:
        rotated = list_rotated(self.path)
        here = next((r for r in rotated if f.identity.same_inode(r.stat)), None)
        if here is not None:
            return self._open_all([r for r in rotated if r.index < here.index])
        mtime = os.fstat(f.fd).st_mtime_ns
        return self._open_all([r for r in rotated if r.index == 0 or r.stat.st_mtime_ns > mtime])

    def _find_copy(
        self, identity: FileIdentity, offset: int, exclude: FileIdentity | None = None
    ) -> _Open | None:
        if identity.fp_len < FINGERPRINT_MAX:
            return None  # a short prefix is too weak to recognise a copy by
        for r in reversed(list_rotated(self.path)):
            if r.index == 0 or r.stat.st_size < offset:
                continue
            if exclude is not None and exclude.same_inode(r.stat):
                continue
            try:
                o = self._open(r.path, r.stat)
            except OSError:
                continue
            if o is not None and matches(o.fd, identity, same_inode=False):
                return o
            if o is not None:
                os.close(o.fd)
        return None

    def _open_first(self, out: list[FollowerOutput]) -> bool:
        if self._clock() < self._retry_at:
            return False
        try:
            opened = self._resolve_resume(out) if self._resume else self._open_fresh()
        except OSError as exc:
            self._unreadable(exc, out)
            return False
        if not opened:
            self._unreadable(FileNotFoundError(2, "no such file", self.path), out)
            return False
        self._retry_delay = 0.1
        self._cur, self._pending = opened[0], opened[1:]
        reason = "resumed" if self._resume and self._cur.offset else "opened"
        out.append(Switched(reason, self._cur.path, self._cur.identity, self._cur.offset))
        self._resume = None
        return True

    def _open_fresh(self) -> list[_Open]:
        o = self._open(self.path)
        return [o] if o else []

    def _resolve_resume(self, out: list[FollowerOutput]) -> list[_Open]:
        pos = self._resume
        assert pos is not None
        rotated = list_rotated(self.path)
        if not rotated:
            return []
        found = self._find_exact(rotated, pos)
        if found is None:
            copy = self._find_copy(pos.identity, pos.offset)
            found = (copy, next(r.index for r in rotated if r.path == copy.path)) if copy else None
        if found is None:
            mtime = self._resume_mtime_ns
            later = [
                r
                for r in rotated
                if r.index == 0 or (mtime is not None and r.stat.st_mtime_ns > mtime)
            ]
            opened = self._open_all(later)
            if opened:
                out.append(Gap(pos, opened[0].path))
            return opened
        first, index = found
        size = os.fstat(first.fd).st_size
        if size >= pos.offset:
            first.offset = first.committed = pos.offset
        else:
            out.append(Switched("truncated", first.path, first.identity, 0))
        return [first, *self._open_all([r for r in rotated if r.index < index])]

    def _find_exact(self, rotated: list[RotatedFile], pos: Position) -> tuple[_Open, int] | None:
        for r in reversed(rotated):
            if not pos.identity.same_inode(r.stat):
                continue
            o = self._open(r.path, r.stat)
            if o is not None and matches(o.fd, pos.identity, same_inode=True):
                return o, r.index
            if o is not None:
                os.close(o.fd)  # inode reused by a different file
        return None

    def _unreadable(self, exc: OSError, out: list[FollowerOutput]) -> None:
        self._retry_at = self._clock() + self._retry_delay
        out.append(
            Unreadable(exc.filename or self.path, exc.strerror or str(exc), self._retry_delay)
        )
        self._retry_delay = min(self._retry_delay * 2, 5.0)


def _same_stat(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
