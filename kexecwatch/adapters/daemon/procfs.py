"""Live process facts from ``/proc``, for parents the audit trail never showed us.

The core never reads ``/proc``; it is handed :class:`ProcInfo` values through the
:class:`ProcLookup` protocol (a fake in tests, :class:`ProcFs` in the daemon).

A pid can be reused. ``/proc/<pid>/stat`` field 22 is the start time in clock ticks
since boot; with ``btime`` from ``/proc/stat`` it becomes epoch milliseconds. A process
that started after the event we are enriching cannot be that event's parent, so
:meth:`ProcFs.parent_for` rejects it. ``btime`` has one-second resolution, hence
:data:`START_TOLERANCE_MS`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol

from kexecwatch.core import tty_name

__all__ = ["START_TOLERANCE_MS", "ProcFs", "ProcInfo", "ProcLookup", "parse_stat"]

START_TOLERANCE_MS = 1000
MAX_CMDLINE = 64 * 1024


@dataclass(frozen=True, slots=True)
class ProcInfo:
    """One live process as ``/proc`` showed it.

    Attributes:
        pid: process id.
        ppid: parent pid (``/proc/<pid>/stat`` field 4).
        comm: ``/proc/<pid>/comm`` (at most 15 bytes), raw bytes.
        exe: target of ``/proc/<pid>/exe``, raw bytes; ``None`` if unreadable (kernel thread).
        argv: ``/proc/<pid>/cmdline`` split on NUL.
        start_ms: start time, epoch milliseconds (stat field 22 + boot time).
        extra: its credentials in the layout the process table keeps for a ``SYSCALL``
            record (``auid=... uid=... ... tty=... ses=...``, see
            :mod:`kexecwatch.core.process.identity`), from ``/proc/<pid>/status``, ``loginuid``,
            ``sessionid`` and the terminal of stat field 7; ``None`` if unreadable.
        pgid: its process group (stat field 5).
        sid: its session (stat field 6).
    """

    pid: int
    ppid: int
    comm: bytes
    exe: bytes | None
    argv: tuple[bytes, ...]
    start_ms: int
    extra: bytes | None = None
    pgid: int | None = None
    sid: int | None = None


class ProcLookup(Protocol):
    """What the daemon asks about live processes."""

    def lookup(self, pid: int) -> ProcInfo | None:
        """The process ``pid`` now, or ``None`` if gone or unreadable."""
        ...  # pragma: no cover

    def parent_for(self, ppid: int, event_ms: int) -> ProcInfo | None:
        """``lookup(ppid)``, unless that process started after ``event_ms`` (a reused pid)."""
        ...  # pragma: no cover

    def all(self) -> list[ProcInfo]:
        """Every readable process (seeding at start)."""
        ...  # pragma: no cover


def parse_stat(text: bytes) -> tuple[bytes, int, int, int, int]:
    """``(comm, ppid, starttime_ticks, pgrp, session)`` from a ``/proc/<pid>/stat`` line.

    The comm is in parentheses and may itself contain ``)`` or spaces, so the split is
    at the last ``)``.

    Raises:
        ValueError: not a stat line.
    """
    open_paren = text.index(b"(")
    close_paren = text.rindex(b")")
    rest = text[close_paren + 2 :].split()
    # rest[0] is field 3 (state); field 4 is ppid, 5 pgrp, 6 session, 22 starttime.
    comm = text[open_paren + 1 : close_paren]
    return comm, int(rest[1]), int(rest[19]), int(rest[2]), int(rest[3])


def _first_line(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.readline().strip()


def _credentials(base: str) -> bytes | None:
    """``/proc/<pid>``'s ids, login uid, audit session and terminal, as a SYSCALL record
    writes them (``auid uid gid euid suid fsuid egid sgid fsgid tty ses``); ``None`` if a
    part cannot be read. A terminal whose name its numbers do not fix is left out."""
    try:
        ids: dict[bytes, list[bytes]] = {}
        with open(os.path.join(base, "status"), "rb") as fh:
            for line in fh:
                if line.startswith((b"Uid:", b"Gid:")):
                    ids[line[:3]] = line.split()[1:5]
        auid = _first_line(os.path.join(base, "loginuid"))
        ses = _first_line(os.path.join(base, "sessionid"))
        with open(os.path.join(base, "stat"), "rb") as fh:
            stat = fh.read()
        tty_nr = int(stat[stat.rindex(b")") + 2 :].split()[4])
        uid, euid, suid, fsuid = ids[b"Uid"]
        gid, egid, sgid, fsgid = ids[b"Gid"]
    except (OSError, ValueError, IndexError, KeyError):
        return None
    major = (tty_nr >> 8) & 0xFFF
    minor = (tty_nr & 0xFF) | ((tty_nr >> 12) & 0xFFF00)
    name = tty_name(major, minor)
    tty = b"" if name is None else b" tty=" + name.encode()
    return b"auid=%s uid=%s gid=%s euid=%s suid=%s fsuid=%s egid=%s sgid=%s fsgid=%s%s ses=%s" % (
        auid,
        uid,
        gid,
        euid,
        suid,
        fsuid,
        egid,
        sgid,
        fsgid,
        tty,
        ses,
    )


class ProcFs:
    """:class:`ProcLookup` over a real ``/proc`` (or a copy of one, for tests).

    Args:
        root: the procfs mount point.
    """

    def __init__(self, root: str = "/proc") -> None:
        self.root = root
        self._ticks = os.sysconf("SC_CLK_TCK")
        self._btime_ms = self._read_btime() * 1000

    def _read_btime(self) -> int:
        with open(os.path.join(self.root, "stat"), "rb") as fh:
            for line in fh:
                if line.startswith(b"btime "):
                    return int(line.split()[1])
        raise OSError(f"no btime in {self.root}/stat")

    def lookup(self, pid: int) -> ProcInfo | None:
        """Read stat, comm, exe and cmdline of ``pid``; ``None`` if it is gone."""
        base = os.path.join(self.root, str(pid))
        try:
            with open(os.path.join(base, "stat"), "rb") as fh:
                stat_comm, ppid, ticks, pgid, sid = parse_stat(fh.read())
            with open(os.path.join(base, "cmdline"), "rb") as fh:
                cmdline = fh.read(MAX_CMDLINE)
            try:
                with open(os.path.join(base, "comm"), "rb") as fh:
                    comm = fh.read().rstrip(b"\n")
            except OSError:
                comm = stat_comm
        except (OSError, ValueError, IndexError):
            return None
        try:
            exe: bytes | None = os.readlink(os.fsencode(os.path.join(base, "exe")))
        except OSError:
            exe = None
        argv = tuple(cmdline.rstrip(b"\0").split(b"\0")) if cmdline else ()
        start_ms = self._btime_ms + ticks * 1000 // self._ticks
        return ProcInfo(pid, ppid, comm, exe, argv, start_ms, _credentials(base), pgid, sid)

    def parent_for(self, ppid: int, event_ms: int) -> ProcInfo | None:
        """The live parent, rejected if it started after the event (pid reused)."""
        info = self.lookup(ppid)
        if info is None or info.start_ms > event_ms + START_TOLERANCE_MS:
            return None
        return info

    def all(self) -> list[ProcInfo]:
        """Every process readable now, in pid order."""
        pids = sorted(int(n) for n in os.listdir(self.root) if n.isdigit())
        return [p for p in (self.lookup(pid) for pid in pids) if p is not None]
