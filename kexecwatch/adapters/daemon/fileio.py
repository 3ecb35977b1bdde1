"""Low-level file writing for outputs and the journal: whole writes, space reserved ahead."""

from __future__ import annotations

import errno
import functools
import logging
import os
from collections.abc import Callable

from kexecwatch.adapters.daemon.daemonlog import kv

__all__ = ["cut_torn_tail", "reserve", "write_all"]

log = logging.getLogger(__name__)

_FALLOC_FL_KEEP_SIZE = 0x01
_MIN_RESERVE = 64 << 10


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data``; a short write goes on where it stopped, an error raises."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def cut_torn_tail(fd: int, path: str, chunk: int = 1 << 16) -> None:
    """Truncate what follows the last newline: the start of a line a crash cut short.

    ``fd`` must be open for reading and writing.
    """
    end = size = os.fstat(fd).st_size
    while end > 0:
        start = max(0, end - chunk)
        newline = os.pread(fd, end - start, start).rfind(b"\n")
        if newline >= 0:
            end = start + newline + 1
            break
        end = start
    if end < size:
        log.warning("torn_line_cut", extra=kv(path=path, bytes=size - end))
        os.ftruncate(fd, end)


@functools.cache
def _fallocate() -> Callable[[int, int, int, int], int] | None:
    """libc's ``fallocate`` (64-bit offsets), or ``None`` where there is none.

    Looked up on first use, so that commands which never reserve (``replay``, which
    imports the output module for its flags) do not load ctypes at start-up.
    """
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        func = getattr(libc, "fallocate64", None) or libc.fallocate
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    func.restype = ctypes.c_int
    result: Callable[[int, int, int, int], int] = func
    return result


def reserve(fd: int, size: int) -> tuple[int, str]:
    """Allocate disk space for ``size`` bytes past the end of ``fd``'s file, keeping its length.

    Appends then use the reserved blocks, so they still succeed when the file system
    has filled up meanwhile. Asks for less (a quarter each time, down to 64 KiB) when
    ``size`` does not fit. Returns the bytes reserved and, if fewer than ``size``,
    why (the ``strerror`` of the last refusal).
    """
    fallocate = _fallocate()
    if fallocate is None:
        return 0, "fallocate is not available"
    import ctypes  # already loaded by _fallocate; read errno as ctypes kept it

    start = os.fstat(fd).st_size
    want, why = size, ""
    while want >= _MIN_RESERVE:
        if fallocate(fd, _FALLOC_FL_KEEP_SIZE, start, want) == 0:
            return want, why
        code = ctypes.get_errno()
        why = os.strerror(code)
        if code not in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            break  # the file system cannot reserve at all (EOPNOTSUPP)
        want //= 4
    return 0, why
