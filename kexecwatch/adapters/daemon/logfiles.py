"""Log file identity and the rotated set: which file is which, and which came after which.

Theory of operation: a file is identified by ``(st_dev, st_ino)`` plus a SHA-256
fingerprint of its first bytes (at most :data:`FINGERPRINT_MAX`). The inode alone is
not enough: once ``num_logs`` files exist, auditd's rotation renames each log one
place up, which destroys the oldest, and creates the new ``audit.log`` right after;
the filesystem commonly gives the new file the inode number just freed, so
``(st_dev, st_ino)`` repeats. A file shorter than
:data:`FINGERPRINT_MAX` gets a short fingerprint that the follower upgrades later.

The rotated set of ``/x/audit.log`` is ``/x/audit.log.1`` (newest) ... ``.N``
(oldest), then ``audit.log`` itself is the newest of all.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FINGERPRINT_MAX",
    "FileIdentity",
    "Position",
    "RotatedFile",
    "fingerprint_fd",
    "identity_of_fd",
    "list_rotated",
]

FINGERPRINT_MAX = 1024


@dataclass(frozen=True, slots=True)
class FileIdentity:
    """Who a log file is: device, inode, and a hash of its first ``fp_len`` bytes."""

    dev: int
    ino: int
    fingerprint: str
    fp_len: int

    def same_inode(self, st: os.stat_result) -> bool:
        """True when ``st`` describes the same (device, inode) pair."""
        return (st.st_dev, st.st_ino) == (self.dev, self.ino)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form."""
        return {
            "dev": self.dev,
            "ino": self.ino,
            "fingerprint": self.fingerprint,
            "fp_len": self.fp_len,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FileIdentity:
        """Inverse of :meth:`to_dict`; raises ``KeyError``/``TypeError``/``ValueError``."""
        ident = cls(
            int(data["dev"]), int(data["ino"]), str(data["fingerprint"]), int(data["fp_len"])
        )
        if not 0 <= ident.fp_len <= FINGERPRINT_MAX:
            raise ValueError("fp_len out of range")
        return ident

    def __str__(self) -> str:
        return f"{self.dev}:{self.ino}/{self.fingerprint[:12]}+{self.fp_len}"


@dataclass(frozen=True, slots=True)
class Position:
    """A resume point: a file identity and a byte offset at a line boundary in it."""

    identity: FileIdentity
    offset: int
    path: str

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form."""
        return {"identity": self.identity.to_dict(), "offset": self.offset, "path": self.path}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Position:
        """Inverse of :meth:`to_dict`; raises ``KeyError``/``TypeError``/``ValueError``."""
        pos = cls(FileIdentity.from_dict(data["identity"]), int(data["offset"]), str(data["path"]))
        if pos.offset < 0:
            raise ValueError("negative offset")
        return pos


@dataclass(frozen=True, slots=True)
class RotatedFile:
    """One member of the rotated set: its name, rotation index (0 = the live log), stat."""

    path: str
    index: int
    stat: os.stat_result


def fingerprint_fd(fd: int, length: int) -> tuple[str, int]:
    """Hash the first ``min(length, size)`` bytes of ``fd`` (without moving its offset).

    Returns:
        ``(hex digest, number of bytes hashed)``.
    """
    head = os.pread(fd, length, 0)
    return hashlib.sha256(head).hexdigest(), len(head)


def identity_of_fd(fd: int) -> FileIdentity:
    """The identity of an open file, with the longest fingerprint available now."""
    st = os.fstat(fd)
    digest, length = fingerprint_fd(fd, FINGERPRINT_MAX)
    return FileIdentity(st.st_dev, st.st_ino, digest, length)


def matches(fd: int, identity: FileIdentity, *, same_inode: bool) -> bool:
    """True when ``fd`` starts with the bytes ``identity`` fingerprinted.

    Args:
        fd: an open file.
        identity: what we expect.
        same_inode: also require the same (device, inode).
    """
    if same_inode and not identity.same_inode(os.fstat(fd)):
        return False
    return head_matches(os.pread(fd, identity.fp_len, 0), identity)


def head_matches(head: bytes, identity: FileIdentity) -> bool:
    """True when ``head``, a file's first bytes, are the bytes ``identity`` fingerprinted."""
    return len(head) == identity.fp_len and (
        hashlib.sha256(head).hexdigest() == identity.fingerprint
    )


def list_rotated(path: str) -> list[RotatedFile]:
    """The rotated set of ``path``, oldest first, ending with ``path`` itself if present.

    Only auditd's ``NAME.<n>`` names are members; files vanishing during the scan are
    skipped (a rotation may be running).
    """
    directory, base = os.path.split(path)
    pattern = re.compile(re.escape(base) + r"\.([1-9][0-9]{0,3})")
    found: list[RotatedFile] = []
    try:
        names = os.listdir(directory or ".")
    except OSError:
        names = []
    for name in names:
        m = pattern.fullmatch(name)
        if not m:
            continue
        full = os.path.join(directory, name)
        try:
            found.append(RotatedFile(full, int(m.group(1)), os.stat(full)))
        except OSError:
            continue
    found.sort(key=lambda r: -r.index)
    with contextlib.suppress(OSError):
        found.append(RotatedFile(path, 0, os.stat(path)))
    return found
