"""Drive a private, real auditd for tests and fixture recording, and always clean up.

Only one user of the kernel audit subsystem may exist at a time, so everything here
runs under an exclusive ``flock`` on :data:`LOCK_PATH`. :class:`AuditdSession` starts
auditd with a throw-away configuration (its own log directory, no plugins), loads
rules and exposes the log. A separate *guardian* process, started in its own session,
holds a pipe from this process: when the pipe closes, whether on a normal exit or
because this process was SIGKILLed, the guardian restores the machine in the
mandated order: ``auditctl -D``, stop the session's auditd (by pid, and only an
auditd whose command line names this session's config dir), ``auditctl -e 0``.

The guardian inherits the lock descriptor, so the lock stays held until it has
finished restoring. The harness refuses to touch an auditd it did not start.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

from kexecwatch.errors import KexecwatchError
from tools.auditlab_files import GUARDIAN_SOURCE, LogFormat, conf_text

__all__ = [
    "AUDITCTL",
    "AUDITD",
    "GUARDIAN_SOURCE",
    "LOCK_PATH",
    "AuditLabError",
    "AuditStatus",
    "AuditdSession",
    "LogFormat",
    "audit_lock",
    "audit_rules",
    "audit_status",
    "auditctl",
    "auditd_processes",
    "read_rules_file",
    "require_root_auditd",
    "scoped_rules",
]

LOCK_PATH = Path("/run/kexecwatch-auditd.lock")
AUDITD = "/usr/sbin/auditd"
AUDITCTL = "/usr/sbin/auditctl"


class AuditLabError(KexecwatchError):
    """The audit lab cannot run here, or could not restore the machine."""


@dataclass(frozen=True, slots=True)
class AuditStatus:
    """The fields of ``auditctl -s`` that the lab cares about."""

    enabled: int
    pid: int
    backlog_limit: int
    backlog: int
    lost: int


def auditctl(*args: str, check: bool = True) -> str:
    """Run auditctl and return its combined output.

    Raises:
        AuditLabError: auditctl is missing, or failed while ``check`` is true.
    """
    if not Path(AUDITCTL).exists():
        raise AuditLabError(f"{AUDITCTL} not found: install the auditd package")
    done = subprocess.run([AUDITCTL, *args], capture_output=True, text=True, check=False, cwd="/")
    out = done.stdout + done.stderr
    if check and (done.returncode != 0 or "rror" in out):
        raise AuditLabError(f"auditctl {' '.join(args)} failed ({done.returncode}): {out.strip()}")
    return out


def _inode(path: Path) -> int | None:
    """``path``'s inode number, ``None`` while it does not exist."""
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


def _size(path: Path) -> int:
    """``path``'s size, 0 while it does not exist."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def audit_status() -> AuditStatus:
    """Parse ``auditctl -s``."""
    fields = dict(re.findall(r"^(\w+) (\d+)", auditctl("-s"), re.MULTILINE))
    return AuditStatus(
        enabled=int(fields["enabled"]),
        pid=int(fields["pid"]),
        backlog_limit=int(fields["backlog_limit"]),
        backlog=int(fields["backlog"]),
        lost=int(fields["lost"]),
    )


def audit_rules() -> list[str]:
    """The loaded rules as ``auditctl -l`` prints them; empty when there are none."""
    lines = [ln for ln in auditctl("-l").splitlines() if ln.strip()]
    return [] if lines == ["No rules"] else lines


def auditd_processes() -> dict[int, list[str]]:
    """Every live (non-zombie) auditd process: pid -> argv."""
    found: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError):
            continue
        if comm == "auditd" and state != "Z":
            found[int(entry.name)] = [a.decode(errors="replace") for a in argv if a]
    return found


class _LockState:
    """Process-wide, re-entrant holder of the lock descriptor."""

    fd: int | None = None
    depth: int = 0


@contextmanager
def audit_lock(timeout: float = 900.0) -> Iterator[int]:
    """Hold the exclusive audit lock; re-entrant within one process.

    Yields the lock's file descriptor (guardians inherit it). The lock is dropped by
    closing, never by ``LOCK_UN``, so a guardian holding the same open file keeps it.

    Raises:
        AuditLabError: the lock was not obtained within ``timeout`` seconds.
    """
    if _LockState.fd is not None:
        _LockState.depth += 1
        try:
            yield _LockState.fd
        finally:
            _LockState.depth -= 1
        return
    fd = os.open(LOCK_PATH, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise AuditLabError(f"{LOCK_PATH} still locked after {timeout:.0f}s") from None
            time.sleep(0.2)
    _LockState.fd, _LockState.depth = fd, 1
    try:
        yield fd
    finally:
        _LockState.fd, _LockState.depth = None, 0
        os.close(fd)


def require_root_auditd() -> None:
    """Fail (never skip) when this process cannot drive auditd.

    Raises:
        AuditLabError: not root, or auditd/auditctl are not installed.
    """
    if os.geteuid() != 0:
        raise AuditLabError("driving auditd needs root (scripts/test runs as root in CI)")
    for tool in (AUDITD, AUDITCTL):
        if not Path(tool).exists():
            raise AuditLabError(f"{tool} not found: install the auditd package (scripts/test)")


def read_rules_file(path: Path) -> list[str]:
    """The rule lines of an audit rules file, without comments and blank lines."""
    lines = (ln.strip() for ln in path.read_text().splitlines())
    return [ln for ln in lines if ln and not ln.startswith("#")]


def scoped_rules(lines: Iterable[str], uid: int, field: str = "uid") -> list[str]:
    """Restrict every syscall rule (``-a``) to one user with ``-F <field>=<uid>``.

    The filter goes before ``-k`` so ``auditctl -l`` shows it in a stable place.
    Watches (``-w``) and control lines are returned unchanged.
    """
    out = []
    for line in lines:
        head, sep, key = line.partition(" -k ")
        out.append(f"{head} -F {field}={uid}{sep}{key}" if line.startswith("-a ") else line)
    return out


class AuditdSession:
    """A private auditd with its own config and log, restored on exit or death.

    Args:
        rules: rule lines for ``auditctl -R`` (see :func:`scoped_rules`).
        log_format: ``RAW`` or ``ENRICHED``.
        node_name: with a name, ``name_format = USER`` so records carry ``node=``.
        max_log_file: MiB per log file before auditd rotates.
        num_logs: log files kept by rotation.
        extra_conf: further auditd.conf keys (override the defaults).
        backlog_limit: kernel backlog for the session (restored afterwards).
        keep_dir: leave the session directory behind (its path is printed on exit).
        enable: turn auditing on (``auditctl -e 1``); with False the rules are loaded
            but nothing is logged, e.g. to check that unscoped rules load.
    """

    def __init__(
        self,
        rules: Sequence[str] = (),
        *,
        log_format: LogFormat = "RAW",
        node_name: str | None = None,
        max_log_file: int = 8,
        num_logs: int = 4,
        extra_conf: Mapping[str, str] | None = None,
        backlog_limit: int = 8192,
        keep_dir: bool = False,
        enable: bool = True,
    ) -> None:
        self.rules = list(rules)
        self.log_format: LogFormat = log_format
        self.node_name = node_name
        self.max_log_file = max_log_file
        self.num_logs = num_logs
        self.extra_conf = dict(extra_conf or {})
        self.backlog_limit = backlog_limit
        self.keep_dir = keep_dir
        self.enable = enable
        self._stack = ExitStack()
        self._guardian: subprocess.Popen[str] | None = None
        self._auditd: subprocess.Popen[bytes] | None = None
        self.workdir = Path()

    # -- paths --------------------------------------------------------------
    @property
    def confdir(self) -> Path:
        """The directory passed to ``auditd -c``."""
        return self.workdir / "conf"

    @property
    def log_path(self) -> Path:
        """The live audit log (``audit.log``; rotated files get ``.1``, ``.2``...)."""
        return self.workdir / "log" / "audit.log"

    @property
    def pid(self) -> int:
        """The pid of the running auditd (0 when stopped)."""
        return self._auditd.pid if self._auditd and self._auditd.poll() is None else 0

    # -- lifecycle ----------------------------------------------------------
    def __enter__(self) -> AuditdSession:
        try:
            lock_fd = self._stack.enter_context(audit_lock())
            self._refuse_if_busy()
            original = audit_status()
            self.workdir = Path(tempfile.mkdtemp(prefix="kexecwatch-auditlab-"))
            self._write_config()
            self._guardian = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    GUARDIAN_SOURCE,
                    AUDITCTL,
                    str(self.confdir),
                    str(self.workdir),
                    str(original.backlog_limit),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                text=True,
                start_new_session=True,
                pass_fds=(lock_fd,),
                cwd="/",
            )
            if self.keep_dir:
                self._tell("keep")
            self.start()
            auditctl("-b", str(self.backlog_limit))
            if self.rules:
                self.load_rules(self.rules)
            auditctl("-e", "1" if self.enable else "0")
        except BaseException:
            self._finish()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._finish()

    def _refuse_if_busy(self) -> None:
        running = auditd_processes()
        if running:
            listing = "; ".join(f"{pid}: {' '.join(argv)}" for pid, argv in running.items())
            raise AuditLabError(
                "an auditd is already running and this harness did not start it; "
                f"refusing to hijack it ({listing})"
            )
        status = audit_status()
        if status.pid:
            raise AuditLabError(f"the kernel already has an audit daemon (pid {status.pid})")
        if status.enabled == 2:
            raise AuditLabError("audit configuration is locked (enabled 2); reboot to change it")
        if audit_rules():
            raise AuditLabError(
                "audit rules are already loaded; not ours to remove (auditctl -l to inspect)"
            )

    def _write_config(self) -> None:
        (self.workdir / "log").mkdir()
        (self.workdir / "plugins").mkdir()
        self.confdir.mkdir(mode=0o750)
        conf = self.confdir / "auditd.conf"
        conf.write_text(
            conf_text(
                self.log_path,
                self.workdir / "plugins",
                self.log_format,
                self.node_name,
                self.max_log_file,
                self.num_logs,
                self.extra_conf,
            )
        )
        conf.chmod(0o640)

    def _tell(self, message: str) -> None:
        assert self._guardian is not None
        assert self._guardian.stdin is not None
        self._guardian.stdin.write(message + "\n")
        self._guardian.stdin.flush()

    def start(self, timeout: float = 15.0) -> None:
        """Start auditd (again, after :meth:`stop`) on the same log and wait for it.

        Raises:
            AuditLabError: auditd exited or did not register with the kernel in time.
        """
        if self.pid:
            raise AuditLabError(f"auditd already running (pid {self.pid})")
        stderr: IO[bytes]
        with (self.workdir / "auditd.stderr").open("ab") as stderr:
            self._auditd = subprocess.Popen(
                [AUDITD, "-n", "-c", str(self.confdir)],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                start_new_session=True,
                cwd="/",
            )
        self._tell(f"pid {self._auditd.pid}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._auditd.poll() is not None:
                err = (self.workdir / "auditd.stderr").read_text(errors="replace")
                raise AuditLabError(f"auditd exited with {self._auditd.returncode}: {err}")
            if audit_status().pid == self._auditd.pid and self.log_path.exists():
                return
            time.sleep(0.05)
        raise AuditLabError(f"auditd (pid {self._auditd.pid}) did not register in {timeout}s")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop this session's auditd with SIGTERM (it writes DAEMON_END) and reap it."""
        proc = self._auditd
        if proc is None or proc.poll() is not None:
            return
        self.wait_idle()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def rotate(self, timeout: float = 10.0) -> None:
        """Ask auditd to rotate its log (``auditctl --signal rotate``/``USR1``) and wait."""
        rotated = self.log_path.with_name(self.log_path.name + ".1")
        before = _inode(rotated)
        self.wait_idle()
        # auditctl 3.1 knows "rotate"; 3.0.9 only the signal name (USR1 = rotate).
        if "unsupported" in auditctl("--signal", "rotate", check=False):
            auditctl("--signal", "USR1")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # auditd creates the new log before it writes its DAEMON_ROTATE record there:
            # the rotation is done once that record is in. While it renames the old
            # logs, .1 and the log itself are missing for a moment: each is looked at
            # once, and a missing one means "not yet".
            now = _inode(rotated)
            if now is not None and now != before and _size(self.log_path):
                return
            time.sleep(0.05)
        raise AuditLabError("auditd did not rotate its log in time")

    def load_rules(self, lines: Sequence[str]) -> None:
        """Load rule lines with ``auditctl -R`` (a file in the session directory)."""
        path = self.workdir / "session.rules"
        path.write_text("".join(f"{ln}\n" for ln in lines))
        auditctl("-R", str(path))

    def wait_idle(self, quiet: float = 0.6, timeout: float = 30.0) -> None:
        """Wait until the kernel backlog is empty and the log stopped growing."""
        deadline = time.monotonic() + timeout
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            size = _size(self.log_path)
            if size != last or audit_status().backlog:
                last, since = size, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return
            time.sleep(0.1)
        raise AuditLabError(f"audit log still growing after {timeout}s")

    def _finish(self) -> None:
        """Let the guardian restore, then check that it did."""
        try:
            if self._guardian is not None:
                if self.pid and self.enable:
                    # Best effort, so that the log is complete; a busy host may never
                    # fall quiet, and the guardian must be released regardless.
                    with contextlib.suppress(AuditLabError):
                        self.wait_idle(timeout=10.0)
                assert self._guardian.stdin is not None
                self._guardian.stdin.close()
                self._guardian.wait(60)
                if self._auditd is not None:
                    self._auditd.wait(10)
                self._check_restored()
                if self.keep_dir:
                    print(f"auditlab: kept {self.workdir}", file=sys.stderr)
        finally:
            self._stack.close()

    def _check_restored(self) -> None:
        problems = []
        if audit_rules():
            problems.append("rules still loaded")
        status = audit_status()
        if status.enabled != 0:
            problems.append(f"audit enabled {status.enabled}")
        if self._auditd is not None and self._auditd.pid in auditd_processes():
            problems.append(f"auditd {self._auditd.pid} still running")
        if problems:
            raise AuditLabError("restore incomplete: " + ", ".join(problems))
