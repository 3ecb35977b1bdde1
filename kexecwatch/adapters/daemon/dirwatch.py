"""Wake-ups for the follower: a Linux inotify watch on the log's directory, read in the
caller's own thread.

Rule 1: an event is a hint, never a fact. This module only answers "did something
happen to a file whose name starts with the log's name (or to the directory itself)
since the last call"; what happened is decided by the follower from ``stat`` and the
file contents. A queue overflow (``IN_Q_OVERFLOW``) counts as "yes".

Rule 2: no thread. The inotify descriptor and a self-pipe are waited on with ``poll``
in the thread that reads the log, so a wake-up costs one ``poll`` and one ``read``, not
a hand-off between threads. :meth:`DirWatch.wake` writes to the self-pipe and is safe
in a signal handler: a signal interrupts ``poll``, its handler runs, the retried
``poll`` sees the pipe.

The watch is made with the inotify calls as the ``watchdog`` package binds them
(``watchdog.observers.inotify_c``), without watchdog's observer: its reader, emitter and
dispatcher threads cost about 0.7 ms of CPU a wake-up, which at a busy auditd's write
rate was most of the daemon's CPU. When the binding or inotify is missing or fails (not
Linux, watch limit reached), :class:`DirWatch` raises ``OSError`` and the follower polls
instead.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import importlib
import os
import select
import struct
from collections.abc import Callable

__all__ = ["DirWatch"]

IN_MODIFY = 0x00000002
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000

_MASK = (
    IN_MODIFY
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
    | IN_ONLYDIR
)
_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len (struct inotify_event)
_READ_SIZE = 64 * 1024
#: The largest event: a header and a name of NAME_MAX bytes with its NUL. A read that left
#: room for one more returned every event queued (the kernel fills a read with whole events).
_MAX_EVENT = _HEADER.size + 256
_DIR_GONE = IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED | IN_Q_OVERFLOW


def _binding() -> tuple[Callable[[], int], Callable[[int, bytes, int], int]]:
    """watchdog's ctypes functions ``inotify_init`` and ``inotify_add_watch``."""
    # Imported on first use, so commands that never follow a log never load watchdog; it
    # raises on a C library without inotify.
    inotify_c = importlib.import_module("watchdog.observers.inotify_c")
    return inotify_c.inotify_init, inotify_c.inotify_add_watch


class DirWatch:
    """Notifications for the files named ``prefix*`` in ``directory`` (not recursive).

    Raises:
        OSError: inotify is not available, or the watch cannot be added.
    """

    def __init__(self, directory: str, prefix: str) -> None:
        try:
            init, self._add_watch = _binding()
        except Exception as exc:  # ImportError, or watchdog's own UnsupportedLibcError
            raise OSError(errno.ENOSYS, f"no inotify binding: {exc}") from exc
        fd = init()
        if fd < 0:
            raise _oserror(directory)
        os.set_blocking(fd, False)
        os.set_inheritable(fd, False)
        self._fd = fd
        self._dir = os.fsencode(directory)
        self._prefix = os.fsencode(prefix)
        self._pipe_r, self._pipe_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._poll = select.poll()
        self._poll.register(self._fd, select.POLLIN)
        self._poll.register(self._pipe_r, select.POLLIN)
        self._pipe_only = select.poll()
        self._pipe_only.register(self._pipe_r, select.POLLIN)
        self._events_only = select.poll()
        self._events_only.register(self._fd, select.POLLIN)
        self._watching = False
        try:
            self._add()
        except OSError:
            self.close()
            raise

    def _add(self) -> None:
        if self._add_watch(self._fd, self._dir, _MASK) < 0:
            raise _oserror(os.fsdecode(self._dir))
        self._watching = True

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds; True when woken by an event or :meth:`wake`."""
        if not self._watching:
            # The directory was removed or moved: watch it again once it is back.
            with contextlib.suppress(OSError):
                self._add()
        for fd, _ in self._poll.poll(max(0, int(timeout * 1000 + 0.999))):
            if fd == self._pipe_r:
                self._drain_pipe()
                return True
        return self.pending()

    @property
    def watching(self) -> bool:
        """False while the directory is gone and not watched again yet."""
        return self._watching

    def queued(self) -> bool:
        """True when a notification (for any name) waits to be read; consumes nothing."""
        return bool(self._events_only.poll(0))

    def sleep(self, seconds: float) -> bool:
        """Sleep up to ``seconds`` (events stay queued); True when :meth:`wake` ended it."""
        if self._pipe_only.poll(max(0, int(seconds * 1000 + 0.999))):
            self._drain_pipe()
            return True
        return False

    def pending(self) -> bool:
        """Consume the queued events without blocking; True if one concerns the log."""
        hit = False
        while True:
            try:
                buf = os.read(self._fd, _READ_SIZE)
            except BlockingIOError:
                return hit
            if not buf:
                return hit
            hit = self._scan(buf) or hit
            if len(buf) <= _READ_SIZE - _MAX_EVENT:
                return hit  # the queue is empty: no second read to hear so

    def _scan(self, buf: bytes) -> bool:
        hit = False
        at = 0
        while at + _HEADER.size <= len(buf):
            _wd, mask, _cookie, length = _HEADER.unpack_from(buf, at)
            name = buf[at + _HEADER.size : at + _HEADER.size + length].rstrip(b"\0")
            at += _HEADER.size + length
            if mask & _DIR_GONE:
                if mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED):
                    self._watching = False
                hit = True
            elif name.startswith(self._prefix):
                hit = True
        return hit

    def wake(self) -> None:
        """Make the current or next :meth:`wait` return at once (signal-handler safe)."""
        if self._pipe_w < 0:
            return  # closed: the descriptor number may belong to another file by now
        with contextlib.suppress(BlockingIOError):  # full: a wake-up is pending anyway
            os.write(self._pipe_w, b"\0")

    def _drain_pipe(self) -> None:
        try:
            while os.read(self._pipe_r, 512):
                pass
        except BlockingIOError:
            pass

    def close(self) -> None:
        """Close the inotify descriptor and the self-pipe."""
        for fd in (self._fd, self._pipe_r, self._pipe_w):
            if fd >= 0:
                os.close(fd)
        self._fd = self._pipe_r = self._pipe_w = -1


def _oserror(path: str) -> OSError:
    err = ctypes.get_errno()
    return OSError(err, os.strerror(err), path)
