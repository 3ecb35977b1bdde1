"""Structure-aware mutations of real audit recordings, and what each mutation touched.

A :class:`Recording` knows, from its unmutated replay, which events its alerts depend on
(its *context*): the alerting events, the execs that made their parents and callers, every
event that names kexec (kexec runs teach the inode of the kexec binary), every event whose
``pid=`` or clone ``exit=`` is the pid of an alerting process, of a kexec run or of their
parents (those change the process table entries the rules read), and auditd's own ``DAEMON_*`` and
``CONFIG_CHANGE`` records (the telemetry rule reads their order). Every other event is
*free*: what it says must not change any alert.

A :class:`Mutant` records which original lines it changed, which event ids its lines now
claim, and whether it stayed free. :mod:`tools.fuzzlab` turns that into the oracle.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field

ID_RE = re.compile(rb"msg=audit\(([0-9]+)\.([0-9]+):([0-9]+)\)")
_PID_RE = re.compile(rb"(?<![A-Za-z_])(?:pid|exit)=([0-9]+)")
_PID_PPID_RE = re.compile(rb"(?<![A-Za-z_])p?pid=([0-9]+)")
_FIELD_RE = re.compile(rb"([A-Za-z0-9_\[\]-]+)=(\"[^\"]*\"|'[^']*'|[^ \x1d\n]*)")
_KEXEC_RE = re.compile(rb"kexec(?!watch)|6b65786563(?!7761746368)", re.IGNORECASE)
_TELEMETRY_TYPES = (b"type=DAEMON_", b"type=CONFIG_CHANGE")


def event_id_of(alert_id: str) -> str:
    """``sec.ms:serial`` of an alert id (``event.id``) (``<rule>:<node or ->:<sec.ms:serial>``)."""
    return ":".join(alert_id.rsplit(":", 2)[-2:])


def _eid(line: bytes) -> str | None:
    m = ID_RE.search(line)
    return f"{int(m[1])}.{m[2].decode()}:{int(m[3])}" if m else None


@dataclass
class Recording:
    """One unmutated recording, its alerts and the part of it they depend on."""

    name: str
    lines: list[bytes]
    line_eids: list[str | None]
    alerts: dict[str, str]  # alert id (event.id) -> event.action
    context_ids: set[str]
    context_pids: set[bytes]
    free: set[int]  # indexes of lines of free events
    last_line: dict[str, int]  # event id -> index of its last line

    @classmethod
    def build(cls, name: str, data: bytes, alerts: dict[str, str], ndjson: bytes) -> Recording:
        lines = data.splitlines(keepends=True)
        eids = [_eid(line) for line in lines]
        last_line = {e: i for i, e in enumerate(eids) if e is not None}
        context = {event_id_of(a) for a in alerts}
        pids: set[bytes] = set()
        for doc_line in ndjson.splitlines():
            doc = json.loads(doc_line)
            context.update(
                str(v) for k, v in doc.get("auditd", {}).items() if k.endswith("_exec_id") and v
            )
            proc = doc.get("process", {})
            for pid in (proc.get("pid"), proc.get("parent", {}).get("pid")):
                if pid is not None:
                    pids.add(str(pid).encode())
        # kexec runs that did not alert (the kdump service) depend on their parents too.
        for line in lines:
            if _KEXEC_RE.search(line):
                pids.update(_PID_PPID_RE.findall(line))
        for line, e in zip(lines, eids, strict=True):
            if e is None:
                continue
            if (
                _KEXEC_RE.search(line)
                or line.lstrip().startswith(_TELEMETRY_TYPES)
                or b" type=DAEMON_" in line
                or b" type=CONFIG_CHANGE" in line
                or any(p in pids for p in _PID_RE.findall(line))
            ):
                context.add(e)
        free = {i for i, e in enumerate(eids) if e is not None and e not in context}
        return cls(name, lines, eids, alerts, context, pids, free, last_line)


@dataclass
class Mutant:
    """A recording being mutated: its lines, where each came from, and what was touched."""

    recording: str
    lines: list[bytes]
    origin: list[int | None]  # original line index, None for an inserted line
    classes: list[str] = field(default_factory=list)
    touched: set[int] = field(default_factory=set)
    touched_ids: set[str] = field(default_factory=set)
    free: bool = True
    first_touched: int = 1 << 62
    data: bytes = b""

    @classmethod
    def start(cls, rec: Recording) -> Mutant:
        return cls(rec.name, list(rec.lines), list(range(len(rec.lines))))

    @property
    def cls(self) -> str:
        return "+".join(self.classes)

    def touch(self, rec: Recording, pos: int) -> None:
        """The line at ``pos`` is about to change (or be removed)."""
        orig = self.origin[pos]
        if orig is None:
            self.first_touched = min(self.first_touched, self._next_orig(pos))
            return
        self.touched.add(orig)
        eid = rec.line_eids[orig]
        if eid is not None:
            self.touched_ids.add(eid)
        self.first_touched = min(self.first_touched, orig)
        if orig not in rec.free:
            self.free = False

    def insert(self, pos: int, lines: list[bytes]) -> None:
        self.first_touched = min(self.first_touched, self._next_orig(pos))
        self.lines[pos:pos] = lines
        self.origin[pos:pos] = [None] * len(lines)

    def _next_orig(self, pos: int) -> int:
        return next((o for o in self.origin[pos:] if o is not None), len(self.origin))

    def finish(self, rec: Recording) -> None:
        """Join the lines; note what changed lines claim (ids and pids of the context)."""
        for pos, line in enumerate(self.lines):
            orig = self.origin[pos]
            if orig is not None and orig not in self.touched:
                continue
            before = rec.lines[orig] if orig is not None else b""
            for m in ID_RE.finditer(line):
                eid = f"{int(m[1])}.{m[2].decode()}:{int(m[3])}"
                self.touched_ids.add(eid)
                if eid in rec.context_ids:
                    self.free = False
            new_pids = set(_PID_RE.findall(line)) - set(_PID_RE.findall(before))
            if new_pids & rec.context_pids:
                self.free = False
        self.data = b"".join(self.lines)


# Share of the mutations that may hit any line, kexec events included: those exercise the
# alerting paths with hostile values (the oracle then keeps only the alerts before the hit).
ANYWHERE = 0.2


def pick(
    rec: Recording, m: Mutant, rng: random.Random, want: Callable[[bytes], bool] | None = None
) -> int:
    """A random position of a free line (that ``want`` accepts), or, for a share
    :data:`ANYWHERE` of the calls or when there is no free line, of any line."""
    ok = [
        p
        for p, o in enumerate(m.origin)
        if o is not None and o in rec.free and (want is None or want(m.lines[p]))
    ]
    if not ok or rng.random() < ANYWHERE:
        ok = [p for p, line in enumerate(m.lines) if want is None or want(line)] or [0]
    return rng.choice(ok)


def _body(line: bytes) -> tuple[bytes, bytes]:
    return (line[:-1], b"\n") if line.endswith(b"\n") else (line, b"")


def _replace_value(rec: Recording, m: Mutant, rng: random.Random, value: bytes) -> None:
    pos = pick(rec, m, rng)
    m.touch(rec, pos)
    line = m.lines[pos]
    fields = [f for f in _FIELD_RE.finditer(line) if f[1] != b"msg" or b"audit(" not in f[2]]
    if not fields:
        m.lines[pos] = _body(line)[0] + b" x=" + value + _body(line)[1]
        return
    f = rng.choice(fields)
    m.lines[pos] = line[: f.start(2)] + value + line[f.end(2) :]


def byteflip(rec: Recording, m: Mutant, rng: random.Random) -> None:
    for _ in range(rng.randint(1, 3)):
        pos = pick(rec, m, rng)
        m.touch(rec, pos)
        body, nl = _body(m.lines[pos])
        buf = bytearray(body)
        for _ in range(rng.randint(1, 3)):
            if buf:
                i = rng.randrange(len(buf))
                b = buf[i] ^ rng.randrange(1, 256)
                buf[i] = 11 if b == 10 else b  # a new line break would be a new line
        m.lines[pos] = bytes(buf) + nl


def truncate_line(rec: Recording, m: Mutant, rng: random.Random) -> None:
    pos = pick(rec, m, rng)
    m.touch(rec, pos)
    body, nl = _body(m.lines[pos])
    m.lines[pos] = body[: rng.randrange(len(body) + 1)] + nl


def truncate_file(rec: Recording, m: Mutant, rng: random.Random) -> None:
    pos = rng.randrange(len(m.lines))
    for p in range(pos, len(m.lines)):
        m.touch(rec, p)
    m.free = False  # the cut removes context too; only the prefix rule applies
    line = m.lines[pos]
    m.lines[pos] = line[: rng.randrange(len(line) + 1)]
    del m.lines[pos + 1 :]
    del m.origin[pos + 1 :]


def duplicate(rec: Recording, m: Mutant, rng: random.Random) -> None:
    pos = pick(rec, m, rng)
    m.touch(rec, pos)
    copies = rng.choice((1, 1, 2, 50))
    at = min(len(m.lines), pos + 1 + rng.choice((0, 0, 3, 30)))
    m.insert(at, [m.lines[pos]] * copies)


def _swap(rec: Recording, m: Mutant, a: int, b: int) -> None:
    m.touch(rec, a)
    m.touch(rec, b)
    m.lines[a], m.lines[b] = m.lines[b], m.lines[a]
    m.origin[a], m.origin[b] = m.origin[b], m.origin[a]


def reorder(rec: Recording, m: Mutant, rng: random.Random) -> None:
    """Two records within 20 lines swap places, as records of concurrent events interleave."""
    a = pick(rec, m, rng)
    near = range(max(0, a - 20), min(len(m.lines), a + 21))
    frees = [p for p in near if m.origin[p] is not None and m.origin[p] in rec.free]
    _swap(rec, m, a, rng.choice(frees or [a]))


def move_far(rec: Recording, m: Mutant, rng: random.Random) -> None:
    """Two records anywhere swap places: each is then dated seconds off its neighbours."""
    _swap(rec, m, pick(rec, m, rng), pick(rec, m, rng))


def huge_line(rec: Recording, m: Mutant, rng: random.Random) -> None:
    size = rng.choice((70_000, 300_000, 1_100_000, 2_500_000))
    if rng.random() < 0.6:
        _replace_value(rec, m, rng, b'"' + b"A" * size + b'"')
    else:
        pos = pick(rec, m, rng)
        m.insert(pos, [rng.choice((b"x", b"type=SYSCALL ", b"\xff")) * (size // 8) + b"\n"])


_YEAR_10000 = 253_402_300_800


def time_shift(rec: Recording, m: Mutant, rng: random.Random) -> None:
    """All records of one event dated elsewhere: seconds to days, year 10000, overflow."""
    pos = pick(rec, m, rng)
    eid = _eid(m.lines[pos])
    step = rng.choice(
        (1, 2, 6, 60, 86_400, -1, -6, -3600, -86_400, "y10000", "overflow", "ms", "zero")
    )
    for p, line in enumerate(m.lines):
        hit = ID_RE.search(line)
        if hit is None or _eid(line) != eid:
            continue
        m.touch(rec, p)
        sec, ms = int(hit[1]), hit[2]
        if step == "y10000":
            new = str(_YEAR_10000 + sec % 1000).encode()
        elif step == "overflow":
            new = b"9" * 20
        elif step == "zero":
            new = b"0"
        elif step == "ms":
            new, ms = str(sec).encode(), b"999999"
        else:
            assert isinstance(step, int)
            new = str(max(0, sec + step)).encode()
        m.lines[p] = line[: hit.start(1)] + new + b"." + ms + line[hit.end(2) :]


HOSTILE = (
    b"", b'"', b'"unterminated', b"''", b"'", b'"a"b"c"', b"(null)", b"?", b"-1",
    b"18446744073709551616", b"9" * 40, b"0x7fffffffffffffff", b"nan", b"inf", b"1e308",
    b"\x1b[2J\x1b]0;pwn\x07", b"%s%s%n", b"\\", b'\\\\\\"', b"=", b"a=b c=d", b"type=EOE",
    b"msg=audit(1.000:1):", b"\xe2\x80\xa8", b"\xc2\x85", b"\x1d", b'\x1dUID="root"',
    b'{"a":1}', b"'}", b"ABC", b"ZZZZ", b"00" * 2000, b"../../../../etc/passwd", b"\r",
    b"A" * 4096, b"-9223372036854775809", b"0" * 30, b"c000003e" * 100,
)  # fmt: skip


def hostile_value(rec: Recording, m: Mutant, rng: random.Random) -> None:
    for _ in range(rng.randint(1, 4)):
        _replace_value(rec, m, rng, rng.choice(HOSTILE))


def _insert_bytes(
    rec: Recording, m: Mutant, rng: random.Random, choices: tuple[bytes, ...]
) -> None:
    pos = pick(rec, m, rng)
    m.touch(rec, pos)
    body, nl = _body(m.lines[pos])
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(body) + 1)
        body = body[:i] + rng.choice(choices) + body[i:]
    m.lines[pos] = body + nl


def nul_bytes(rec: Recording, m: Mutant, rng: random.Random) -> None:
    _insert_bytes(rec, m, rng, (b"\x00", b"\x00" * 64, b"\x00\x00"))


def invalid_utf8(rec: Recording, m: Mutant, rng: random.Random) -> None:
    bad = (
        b"\xff",
        b"\xfe\xff",
        b"\xc0\x80",
        b"\x80",
        b"\xed\xa0\x80",
        b"\xf4\x90\x80\x80",
        b"\xe2\x82",
    )
    _insert_bytes(rec, m, rng, bad)


def _execve(line: bytes) -> bool:
    return b"type=EXECVE" in line


def argn_huge(rec: Recording, m: Mutant, rng: random.Random) -> None:
    """EXECVE argument fields with huge or odd indexes (``a99999999="x"``), on any exec,
    kexec runs included (those are parsed in full)."""
    pos = pick(rec, m, rng, _execve)
    m.touch(rec, pos)
    odd = (
        b' a99999999="x"', b' a4294967295="x"', b' a18446744073709551616="x"',
        b' a2147483647[0]="x"', b" a99999999_len=999999999", b' a1000000[3]="41"',
        b" argc=999999999", b' a-1="x"', b' a00000000000000000001="x"',
    )  # fmt: skip
    body, nl = _body(m.lines[pos])
    extra = b"".join(rng.choice(odd) for _ in range(rng.choice((1, 1, 3, 2000))))
    m.lines[pos] = body + extra + nl


def many_nodes(rec: Recording, m: Mutant, rng: random.Random) -> None:
    """Thousands of single records from distinct ``node=`` names, sharing a free event's id."""
    pos = pick(rec, m, rng)
    eid = _eid(m.lines[pos]) or "1.000:1"
    n = rng.choice((1000, 5000, 20_000, 40_000))
    kind = rng.choice((b"USER_CMD", b"USER_LOGIN", b"SERVICE_START"))
    block = [
        b"node=n%d type=%s msg=audit(%s): pid=4000000 uid=0 msg='cmd=6C73 res=success'\n"
        % (i, kind, eid.encode())
        for i in range(n)
    ]
    m.insert(pos + 1, block)


def node_fields(rec: Recording, m: Mutant, rng: random.Random) -> None:
    pos = pick(rec, m, rng)
    m.touch(rec, pos)
    line = m.lines[pos]
    if line.startswith(b"node="):
        line = line.split(b" ", 1)[1] if b" " in line else line
    prefix = rng.choice(
        (b"node= ", b"node=" + b"N" * 5000 + b" ", b"node=a node=b node=c ", b"node=\x1b[31m ",
         b"node=\xff\xfe ", b"node=" + b"node=" * 500 + b" ", b"node=a\x1db ")
    )  # fmt: skip
    m.lines[pos] = prefix + line


def deep_quoting(rec: Recording, m: Mutant, rng: random.Random) -> None:
    n = rng.choice((10, 1000, 50_000))
    value = rng.choice(
        (b'"' + b'\\"' * n + b'"', b"'" * n, b'"' * n, b"msg='" * n, b"(" * n, b"\"'" * n,
         b'"' + b"\\" * n, b"'" + b"a=' " * n)
    )  # fmt: skip
    _replace_value(rec, m, rng, value)


def header(rec: Recording, m: Mutant, rng: random.Random) -> None:
    pos = pick(rec, m, rng)
    m.touch(rec, pos)
    line = m.lines[pos]
    hit = ID_RE.search(line)
    if hit is None:
        return
    stamp = hit[0]
    new = rng.choice(
        (stamp[:-1], stamp + b":" + stamp, stamp.replace(b".", b".1234567"),
         stamp.replace(b":", b":" + b"9" * 25), stamp.replace(b":", b"::"), b"msg=audit()",
         b"msg=audit(" + b"1" * 5000 + b")", stamp.replace(b"msg=", b"msg=msg="))
    )  # fmt: skip
    line = line[: hit.start()] + new + line[hit.end() :]
    if rng.random() < 0.3:
        line = re.sub(rb"type=[A-Z_]+", rng.choice((b"type=", b"type=UNKNOWN[99999]",
                      b"type=" + b"X" * 300)), line, count=1)  # fmt: skip
    m.lines[pos] = line


MUTATIONS: dict[str, Callable[[Recording, Mutant, random.Random], None]] = {
    "byteflip": byteflip,
    "truncate-line": truncate_line,
    "truncate-file": truncate_file,
    "duplicate": duplicate,
    "reorder": reorder,
    "move-far": move_far,
    "huge-line": huge_line,
    "time-shift": time_shift,
    "hostile-value": hostile_value,
    "nul-bytes": nul_bytes,
    "invalid-utf8": invalid_utf8,
    "argn-huge": argn_huge,
    "many-nodes": many_nodes,
    "node-fields": node_fields,
    "deep-quoting": deep_quoting,
    "header": header,
}
