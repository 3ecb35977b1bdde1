"""Fake auditd writer and a killable ``kexecwatch run`` process, for the reliability matrix.

The oracle is simple: every kexec event written with ``-l`` must produce exactly one
alert whose id ends in its audit id, and nothing else may alert.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

from kexecwatch.core.detect.alerts import document_alert_id

REPO = Path(__file__).resolve().parents[2]
# Switch to [sys.executable, "-m", "kexecwatch", "run"] once cli.py wires the subcommand.
RUNNER = [sys.executable, "-m", "kexecwatch", "run"]
KEXEC_ARGS = ("kexec", "-l", "/boot/vmlinuz")


class FakeAuditd:
    """Writes audit records like auditd: O_APPEND, one write per record, rename rotation."""

    def __init__(self, path: Path, num_logs: int = 5) -> None:
        self.path = path
        self.num_logs = num_logs
        self.serial = 1000
        self.t = 1_700_000_000_000
        self.expected: list[str] = []  # audit ids that must alert
        self.fd = self._create()

    def _create(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def _records(self, comm: str, args: list[str], ppid: int) -> tuple[str, list[bytes]]:
        self.serial += 1
        self.t += 3
        aid = f"{self.t // 1000}.{self.t % 1000:03d}:{self.serial}"
        head = f"type={{}} msg=audit({aid}): "
        argv = " ".join(f'a{i}="{a}"' for i, a in enumerate(args))
        exe = f"/usr/sbin/{comm}"
        lines = [
            head.format("SYSCALL") + f"arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 "
            f"a2=3 a3=0 items=2 ppid={ppid} pid={self.serial} auid=0 uid=0 gid=0 euid=0 "
            f'suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=1 comm="{comm}" '
            f'exe="{exe}" key="exec"',
            head.format("EXECVE") + f"argc={len(args)} {argv}",
            head.format("CWD") + 'cwd="/root"',
            # One inode per program, as on a real disk: a shared inode would make
            # every program a hard link of kexec.
            head.format("PATH") + f'item=0 name="{exe}" inode={zlib.crc32(exe.encode())} '
            "dev=fe:01 mode=0100755 "
            "ouid=0 ogid=0 rdev=00:00 nametype=NORMAL",
            head.format("PATH") + 'item=1 name="/lib64/ld-linux-x86-64.so.2" inode=6 '
            "dev=fe:01 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL",
            head.format("PROCTITLE")
            + "proctitle="
            + "00".join(a.encode().hex().upper() for a in args),
            head.format("EOE"),
        ]
        return aid, [(line + "\n").encode() for line in lines]

    def event(
        self, kexec: bool = False, *, ppid: int = 1, args: tuple[str, ...] = ()
    ) -> list[bytes]:
        """The records of one exec event (kexec -l when ``kexec``, with ``args`` if given),
        not written yet."""
        if kexec:
            aid, recs = self._records("kexec", list(args or KEXEC_ARGS), ppid)
            self.expected.append(aid)
        else:
            aid, recs = self._records("ls", ["ls", "-l"], ppid)
        return recs

    def write(self, data: bytes) -> None:
        os.write(self.fd, data)

    def emit(self, kexec: bool = False, *, args: tuple[str, ...] = ()) -> None:
        for rec in self.event(kexec, args=args):
            self.write(rec)

    def rotate(self) -> None:
        """auditd's rotate_logs(): close, shift names (destroying the oldest), create."""
        os.close(self.fd)
        for i in range(self.num_logs - 2, 0, -1):
            src = f"{self.path}.{i}"
            if os.path.exists(src):
                os.replace(src, f"{self.path}.{i + 1}")
        os.replace(self.path, f"{self.path}.1")
        self.fd = self._create()

    def reopen(self) -> None:
        os.close(self.fd)
        self.fd = self._create()

    def close(self) -> None:
        os.close(self.fd)


RUNNING: list[subprocess.Popen[bytes]] = []  # killed by the conftest fixture after each test


class Daemon:
    """A ``kexecwatch run`` subprocess writing alerts to an NDJSON file."""

    def __init__(
        self,
        tmp: Path,
        log: Path,
        *,
        outputs: tuple[str, ...] = (),
        state: Path | None = None,
        env: dict[str, str] | None = None,
        alerts_name: str = "alerts.ndjson",
        host_name: str = "testhost",
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.alerts = tmp / alerts_name
        self.state = state or tmp / "state"
        self.stderr_path = tmp / "daemon.stderr"
        args = [
            *RUNNER,
            "--log",
            str(log),
            "--state-dir",
            str(self.state),
            "--output",
            f"json:{self.alerts}",
            "--host-name",
            host_name,
        ]
        args += extra_args
        for o in outputs:
            args += ["--output", o]
        config = tmp / "k.toml"
        config.write_text(
            "poll-interval = 0.2\ncheckpoint-interval = 0.5\n"
            "status-interval = 1.0\nevent-window-ms = 500\n"
        )
        args += ["--config", str(config)]
        self._stderr = open(self.stderr_path, "ab")  # noqa: SIM115
        self._own_from = self._stderr.tell()  # a restart appends to the same file
        self.proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=self._stderr, env={**os.environ, **(env or {})}
        )
        RUNNING.append(self.proc)
        if log.exists():
            self.wait_log("event=file_switch")  # following before the test writes on

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def alert_ids(self) -> list[str]:
        if not self.alerts.exists():
            return []
        text = self.alerts.read_text()
        if self.proc.poll() is None:
            # A read races the daemon's write: a page-by-page copy can show the start
            # of the line being written. Once the daemon has exited, everything counts,
            # so a line it really left torn still fails the test.
            text = text[: text.rfind("\n") + 1]
        return [document_alert_id(json.loads(x)) for x in text.splitlines()]

    def wait_alerts(self, n: int, timeout: float = 20.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ids = self.alert_ids()
            if len(ids) >= n:
                return ids
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode}:\n{self.stderr()}")
            time.sleep(0.05)
        raise AssertionError(f"{len(self.alert_ids())} of {n} alerts:\n{self.stderr()[-3000:]}")

    def wait_log(self, text: str, timeout: float = 10.0) -> None:
        """Wait until this process (not an earlier one on the same file) logged ``text``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            own = self.stderr_path.read_bytes()[self._own_from :]
            if text in own.decode(errors="replace"):
                return
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not logged:\n{self.stderr()[-3000:]}")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(30)
        self._stderr.close()
        return rc

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(30)
        self._stderr.close()


def alerted_once(tmp: Path) -> tuple[FakeAuditd, Daemon]:
    """A fake auditd writing ``tmp/audit.log`` and a daemon that has alerted once on it."""
    log = tmp / "audit.log"
    w = FakeAuditd(log)
    d = Daemon(tmp, log)
    w.emit(kexec=True)
    d.wait_alerts(1)
    return w, d


def audit_ids(alert_ids: list[str]) -> list[str]:
    """The audit id part (``sec.ms:serial``) of each alert id."""
    return [a.rsplit(":", 2)[-2] + ":" + a.rsplit(":", 1)[-1] for a in alert_ids]
