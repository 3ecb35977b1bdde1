"""Audit lines for detection tests: execs, kexec system calls, configuration and daemon records."""

from __future__ import annotations

from typing import Any

from kexecwatch.core.detect.alerts import Alert
from kexecwatch.core.detect.detector import Detector, DetectorOptions
from kexecwatch.rules import load_builtin_rules
from tests.builders import exec_lines, join

KDUMPCTL = "/usr/bin/kdumpctl"


def script(
    serial: int, pid: int, path: str, *args: str, ppid: int = 1, t: str = "1700000000.000"
) -> list[bytes]:
    """A bash script run directly: comm is its name, argv is [/bin/bash, path, ...]."""
    name = path.rpartition("/")[2][:15]
    return exec_lines(
        serial,
        t=t,
        pid=pid,
        ppid=ppid,
        comm=name,
        exe="/usr/bin/bash",
        args=("/bin/bash", path, *args),
    )


def kexec(
    serial: int,
    pid: int,
    ppid: int,
    *args: str,
    argv0: str = "/sbin/kexec",
    t: str = "1700000000.000",
    comm: str = "kexec",
    exe: str = "/usr/sbin/kexec",
) -> list[bytes]:
    return exec_lines(serial, t=t, pid=pid, ppid=ppid, comm=comm, exe=exe, args=(argv0, *args))


def syscall(
    serial: int,
    pid: int,
    ppid: int,
    number: int,
    *,
    a: tuple[str, ...] = ("0",) * 4,
    success: bool = False,
    exit_code: int = -1,
    comm: str = "kexec",
    exe: str = "/usr/sbin/kexec",
    t: str = "1700000000.000",
    arch: str = "c000003e",
) -> list[bytes]:
    """One non-exec system call event, as the kernel writes it (SYSCALL + PROCTITLE)."""
    head = f"type={{}} msg=audit({t}:{serial}): "
    args = " ".join(f"a{i}={v}" for i, v in enumerate(a))
    return [
        (
            head.format("SYSCALL") + f"arch={arch} syscall={number} "
            f"success={'yes' if success else 'no'} exit={exit_code} {args} items=0 ppid={ppid} "
            f"pid={pid} auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) "
            f'ses=1 comm="{comm}" exe="{exe}" key="kexecwatch-kexec"'
        ).encode(),
        (head.format("PROCTITLE") + "proctitle=" + comm.encode().hex().upper()).encode(),
    ]


def config_change(
    serial: int, body: str, *, t: str = "1700000000.000", pid: int = 900, title: str = "auditctl -D"
) -> list[bytes]:
    """A CONFIG_CHANGE with the records of the auditctl sendto that caused it."""
    head = f"type={{}} msg=audit({t}:{serial}): "
    return [
        (head.format("CONFIG_CHANGE") + body).encode(),
        (
            head.format("SYSCALL")
            + f"arch=c000003e syscall=44 success=yes exit=60 a0=3 a1=1 a2=3c "
            f"a3=0 items=0 ppid=1 pid={pid} auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 "
            'fsgid=0 tty=pts0 ses=1 comm="auditctl" exe="/usr/sbin/auditctl" key=(null)'
        ).encode(),
        (head.format("SOCKADDR") + "saddr=100000000000000000000000").encode(),
        (head.format("PROCTITLE") + "proctitle=" + title.encode().hex().upper()).encode(),
    ]


def daemon(kind: str, serial: int, *, t: str = "1700000000.000") -> bytes:
    op = {"START": "start ver=3.0.9 format=raw kernel=6.1.0", "END": "terminate"}.get(kind, "abort")
    return (
        f"type=DAEMON_{kind} msg=audit({t}:{serial}): op={op} auid=0 pid=77 uid=0 "
        "ses=4294967295 res=success"
    ).encode()


def alerts(lines: list[bytes], ruleset: str = "all", **options: Any) -> list[Alert]:
    det = Detector(load_builtin_rules(ruleset), host_name="h", options=DetectorOptions(**options))
    out = det.feed(join(lines)) + det.flush()
    return [o for o in out if isinstance(o, Alert)]


def by_rule(found: list[Alert]) -> list[tuple[str, str]]:
    """(detection or "upstream", reason) per alert."""
    return [(getattr(a.rule, "detection_name", "upstream"), a.reason) for a in found]
