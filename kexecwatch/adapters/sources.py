"""Opening what ``replay`` is pointed at: files, ``-``, ``.gz`` and directories.

A directory means its ``audit.log*`` set, read oldest first as one stream:
``audit.log.N`` down to ``audit.log.1``, then ``audit.log`` (compressed
members such as ``audit.log.3.gz`` take their number's place). Other names in
the set (``audit.log-20261130`` from a date-stamped rotation) come first,
oldest modification time first.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from kexecwatch.core import escape_text
from kexecwatch.errors import InputError

__all__ = [
    "CHUNK_SIZE",
    "DEFAULT_LOG_DIR",
    "NO_SUCH_FILE",
    "Source",
    "access_error",
    "check_regular_file",
    "expand_paths",
    "file_kind",
    "read_chunks",
    "read_regular_file",
]

CHUNK_SIZE = 1 << 18
#: What ``replay`` reads without a path: auditd's log set.
DEFAULT_LOG_DIR = "/var/log/audit/"
_NUMBERED = re.compile(r"^audit\.log\.(\d+)(\.gz)?$")
_GZIP_MAGIC = b"\x1f\x8b"


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Source:
    """One input: a path, or ``-`` for standard input."""

    name: str
    size: int | None

    @property
    def is_stdin(self) -> bool:
        """Whether this is standard input."""
        return self.name == "-"


def expand_paths(paths: list[str]) -> list[Source]:
    """Turn command-line paths into an ordered list of sources.

    Only regular files (and directories, meaning their ``audit.log*`` set) are
    read; ``-`` is standard input, which may be a pipe.

    Raises:
        InputError: one line, for a path that cannot be read: missing, not
            permitted (with a hint), a FIFO or a device, or a directory with no
            ``audit.log*`` file.
    """
    sources: list[Source] = []
    for raw in paths:
        if raw == "-":
            sources.append(Source("-", None))
            continue
        try:
            is_dir = stat.S_ISDIR(os.stat(raw).st_mode)
        except OSError as exc:
            raise access_error(raw, exc) from None
        if is_dir:
            members = _audit_set(Path(raw))
            if not members:
                raise InputError(f"{escape_text(raw)}: directory holds no audit.log* file")
            sources.extend(Source(str(m), check_regular_file(str(m))) for m in members)
            continue
        sources.append(Source(raw, check_regular_file(raw)))
    return sources


def check_regular_file(path: str) -> int:
    """Check that ``path`` is a regular file this process may read; return its size.

    A FIFO, a device or a socket is refused: reading one may never end (a
    FIFO's writer, ``/dev/zero``), and none of them is a log.

    Raises:
        InputError: one line naming the problem, with a hint where one helps.
    """
    try:
        info = os.stat(path)
    except OSError as exc:
        raise access_error(path, exc) from None
    if not stat.S_ISREG(info.st_mode):
        hint = (
            f"; to read a pipe, use: kexecwatch replay - < {path}"
            if stat.S_ISFIFO(info.st_mode)
            else ""
        )
        kind = file_kind(info.st_mode)
        raise InputError(f"{escape_text(path)}: not a regular file ({kind}){hint}")
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise access_error(path, exc) from None
    return info.st_size


#: The reason :func:`read_regular_file` gives for a missing file.
NO_SUCH_FILE = "no such file"


def read_regular_file(path: str, limit: int | None = None) -> bytes:
    """The bytes of the regular file ``path`` (at most ``limit`` of them).

    A FIFO may never get a writer and a device such as ``/dev/zero`` never ends,
    so neither is read: a configuration or rule file given as one would hang or
    fill memory.

    Raises:
        InputError: one line saying why, without the path (the caller names it).
    """
    try:
        if stat.S_ISDIR(mode := os.stat(path).st_mode):
            raise InputError("is a directory")
        if not stat.S_ISREG(mode):
            raise InputError(f"not a regular file ({file_kind(mode)})")
        # O_NONBLOCK: should the file have been swapped for a FIFO since, do not wait on it.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(mode := os.fstat(fh.fileno()).st_mode):
                raise InputError(f"not a regular file ({file_kind(mode)})")
            return fh.read() if limit is None else fh.read(limit)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise InputError(NO_SUCH_FILE) from None
        raise InputError(_os_reason(exc)) from None


def access_error(path: str, exc: OSError) -> InputError:
    """The one-line error for an :class:`OSError` met while opening ``path``.

    A permission problem says who may read the file: root, or the members of
    the group of the file or of the directory that stops the way in.
    """
    if exc.errno in (errno.EACCES, errno.EPERM):
        blocker = _blocker(path)
        try:
            import grp

            group = grp.getgrgid(os.stat(blocker).st_gid).gr_name
        except (OSError, KeyError):
            group = None
        where = "" if blocker == path else f" on {escape_text(blocker)}"
        member = f" or as a member of its group {group}" if group else ""
        reason = (
            f"permission denied{where}: run as root{member} (for the audit log: "
            "log_group in auditd.conf; `kexecwatch doctor` checks access)"
        )
    elif exc.errno == errno.ENOENT:
        reason = "no such file or directory"
    else:
        reason = _os_reason(exc)
    return InputError(f"{escape_text(path)}: {reason}")


def _os_reason(exc: OSError) -> str:
    """The system's reason for ``exc``, starting lower-case to follow ``path: ``."""
    text = exc.strerror or str(exc)
    return text[:1].lower() + text[1:]


def _blocker(path: str) -> str:
    """The first directory on the way to ``path`` that may not be searched, else ``path``."""
    full = Path(os.path.abspath(path))
    ancestors = list(reversed(full.parents))
    for directory, child in zip(ancestors, [*ancestors[1:], full], strict=True):
        try:
            os.stat(child)
        except PermissionError:
            return str(directory)
        except OSError:
            break
    return path


def file_kind(mode: int) -> str:
    """What a file that is not a regular file is, for a message: ``a FIFO``."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a file"


def _audit_set(directory: Path) -> list[Path]:
    numbered: list[tuple[int, Path]] = []
    others: list[tuple[float, str, Path]] = []
    current: list[Path] = []
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                name = entry.name
                if not name.startswith("audit.log") or not _is_file(entry):
                    continue
                path = directory / name
                if name == "audit.log":
                    current.append(path)
                    continue
                match = _NUMBERED.match(name)
                if match:
                    numbered.append((int(match.group(1)), path))
                else:
                    others.append((entry.stat().st_mtime, name, path))
    except OSError as exc:
        raise access_error(str(directory), exc) from None
    others.sort()
    numbered.sort(key=lambda item: -item[0])
    return [p for _, _, p in others] + [p for _, p in numbered] + current


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return True  # a member that cannot be looked at: reported when opened


def read_chunks(source: Source, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Yield the bytes of ``source`` in chunks, decompressing gzip transparently.

    Gzip is recognised by its content (the magic bytes), on standard input too.

    Raises:
        InputError: when the file cannot be opened or is a broken gzip file.
    """
    if source.is_stdin:
        yield from _decoded(sys.stdin.buffer, chunk_size, "standard input")
        return
    try:
        raw = open(source.name, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise access_error(source.name, exc) from None
    with raw:
        yield from _decoded(raw, chunk_size, escape_text(source.name))


def _decoded(raw: BinaryIO, chunk_size: int, name: str) -> Iterator[bytes]:
    try:
        head = raw.read(len(_GZIP_MAGIC))
    except OSError as exc:
        raise InputError(f"{name}: read failed: {exc}") from None
    stream = _Prefixed(head, raw)
    if head == _GZIP_MAGIC:
        import gzip  # only for a gzip file (a start-up cost otherwise)

        with gzip.GzipFile(fileobj=stream, mode="rb") as unzipped:
            yield from _chunks(unzipped, chunk_size, name)
    else:
        yield from _chunks(stream, chunk_size, name)


class _Prefixed:
    """A stream whose first bytes were already read: they are given back first."""

    def __init__(self, head: bytes, rest: _Readable) -> None:
        self._head = head
        self._rest = rest

    def read(self, size: int = -1, /) -> bytes:
        head, self._head = self._head, b""
        if size < 0:
            return head + self._rest.read()
        if len(head) >= size:
            self._head = head[size:]
            return head[:size]
        return head + self._rest.read(size - len(head))

    def seek(self, offset: int, /) -> int:
        """Never needed to read forward; a pipe could not do it anyway."""
        raise OSError(errno.ESPIPE, "stream cannot seek")


def _chunks(stream: _Readable, chunk_size: int, name: str) -> Iterator[bytes]:
    while True:
        try:
            data = stream.read(chunk_size)
        except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
            raise InputError(f"{name}: read failed: {exc}") from None
        if not data:
            return
        yield data
