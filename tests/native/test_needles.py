"""The native needle test (``native/src/needles.rs``) against a naive Python matcher.

A run whose verdict carries ``NEEDLE_IF_RELEVANT`` is taken natively only when no needle
of its group can be in its command line. The model: the command line exactly as the
Python prefilter reads it (``argv_of_execve_bodies(execve_bodies(...))`` joined by
spaces), each case-sensitive needle looked for in it, each case-insensitive one in its
``str.lower()``. Native may hand back more (odd layouts; for case-insensitive needles,
lines holding U+0130 or U+212A, or lines beyond ASCII with a case-insensitive needle beyond
ASCII), never less; on plain layouts otherwise it must answer exactly.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kexecwatch.core.audit.nativeapi import STOP_PLAIN
from kexecwatch.core.scan.argtest import command_line_of
from kexecwatch.core.scan.fastpath import argv_of_execve_bodies, execve_bodies
from kexecwatch.native import STOP_END, STOP_HANDBACK, NativeError, NativeLib, NativeSession
from tests.native.test_scan import EXEC, T0, eid, key, quiet, session, syscall

NEEDLE = 0x80
# Letters in both cases, the Kelvin sign (lower-cases to "k"), a dotted capital I, an e
# with an acute accent in both cases, quotes, spaces, a byte that is no UTF-8.
_ALPHABET = [
    b"a",
    b"b",
    b"k",
    b"K",
    b"-",
    b"/",
    b" ",
    b'"',
    b"'",
    "\u212a".encode(),
    "İ".encode(),
    "é".encode(),
    "É".encode(),
    b"\xff",
]
_TEXT = st.lists(st.sampled_from(_ALPHABET), max_size=6).map(b"".join)


@pytest.fixture
def native(native_lib: NativeLib) -> Iterator[NativeSession]:
    s = session(native_lib)
    yield s
    s.close()


def _quoted_ok(arg: bytes) -> bool:
    return all(0x21 <= b < 0x7F and b not in b"\"'" for b in arg)


def _value(arg: bytes, mode: str) -> bytes:
    if mode == "quoted" and _quoted_ok(arg):
        return b'"' + arg + b'"'
    text = arg.hex().encode()
    return text if mode == "hexlower" else text.upper()


def _execve_lines(tag: str, args: list[bytes], modes: list[str], layout: str) -> bytes:
    fields = [b"argc=%d" % (len(args) + (layout == "argc+1"))]
    for n, (arg, mode) in enumerate(zip(args, modes, strict=True)):
        value = _value(arg, mode)
        if layout == "chunked" and n == 0:
            fields += [b"a0_len=%d" % len(value), b"a0[0]=" + value]
        else:
            fields.append(b"a%d=" % n + value)
    header = f"type=EXECVE msg=audit({tag}): ".encode()
    if layout == "split" and len(fields) > 2:
        return header + b" ".join(fields[:2]) + b"\n" + header + b" ".join(fields[2:]) + b"\n"
    return header + b" ".join(fields) + b"\n"


def _run(args: list[bytes], modes: list[str], layout: str) -> tuple[bytes, bytes]:
    tag = eid(T0, 100)
    execve = _execve_lines(tag, args, modes, layout)
    log = (
        syscall(T0, 100, 59, 200, 1, "ls").encode()
        + execve
        + f'type=CWD msg=audit({tag}): cwd="/root"\n'.encode()
        + f"type=PROCTITLE msg=audit({tag}): proctitle=6C73\n".encode()
    )
    return log, execve


def _python_finds(execve: bytes, needles: list[tuple[str, bool]]) -> tuple[bool, str]:
    raw_id = eid(T0, 100).encode()
    argv = argv_of_execve_bodies(execve_bodies(execve, raw_id))
    assert argv is not None
    line = command_line_of(argv)
    found = any(text in (line.lower() if nocase else line) for text, nocase in needles)
    return found, line


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    args=st.lists(_TEXT, max_size=4),
    modes=st.lists(st.sampled_from(["quoted", "hex", "hexlower"]), min_size=4, max_size=4),
    layout=st.sampled_from(["plain", "plain", "split", "chunked", "argc+1"]),
    needles=st.lists(st.tuples(_TEXT, st.booleans()), min_size=1, max_size=5),
    pick=st.lists(st.booleans(), min_size=5, max_size=5),
)
def test_native_never_keeps_a_run_python_finds_a_needle_in(
    native: NativeSession,
    args: list[bytes],
    modes: list[str],
    layout: str,
    needles: list[tuple[bytes, bool]],
    pick: list[bool],
) -> None:
    # Python's needles: text as the rule gives it, case-insensitive ones lower-cased.
    as_text = [
        (
            t.decode("utf-8", "surrogateescape").lower()
            if nocase
            else t.decode("utf-8", "surrogateescape"),
            nocase,
        )
        for t, nocase in needles
    ]
    wire = [(t.encode("utf-8", "surrogateescape"), nocase) for t, nocase in as_text]
    native.set_needles(wire)
    group = [n for n, chosen in zip(wire, pick, strict=False) if chosen]
    native.set_verdict_needles(key(59, "ls"), EXEC | NEEDLE, group, empty_if_no_execve=False)
    log, execve = _run(args, modes[: len(args)], layout)
    chosen_text = [n for n, chosen in zip(as_text, pick, strict=False) if chosen]
    found, line = _python_finds(execve, chosen_text)
    result = native.scan(log, 0, quiet())
    # Python's: handed back, or (a needle may be in it) asked for by its full key.
    handed_back = result.stop in (STOP_HANDBACK, STOP_PLAIN) and result.end == 0
    assert handed_back or (result.stop, result.end) == (STOP_END, len(log))
    if found:
        assert handed_back, (line, chosen_text)
    # Plain: the layout native decodes (an empty hex value, ``a1=``, is not plain).
    plain = layout in {"plain", "split"} and all(
        _value(arg, m).startswith(b'"')
        or (arg and (m != "hexlower" or not any(c in arg.hex() for c in "abcdef")))
        for arg, m in zip(args, modes, strict=False)
    )
    # Beyond ASCII, folded: exact unless a character lower-cases onto ASCII, or a folded
    # needle is beyond ASCII (needles.rs).
    folded = any(nocase for _, nocase in chosen_text)
    unsure = folded and (
        "\u0130" in line
        or "\u212a" in line
        or (not line.isascii() and any(nocase and not t.isascii() for t, nocase in chosen_text))
    )
    if plain and not unsure:
        assert handed_back == found, (line, chosen_text)


def test_python_lowers_only_two_characters_beyond_ascii_onto_ascii() -> None:
    """needles.rs folds lines beyond ASCII as ASCII only because Python's ``str.lower``
    maps no character beyond ASCII onto ASCII but these two (they make the line
    "maybe"): a Python with other case mappings fails here."""
    onto_ascii = [
        c
        for c in range(0x80, 0x110000)
        if not 0xD800 <= c < 0xE000 and any(ord(x) < 0x80 for x in chr(c).lower())
    ]
    assert onto_ascii == [0x130, 0x212A]


def test_the_needles_cross_the_abi(native: NativeSession) -> None:
    tag = eid(T0, 100)
    log = (
        syscall(T0, 100, 59, 200, 1, "ls")
        + f'type=EXECVE msg=audit({tag}): argc=2 a0="ls" a1=2F746D702F78\n'
        + f"type=PROCTITLE msg=audit({tag}): proctitle=6C73\n"
    ).encode()
    native.set_needles([(b"/tmp/", False), (b"LS /", True), (b"/TMP", False)])
    native.set_verdict_needles(
        key(59, "ls"), EXEC | NEEDLE, [(b"/TMP", False)], empty_if_no_execve=False
    )
    assert native.scan(log, 0, quiet()).stop == STOP_END
    for needle in [(b"/tmp/", False), (b"LS /", True)]:
        native.set_verdict_needles(key(59, "ls"), EXEC | NEEDLE, [needle], empty_if_no_execve=False)
        assert native.scan(log, 0, quiet()).stop == STOP_PLAIN  # asked for its full key
    # Setting the needles forgets the verdicts (they name needles by number).
    native.set_needles([(b"x", False)])
    assert native.scan(log, 0, quiet()).key == key(59, "ls")
    with pytest.raises(NativeError, match="was not set"):
        native.set_verdict_needles(
            key(59, "ls"), EXEC | NEEDLE, [(b"y", False)], empty_if_no_execve=False
        )
