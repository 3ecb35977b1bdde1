"""systemd notify over a real socket, and /proc reading with the pid-reuse guard."""

from __future__ import annotations

import fcntl
import os
import pty
import socket
import subprocess
import termios
import time
from pathlib import Path

from kexecwatch.adapters.daemon.notify import Notifier
from kexecwatch.adapters.daemon.procfs import START_TOLERANCE_MS, ProcFs, parse_stat


def test_notify_abstract_socket_ready_and_watchdog() -> None:
    name = f"kexecwatch-test-{os.getpid()}-{time.monotonic_ns()}"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(b"\0" + name.encode())
    srv.settimeout(5)
    now = [0.0]
    n = Notifier({"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "2000000"}, clock=lambda: now[0])
    assert n.enabled
    assert n.watchdog_interval == 1.0
    n.ready("following x")
    assert srv.recv(4096) == b"READY=1\nSTATUS=following x"
    n.maybe_ping()
    assert srv.recv(4096) == b"WATCHDOG=1"
    n.maybe_ping()  # not due yet
    now[0] = 1.0
    n.maybe_ping()
    assert srv.recv(4096) == b"WATCHDOG=1"
    srv.close()


def test_notify_path_socket(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(str(path))
    srv.settimeout(5)
    Notifier({"NOTIFY_SOCKET": str(path)}).status("x=1")
    assert srv.recv(4096) == b"STATUS=x=1"
    srv.close()


def test_notify_absent_is_a_no_op() -> None:
    n = Notifier({})
    assert not n.enabled
    assert n.send(ready="1") is False
    assert n.watchdog_interval is None


def test_parse_stat_handles_parentheses_and_spaces_in_comm() -> None:
    fields = " ".join(str(i) for i in range(3, 53))  # field 3 .. 52
    line = f"42 (a) b (c) {fields}".encode()
    comm, ppid, start, pgrp, session = parse_stat(line.replace(b" 3 ", b" S ", 1))
    assert comm == b"a) b (c"
    assert ppid == 4
    assert start == 22
    assert (pgrp, session) == (5, 6)


def test_lookup_reads_the_session_and_process_group() -> None:
    info = ProcFs().lookup(os.getpid())
    assert info is not None
    assert (info.sid, info.pgid) == (os.getsid(0), os.getpgid(0))
    child = subprocess.Popen(["sleep", "30"], start_new_session=True)  # setsid() in the child
    try:
        leader = ProcFs().lookup(child.pid)
    finally:
        child.kill()
        child.wait()
    assert leader is not None
    assert (leader.sid, leader.pgid) == (child.pid, child.pid)


def test_lookup_reads_this_process() -> None:
    info = ProcFs().lookup(os.getpid())
    assert info is not None
    assert info.ppid == os.getppid()
    assert info.exe is not None
    assert info.argv
    assert abs(info.start_ms - time.time() * 1000) < 3600_000 * 24 * 365


def test_parent_started_after_the_event_is_rejected() -> None:
    procfs = ProcFs()
    me = procfs.lookup(os.getpid())
    assert me is not None
    assert procfs.parent_for(me.pid, me.start_ms + 5000) == me
    assert procfs.parent_for(me.pid, me.start_ms - START_TOLERANCE_MS - 5000) is None
    assert procfs.parent_for(2**22 + 7, me.start_ms) is None  # no such pid


def test_seeding_lists_live_processes() -> None:
    pids = {p.pid for p in ProcFs().all()}
    assert os.getpid() in pids
    assert 1 in pids


def _extra_fields(extra: bytes | None) -> dict[str, str]:
    assert extra is not None
    return dict(item.decode().split("=", 1) for item in extra.split(b" "))


def test_lookup_reads_the_credentials_as_a_syscall_record_writes_them() -> None:
    info = ProcFs().lookup(os.getpid())
    assert info is not None
    found = _extra_fields(info.extra)
    assert list(found) == [
        "auid", "uid", "gid", "euid", "suid", "fsuid", "egid", "sgid", "fsgid", "tty", "ses"
    ]  # fmt: skip
    uid, euid, suid = os.getresuid()
    gid, egid, sgid = os.getresgid()
    assert (found["uid"], found["euid"], found["suid"]) == (str(uid), str(euid), str(suid))
    assert (found["gid"], found["egid"], found["sgid"]) == (str(gid), str(egid), str(sgid))
    with open("/proc/self/sessionid") as fh:
        assert found["ses"] == fh.read().strip()


def test_lookup_names_the_controlling_terminal_as_auditd_does() -> None:
    master, slave = pty.openpty()
    child = subprocess.Popen(
        ["sleep", "30"],
        stdin=slave,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),  # noqa: PLW1509 - tests only
    )
    try:
        info = ProcFs().lookup(child.pid)
        name = os.ttyname(slave)  # /dev/pts/N
    finally:
        child.kill()
        child.wait()
        os.close(master)
        os.close(slave)
    assert info is not None
    assert _extra_fields(info.extra)["tty"] == "pts" + name.rsplit("/", 1)[1]
