"""Open the daemon's own files so that nobody else can steer where it reads or writes.

Rule 1: the state directory, and every file the daemon writes (checkpoint, journal, lock,
``json:`` outputs), belongs to the daemon's user and is writable by nobody else. Anything
else is refused with :class:`UnsafeFile`; nothing is chmodded or chowned to make it fit,
except that the daemon's own state directory is tightened to 0700.

Rule 2: a file is opened with ``O_NOFOLLOW`` (a planted symlink is never followed) and
``O_NONBLOCK`` (a FIFO cannot hang the open), then checked with ``fstat`` on the open
descriptor: only a regular file, and for reading only up to a size limit. A temporary
file is created with ``O_EXCL``.

Rule 3: one daemon per state directory: :func:`lock_dir` takes an exclusive ``flock`` on
``<state-dir>/daemon.lock``, which holds the owner's pid.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import time

from kexecwatch.errors import ConfigError

__all__ = [
    "MAX_STATE_BYTES",
    "TooLarge",
    "UnsafeFile",
    "append_private",
    "check_output_file",
    "ensure_state_dir",
    "lock_dir",
    "read_private",
    "resolve_log_symlink",
    "set_aside",
    "write_atomic",
]

MAX_STATE_BYTES = 256 << 20  # far above any real checkpoint or journal
LOCK_NAME = "daemon.lock"
_OPEN = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_MAX_LINKS = 40  # as the kernel's MAXSYMLINKS

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISLNK, "a symlink"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


class UnsafeFile(OSError):
    """A file or directory the daemon refuses to use (its type, owner or mode)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(errno.EPERM, f"{path}: {reason}")
        self.path = path

    def __str__(self) -> str:
        return str(self.strerror)


class TooLarge(UnsafeFile):
    """A state file larger than :data:`MAX_STATE_BYTES`: corrupt, never read."""


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _trust_problem(
    st: os.stat_result, *, want_dir: bool = False, any_owner: bool = False
) -> str | None:
    """Why a file with this stat must not be used, or ``None``."""
    if want_dir != stat.S_ISDIR(st.st_mode) or not (want_dir or stat.S_ISREG(st.st_mode)):
        wanted = "a directory" if want_dir else "a regular file"
        return f"is {_kind(st.st_mode)}, not {wanted}"
    if any_owner:
        return None
    if st.st_uid != os.geteuid():
        return f"is owned by uid {st.st_uid}, not by the daemon's uid {os.geteuid()}"
    if st.st_mode & 0o022:
        return f"is writable by others (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def ensure_state_dir(path: str) -> None:
    """Create the state directory 0700, or check an existing one and tighten it to 0700.

    Raises:
        ConfigError: a symlink, not a directory, not owned by the daemon's user,
            writable by others, or cannot be created.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        try:
            os.makedirs(path, mode=0o700)
        except OSError as exc:
            raise ConfigError(f"state-dir {path}: cannot create: {exc.strerror}") from exc
        os.chmod(path, 0o700)  # makedirs honours the umask
        return
    if stat.S_ISLNK(st.st_mode):
        raise ConfigError(f"state-dir {path} is a symlink; refusing to use it")
    problem = _trust_problem(st, want_dir=True)
    if problem:
        raise ConfigError(f"state-dir {path} {problem}; refusing to use it")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)


def _open_checked(
    path: str, flags: int, *, limit: int | None = None, any_owner: bool = False
) -> int:
    """Open without following a final symlink, then vet the open file (closed on refusal)."""
    try:
        fd = os.open(path, flags | _OPEN, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeFile(path, "is a symlink; refusing to follow it") from exc
        if exc.errno == errno.EISDIR:
            raise UnsafeFile(path, "is a directory, not a regular file") from exc
        raise
    try:
        st = os.fstat(fd)
        problem = _trust_problem(st, any_owner=any_owner)
        if problem:
            raise UnsafeFile(path, problem)
        if limit is not None and st.st_size > limit:
            raise TooLarge(path, f"is too large ({st.st_size} bytes, limit {limit})")
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_private(
    path: str, limit: int = MAX_STATE_BYTES, *, any_owner: bool = False
) -> bytes | None:
    """The whole content of a state file, or ``None`` when it does not exist.

    ``any_owner`` skips the owner and mode checks (for ``doctor``, which reads the
    daemon's files as another user); the file must still be a regular file, not a link.

    Raises:
        UnsafeFile: not a regular file, a symlink, not ours, or writable by others.
        TooLarge: larger than ``limit``.
        OSError: it could not be read.
    """
    try:
        fd = _open_checked(path, os.O_RDONLY, limit=limit, any_owner=any_owner)
    except FileNotFoundError:
        return None
    try:
        chunks: list[bytes] = []
        total = 0
        while total <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    finally:
        os.close(fd)
    if total > limit:  # grew since fstat
        raise TooLarge(path, f"is too large (over {limit} bytes)")
    return b"".join(chunks)


def append_private(path: str, *, readable: bool = False) -> int:
    """Open (creating 0600) a file of ours for appending (and reading); returns the fd.

    Raises:
        UnsafeFile: see :func:`read_private`.
        OSError: it could not be opened.
    """
    access = os.O_RDWR if readable else os.O_WRONLY
    return _open_checked(path, access | os.O_APPEND | os.O_CREAT)


def check_output_file(path: str) -> None:
    """Refuse an existing output file that is not ours (a missing one is created later).

    Raises:
        UnsafeFile: see :func:`read_private`.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise UnsafeFile(path, f"cannot be examined: {exc.strerror}") from exc
    problem = _trust_problem(st)
    if problem:
        raise UnsafeFile(path, problem)


def write_atomic(path: str, data: bytes) -> None:
    """Replace ``path`` with ``data``: fresh ``O_EXCL`` temporary file, fsync, rename, dir fsync.

    A leftover temporary file (or a link planted in its place) is removed, never opened.

    Raises:
        OSError: the write failed; ``path`` is unchanged and the temporary file is gone.
    """
    tmp = f"{path}.tmp"
    directory = os.path.dirname(path) or "."
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _OPEN, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def set_aside(path: str) -> str:
    """Rename a corrupt state file to ``<path>.corrupt-<time>-<pid>``; returns the new name."""
    aside = f"{path}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    os.replace(path, aside)
    return aside


def lock_dir(state_dir: str) -> int:
    """Take the state directory's exclusive lock for this process's lifetime.

    Returns the lock file's descriptor (keep it open; closing it releases the lock).

    Raises:
        ConfigError: another process holds the lock (naming its pid), or the lock file
            is unsafe or cannot be opened.
    """
    path = os.path.join(state_dir, LOCK_NAME)
    try:
        fd = _open_checked(path, os.O_RDWR | os.O_CREAT)
    except OSError as exc:
        raise ConfigError(f"state-dir {state_dir}: lock file {exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise ConfigError(
            f"state-dir {state_dir} is in use by another kexecwatch run (pid {holder})"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def resolve_log_symlink(path: str) -> str:
    """The audit log's real path when ``path`` is a symlink that only root (or we) control.

    Every link in the chain must be owned by root or the daemon's user, in a directory
    owned by one of them and writable by nobody else; the final target is returned.
    A path that is not a symlink (or does not exist yet) is returned unchanged.

    Raises:
        ConfigError: a link someone else could change, a loop, or a dangling link.
    """
    trusted = {0, os.geteuid()}
    current = path
    for _ in range(_MAX_LINKS):
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            if current == path:
                return path
            raise ConfigError(f"log {path}: symlink target {current} does not exist") from None
        except OSError as exc:
            raise ConfigError(f"log {path}: cannot examine {current}: {exc.strerror}") from exc
        if not stat.S_ISLNK(st.st_mode):
            return current
        parent = os.path.dirname(os.path.abspath(current))
        pst = os.stat(parent)
        if st.st_uid not in trusted:
            why = f"symlink {current} is owned by uid {st.st_uid}"
        elif pst.st_uid not in trusted or pst.st_mode & 0o022:
            why = f"symlink {current} is in {parent}, which others can write"
        else:
            current = os.path.normpath(os.path.join(parent, os.readlink(current)))
            continue
        raise ConfigError(f"log {path}: {why}; only root may redirect the audit log")
    raise ConfigError(f"log {path}: too many levels of symlinks")
