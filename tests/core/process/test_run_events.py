"""``process_event_of_run`` gives exactly ``process_event_from``'s process event, or ``None``.

The ``--events`` fast lane reads a whole fast-path run straight from its bytes; the
reference reads the run's records (``records_of``) as an assembled event. On recorded
fixtures, generated logs and hypothesis-made runs (hostile values, odd layouts, other
record types, parse problems) both must give equal process events whenever the lane
answers, and the lane must answer for the plain runs that make up real logs.
"""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from bench.generate import generate
from kexecwatch.core.audit.assembler import AuditEvent
from kexecwatch.core.audit.record import EventId
from kexecwatch.core.process.events import (
    ProcessEvent,
    process_event_from,
    process_event_of_run,
)
from kexecwatch.core.scan.fastpath import SYSCALL_HEAD, records_of, run_end
from tests.builders import exec_lines, join

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "audit"


def runs_of(data: bytes) -> list[tuple[bytes, EventId]]:
    """Every whole run the fast path recognises in ``data``, with its id."""
    buf = b"\n" + data
    found = []
    for m in SYSCALL_HEAD.finditer(buf):
        end = run_end(buf, m)
        if end is not None:
            event_id = EventId(int(m["sec"]), int(m["ms"]), int(m["serial"]))
            found.append((buf[m.start() + 1 : end[1]], event_id))
    return found


def kernel_exec(serial: int, args: tuple[str, ...] = ("kexec", "-l")) -> list[bytes]:
    """``exec_lines`` with the syscall arguments the kernel writes (the fast path's shape)."""
    lines = exec_lines(serial, args=args)
    lines[0] = lines[0].replace(b" exit=0 ", b" exit=0 a0=1 a1=2 a2=3 a3=4 ")
    return lines


def both(
    run: bytes, event_id: EventId, **options: str | None
) -> tuple[ProcessEvent | None, ProcessEvent | None]:
    """(the reference's process event, the lane's) of one run."""
    records = records_of(run, 7, event_id)
    host_id = options.get("host_id")
    events_as = options.get("events_as") or "auditbeat"
    reference = process_event_from(
        AuditEvent(None, event_id, records, "proctitle"), "h", host_id=host_id, events_as=events_as
    )
    lane = process_event_of_run(run, event_id, 7, "h", host_id=host_id, events_as=events_as)
    return reference, lane


def test_a_plain_exec_is_read_the_same() -> None:
    [(run, event_id)] = runs_of(join(kernel_exec(5, ("ls", "-l", "a b"))))
    reference, lane = both(run, event_id, host_id="id-1", events_as="defend")
    assert lane is not None
    assert lane == reference
    assert lane.args == (b"ls", b"-l", b"a b")


def test_recorded_fixtures_read_the_same() -> None:
    paths = sorted(FIXTURES.rglob("*.log"))
    assert paths, "the recorded fixtures are part of the repository"
    answered = 0
    for path in paths:
        for run, event_id in runs_of(path.read_bytes()):
            reference, lane = both(run, event_id)
            if lane is not None:
                answered += 1
                assert lane == reference, (path.name, event_id)
    assert answered > 100  # the lane is not vacuous on real recordings


def test_generated_logs_read_the_same_and_every_run_is_plain(tmp_path: Path) -> None:
    for shape in ("classic", "mixed"):
        log = tmp_path / f"{shape}.log"
        generate(log, 400_000, seed=3, shape=shape)
        runs = runs_of(log.read_bytes())
        assert len(runs) > 100
        for run, event_id in runs:
            reference, lane = both(run, event_id)
            if shape == "classic":
                assert lane is not None, run  # the bench's execs all take the lane
            if lane is not None:
                assert lane == reference


# -- hypothesis-made runs ------------------------------------------------------------

_TOKEN = st.text(st.sampled_from("abcXYZ019_-./:=%"), min_size=1, max_size=8)
_RAW = st.binary(max_size=12)


def _value(raw: bytes, how: int) -> str:
    """``raw`` written as the kernel writes a value: quoted, hex, or ``(null)``."""
    if how == 0 and b'"' not in raw and all(0x21 <= b < 0x7F for b in raw):
        return '"' + raw.decode() + '"'
    if how == 1 and b'"' not in raw and b"\n" not in raw and b"\x1d" not in raw:
        return '"' + raw.decode("latin-1") + '"'
    if how == 2:
        return "(null)"
    return raw.hex().upper() or '""'


@st.composite
def runs(draw: st.DrawFn) -> bytes:
    """One run in the fast path's shape, with values and layouts drawn wide."""
    serial = draw(st.integers(1, 10**6))
    head = f"type={{}} msg=audit(1700000000.{draw(st.integers(0, 999)):03d}:{serial}): "
    call = draw(
        st.sampled_from(
            [
                *("c000003e syscall=59", "c000003e syscall=322", "40000003 syscall=11"),
                *("c000003e syscall=246", "c000003e syscall=105", "c00000b7 syscall=221"),
            ]
        )
    )
    success = draw(st.booleans())
    per = draw(st.sampled_from(["", "per=400000 "]))
    ids = " ".join(
        f"{name}={draw(st.sampled_from(['0', '1000', '4294967295']))}"
        for name in ("auid", "uid", "gid", "euid", "suid", "fsuid", "egid", "sgid", "fsgid")
    )
    tty = draw(st.sampled_from(["(none)", "pts0", "tty1", "ttyS3", "console", "?"]))
    comm = _value(draw(_RAW), draw(st.integers(0, 3)))
    exe = _value(draw(_RAW), draw(st.integers(0, 3)))
    key = draw(st.sampled_from(["(null)", '"exec"', '"a b"', "6B6579016F74686572"]))
    subj = draw(st.sampled_from(["", "subj=unconfined ", "subj=a:b:c:s0 "]))
    syscall = (
        f"arch={call} {per}success={'yes' if success else 'no'} "
        f"exit={draw(st.sampled_from(['0', '-2', '3']))} a0=1 a1=ff a2=0 a3=8 items=2 "
        f"ppid={draw(st.integers(0, 99999))} pid={draw(st.integers(1, 99999))} "
        f"{ids} tty={tty} ses={draw(st.sampled_from(['1', '4294967295']))} "
        f"comm={comm} exe={exe} {subj}key={key}"
    )
    if draw(st.booleans()):
        syscall += '\x1dARCH=x86_64 SYSCALL=execve AUID="unset" UID="root" EUID="bob"'
    lines = [head.format("SYSCALL") + syscall]
    for _ in range(draw(st.integers(0, 3))):
        argv = draw(st.lists(_RAW, max_size=4))
        argc = draw(st.sampled_from([len(argv), len(argv) + 1]))
        body = " ".join(f"a{i}={_value(a, draw(st.integers(0, 3)))}" for i, a in enumerate(argv))
        lines.append(head.format("EXECVE") + f"argc={argc} {body}".rstrip())
    middle = st.sampled_from(
        [
            'CWD:cwd="/srv"',
            "CWD:cwd=2F7372760A",
            'PATH:item=0 name="/bin/ls" inode=5 dev=fe:01 mode=0100755 ouid=0 ogid=0 '
            "rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0",
            "PATH:item=1 name=(null) nametype=UNKNOWN",
            'PATH:item=1 name="/x" inode=0012 dev=fe:01 mode=0100755 ouid=0 ogid=0 '
            "rdev=00:00 obj=system_u nametype=NORMAL",
            'PATH:item=x name="/y" inode=-1 dev=? mode=(none) nametype="CREATE"',
            "BPRM_FCAPS:fver=2 fp=0 fi=0 fe=0 old_pp=0 old_pi=0 old_pe=0",
            "SOCKADDR:saddr=0100",
            'CWD:cwd="/a b" junk',
        ]
    )
    for item in draw(st.lists(middle, max_size=4)):
        kind, _, body = item.partition(":")
        lines.append(head.format(kind) + body)
    title = draw(st.sampled_from(["6C73002D6C", '"(null)"', '"ls"', "(null)"]))
    lines.append(head.format("PROCTITLE") + "proctitle=" + title)
    ending = draw(st.sampled_from(["", " ", "\r"]))
    return b"".join(line.encode("latin-1") + ending.encode() + b"\n" for line in lines)


@settings(max_examples=400, deadline=None)
@given(runs(), st.sampled_from(["auditbeat", "defend"]), st.sampled_from([None, "id-9"]))
def test_any_run_is_read_the_same_or_left_to_the_reference(
    data: bytes, events_as: str, host_id: str | None
) -> None:
    for run, event_id in runs_of(data):
        reference, lane = both(run, event_id, host_id=host_id, events_as=events_as)
        if lane is not None:
            assert lane == reference
            assert not lane.problems  # a run with problems is the reference's


def test_a_run_with_another_record_type_is_left_to_the_reference() -> None:
    lines = kernel_exec(5)
    lines.insert(2, re.sub(rb"type=EXECVE", b"type=BPRM_FCAPS", lines[1]))
    [(run, event_id)] = runs_of(join(lines))
    reference, lane = both(run, event_id)
    assert reference is not None
    assert lane is None


def test_a_run_with_a_parse_problem_is_left_to_the_reference() -> None:
    [(run, event_id)] = runs_of(join(kernel_exec(5)).replace(b'cwd="/srv"', b'cwd="/srv" junk'))
    reference, lane = both(run, event_id)
    assert reference is not None and reference.problems
    assert lane is None
