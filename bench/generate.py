"""Seeded generator of large, realistic ENRICHED audit logs for benchmarks and tests.

The ``classic`` shape imitates what auditd 3.0.9 on Debian 12 writes with kexecwatch's
audit rules (``log_format = ENRICHED``, no ``node=``, no ``EOE`` lines): execve events made
of ``SYSCALL`` (with the 0x1D-separated interpretation tail), ``EXECVE`` (quoted, hex, and
long arguments split into ``aN_len``/``aN[i]`` chunks over several records), ``CWD``,
two to four ``PATH`` records and a hex ``PROCTITLE``; failed execs (no ``EXECVE``,
``nametype=UNKNOWN``); user-space single records from cron, sshd and sudo sessions;
concurrent events whose records interleave; a few lost serials; and rare ``kexec``
runs, some of which the shipped rule must alert on.

Other shapes (:data:`SHAPES`) add what logs of other machines and collectors hold:
``eoe`` (an ``EOE`` line after every syscall event, as audisp plugins and network
forwarders deliver them), ``syscalls`` (one event in five a non-exec system call:
``openat``, ``connect``, ``unlinkat``, ``fchmodat`` with ``CWD``/``PATH``/``SOCKADDR``/
``PROCTITLE``), ``fcaps`` (set-user-ID and file-capability execs with ``BPRM_FCAPS``
between ``SYSCALL`` and ``EXECVE``, as the kernel writes it), ``sessions`` (systemd
``SERVICE_START``/``SERVICE_STOP``, ssh and cron logins: PAM records, ``LOGIN`` with the
``write`` syscall that sets the login uid, ``USER_START``, ``CRED_ACQ``, ``USER_LOGIN``,
sudo, logouts) and ``gaps`` (bursts of lost serials). ``mixed``, the command line's
default, has all of them. The expected alerts of the shipped kexec rule are written next
to the log as ``FILE.expected.json``, whatever the shape.

Usage::

    python bench/generate.py --size 300M --seed 1 bench/out/audit-300M.log
    python bench/generate.py --shape eoe --size 100M bench/out/eoe-100M.log
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SHAPES", "Generator", "generate", "parse_size"]

_SEP = "\x1d"
_LD = "/lib64/ld-linux-x86-64.so.2"
_USERS = {0: "root", 1000: "alice", 1001: "bob", 33: "www-data", 110: "postgres"}
_ARCH = "c000003e"
_NO_CAPS = "cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0"
#: A PATH record's capability fields for a file with ``cap_net_raw=ep`` (ping, mtr-packet).
_RAW_CAPS = "cap_fp=0000000000002000 cap_fi=0 cap_fe=1 cap_fver=2 cap_frootid=0"
#: BPRM_FCAPS bodies as Linux 6.1 writes them (``audit_log_cap``: ``0`` or 16 hex digits):
#: a set-user-ID-root program run by a user gains every capability; a program with
#: ``cap_net_raw=ep`` gains that one.
_FCAPS = {
    "setuid": "fver=0 fp=0 fi=0 fe=0 old_pp=0 old_pi=0 old_pe=0 old_pa=0 "
    "pp=000001ffffffffff pi=0 pe=000001ffffffffff pa=0 frootid=0",
    "fcaps": "fver=2 fp=0000000000002000 fi=0 fe=1 old_pp=0 old_pi=0 old_pe=0 old_pa=0 "
    "pp=0000000000002000 pi=0 pe=0000000000002000 pa=0 frootid=0",
}
#: Commands run by parents, with their weight, executable and an argv builder key.
_COMMANDS: list[tuple[str, str, str, int]] = [
    ("ls", "/usr/bin/ls", "ls", 12),
    ("cat", "/usr/bin/cat", "file", 8),
    ("grep", "/usr/bin/grep", "grep", 8),
    ("sed", "/usr/bin/sed", "sed", 4),
    ("awk", "/usr/bin/mawk", "awk", 3),
    ("git", "/usr/bin/git", "git", 8),
    ("gcc", "/usr/bin/x86_64-linux-gnu-gcc-12", "gcc", 5),
    ("cc1", "/usr/lib/gcc/x86_64-linux-gnu/12/cc1", "cc1", 4),
    ("as", "/usr/bin/x86_64-linux-gnu-as", "as", 3),
    ("ld", "/usr/bin/x86_64-linux-gnu-ld.bfd", "ld", 2),
    ("python3", "/usr/bin/python3.11", "python", 5),
    ("java", "/usr/lib/jvm/java-17-openjdk-amd64/bin/java", "java", 1),
    ("sh", "/usr/bin/dash", "sh", 6),
    ("bash", "/usr/bin/bash", "bash", 3),
    ("date", "/usr/bin/date", "plain", 3),
    ("id", "/usr/bin/id", "plain", 2),
    ("uname", "/usr/bin/uname", "uname", 2),
    ("ps", "/usr/bin/ps", "ps", 2),
    ("systemctl", "/usr/bin/systemctl", "systemctl", 2),
    ("find", "/usr/bin/find", "find", 2),
    ("tar", "/usr/bin/tar", "tar", 1),
    ("curl", "/usr/bin/curl", "curl", 2),
    ("logrotate", "/usr/sbin/logrotate", "plain", 1),
    ("run-parts", "/usr/bin/run-parts", "plain", 1),
    ("echo", "/usr/bin/echo", "echo", 3),
    ("xargs", "/usr/bin/xargs", "plain", 1),
    ("sort", "/usr/bin/sort", "file", 2),
    ("head", "/usr/bin/head", "file", 2),
]
#: Long-lived parents: (comm, exe, argv, uid). Scripts run with comm = script name.
_PARENTS: list[tuple[str, str, tuple[str, ...], int]] = [
    ("bash", "/usr/bin/bash", ("-bash",), 1000),
    ("bash", "/usr/bin/bash", ("bash",), 1001),
    ("sh", "/usr/bin/dash", ("/bin/sh", "-c", "run-parts --report /etc/cron.daily"), 0),
    ("make", "/usr/bin/make", ("make", "-j2", "all"), 1000),
    ("cron", "/usr/sbin/cron", ("/usr/sbin/cron", "-f"), 0),
    ("sshd", "/usr/sbin/sshd", ("sshd: alice [priv]",), 0),
    ("python3", "/usr/bin/python3.11", ("/usr/bin/python3", "/opt/app/worker.py"), 33),
    ("kdumpctl", "/usr/bin/bash", ("/usr/bin/bash", "/usr/bin/kdumpctl", "restart"), 0),
    ("unload.sh", "/usr/bin/bash", ("/usr/bin/bash", "/usr/lib/kdump/unload.sh"), 0),
    ("postgres", "/usr/lib/postgresql/15/bin/postgres", ("postgres: checkpointer",), 110),
]
_WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "src",
    "lib",
    "include",
    "main",
    "util",
    "config",
    "test",
    "build",
    "data",
    "tmp",
]
_FILES = [
    "/etc/passwd",
    "/var/log/syslog",
    "README.md",
    "src/main.c",
    "/proc/cpuinfo",
    "/etc/hosts",
    "notes with spaces.txt",
    "résumé.pdf",
]


_CWDS = ["/home/alice/src/project", "/", "/var/lib/postgresql", "/root", "/home/bob"]
#: Files the non-exec system calls open or change.
_OPENED = [
    "/etc/ld.so.cache",
    "/etc/passwd",
    "/etc/shadow",
    "/etc/ssl/openssl.cnf",
    "/home/alice/.bashrc",
    "/var/lib/postgresql/15/main/postgresql.auto.conf",
    "/usr/lib/x86_64-linux-gnu/libc.so.6",
    "/proc/self/status",
]
#: Execs that gain privileges: (comm, exe, argv, "setuid" or "fcaps").
_PRIVILEGED: list[tuple[str, str, tuple[str, ...], str]] = [
    ("sudo", "/usr/bin/sudo", ("sudo", "systemctl", "restart", "nginx"), "setuid"),
    ("sudo", "/usr/bin/sudo", ("sudo", "-i"), "setuid"),
    ("su", "/usr/bin/su", ("su", "-", "postgres"), "setuid"),
    ("passwd", "/usr/bin/passwd", ("passwd",), "setuid"),
    ("mount", "/usr/bin/mount", ("mount",), "setuid"),
    ("ping", "/usr/bin/ping", ("ping", "-c", "1", "10.0.0.1"), "fcaps"),
    ("mtr-packet", "/usr/bin/mtr-packet", ("mtr-packet",), "fcaps"),
]
_UNITS = [
    "apt-daily",
    "apt-daily-upgrade",
    "man-db",
    "logrotate",
    "systemd-tmpfiles-clean",
    "phpsessionclean",
    "e2scrub_all",
    "fstrim",
    "user@1000",
    "user-runtime-dir@1000",
    "nginx",
    "postgresql@15-main",
]
_SSH_SESSION = (
    "pam_selinux,pam_loginuid,pam_keyinit,pam_permit,pam_umask,pam_unix,pam_systemd,"
    "pam_mail,pam_limits,pam_env,pam_env,pam_selinux"
)
_CRON_SESSION = "pam_loginuid,pam_env,pam_env,pam_permit,pam_unix,pam_limits"
_PAM_EXE = {"sshd": "/usr/sbin/sshd", "cron": "/usr/sbin/cron", "sudo": "/usr/bin/sudo"}
_PAM_TERMINAL = {"sshd": "ssh", "cron": "cron", "sudo": "/dev/pts/0"}


def _pam(op: str, grantors: str, acct: str, program: str, host: str, res: str = "success") -> str:
    """The ``msg='...'`` text of a PAM record written by ``program`` (sshd, cron, sudo)."""
    return (
        f'op=PAM:{op} grantors={grantors} acct="{acct}" exe="{_PAM_EXE[program]}" {host} '
        f"terminal={_PAM_TERMINAL[program]} res={res}"
    )


def _eoe_after(line: str) -> str:
    """The ``EOE`` line that ends the event ``line`` belongs to."""
    head = line[line.index(" msg=audit(") : line.index("): ") + 3]
    return "type=EOE" + head


def parse_size(text: str) -> int:
    """``100M``, ``1G``, ``300MB`` or a byte count to bytes."""
    t = text.strip().upper().removesuffix("B")
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(t[-1:], 1)
    return int(float(t[:-1] if scale > 1 else t) * scale)


def _enc(value: bytes) -> str:
    """How the kernel writes an untrusted string: quoted, or upper-case hex."""
    if any(b == 0x22 or b < 0x21 or b > 0x7E for b in value):
        return value.hex().upper()
    return '"' + value.decode("ascii") + '"'


@dataclass
class _Proc:
    pid: int
    comm: str
    exe: str
    argv: tuple[str, ...]
    uid: int
    ses: int
    tty: str
    ppid: int = 1


@dataclass
class Generator:
    """Writes events one at a time; ``expected`` collects the alerts the rule must raise.

    Args:
        seed: the random seed; the same seed gives the same log.
        interleave: the fraction of events whose records interleave with the next one's.
        kexec_every: on average, one kexec scenario per this many events.
        lose_every: on average, one serial gap (lost events) per this many events (0: never).
        gap_max: each gap loses between 1 and this many serials (a backlog overflow loses
            a burst).
        eoe: an ``EOE`` line after every syscall event, as audisp plugins and network
            forwarders (and auditd logs on some distributions) deliver them.
        syscall_share: the share of events that are non-exec system calls (``openat``,
            ``connect``, ``unlinkat``, ``fchmodat``) with ``CWD``/``PATH``/``SOCKADDR``/
            ``PROCTITLE`` records, made by processes the log has seen exec.
        fcaps_share: the share of events that are execs gaining privileges (set-user-ID
            ``sudo``/``su``/``passwd``, or file capabilities), with ``BPRM_FCAPS``.
        session_share: the share of events that are service and user-session groups
            (``SERVICE_START``/``STOP``, ssh and cron logins with ``LOGIN`` and its
            ``write`` syscall, ``USER_START``, ``CRED_ACQ``, ``USER_LOGIN``, sudo, logouts).

    The defaults write the ``classic`` shape (:data:`SHAPES`); the extra shapes draw
    from the random stream only when enabled, so a classic log is the same bytes as
    before shapes existed.
    """

    seed: int = 1
    interleave: float = 0.03
    kexec_every: int = 4_000
    lose_every: int = 50_000
    gap_max: int = 1
    eoe: bool = False
    syscall_share: float = 0.0
    fcaps_share: float = 0.0
    session_share: float = 0.0
    rng: random.Random = field(init=False)
    expected: list[str] = field(default_factory=list)
    #: Exec events, records and lost serials written so far.
    events: int = 0
    records: int = 0
    lost: int = 0
    _shown: bool = False
    _hiding: bool = False
    _time_ms: int = 1_717_000_000_000
    _serial: int = 1000
    _next_pid: int = 2000
    _parents: list[_Proc] = field(default_factory=list)
    _held: list[str] = field(default_factory=list)
    _recent: deque[_Proc] = field(default_factory=lambda: deque(maxlen=64))
    _sessions: deque[tuple[int, int, int, str]] = field(default_factory=lambda: deque(maxlen=16))
    _next_ses: int = 2

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self._time_ms += self.rng.randrange(10**6)
        self._serial += self.rng.randrange(10**5)
        self._command_weights = [c[3] for c in _COMMANDS]

    # -- identity helpers -------------------------------------------------------------

    def _new_pid(self) -> int:
        self._next_pid += self.rng.choice((1, 1, 1, 2, 3))
        if self._next_pid > 4_194_304:
            self._next_pid = 300
        return self._next_pid

    def _tick(self) -> tuple[str, int]:
        self._time_ms += int(self.rng.expovariate(1 / 2.5))
        self._serial += 1
        if self.lose_every and self.rng.randrange(self.lose_every) == 0:
            # Events the kernel could not queue: a gap.
            gap = 1 if self.gap_max <= 1 else self.rng.randint(1, self.gap_max)
            self._serial += gap
            if self._shown and not self._hiding:
                self.lost += gap  # a reader sees it only after an event it has seen
        self._shown |= not self._hiding
        stamp = f"{self._time_ms // 1000}.{self._time_ms % 1000:03d}"
        return stamp, self._serial

    def _enriched_ids(self, uid: int, auid: int, euid: int | None = None) -> str:
        """The ENRICHED tail's names for the SYSCALL record's ids (``euid``: a setuid exec)."""
        user = _USERS.get(uid, "unknown")
        eff = user if euid is None else _USERS.get(euid, "unknown")
        au = "unset" if auid == 4294967295 else _USERS.get(auid, "unknown")
        ids = f'UID="{user}" GID="{user}" EUID="{eff}" SUID="{eff}" FSUID="{eff}"'
        gids = " ".join(f'{n}="{user}"' for n in ("EGID", "SGID", "FSGID"))
        return f'AUID="{au}" {ids} {gids}'

    # -- argv ---------------------------------------------------------------------------

    def _argv(self, kind: str, comm: str) -> tuple[str, ...]:
        r = self.rng
        w = r.choice
        if kind == "ls":
            return (
                comm,
                *r.sample(["-l", "-a", "-h", "--color=auto", "-t"], r.randrange(3)),
                w(_FILES),
            )
        if kind == "file":
            return (comm, w(_FILES))
        if kind == "grep":
            return (comm, "-r", w(["TODO", "error: ", "foo|bar", "\t"]), w(_FILES))
        if kind == "sed":
            return (comm, "-i", f"s/{w(_WORDS)}/{w(_WORDS)}/g", w(_FILES))
        if kind == "awk":
            return (comm, "{print $1, $3}", w(_FILES))
        if kind == "git":
            sub = w(["status", "rev-parse", "log", "diff", "commit", "fetch"])
            if sub == "commit":
                return (comm, sub, "-m", " ".join(r.choices(_WORDS, k=r.randrange(3, 20))))
            return (comm, sub, *r.sample(["--short", "HEAD", "--oneline", "-q"], 2))
        if kind == "gcc":
            n = r.randrange(8, 60)
            flags = [f"-I/usr/include/{w(_WORDS)}/{w(_WORDS)}" for _ in range(n // 2)]
            flags += [f"-D{w(_WORDS).upper()}_{i}=1" for i in range(n // 2)]
            return (comm, "-O2", "-g", *flags, "-c", f"src/{w(_WORDS)}.c", "-o", "x.o")
        if kind == "cc1":
            return (comm, "-quiet", "-imultiarch", "x86_64-linux-gnu", f"src/{w(_WORDS)}.c")
        if kind == "as":
            return (comm, "--64", "-o", "x.o", f"/tmp/cc{r.randrange(10**6):06d}.s")
        if kind == "ld":
            objs = [f"obj/{w(_WORDS)}{i}.o" for i in range(r.randrange(10, 300))]
            return (comm, "-o", "app", *objs, "-lc")
        if kind == "python":
            return ("/usr/bin/python3", "-c", "import sys; print(sys.argv)", w(_WORDS))
        if kind == "java":
            # A classpath long enough to be split over EXECVE records, sometimes.
            jars = ":".join(
                f"/opt/app/lib/{w(_WORDS)}-{i}.jar" for i in range(r.randrange(50, 700))
            )
            return (comm, "-Xmx512m", "-cp", jars, "com.example.Main")
        if kind == "sh":
            return ("/bin/sh", "-c", f"{w(_WORDS)} | grep {w(_WORDS)} > /dev/null 2>&1")
        if kind == "bash":
            return ("bash", "-c", f"echo {w(_WORDS)}; exit 0")
        if kind == "uname":
            return (comm, "-r")
        if kind == "ps":
            return (comm, "aux")
        if kind == "systemctl":
            return (comm, "is-active", "--quiet", w(["ssh", "cron", "postgresql"]))
        if kind == "find":
            return (comm, "/var/tmp", "-name", "*.tmp", "-mtime", "+7", "-delete")
        if kind == "tar":
            return (comm, "czf", "/var/backups/etc.tgz", "/etc")
        if kind == "curl":
            return (comm, "-fsS", f"https://example.org/{w(_WORDS)}?q={r.randrange(10**6)}")
        if kind == "echo":
            return (comm, w(["done", "naïve café", 'say "hi"', "tab\there"]))
        return (comm,)

    # -- records ------------------------------------------------------------------------

    def _execve_records(self, argv: tuple[str, ...]) -> list[str]:
        """EXECVE bodies as ``audit_log_execve_info`` writes them (7500-byte records)."""
        bodies: list[str] = []
        cur = f"argc={len(argv)}"
        limit = 7500
        for i, arg in enumerate(argv):
            raw = arg.encode()
            enc = _enc(raw)
            if len(enc) + len(cur) + 8 < limit:
                cur += f" a{i}={enc}"
                continue
            # Too long for what is left: the kernel forces hex and writes chunks.
            hexed = raw.hex().upper()
            cur += f" a{i}_len={len(hexed)}"
            pos = 0
            chunk_no = 0
            while pos < len(hexed):
                room = limit - len(cur) - 16
                if room < 104:
                    bodies.append(cur)
                    cur = ""
                    room = limit - 16
                piece = hexed[pos : pos + room]
                cur += f" a{i}[{chunk_no}]={piece}"
                pos += len(piece)
                chunk_no += 1
        bodies.append(cur.lstrip(" "))
        return bodies

    def _path(
        self,
        item: int,
        name: str,
        nametype: str,
        uid: int = 0,
        *,
        mode: str = "0100755",
        caps: str = _NO_CAPS,
    ) -> str:
        """A PATH body for a file that exists (``caps``: its file capabilities)."""
        inode = self.rng.randrange(1000, 10**6)
        own = _USERS.get(uid, "root")
        return (
            f"item={item} name={_enc(name.encode())} inode={inode} dev=fe:01 mode={mode} "
            f"ouid={uid} ogid={uid} rdev=00:00 nametype={nametype} {caps}"
            f'{_SEP}OUID="{own}" OGID="{own}"'
        )

    @staticmethod
    def _missing_path(item: int, name: str) -> str:
        """A PATH body for a name that did not resolve (ENOENT): no inode, type UNKNOWN."""
        return f"item={item} name={_enc(name.encode())} nametype=UNKNOWN {_NO_CAPS}"

    @staticmethod
    def _proctitle(head: str, argv: tuple[str, ...]) -> str:
        """The PROCTITLE line: the first 128 bytes of the NUL-joined argv, quoted or hex."""
        title = b"\x00".join(a.encode() for a in argv)[:128].rstrip(b"\x00")
        if len(argv) == 1 and title.isascii() and b" " not in title and b'"' not in title:
            return f'type=PROCTITLE {head}proctitle="{title.decode()}"'
        return f"type=PROCTITLE {head}proctitle={title.hex().upper()}"

    def _syscall_line(
        self,
        head: str,
        proc: _Proc,
        call: tuple[int, str],
        result: tuple[bool, int],
        args: tuple[str, str, str, str],
        items: int,
        key: str,
        *,
        pid: int | None = None,
        euid: int | None = None,
        auid: int | None = None,
    ) -> str:
        """A SYSCALL line in the kernel's field order, with the ENRICHED tail.

        ``proc`` is the calling process (its pid, parent, ids, tty, session, comm, exe),
        unless ``pid`` says otherwise (an exec: the child's pid, the parent's ids);
        ``call`` is (number, name); ``result`` (success, exit); ``auid``: the login uid
        when it is not the process's uid.
        """
        uid = proc.uid
        if auid is None:
            auid = proc.uid if proc.ses != 4294967295 else 4294967295
        eff = uid if euid is None else euid
        number, name = call
        success, exit_code = result
        return (
            f"type=SYSCALL {head}arch={_ARCH} syscall={number} "
            f"success={'yes' if success else 'no'} exit={exit_code} a0={args[0]} "
            f"a1={args[1]} a2={args[2]} a3={args[3]} items={items} "
            f"ppid={proc.ppid if pid is None else proc.pid} "
            f"pid={proc.pid if pid is None else pid} auid={auid} uid={uid} gid={uid} "
            f"euid={eff} suid={eff} fsuid={eff} egid={uid} sgid={uid} fsgid={uid} "
            f"tty={proc.tty} ses={proc.ses} comm={_enc(proc.comm.encode())} "
            f"exe={_enc(proc.exe.encode())} subj=unconfined key={key}"
            f"{_SEP}ARCH=x86_64 SYSCALL={name} {self._enriched_ids(uid, auid, euid)}"
        )

    def exec_event(
        self,
        parent: _Proc,
        comm: str,
        exe: str,
        argv: tuple[str, ...],
        *,
        success: bool = True,
        pid: int | None = None,
        syscall: int = 59,
        privilege: str = "",
    ) -> tuple[list[str], _Proc]:
        """The lines of one execve by a child of ``parent``; returns the child too.

        ``privilege``: ``"setuid"`` (a set-user-ID-root program run by ``parent``'s user)
        or ``"fcaps"`` (a program with file capabilities): the kernel then writes a
        ``BPRM_FCAPS`` record between ``SYSCALL`` and ``EXECVE``, and the SYSCALL record
        shows the gained effective ids.
        """
        stamp, serial = self._tick()
        head = f"msg=audit({stamp}:{serial}): "
        child_pid = pid if pid is not None else self._new_pid()
        script = comm in ("kdumpctl", "unload.sh") and success
        caller = _Proc(parent.pid, comm, exe, argv, parent.uid, parent.ses, parent.tty)
        if not success:
            caller.comm, caller.exe = parent.comm, parent.exe  # a failed exec keeps the caller's
        items = (4 if script else 2) if success else 1
        sys_name = {59: "execve", 322: "execveat", 246: "kexec_load", 320: "kexec_file_load"}
        a0 = f"{self.rng.randrange(1 << 44, 1 << 47):x}"
        lines = [
            self._syscall_line(
                head,
                caller,
                (syscall, sys_name[syscall]),
                (success, 0 if success else -2),
                (a0, f"{a0[:-3]}c90", f"{a0[:-3]}e10", "8"),
                items,
                '"kexecwatch-exec"',
                pid=child_pid,
                euid=0 if privilege == "setuid" else None,
            )
        ]
        if privilege:
            lines.append(f"type=BPRM_FCAPS {head}{_FCAPS[privilege]}")
        if success:
            lines += [f"type=EXECVE {head}{b}" for b in self._execve_records(argv)]
        cwd = self.rng.choice(["/home/alice/src/project", "/", "/var/lib/postgresql", "/root"])
        lines.append(f"type=CWD {head}cwd={_enc(cwd.encode())}")
        if not success:
            lines.append(f"type=PATH {head}{self._missing_path(0, argv[0])}")
        elif script:
            lines.append(
                f"type=PATH {head}{self._path(0, argv[1] if len(argv) > 1 else exe, 'NORMAL')}"
            )
            lines.append(
                f"type=PATH {head}{self._path(1, argv[1] if len(argv) > 1 else exe, 'NORMAL')}"
            )
            lines.append(f"type=PATH {head}{self._path(2, exe, 'NORMAL')}")
            lines.append(f"type=PATH {head}{self._path(3, _LD, 'NORMAL')}")
        else:
            name = argv[0] if argv[0].startswith("/") else exe
            if privilege == "setuid":
                lines.append(f"type=PATH {head}{self._path(0, name, 'NORMAL', mode='0104755')}")
            elif privilege == "fcaps":
                lines.append(f"type=PATH {head}{self._path(0, name, 'NORMAL', caps=_RAW_CAPS)}")
            else:
                lines.append(f"type=PATH {head}{self._path(0, name, 'NORMAL')}")
            lines.append(f"type=PATH {head}{self._path(1, _LD, 'NORMAL')}")
        lines.append(self._proctitle(head, argv))
        self.events += 1
        child = _Proc(
            child_pid, caller.comm, caller.exe, argv, parent.uid, parent.ses, parent.tty, parent.pid
        )
        return lines, child

    def user_session(self) -> list[list[str]]:
        """A cron or sudo session: single-record user-space events."""
        r = self.rng
        out = []
        kind = r.choice(["cron", "sudo", "sshd"])
        uid = 0
        for rtype, op in {
            "cron": [
                ("USER_ACCT", "PAM:accounting"),
                ("CRED_ACQ", "PAM:setcred"),
                ("LOGIN", ""),
                ("USER_START", "PAM:session_open"),
                ("CRED_DISP", "PAM:setcred"),
                ("USER_END", "PAM:session_close"),
            ],
            "sudo": [
                ("USER_ACCT", "PAM:accounting"),
                ("USER_CMD", ""),
                ("CRED_REFR", "PAM:setcred"),
                ("USER_START", "PAM:session_open"),
                ("USER_END", "PAM:session_close"),
                ("CRED_DISP", "PAM:setcred"),
            ],
            "sshd": [
                ("USER_AUTH", "pubkey_auth"),
                ("USER_ACCT", "PAM:accounting"),
                ("CRED_ACQ", "PAM:setcred"),
                ("USER_LOGIN", "login"),
                ("USER_START", "PAM:session_open"),
            ],
        }[kind]:
            stamp, serial = self._tick()
            head = f"type={rtype} msg=audit({stamp}:{serial}): "
            pid = self._new_pid()
            if rtype == "LOGIN":
                body = (
                    f"pid={pid} uid=0 subj=unconfined old-auid=4294967295 auid=0 tty=(none) "
                    f"old-ses=4294967295 ses={r.randrange(1, 9999)} res=1"
                )
                out.append([head + body + f'{_SEP}UID="root" OLD-AUID="unset" AUID="root"'])
                continue
            if rtype == "USER_CMD":
                cmd = "systemctl restart " + r.choice(_WORDS)
                inner = (
                    f'cwd="/home/alice" cmd={cmd.encode().hex().upper()} '
                    'exe="/usr/bin/sudo" terminal=pts/0 res=success'
                )
            else:
                exe = {"cron": "/usr/sbin/cron", "sudo": "/usr/bin/sudo", "sshd": "/usr/sbin/sshd"}
                term = {"cron": "cron", "sudo": "/dev/pts/0", "sshd": "ssh"}[kind]
                inner = (
                    f'op={op} grantors=pam_unix acct="{_USERS[r.choice([0, 1000])]}" '
                    f'exe="{exe[kind]}" hostname=? addr=? terminal={term} res=success'
                )
            body = (
                f"pid={pid} uid={uid} auid=4294967295 ses=4294967295 subj=unconfined msg='{inner}'"
            )
            out.append([head + body + f'{_SEP}UID="root" AUID="unset"'])
        return out

    # -- the other shapes: non-exec syscalls, privileged execs, sessions ------------------

    def _extra_shapes(self) -> list[list[str]] | None:
        """One event (or group) of the enabled extra shapes, or None for an ordinary exec."""
        shares = (self.syscall_share, self.fcaps_share, self.session_share)
        if not any(shares):
            return None
        roll = self.rng.random()
        if roll < shares[0]:
            return [self.syscall_event()]
        roll -= shares[0]
        if roll < shares[1]:
            return [self.privileged_exec()]
        roll -= shares[1]
        if roll < shares[2]:
            return self.session_events()
        return None

    def _caller(self) -> _Proc:
        """A process that has exec'd recently (or a long-lived parent)."""
        return self.rng.choice(self._recent) if self._recent else self._parent()

    def syscall_event(self) -> list[str]:
        """A non-exec system call by a running process, records as the kernel writes them."""
        r = self.rng
        proc = self._caller()
        stamp, serial = self._tick()
        head = f"msg=audit({stamp}:{serial}): "
        ptr = f"{r.randrange(1 << 44, 1 << 47):x}"
        kind = r.choices(("openat", "connect", "unlinkat", "fchmodat"), weights=(6, 2, 1, 1))[0]
        cwd = f"type=CWD {head}cwd={_enc(r.choice(_CWDS).encode())}"
        if kind == "connect":
            fd = r.randrange(3, 40)
            port = r.choice((443, 80, 5432, 53, 22))
            addr = (10, 0, r.randrange(256), r.randrange(1, 255))
            ok = r.random() < 0.7  # else a non-blocking connect: EINPROGRESS
            saddr = "0200" + f"{port:04X}" + "".join(f"{b:02X}" for b in addr) + "0" * 16
            laddr = ".".join(map(str, addr))
            lines = [
                self._syscall_line(
                    head,
                    proc,
                    (42, "connect"),
                    (ok, 0 if ok else -115),
                    (f"{fd:x}", ptr, "10", "0"),
                    0,
                    '"network-connect"',
                ),
                f"type=SOCKADDR {head}saddr={saddr}"
                f"{_SEP}SADDR={{ saddr_fam=inet laddr={laddr} lport={port} }}",
            ]
        elif kind == "unlinkat":
            name = f"/tmp/cc{r.randrange(10**6):06d}.{r.choice(('s', 'o', 'ld'))}"
            lines = [
                self._syscall_line(
                    head,
                    proc,
                    (263, "unlinkat"),
                    (True, 0),
                    ("ffffff9c", ptr, "0", "0"),
                    2,
                    '"delete"',
                ),
                cwd,
                f"type=PATH {head}{self._path(0, '/tmp/', 'PARENT', mode='041777')}",
                f"type=PATH {head}" + self._path(1, name, "DELETE", proc.uid, mode="0100644"),
            ]
        else:
            name = r.choice(_OPENED)
            if kind == "fchmodat":
                call, result, args, key = (268, "fchmodat"), (True, 0), "1ed", '"perm_mod"'
            else:
                call, key = (257, "openat"), '"file-access"'
                result = r.choices(
                    ((True, r.randrange(3, 12)), (False, -2), (False, -13)), (7, 2, 1)
                )[0]
                args = "80000"
            if result[1] == -2:
                path = self._missing_path(0, name + ".d")
            else:
                path = self._path(0, name, "NORMAL", mode="0100640" if result[1] < 0 else "0100644")
            lines = [
                self._syscall_line(head, proc, call, result, ("ffffff9c", ptr, args, "0"), 1, key),
                cwd,
                f"type=PATH {head}{path}",
            ]
        lines.append(self._proctitle(head, proc.argv))
        return lines

    def privileged_exec(self) -> list[str]:
        """An exec that gains privileges: set-user-ID root or file capabilities."""
        r = self.rng
        if not self._parents:
            self._parent()
        # Privileges are gained (and BPRM_FCAPS written) only by a user's process.
        parent = r.choice([p for p in self._parents if p.uid])
        comm, exe, argv, privilege = r.choice(_PRIVILEGED)
        lines, child = self.exec_event(parent, comm, exe, argv, privilege=privilege)
        self._recent.append(child)
        return lines

    def _user_record(
        self, rtype: str, pid: int, ids: tuple[int, int, int], inner: str, extra: str = ""
    ) -> list[str]:
        """One user-space record (its own event): ``ids`` = (uid, auid, ses)."""
        stamp, serial = self._tick()
        uid, auid, ses = ids
        au = "unset" if auid == 4294967295 else _USERS.get(auid, "unknown")
        return [
            f"type={rtype} msg=audit({stamp}:{serial}): pid={pid} uid={uid} auid={auid} "
            f"ses={ses} subj=unconfined msg='{inner}'"
            f'{_SEP}UID="{_USERS.get(uid, "unknown")}" AUID="{au}"{extra}'
        ]

    def _login_event(self, proc: _Proc, auid: int, ses: int) -> list[str]:
        """pam_loginuid writing /proc/self/loginuid: ``LOGIN``, then the ``write`` syscall's
        ``SYSCALL`` and ``PROCTITLE`` records, one event (one serial)."""
        stamp, serial = self._tick()
        head = f"msg=audit({stamp}:{serial}): "
        ptr = f"{self.rng.randrange(1 << 44, 1 << 47):x}"
        # Still root, already in the new session with the new login uid.
        root = _Proc(proc.pid, proc.comm, proc.exe, proc.argv, 0, ses, "(none)", proc.ppid)
        return [
            f"type=LOGIN {head}pid={proc.pid} uid=0 subj=unconfined old-auid=4294967295 "
            f"auid={auid} tty=(none) old-ses=4294967295 ses={ses} res=1"
            f'{_SEP}UID="root" OLD-AUID="unset" AUID="{_USERS.get(auid, "unknown")}"',
            self._syscall_line(
                head, root, (1, "write"), (True, 4), ("3", ptr, "4", "0"), 0, "(null)", auid=auid
            ),
            self._proctitle(head, proc.argv),
        ]

    def session_events(self) -> list[list[str]]:
        """Service and user-session records between the execs: a systemd unit started or
        stopped, an ssh or cron login (PAM records, ``LOGIN``, ``USER_START``,
        ``USER_LOGIN``), a sudo command, or the end of an earlier ssh session."""
        r = self.rng
        kind = r.choice(("service", "service", "ssh", "cron", "sudo", "logout"))
        unset = (0, 4294967295, 4294967295)
        if kind == "service":
            inner = (
                f'unit={r.choice(_UNITS)} comm="systemd" exe="/usr/lib/systemd/systemd" '
                "hostname=? addr=? terminal=? res=success"
            )
            order = ("SERVICE_START", "SERVICE_STOP")
            return [self._user_record(t, 1, unset, inner) for t in order[: r.randrange(1, 3)]]
        if kind == "logout" and self._sessions:
            pid, uid, ses, addr = self._sessions.popleft()
            acct, ids = _USERS[uid], (0, uid, ses)
            host = f"hostname={addr} addr={addr}"
            return [
                self._user_record(
                    "USER_END", pid, ids, _pam("session_close", _SSH_SESSION, acct, "sshd", host)
                ),
                self._user_record(
                    "CRED_DISP", pid, ids, _pam("setcred", "pam_permit,pam_cap", acct, "sshd", host)
                ),
            ]
        pid = self._new_pid()
        ses = self._next_ses
        self._next_ses += 1
        if kind in ("ssh", "logout"):
            uid = r.choice((1000, 1001))
            acct, addr = _USERS[uid], f"10.0.{r.randrange(256)}.{r.randrange(1, 255)}"
            host = f"hostname={addr} addr={addr}"
            sshd = _Proc(
                pid, "sshd", "/usr/sbin/sshd", (f"sshd: {acct} [priv]",), 0, 0, "(none)", 612
            )
            out = []
            if r.random() < 0.2:  # a mistyped password first
                out.append(
                    self._user_record(
                        "USER_AUTH",
                        pid,
                        unset,
                        _pam("authentication", "?", acct, "sshd", host, "failed"),
                    )
                )
            out += [
                self._user_record(
                    "USER_AUTH", pid, unset, _pam("authentication", "pam_unix", acct, "sshd", host)
                ),
                self._user_record(
                    "USER_ACCT", pid, unset, _pam("accounting", "pam_permit", acct, "sshd", host)
                ),
                self._user_record(
                    "CRED_ACQ",
                    pid,
                    unset,
                    _pam("setcred", "pam_permit,pam_cap", acct, "sshd", host),
                ),
                self._login_event(sshd, uid, ses),
                self._user_record(
                    "USER_START",
                    pid,
                    (0, uid, ses),
                    _pam("session_open", _SSH_SESSION, acct, "sshd", host),
                ),
                self._user_record(
                    "CRED_ACQ",
                    self._new_pid(),
                    (0, uid, ses),
                    _pam("setcred", "pam_permit,pam_cap", acct, "sshd", host),
                ),
                self._user_record(
                    "USER_LOGIN",
                    pid,
                    (0, uid, ses),
                    f'op=login id={uid} exe="/usr/sbin/sshd" {host} '
                    f"terminal=/dev/pts/{r.randrange(8)} res=success",
                    f' ID="{acct}"',
                ),
            ]
            self._sessions.append((pid, uid, ses, addr))
            return out
        if kind == "cron":
            cron = _Proc(
                pid, "cron", "/usr/sbin/cron", ("/usr/sbin/cron", "-f"), 0, 0, "(none)", 598
            )
            local = "hostname=? addr=?"
            ids = (0, 0, ses)
            return [
                self._user_record(
                    "USER_ACCT", pid, unset, _pam("accounting", "pam_permit", "root", "cron", local)
                ),
                self._user_record(
                    "CRED_ACQ", pid, unset, _pam("setcred", "pam_permit", "root", "cron", local)
                ),
                self._login_event(cron, 0, ses),
                self._user_record(
                    "USER_START",
                    pid,
                    ids,
                    _pam("session_open", _CRON_SESSION, "root", "cron", local),
                ),
                self._user_record(
                    "CRED_DISP", pid, ids, _pam("setcred", "pam_permit", "root", "cron", local)
                ),
                self._user_record(
                    "USER_END",
                    pid,
                    ids,
                    _pam("session_close", _CRON_SESSION, "root", "cron", local),
                ),
            ]
        # sudo, from one of the open ssh sessions (or the console's session 1)
        _, uid, ses, _ = self._sessions[-1] if self._sessions else (0, 1000, 1, "")
        acct, local = _USERS[uid], "hostname=? addr=?"
        cmd = f"systemctl restart {r.choice(_UNITS)}".encode().hex().upper()
        mine, root = (uid, uid, ses), (0, uid, ses)
        return [
            self._user_record(
                "USER_ACCT", pid, mine, _pam("accounting", "pam_permit", acct, "sudo", local)
            ),
            self._user_record(
                "USER_CMD",
                pid,
                mine,
                f'cwd="/home/{acct}" cmd={cmd} exe="/usr/bin/sudo" terminal=pts/0 res=success',
            ),
            self._user_record(
                "CRED_REFR", pid, root, _pam("setcred", "pam_permit", "root", "sudo", local)
            ),
            self._user_record(
                "USER_START",
                pid,
                root,
                _pam("session_open", "pam_limits,pam_permit,pam_unix", "root", "sudo", local),
            ),
            self._user_record(
                "USER_END",
                pid,
                root,
                _pam("session_close", "pam_limits,pam_permit,pam_unix", "root", "sudo", local),
            ),
            self._user_record(
                "CRED_DISP", pid, root, _pam("setcred", "pam_permit", "root", "sudo", local)
            ),
        ]

    # -- scenario -----------------------------------------------------------------------

    def _parent(self) -> _Proc:
        if not self._parents:
            # The long-lived parents' execs happened before the log begins: their
            # serials are not in it (a gap, if the log already holds events).
            before, self._hiding = self._serial, True
            for comm, exe, argv, uid in _PARENTS:
                init = _Proc(
                    1,
                    "systemd",
                    "/usr/lib/systemd/systemd",
                    ("/sbin/init",),
                    0,
                    4294967295,
                    "(none)",
                )
                _, proc = self.exec_event(init, comm, exe, argv)
                proc.uid = uid
                self._parents.append(proc)
            self._hiding = False
            self.events -= len(_PARENTS)
            if self._shown:
                self.lost += self._serial - before
        return self.rng.choice(self._parents[:7] + self._parents[9:])

    def kexec_scenario(self) -> list[list[str]]:
        """A kexec run; records the alert ids the shipped rule must raise."""
        r = self.rng
        events: list[list[str]] = []
        choice = r.randrange(6)
        by_kdump = choice == 0
        parent_def = _PARENTS[7] if by_kdump else _PARENTS[r.choice((0, 2))]
        init = _Proc(
            1, "systemd", "/usr/lib/systemd/systemd", ("/sbin/init",), 0, 4294967295, "(none)"
        )
        lines, parent = self.exec_event(init, *parent_def[:3])
        events.append(lines)
        argv = {
            0: ("kexec", "-p", "/boot/vmlinuz-6.1.0-18-amd64", "--reuse-cmdline"),
            1: (
                "kexec",
                "-l",
                "/boot/vmlinuz-6.1.0-18-amd64",
                "--initrd=/boot/initrd.img",
                "--reuse-cmdline",
            ),
            2: ("kexec", "-e"),
            3: ("/usr/sbin/kexec", "--unload"),
            4: ("kexec", "-p", "/boot/vmlinuz"),  # crash kernel: not in the rule's list
            5: ("kexec", "--load", "/tmp/evil kernel", "--append=init=/bin/sh"),
        }[choice]
        if by_kdump:
            argv = ("kexec", "-l", "/boot/vmlinuz-6.1.0-18-amd64")  # parent kdumpctl: no alert
        lines, child = self.exec_event(parent, "kexec", "/usr/sbin/kexec", argv)
        events.append(lines)
        alerting = not by_kdump and any(
            a in ("--exec", "-e", "--load", "-l", "--unload", "-u") for a in argv
        )
        if alerting:
            stamp = lines[0].split("msg=audit(", 1)[1].split(")", 1)[0]
            self.expected.append(stamp)
        if "-e" not in argv:
            # kexec's own kexec_file_load call, audited by the kexec syscall rule.
            stamp, serial = self._tick()
            head = f"msg=audit({stamp}:{serial}): "
            events.append(
                [
                    f"type=SYSCALL {head}arch={_ARCH} syscall=320 success=yes exit=0 "
                    "a0=3 a1=4 a2=0 "
                    f"a3=5 items=0 ppid={parent.pid} pid={child.pid} auid={child.uid} uid=0 gid=0 "
                    'euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=3 comm="kexec" '
                    'exe="/usr/sbin/kexec" subj=unconfined key="kexecwatch-kexec"'
                    f"{_SEP}ARCH=x86_64 SYSCALL=kexec_file_load {self._enriched_ids(0, child.uid)}",
                    f"type=PROCTITLE {head}proctitle="
                    + b"\x00".join(a.encode() for a in argv)[:128].hex().upper(),
                ]
            )
        return events

    def next_events(self) -> list[list[str]]:
        """The next few events, each a list of lines."""
        r = self.rng
        roll = r.random()
        if self.kexec_every and r.randrange(self.kexec_every) == 0:
            return self.kexec_scenario()
        if roll < 0.004:
            return self.user_session()
        extra = self._extra_shapes()
        if extra is not None:
            return extra
        parent = self._parent()
        comm, exe, kind, _ = r.choices(_COMMANDS, weights=self._command_weights)[0]
        argv = self._argv(kind, comm)
        if roll < 0.03:
            # bash looking the command up along PATH: a failed exec first.
            lines, _ = self.exec_event(
                parent, comm, exe, (f"/usr/local/bin/{comm}", *argv[1:]), success=False
            )
            return [lines]
        lines, child = self.exec_event(parent, comm, exe, argv)
        self._recent.append(child)
        if kind in ("sh", "bash") and r.random() < 0.5:
            # A shell that runs something: a grandchild, whose parent is a fresh process.
            sub = r.choices(_COMMANDS[:6], weights=self._command_weights[:6])[0]
            more, _ = self.exec_event(child, sub[0], sub[1], self._argv(sub[2], sub[0]))
            return [lines, more]
        return [lines]

    def with_eoe(self, events: list[list[str]]) -> list[list[str]]:
        """``events`` with an ``EOE`` line ending each syscall event, if the shape has them."""
        if not self.eoe:
            return events
        return [
            [*event, _eoe_after(event[-1])]
            if any(line.startswith("type=SYSCALL ") for line in event)
            else event
            for event in events
        ]

    def pause(self, ms: int) -> None:
        """Let ``ms`` of record time pass with no event (a quiet machine)."""
        self._time_ms += ms

    def batches(self) -> Iterator[list[str]]:
        """The lines of each next few events, in log order, with some events' records
        interleaved: an event held back from one batch finishes inside the next one, so
        the log may end after a batch only when :attr:`whole` is true."""
        while True:
            batch = self.with_eoe(self.next_events())
            out: list[str] = []
            for event in batch:
                self.records += len(event)
                if self._held:
                    # Finish the held event's records after this one's first half.
                    cut = max(1, len(event) // 2)
                    out += event[:cut]
                    out += self._held
                    out += event[cut:]
                    self._held = []
                elif len(event) > 2 and self.rng.random() < self.interleave:
                    cut = self.rng.randrange(1, len(event))
                    out += event[:cut]
                    self._held = event[cut:]
                else:
                    out += event
            yield out

    @property
    def whole(self) -> bool:
        """Whether every event begun so far has all its lines in the batches yielded."""
        return not self._held

    def lines(self) -> Iterator[str]:
        """Every line, in log order (the batches, one after the other)."""
        for batch in self.batches():
            yield from batch


#: Named log shapes: the :class:`Generator` options of each. ``classic`` is the log the
#: benchmarks used before shapes existed (same bytes for the same seed).
SHAPES: dict[str, dict[str, float]] = {
    "classic": {},
    "eoe": {"eoe": True},
    "syscalls": {"syscall_share": 0.2},
    "fcaps": {"fcaps_share": 0.05},
    "sessions": {"session_share": 0.03},
    "gaps": {"lose_every": 1_000, "gap_max": 50},
}
SHAPES["mixed"] = {k: v for shape in list(SHAPES.values()) for k, v in shape.items()}


def generate(
    path: str | Path, size: int, *, seed: int = 1, shape: str = "classic", **options: float
) -> dict[str, object]:
    """Write about ``size`` bytes of log of ``shape`` to ``path``; return the expectations.

    ``options`` (:class:`Generator` fields) override the shape's. The expectations (also
    written to ``path + ".expected.json"``) list the audit ids of the kexec execs the
    shipped rule must alert on.
    """
    gen = Generator(seed=seed, **{**SHAPES[shape], **options})  # type: ignore[arg-type]
    written = 0
    with open(path, "wb") as out:
        buf: list[bytes] = []
        pending = 0
        for batch in gen.batches():
            for line in batch:
                data = (line + "\n").encode()
                buf.append(data)
                pending += len(data)
            # Written in blocks of 1 MiB or more, and the log ends only between whole
            # events: the expected alerts, records and lost serials count what it holds.
            if pending >= 1 << 20 and gen.whole:
                out.write(b"".join(buf))
                written += pending
                buf, pending = [], 0
                if written >= size:
                    break
    expected = {
        "seed": seed,
        "shape": shape,
        "bytes": written,
        "events": gen.events,
        "records": gen.records,
        "lost": gen.lost,
        "alerts": gen.expected,
    }
    Path(str(path) + ".expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    return expected


def main(argv: list[str] | None = None) -> int:
    """Command line: ``generate.py [--size 300M] [--seed N] [--shape mixed] OUTPUT``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output")
    parser.add_argument("--size", default="300M", help="100M, 300M, 1G ... (default 300M)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--shape", choices=list(SHAPES), default="mixed", help="the log's shape (default mixed)"
    )
    args = parser.parse_args(argv)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    exp = generate(args.output, parse_size(args.size), seed=args.seed, shape=args.shape)
    alerts = exp["alerts"]
    assert isinstance(alerts, list)
    print(
        f"{args.output}: {exp['bytes']} bytes, {exp['records']} records, "
        f"{exp['events']} events, {len(alerts)} expected alerts",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
