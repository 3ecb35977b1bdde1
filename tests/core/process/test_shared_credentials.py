"""The Python scanner's process table keeps one copy of each credentials text.

Every exec entry carries its credentials (``auid=... tty=... ses=...``, proctable's
docstring); the same few texts recur exec after exec, so the table shares them instead
of holding one copy per entry (at 65,536 entries, megabytes).
"""

from __future__ import annotations

from kexecwatch.core.detect.detector import Detector
from kexecwatch.core.scan.scanner import MAX_SHARED_EXTRAS, PythonScanner

CREDENTIALS = (
    "auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 "
    "tty=(none) ses=4294967295"
)


def exec_event(serial: int, pid: int, credentials: str = CREDENTIALS) -> bytes:
    """One exec in the kernel's canonical layout, which the fast path takes whole."""
    head = f"msg=audit(1717000140.{serial:03d}:{serial}):"
    return (
        f"type=SYSCALL {head} arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 "
        f"a3=8 items=1 ppid=1 pid={pid} {credentials} "
        f'comm="ls" exe="/usr/bin/ls" key="exec"\n'
        f'type=EXECVE {head} argc=1 a0="ls"\n'
        f'type=CWD {head} cwd="/"\n'
        f'type=PATH {head} item=0 name="/usr/bin/ls" inode=7 dev=fe:01 mode=0100755 '
        f"ouid=0 ogid=0 rdev=00:00 nametype=NORMAL\n"
        f"type=PROCTITLE {head} proctitle=6C73\n"
    ).encode()


def test_two_execs_with_the_same_credentials_share_one_copy() -> None:
    detector = Detector([], host_name="h", native=None)
    detector.feed(exec_event(1, 100) + exec_event(2, 200))
    detector.flush()
    first = detector.table.parent_at(100, 1717000140_100)
    second = detector.table.parent_at(200, 1717000140_100)
    assert first is not None and second is not None
    assert first.extra == second.extra == CREDENTIALS.encode()
    assert first.extra is second.extra  # one object, not two equal ones


def test_the_shared_texts_are_bounded() -> None:
    detector = Detector([], host_name="h", native=None)
    scanner = detector._scanner
    assert isinstance(scanner, PythonScanner)
    for uid in range(MAX_SHARED_EXTRAS + 10):
        scanner.share_extra(CREDENTIALS.replace("uid=0", f"uid={uid}").encode())
    assert len(scanner._extras) <= MAX_SHARED_EXTRAS
