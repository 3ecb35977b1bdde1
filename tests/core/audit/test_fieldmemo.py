"""The remembered readers give exactly what the plain readers give, in bounded memory."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from kexecwatch.core.audit import fieldmemo
from kexecwatch.core.audit.fields import argv_from_execve, parse_fields

CANONICAL = (
    b"arch=c000003e syscall=59 success=yes exit=0 a0=55d1 a1=55d2 a2=55d3 a3=8 items=2 "
    b"ppid=10 pid=11 auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 "
    b'sgid=1000 fsgid=1000 tty=pts0 ses=3 comm="ls" exe="/usr/bin/ls" key="exec"'
)

# Pieces of SYSCALL-like bodies, odd ones included: duplicated names, " auid=" inside a
# quoted value, unterminated quotes, nested msg='...' payloads, stray tokens.
pieces = st.sampled_from(
    [
        b"pid=12",
        b"auid=0",
        b"uid=5",
        b"pid=13",
        b'comm="a auid=7 b"',
        b'exe="/x',
        b"msg='op=x auid=9 res=1'",
        b"stray",
        b"key=(null)",
        b'name=""',
        b"a=",
        b"  ",
        b"tty=(none)",
        b'"',
        CANONICAL.partition(b" auid=")[0],
        CANONICAL.partition(b" auid=")[0].replace(b" success", b" per=400000 success"),
    ]
)
bodies = st.lists(pieces, max_size=10).map(b" ".join) | st.binary(max_size=80)


@given(bodies, bodies)
@example(CANONICAL, b"")
@example(CANONICAL.replace(b" success", b" per=400000 success"), b"")
@example(CANONICAL.replace(b"exit=0", b"exit=-2 exit=3"), b"")
@example(b"pid=1 uid=2", b"auid=3 uid=4 pid=5")
@example(b'comm="x', b'auid=1 y"')
@settings(max_examples=400)
def test_a_syscall_body_reads_as_parse_fields_reads_it(head: bytes, tail: bytes) -> None:
    body = head + b" " + tail if tail else head
    want_fields, want_problems = parse_fields(body)
    for _ in range(2):  # read, then remembered
        fields, problems = fieldmemo.syscall_fields_of(body)
        assert list(fields.items()) == list(want_fields.items())
        assert list(problems) == want_problems


@given(bodies)
def test_any_body_reads_as_parse_fields_reads_it(body: bytes) -> None:
    want_fields, want_problems = parse_fields(body)
    for _ in range(2):
        fields, problems = fieldmemo.fields_of(body)
        assert list(fields.items()) == list(want_fields.items())
        assert list(problems) == want_problems


def test_the_part_from_auid_on_is_remembered() -> None:
    other = CANONICAL.replace(b"pid=11", b"pid=99").replace(b"a0=55d1", b"a0=77")
    first, _ = fieldmemo.syscall_fields_of(CANONICAL)
    second, _ = fieldmemo.syscall_fields_of(other)
    assert (first["pid"], second["pid"], second["a0"]) == (b"11", b"99", b"77")
    assert first["comm"] is second["comm"]  # one reading of the shared part
    assert first is not second  # each event has its own dict


execve = st.lists(
    st.sampled_from(
        [b"argc=2", b'a0="kexec"', b"a1=2D6C", b'a1="-e"', b"a2_len=4", b'a2[0]="ab"']
        + [b'a2[1]="cd"', b"argc=x", b"a9=41", b"argc=1"]
    ),
    max_size=6,
).map(b" ".join)


@given(st.lists(execve, min_size=1, max_size=3))
def test_argv_reads_as_argv_from_execve_reads_it(records: list[bytes]) -> None:
    fields = [parse_fields(body)[0] for body in records]
    argv, argc, problems = argv_from_execve(fields)
    for _ in range(2):
        assert fieldmemo.argv_of(tuple(records), fields) == (tuple(argv), argc, tuple(problems))


def test_memory_stays_bounded() -> None:
    for n in range(fieldmemo.MAX_ENTRIES * 2 + 5):
        fieldmemo.fields_of(b"cwd=%d" % n)
    assert len(fieldmemo._BODIES._entries) <= fieldmemo.MAX_ENTRIES
    long_body = b"a0=" + b"41" * fieldmemo.MAX_BODY
    fieldmemo.fields_of(long_body)
    assert long_body not in fieldmemo._BODIES._entries  # read, not remembered
