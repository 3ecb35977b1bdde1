"""Seeded generator of a large, realistic ENRICHED audit log for benchmarks and tests.

The log imitates what auditd 3.0.9 on Debian 12 writes with kexecwatch's audit rules
(``log_format = ENRICHED``, no ``node=``, no ``EOE`` lines): execve events made of
``SYSCALL`` (with the 0x1D-separated interpretation tail), ``EXECVE`` (quoted, hex, and
long arguments split into ``aN_len``/``aN[i]`` chunks over several records), ``CWD``,
two to four ``PATH`` records and a hex ``PROCTITLE``; failed execs (no ``EXECVE``,
``nametype=UNKNOWN``); user-space single records from cron, sshd and sudo sessions;
concurrent events whose records interleave; a few lost serials; and rare ``kexec``
runs, some of which the shipped rule must alert on. The expected alerts are written
next to the log as ``FILE.expected.json``.

Usage::

    python bench/generate.py --size 300M --seed 1 bench/out/audit-300M.log
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Generator", "generate", "parse_size"]

_SEP = "\x1d"
_LD = "/lib64/ld-linux-x86-64.so.2"
_USERS = {0: "root", 1000: "alice", 1001: "bob", 33: "www-data", 110: "postgres"}
_ARCH = "c000003e"
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


@dataclass
class Generator:
    """Writes events one at a time; ``expected`` collects the alerts the rule must raise.

    Args:
        seed: the random seed; the same seed gives the same log.
        interleave: the fraction of events whose records interleave with the next one's.
        kexec_every: on average, one kexec scenario per this many events.
        lose_every: on average, one lost serial per this many events (0: never).
    """

    seed: int = 1
    interleave: float = 0.03
    kexec_every: int = 4_000
    lose_every: int = 50_000
    rng: random.Random = field(init=False)
    expected: list[str] = field(default_factory=list)
    events: int = 0
    records: int = 0
    _time_ms: int = 1_717_000_000_000
    _serial: int = 1000
    _next_pid: int = 2000
    _parents: list[_Proc] = field(default_factory=list)
    _held: list[str] = field(default_factory=list)

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
            self._serial += 1  # an event the kernel could not queue: a gap
        stamp = f"{self._time_ms // 1000}.{self._time_ms % 1000:03d}"
        return stamp, self._serial

    def _enriched_ids(self, uid: int, auid: int) -> str:
        user = _USERS.get(uid, "unknown")
        au = "unset" if auid == 4294967295 else _USERS.get(auid, "unknown")
        ids = " ".join(f'{n}="{user}"' for n in ("UID", "GID", "EUID", "SUID", "FSUID"))
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

    def _path(self, item: int, name: str, nametype: str, uid: int = 0) -> str:
        inode = self.rng.randrange(1000, 10**6)
        own = _USERS.get(uid, "root")
        return (
            f"item={item} name={_enc(name.encode())} inode={inode} dev=fe:01 mode=0100755 "
            f"ouid={uid} ogid={uid} rdev=00:00 nametype={nametype} cap_fp=0 cap_fi=0 cap_fe=0 "
            f'cap_fver=0 cap_frootid=0{_SEP}OUID="{own}" OGID="{own}"'
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
    ) -> tuple[list[str], _Proc]:
        """The lines of one execve by a child of ``parent``; returns the child too."""
        stamp, serial = self._tick()
        head = f"msg=audit({stamp}:{serial}): "
        child_pid = pid if pid is not None else self._new_pid()
        uid = parent.uid
        auid = parent.uid if parent.ses != 4294967295 else 4294967295
        script = comm in ("kdumpctl", "unload.sh") and success
        if not success:
            comm, exe = parent.comm, parent.exe  # a failed exec keeps the caller's
        items = (4 if script else 2) if success else 1
        key = '"kexecwatch-exec"'
        sys_name = {59: "execve", 322: "execveat", 246: "kexec_load", 320: "kexec_file_load"}
        a0 = f"{self.rng.randrange(1 << 44, 1 << 47):x}"
        syscall_line = (
            f"type=SYSCALL {head}arch={_ARCH} syscall={syscall} "
            f"success={'yes' if success else 'no'} "
            f"exit={0 if success else -2} a0={a0} a1={a0[:-3]}c90 a2={a0[:-3]}e10 a3=8 "
            f"items={items} ppid={parent.pid} pid={child_pid} auid={auid} uid={uid} gid={uid} "
            f"euid={uid} suid={uid} fsuid={uid} egid={uid} sgid={uid} fsgid={uid} "
            f"tty={parent.tty} ses={parent.ses} comm={_enc(comm.encode())} "
            f"exe={_enc(exe.encode())} subj=unconfined key={key}"
            f"{_SEP}ARCH=x86_64 SYSCALL={sys_name[syscall]} {self._enriched_ids(uid, auid)}"
        )
        lines = [syscall_line]
        if success:
            lines += [f"type=EXECVE {head}{b}" for b in self._execve_records(argv)]
        cwd = self.rng.choice(["/home/alice/src/project", "/", "/var/lib/postgresql", "/root"])
        lines.append(f"type=CWD {head}cwd={_enc(cwd.encode())}")
        if not success:
            lines.append(
                f"type=PATH {head}item=0 name={_enc(argv[0].encode())} nametype=UNKNOWN "
                "cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0"
            )
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
            lines.append(
                f"type=PATH {head}"
                + self._path(0, argv[0] if argv[0].startswith("/") else exe, "NORMAL")
            )
            lines.append(f"type=PATH {head}{self._path(1, _LD, 'NORMAL')}")
        title = b"\x00".join(a.encode() for a in argv)[:128].rstrip(b"\x00")
        if len(argv) == 1 and title.isascii() and b" " not in title and b'"' not in title:
            lines.append(f'type=PROCTITLE {head}proctitle="{title.decode()}"')
        else:
            lines.append(f"type=PROCTITLE {head}proctitle={title.hex().upper()}")
        self.events += 1
        child = _Proc(child_pid, comm, exe, argv, uid, parent.ses, parent.tty)
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

    # -- scenario -----------------------------------------------------------------------

    def _parent(self) -> _Proc:
        if not self._parents:
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
        return self.rng.choice(self._parents[:7] + self._parents[9:])

    def _kexec_scenario(self) -> list[list[str]]:
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
            return self._kexec_scenario()
        if roll < 0.004:
            return self.user_session()
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
        if kind in ("sh", "bash") and r.random() < 0.5:
            # A shell that runs something: a grandchild, whose parent is a fresh process.
            sub = r.choices(_COMMANDS[:6], weights=self._command_weights[:6])[0]
            more, _ = self.exec_event(child, sub[0], sub[1], self._argv(sub[2], sub[0]))
            return [lines, more]
        return [lines]

    def lines(self) -> Iterator[str]:
        """Every line, in log order, with some events' records interleaved."""
        while True:
            batch = self.next_events()
            for event in batch:
                if self._held:
                    # Finish the held event's records after this one's first half.
                    cut = max(1, len(event) // 2)
                    yield from event[:cut]
                    yield from self._held
                    yield from event[cut:]
                    self._held = []
                    self.records += len(event)
                    continue
                if len(event) > 2 and self.rng.random() < self.interleave:
                    cut = self.rng.randrange(1, len(event))
                    yield from event[:cut]
                    self._held = event[cut:]
                    self.records += len(event)
                    continue
                self.records += len(event)
                yield from event


def generate(path: str | Path, size: int, *, seed: int = 1, **options: float) -> dict[str, object]:
    """Write about ``size`` bytes of log to ``path``; return the expectations.

    The expectations (also written to ``path + ".expected.json"``) list the audit ids of
    the kexec execs the shipped rule must alert on.
    """
    gen = Generator(seed=seed, **options)  # type: ignore[arg-type]
    written = 0
    with open(path, "wb") as out:
        buf: list[bytes] = []
        pending = 0
        for line in gen.lines():
            data = (line + "\n").encode("utf-8")
            buf.append(data)
            pending += len(data)
            if pending >= 1 << 20:
                out.write(b"".join(buf))
                written += pending
                buf, pending = [], 0
                if written >= size:
                    break
        if gen._held:  # never cut an event in half at the end
            buf.extend((line + "\n").encode() for line in gen._held)
        out.write(b"".join(buf))
        written += sum(len(b) for b in buf)
    expected = {
        "seed": seed,
        "bytes": written,
        "events": gen.events,
        "records": gen.records,
        "alerts": gen.expected,
    }
    Path(str(path) + ".expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    return expected


def main(argv: list[str] | None = None) -> int:
    """Command line: ``generate.py [--size 300M] [--seed N] OUTPUT``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output")
    parser.add_argument("--size", default="300M", help="100M, 300M, 1G ... (default 300M)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    exp = generate(args.output, parse_size(args.size), seed=args.seed)
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
