"""Small builders of audit lines for unit tests (real fixtures live in fixtures/)."""

from __future__ import annotations

from collections.abc import Sequence

from kexecwatch.core.detect.detector import Detector


def exec_lines(
    serial: int,
    *,
    t: str = "1700000000.000",
    pid: int = 100,
    ppid: int = 1,
    comm: str = "kexec",
    exe: str = "/usr/sbin/kexec",
    args: tuple[str, ...] = ("kexec", "-l", "vmlinuz"),
    node: str | None = None,
    success: bool = True,
    proctitle: bool = True,
    inode: int = 1,
    uid: int = 1000,
    auid: int | None = None,
) -> list[bytes]:
    """The records of one execve event, as the kernel writes them, run by ``uid``
    (every uid field) with login uid ``auid`` (default: ``uid``; 4294967295 is unset)."""
    login = uid if auid is None else auid
    prefix = f"node={node} " if node else ""
    head = f"{prefix}type={{}} msg=audit({t}:{serial}): "
    argv = " ".join(f'a{i}="{a}"' for i, a in enumerate(args))
    lines = [
        head.format("SYSCALL")
        + f"arch=c000003e syscall=59 success={'yes' if success else 'no'} exit=0 items=2 "
        f"ppid={ppid} pid={pid} auid={login} uid={uid} gid=1000 euid={uid} suid={uid} "
        f"fsuid={uid} "
        f'egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=1 comm="{comm}" exe="{exe}" key="exec"',
    ]
    if success:
        lines.append(head.format("EXECVE") + f"argc={len(args)} {argv}")
    lines.append(head.format("CWD") + 'cwd="/srv"')
    lines.append(
        head.format("PATH")
        + f'item=0 name="{exe}" inode={inode} dev=fe:00 mode=0100755 ouid=0 ogid=0 nametype=NORMAL'
    )
    if proctitle:
        lines.append(
            head.format("PROCTITLE")
            + "proctitle="
            + "00".join(a.encode().hex().upper() for a in args)
        )
    return [line.encode() for line in lines]


def user_line(serial: int, *, t: str = "1700000000.000", kind: str = "USER_START") -> bytes:
    """A single-record user-space event."""
    return (
        f"type={kind} msg=audit({t}:{serial}): pid=1 uid=0 auid=0 ses=1 "
        f'msg=\'op=PAM:session_open acct="root" exe="/usr/bin/su" res=success\''
    ).encode()


def join(lines: list[bytes]) -> bytes:
    """Lines to log bytes, newline-terminated."""
    return b"".join(line + b"\n" for line in lines)


def feed_in_pieces(det: Detector, data: bytes, cuts: Sequence[int] = ()) -> list[object]:
    """Feed ``data`` to ``det`` cut at ``cuts`` (any order), then flush; every output."""
    out: list[object] = []
    pos = 0
    for cut in sorted(cuts):
        out.extend(det.feed(data[pos:cut]))
        pos = cut
    out.extend(det.feed(data[pos:]))
    out.extend(det.flush())
    return out
