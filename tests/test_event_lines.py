"""``--events --format json`` lines written by the native library are the Python path's bytes.

The native library writes the line of a plain exec itself (``native/src/render.rs``,
``kexecwatch/core/process/eventlines.py``) and hands back everything else; whatever it
took, the lines, the counters and the checkpoint state must be exactly what the Python
scanner gives: on the recorded fixtures, generated logs of every shape, hypothesis-made
runs with hostile values (quotes, control bytes, non-UTF-8, long values), both
``--events-as`` vocabularies, with and without ``host.id``, with and without rules.
Each comparison also counts the lines the library wrote, so a path that silently hands
everything back cannot pass for rendering. Skipped (visibly) without the library unless
``KEXECWATCH_SCANNER=native`` (tests/nativelib.py).
"""

from __future__ import annotations

import copy
import io
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.generate import SHAPES, Generator
from kexecwatch.adapters.replay import replay
from kexecwatch.adapters.sources import expand_paths
from kexecwatch.core import jsontext
from kexecwatch.core.detect.detector import DetectionRule, Detector, DetectorOptions
from kexecwatch.core.process.eventlines import EventLines, event_pieces
from kexecwatch.core.process.events import ProcessEvent
from kexecwatch.core.scan.nativescan import default_native, set_default_native
from kexecwatch.rules import load_builtin_rules
from tests.core.process.test_run_events import runs
from tests.nativelib import native_lib

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "audit"
DEFAULT_RULES = load_builtin_rules()


def lines_of(
    data: bytes,
    *,
    native: bool,
    rules: Sequence[DetectionRule] = (),
    host_id: str | None = None,
    **options: Any,
) -> tuple[bytes, int, dict[str, int], dict[str, Any]]:
    """The ``--events`` lines of ``data``, how many of them the library wrote, the
    counters and the checkpoint state."""
    det = Detector(
        copy.deepcopy(list(rules)),
        host_name="h",
        host_id=host_id,
        options=DetectorOptions(emit_events=True, event_lines=native, **options),
        native=native_lib() if native else None,
    )
    out = [*det.feed(data), *det.flush()]
    parts: list[bytes] = []
    rendered = 0
    for item in out:
        if isinstance(item, EventLines):
            parts.append(item.data)
            rendered += item.data.count(b"\n")
        elif isinstance(item, ProcessEvent):
            parts.append(jsontext.line(item.to_document()))
    return b"".join(parts), rendered, det.stats.as_dict(), det.to_state()


def assert_same(data: bytes, **options: Any) -> int:
    """Native lines == Python lines (and counters and state); how many native wrote."""
    python, none, python_stats, python_state = lines_of(data, native=False, **options)
    native, rendered, native_stats, native_state = lines_of(data, native=True, **options)
    assert none == 0
    assert native == python
    assert native_stats == python_stats
    assert native_state == python_state
    return rendered


def generated(shape: str, n: int = 4000, seed: int = 11) -> bytes:
    gen = Generator(seed=seed, **SHAPES[shape])  # type: ignore[arg-type]
    return b"".join((line + "\n").encode() for _, line in zip(range(n), gen.lines(), strict=False))


def plain_exec(
    serial: int, pid: int, ppid: int, comm: str = "ls", args: tuple[str, ...] = ("ls", "-l")
) -> bytes:
    """A successful execve in the kernel's layouts (ENRICHED, as auditd writes it)."""
    head = f"type={{}} msg=audit(1700000000.{serial % 1000:03d}:{serial}): "
    argv = " ".join(f'a{i}="{a}"' for i, a in enumerate(args))
    return (
        head.format("SYSCALL") + "arch=c000003e syscall=59 success=yes exit=0 a0=55 a1=56 "
        f"a2=57 a3=8 items=2 ppid={ppid} pid={pid} auid=1000 uid=1000 gid=1000 euid=1000 "
        f'suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=2 comm="{comm}" '
        f'exe="/usr/bin/{comm}" subj=unconfined key="exec"\x1dARCH=x86_64 SYSCALL=execve '
        'AUID="alice" UID="alice" GID="alice" EUID="alice" SUID="alice" FSUID="alice" '
        'EGID="alice" SGID="alice" FSGID="alice"\n'
        + head.format("EXECVE")
        + f"argc={len(args)} {argv}\n"
        + head.format("CWD")
        + 'cwd="/home/alice"\n'
        + head.format("PATH")
        + f'item=0 name="/usr/bin/{comm}" inode=4{serial} dev=fe:01 '
        "mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 "
        'cap_fver=0 cap_frootid=0\x1dOUID="root" OGID="root"\n'
        + head.format("PROCTITLE")
        + "proctitle="
        + " ".join(args).encode().hex().upper()
        + "\n"
    ).encode()


# The first event sets the clock (Python reads it: native starts once it is quiet).
FIRST = plain_exec(4, 299, 1, "login")


def test_a_plain_exec_is_written_natively_as_python_writes_it() -> None:
    assert assert_same(FIRST + plain_exec(5, 300, 200)) == 1


def test_execs_with_a_known_parent_are_written_natively() -> None:
    # sh's parent is unknown; ls's is sh, whose exec the library took; cat's is ls.
    data = plain_exec(5, 300, 200, "sh") + plain_exec(6, 301, 300) + plain_exec(7, 302, 301)
    assert assert_same(FIRST + data) == 3
    assert assert_same(FIRST + data, host_id="m-1", events_as="defend") == 3
    # A parent whose exec Python handled (a failed exec of its own first: Python's).
    failed = plain_exec(5, 300, 200, "sh").replace(b"success=yes exit=0", b"success=no exit=-2")
    assert assert_same(FIRST + failed + plain_exec(6, 300, 200, "sh") + plain_exec(7, 301, 300)) > 0


def test_execs_with_an_entry_leader_are_handed_back() -> None:
    # A child of init; a grandchild of init through a known parent.
    assert assert_same(FIRST + plain_exec(5, 300, 1)) == 0
    assert assert_same(FIRST + plain_exec(5, 300, 1, "sh") + plain_exec(6, 301, 300)) == 0
    # A child of an entry service (by name, or by its executable's base name).
    assert assert_same(FIRST + plain_exec(5, 300, 200, "sshd") + plain_exec(6, 301, 300)) == 1
    login = plain_exec(5, 300, 200, "x").replace(b'exe="/usr/bin/x"', b'exe="/bin/login"')
    assert assert_same(FIRST + login + plain_exec(6, 301, 300)) == 1
    # A new login session below a known parent ("unknown" entry).
    child = plain_exec(6, 301, 300).replace(b" ses=2 ", b" ses=7 ")
    assert assert_same(FIRST + plain_exec(5, 300, 200, "sh") + child) == 1
    # The same session through two known ancestors, the third one unknown: no leader.
    chain = plain_exec(5, 300, 200, "sh") + plain_exec(6, 301, 300) + plain_exec(7, 302, 301)
    assert assert_same(FIRST + chain + plain_exec(8, 303, 302)) == 4


def test_split_arguments_are_written_natively() -> None:
    # A long argument in chunks over three EXECVE records (as the kernel writes one),
    # then a child of that process (its parent's argv: the three bodies from the table).
    long = "x" * 40
    run = plain_exec(5, 300, 200, "java", ("java", "-cp", long))
    head = b"type=EXECVE msg=audit(1700000000.005:5): "
    hexed = long.encode().hex().upper()
    split = (
        head
        + b'argc=3 a0="java" a1="-cp" a2_len=40 a2[0]='
        + hexed[:30].encode()
        + b"\n"
        + head
        + b"a2[1]="
        + hexed[30:60].encode()
        + b"\n"
        + head
        + b"a2[2]="
        + hexed[60:].encode()
        + b"\n"
    )
    execve = next(line for line in run.splitlines(keepends=True) if b"type=EXECVE" in line)
    data = FIRST + run.replace(execve, split) + plain_exec(6, 301, 300)
    assert data.count(b"type=EXECVE") == 5
    assert assert_same(data) == 2
    quoted = split.replace(b"a2[0]=" + hexed[:30].encode(), b'a2[0]="' + long[:15].encode() + b'"')
    quoted = quoted.replace(
        b"a2[1]=" + hexed[30:60].encode(), b'a2[1]="' + long[15:30].encode() + b'"'
    )
    quoted = quoted.replace(b"a2[2]=" + hexed[60:].encode(), b'a2[2]="' + long[30:].encode() + b'"')
    assert assert_same(FIRST + run.replace(execve, quoted) + plain_exec(6, 301, 300)) == 2


def fork(serial: int, pid: int, ppid: int, child: int) -> bytes:
    """A successful clone of ``pid`` (the table copies its argv and exec id to ``child``)."""
    head = f"type={{}} msg=audit(1700000000.{serial % 1000:03d}:{serial}): "
    return (
        head.format("SYSCALL") + f"arch=c000003e syscall=56 success=yes exit={child} a0=1 "
        f"a1=0 a2=0 a3=0 items=0 ppid={ppid} pid={pid} auid=1000 uid=1000 gid=1000 "
        "euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=2 "
        'comm="sh" exe="/usr/bin/sh" subj=unconfined key=(null)\n'
        + head.format("PROCTITLE")
        + "proctitle=7368\n"
    ).encode()


def test_a_forked_parent_is_written_as_python_writes_it() -> None:
    data = plain_exec(5, 300, 200, "sh") + fork(6, 300, 200, 305) + plain_exec(7, 306, 305)
    assert assert_same(FIRST + data) == 2


def test_a_parent_restored_from_a_checkpoint() -> None:
    # Restored entries hold a decoded argv (not EXECVE bodies).
    first = FIRST + plain_exec(5, 300, 200, "sh", ("sh", "-c", 'x\u00e9 \\ "y"'))
    then = plain_exec(6, 301, 300)
    outs = []
    for native in (False, True):
        _, _, _, state = lines_of(first, native=native)
        det = Detector(
            [],
            host_name="h",
            options=DetectorOptions(emit_events=True, event_lines=native),
            native=native_lib() if native else None,
        )
        det.restore(copy.deepcopy(state))
        out = [*det.feed(then), *det.flush()]
        lines = [i.data for i in out if isinstance(i, EventLines)]
        outs.append(
            (b"".join(lines), [i for i in out if isinstance(i, ProcessEvent)], det.to_state())
        )
    (python, python_events, python_state), (native, native_events, native_state) = outs
    assert python == b"" and native_events == [] and native_state == python_state
    assert native == b"".join(jsontext.line(e.to_document()) for e in python_events)
    assert b'"parent":{"args":["sh","-c"' in native


def interleaved(a: bytes, b: bytes) -> bytes:
    """Two runs' lines as a pair: A's SYSCALL, B's SYSCALL, then A's rest, then B's."""
    la, lb = a.splitlines(keepends=True), b.splitlines(keepends=True)
    return la[0] + lb[0] + b"".join(la[1:]) + b"".join(lb[1:])


def test_an_interleaved_pair_is_written_natively_unless_b_is_a_child_of_a() -> None:
    pair = interleaved(plain_exec(5, 300, 200, "sh"), plain_exec(6, 301, 201))
    assert assert_same(FIRST + pair) == 2
    child = interleaved(plain_exec(5, 300, 200, "sh"), plain_exec(6, 301, 300))
    assert assert_same(FIRST + child) == 0


def test_every_recorded_fixture() -> None:
    rendered = 0
    for path in sorted(FIXTURES.rglob("*.log")):
        data = path.read_bytes()
        for events_as in ("auditbeat", "defend"):
            rendered += assert_same(data, events_as=events_as)
            rendered += assert_same(data, rules=DEFAULT_RULES, host_id="m-1", events_as=events_as)
    assert rendered > 0


def test_generated_logs_of_every_shape() -> None:
    for shape in SHAPES:
        data = generated(shape)
        assert assert_same(data) > 0, shape
        assert assert_same(data, rules=DEFAULT_RULES, events_as="defend", host_id="x") > 0


def test_since_until_and_other_sinks_leave_lines_to_python() -> None:
    data = generated("classic", 1000)
    assert assert_same(data, since_ms=0) == 0


_KEYS = st.sampled_from(["(null)", '"exec"', "6B6579016F74686572"])


@st.composite
def split_argument(draw: st.DrawFn, index: int, data: bytes) -> list[str]:
    """Argument ``index`` as the kernel writes a long one: ``aN_len`` and its chunks,
    hex or quoted; sometimes off that layout (a chunk missing, a quoted one among hex
    ones, chunks out of order), which Python reads its own way."""
    quoted = b'"' not in data and b"\n" not in data and b"\x1d" not in data and draw(st.booleans())
    text = data.decode("latin-1") if quoted else data.hex().upper()
    step = draw(st.integers(1, 8)) * (1 if quoted else 2)
    pieces = [text[at : at + step] for at in range(0, len(text), step)] or [""]
    chunks = [f'"{p}"' if quoted else p or '""' for p in pieces]
    mess = draw(st.sampled_from(["", "", "", "gap", "mixed", "order"]))
    if mess == "gap" and len(chunks) > 1:
        del chunks[1]
    elif mess == "mixed":
        chunks.append('"x"' if not quoted else "78")
    elif mess == "order":
        chunks.reverse()
    return [f"a{index}_len={len(data)}"] + [f"a{index}[{n}]={c}" for n, c in enumerate(chunks)]


# Names of entry services (leaders.py) among the hostile ones: a parent so named makes
# its children's entry leader.
_NAMES = st.sampled_from([b"sshd", b"login", b"/usr/sbin/sshd", b"bash"]) | st.binary(max_size=16)


@st.composite
def plain_runs(
    draw: st.DrawFn, ppids: Sequence[int] = (2, 77, 4242, 10**9, 0, 1), serial: int = 0
) -> bytes:
    """Plain execs (the shape the library writes) whose values are drawn hostile: any
    bytes in arguments, working directory, title, names, comm and exe; parent pids from
    ``ppids``, serials from ``serial`` on (0: drawn)."""
    raw = st.binary(max_size=40) | st.binary(min_size=300, max_size=3000)
    lines: list[str] = []
    serial = serial or draw(st.integers(1, 10**6))
    ms = 0
    for n in range(draw(st.integers(1, 6))):
        ms += draw(st.integers(0, 3))
        head = f"type={{}} msg=audit(1700000000.{ms:03d}:{serial + n}): "

        def value(data: bytes) -> str:
            how = draw(st.integers(0, 2))
            if how == 0 and b'"' not in data and b"\n" not in data and b"\x1d" not in data:
                return '"' + data.decode("latin-1") + '"'
            if how == 1:
                return '"' + data.hex() + '"' if not data else data.hex().upper()
            return data.hex().upper() or '""'

        ppid = draw(st.sampled_from(list(ppids)))
        enriched = draw(
            st.sampled_from(
                [
                    "",
                    '\x1dARCH=x86_64 SYSCALL=execve AUID="unset" UID="root" GID="root" EUID="r\\x"',
                    "\x1dUID=626F62 EUID=\"\u00e9\" GID='x'",
                ]
            )
        )
        ids = " ".join(
            f"{name}={draw(st.sampled_from(['0', '1000', '4294967295']))}"
            for name in ("auid", "uid", "gid", "euid", "suid", "fsuid", "egid", "sgid", "fsgid")
        )
        lines.append(
            head.format("SYSCALL")
            + f"arch=c000003e syscall={draw(st.sampled_from(['59', '322']))} success=yes "
            f"exit={draw(st.sampled_from(['0', '-0', '00', '7']))} a0=1 a1=2 a2=3 a3=4 items=2 "
            f"ppid={ppid} pid={draw(st.integers(2, 99999))} {ids} "
            f"tty={draw(st.sampled_from(['(none)', 'pts3', 'tty1', '?']))} "
            f"ses={draw(st.sampled_from(['1', '4294967295']))} "
            f"comm={value(draw(_NAMES))} exe={value(draw(_NAMES | raw))} "
            f"key={draw(_KEYS)}" + enriched
        )
        if draw(st.booleans()):
            argv = draw(st.lists(raw, max_size=5))
            fields = [f"argc={len(argv)}"]
            for i, a in enumerate(argv):
                fields.extend(
                    draw(split_argument(i, a)) if draw(st.booleans()) else [f"a{i}={value(a)}"]
                )
            # The fields over one or more EXECVE records (the kernel splits long ones).
            cuts = (
                sorted(draw(st.sets(st.integers(1, len(fields) - 1), max_size=3)))
                if len(fields) > 1
                else []
            )
            for start, end in zip([0, *cuts], [*cuts, len(fields)], strict=True):
                lines.append(head.format("EXECVE") + " ".join(fields[start:end]))
        if draw(st.booleans()):
            lines.append(head.format("CWD") + f"cwd={value(draw(raw))}")
        for item in range(draw(st.integers(0, 3))):
            name = draw(st.sampled_from(["(null)", value(draw(raw))]))
            node = draw(
                st.sampled_from(["", "inode=0012 dev=fe:01 mode=0100755 ouid=0 ogid=0 rdev=00:00 "])
            )
            lines.append(head.format("PATH") + f"item={item} name={name} {node}nametype=NORMAL")
        title = draw(st.sampled_from(['"(null)"', "(null)", value(draw(raw))]))
        lines.append(head.format("PROCTITLE") + "proctitle=" + title)
    return "".join(line + "\n" for line in lines).encode("latin-1")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    plain_runs(),
    st.sampled_from(["auditbeat", "defend"]),
    st.sampled_from([None, "id-9", "h\u00e9\udcff"]),
)
def test_hostile_plain_execs(data: bytes, events_as: str, host_id: str | None) -> None:
    assert_same(data, events_as=events_as, host_id=host_id)


@st.composite
def families(draw: st.DrawFn) -> bytes:
    """Hostile plain execs, then hostile children of theirs (and of init)."""
    parents = draw(plain_runs())
    pids = [int(p) for p in re.findall(rb" pid=([0-9]+) ", parents)]
    last = max(int(s) for s in re.findall(rb":([0-9]+)\): ", parents))
    children = draw(plain_runs(ppids=[*pids, 1, 2], serial=last + 1))
    grandchildren = b""
    if draw(st.booleans()):
        kids = [int(p) for p in re.findall(rb" pid=([0-9]+) ", children)]
        last = max(int(s) for s in re.findall(rb":([0-9]+)\): ", children))
        grandchildren = draw(plain_runs(ppids=kids, serial=last + 1))
    return parents + children + grandchildren


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    families(),
    st.sampled_from(["auditbeat", "defend"]),
    st.sampled_from([None, "id-9", "h\u00e9\udcff"]),
)
def test_hostile_execs_with_known_parents(data: bytes, events_as: str, host_id: str | None) -> None:
    assert_same(data, events_as=events_as, host_id=host_id)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runs(), st.sampled_from(["auditbeat", "defend"]))
def test_any_run_is_written_the_same_or_handed_back(data: bytes, events_as: str) -> None:
    assert_same(data, events_as=events_as, rules=DEFAULT_RULES)


def test_a_rule_that_may_need_an_exec_keeps_it_in_python() -> None:
    # The bundled rules' kexec tests: the kexec exec goes to the rules (and alerts).
    kexec = plain_exec(5, 300, 200, "kexec", ("kexec", "-l", "vmlinuz"))
    data = FIRST + kexec + plain_exec(6, 301, 201)
    python, *_ = lines_of(data, native=False, rules=DEFAULT_RULES)
    native, rendered, stats, _ = lines_of(data, native=True, rules=DEFAULT_RULES)
    assert native == python
    assert rendered == 1 and stats["alerts"] >= 1


def test_the_answer_is_taken_from_the_document() -> None:
    tail = (
        b"auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts1 ses=3 "
        b'comm="ls" exe="/bin/ls" key="k"'
    )
    pieces = event_pieces(b"arch=c000003e syscall=59", b"yes", tail, "h", None, "defend")
    assert pieces is not None
    assert pieces[5] == b'"syscall":"execve"'
    assert json.loads(b"{" + pieces[7] + b"}")["event"]["action"] == "exec"
    # Not an exec: no answer.
    assert event_pieces(b"arch=c000003e syscall=105", b"yes", tail, "h", None, "defend") is None
    failed = event_pieces(b"arch=c000003e syscall=59", b"no", tail, "h", None, "defend")
    assert failed is not None and b'"outcome":"failure"' in failed[7]


def test_replay_writes_the_same_bytes_with_both_scanners(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(generated("mixed", 3000))
    outs = []
    saved = default_native()
    for lib in (None, native_lib()):
        set_default_native(lib)
        try:
            out = io.StringIO()
            replay(
                expand_paths([str(log)]),
                DEFAULT_RULES,
                host_name="h",
                options=DetectorOptions(emit_events=True),
                out_format="json",
                stdout=out,
                stderr=io.StringIO(),
            )
            outs.append(out.getvalue())
        finally:
            set_default_native(saved)
    assert outs[0] == outs[1] and outs[0].count("\n") > 100
