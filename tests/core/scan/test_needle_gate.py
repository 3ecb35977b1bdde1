"""The needle gate's look at raw EXECVE bodies (kexecwatch.core.scan.argtest.NeedleGate):
it must answer as the search of the decoded command line does, and spare the decoding
of every run whose arguments hold no needle."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kexecwatch.core.audit.fields import argv_from_execve, parse_fields
from kexecwatch.core.detect.detector import Detector, DetectorOptions
from kexecwatch.core.scan import argtest, fastpath, scanner
from kexecwatch.core.scan.argtest import Facts, NeedleGate, Needles, _one_of, command_line_of
from kexecwatch.core.scan.fastpath import argv_of_execve_bodies, whole_argv
from tests.builders import exec_lines, feed_in_pieces, join
from tests.core.detect.test_detector import fingerprint
from tests.core.scan.test_fast_path import _QueryRule


def _kernel_form(arg: bytes) -> bytes:
    """How the kernel writes one argument: quoted when printable, else upper-case hex."""
    if arg and all(0x21 <= b <= 0x7E and b != 0x22 for b in arg):
        return b'"' + arg + b'"'
    return arg.hex().upper().encode()


@st.composite
def _bodies(draw: st.DrawFn) -> bytes:
    """Raw EXECVE bodies (joined by newlines) in the kernel's forms and in odd ones."""
    alphabet = st.sampled_from([b"a", b"B", b"-", b" ", b"=", b'"', b"\xc3\xa9", b"\xff", b"K"])
    args = draw(st.lists(st.lists(alphabet, max_size=6).map(b"".join), min_size=0, max_size=5))
    fields = [b"argc=%d" % draw(st.integers(0, len(args) + 2))]
    for i, arg in enumerate(args):
        form = draw(st.sampled_from(["kernel", "hex", "lowerhex", "quoted", "split", "odd"]))
        if form == "kernel":
            fields.append(b"a%d=" % i + _kernel_form(arg))
        elif form == "hex":
            fields.append(b"a%d=" % i + arg.hex().upper().encode())
        elif form == "lowerhex":
            fields.append(b"a%d=" % i + arg.hex().encode())
        elif form == "quoted":  # hostile: a quoted value the kernel would have hexed
            fields.append(b'a%d="' % i + arg.replace(b'"', b"") + b'"')
        elif form == "split":
            half = len(arg) // 2
            fields.append(b"a%d_len=%d" % (i, len(arg)))
            fields.append(b"a%d[0]=" % i + _kernel_form(arg[:half] or b"x"))
            fields.append(b"a%d[1]=" % i + _kernel_form(arg[half:] or b"y"))
        else:
            fields.append(b"a%d=ABC" % i)
    cut = draw(st.integers(0, len(fields)))
    bodies = [b" ".join(fields[:cut]), b" ".join(fields[cut:])]
    raw = (
        b"\n".join(body for body in bodies if body)
        if cut not in (0, len(fields))
        else (b" ".join(fields))
    )
    return raw


def _needles(data: st.DataObject, line: str) -> list[tuple[str, bool]]:
    """Needles: pieces of ``line`` (some across arguments, some case-changed) and
    arbitrary text."""
    drawn = []
    for _ in range(data.draw(st.integers(0, 4))):
        if line and data.draw(st.booleans()):
            start = data.draw(st.integers(0, len(line) - 1))
            text = line[start : start + data.draw(st.integers(0, 8))]
        else:
            text = data.draw(st.text(alphabet="aB- =K\u212a\xe9\udcff.*", max_size=5))
        nocase = data.draw(st.booleans())
        drawn.append((text.lower() if nocase else text, nocase))
    return drawn


@settings(max_examples=300, deadline=None)
@given(data=st.data(), parent=st.booleans())
def test_needles_hold_when_one_is_in_the_command_line(data: st.DataObject, parent: bool) -> None:
    """An equality guard (it passed before): one search per needle set finds what
    ``text in line`` for each needle finds."""
    line = data.draw(st.text(alphabet="aAbB -.*\\K\u212a\u0130\xe9\udcff", max_size=12))
    drawn = _needles(data, line)
    known = ("n", "e", line)
    facts = Facts(known, (lambda: known) if parent else None)
    expected = any(text in (line.lower() if nocase else line) for text, nocase in drawn)
    assert Needles(frozenset(drawn), parent).holds(facts) is expected


@settings(max_examples=600, deadline=None)
@given(data=st.data())
def test_the_raw_look_answers_as_the_decoded_command_line(data: st.DataObject) -> None:
    raw = data.draw(_bodies())
    line = command_line_of(argv_of_execve_bodies(raw) or ())
    gate = NeedleGate(_needles(data, line))
    decoded = Facts(("n", "e", line))
    lazy = Facts(("n", "e", None), line=lambda: line, raw_args=raw)
    assert gate.shut(lazy) == gate.shut(decoded)
    if gate.shut_raw(raw):
        assert gate.shut(decoded)


def test_the_raw_look_decides_the_kernels_forms() -> None:
    gate = NeedleGate([("history", False), ("-c", False), ("/dev/tcp", True), ("nc -e", True)])
    assert gate.shut_raw(b'argc=3 a0="ls" a1="-l" a2="/srv"')
    assert gate.shut_raw(b'argc=2 a0="ls" a1=' + b"two words".hex().upper().encode())
    # Text beyond ASCII: str.lower may fold it to ASCII (KELVIN SIGN), so only the
    # case-sensitive needles are looked for in the raw text.
    beyond = b'argc=2 a0="ls" a1=' + b"r\xc3\xa9sum\xc3\xa9 x".hex().upper().encode()
    assert not gate.shut_raw(beyond)
    assert NeedleGate([("history", False), ("-c", False)]).shut_raw(beyond)
    # A needle in an argument (quoted, hex, case-folded, across two arguments): not shut.
    assert not gate.shut_raw(b'argc=2 a0="bash" a1="-c"')
    assert not gate.shut_raw(b"argc=2 a0=" + b"-c x".hex().upper().encode())
    assert not gate.shut_raw(b'argc=2 a0="cat" a1="/DEV/TCP/h/1"')
    assert not gate.shut_raw(b'argc=3 a0="NC" a1="-E" a2="sh"')
    # Digits of the field names are no argument text.
    assert NeedleGate([("0", False), ("argc", False)]).shut_raw(b'argc=1 a0="ls"')
    # Forms it does not read are left to the decoded command line.
    assert not gate.shut_raw(b'argc=1 a0_len=4 a0[0]="ls" a0[1]="-l"')
    assert not gate.shut_raw(b"argc=1 a0=6c73")  # lower-case hex
    assert not gate.shut_raw(b"")


def _exec_log(args_of: list[tuple[str, ...]]) -> bytes:
    lines: list[bytes] = []
    for serial, args in enumerate(args_of, start=1):
        for line in exec_lines(
            serial,
            t=f"1700000000.{serial:03d}",
            pid=100 + serial,
            comm="ls",
            exe="/bin/ls",
            args=args,
        ):
            # The kernel's canonical SYSCALL layout, which the fast path recognises.
            lines.append(line.replace(b" exit=0 items=", b" exit=0 a0=1 a1=2 a2=3 a3=4 items="))
    return join(lines)


def test_runs_without_a_needle_are_decided_without_decoding_their_arguments(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before, every run a rule's argument test looked at had its argv decoded: here
    five decodings where one (the run that holds the needle) is needed."""
    decoded: list[bytes] = []

    def counting(raw: bytes) -> Any:
        decoded.append(raw)
        return argv_of_execve_bodies(raw)

    monkeypatch.setattr(scanner, "argv_of_execve_bodies", counting)
    rule = _QueryRule('process where process.args : "--secret"')
    log = _exec_log([("ls", "-l"), ("ls", "x y"), ("ls", "--SECRET"), ("ls", "/srv"), ("ls",)])
    det = Detector([rule], host_name="h", options=DetectorOptions(fast_path=True))
    out = fingerprint(feed_in_pieces(det, log))
    reference = Detector([rule], host_name="h", options=DetectorOptions(fast_path=False))
    assert out == fingerprint(feed_in_pieces(reference, log))
    assert len(out) == 1
    assert [b"--SECRET" in raw for raw in decoded] == [True]


@settings(max_examples=300, deadline=None)
@given(
    words=st.lists(st.binary(max_size=4).map(lambda b: b.replace(b"\x00", b"(")), max_size=8),
    text=st.binary(max_size=24),
)
def test_one_search_finds_what_a_look_for_each_word_finds(words: list[bytes], text: bytes) -> None:
    """The trie search of many needles (regex metacharacters among them) finds one
    exactly when ``word in text`` holds for one of them."""
    search = _one_of(words)
    found = search is not None and search.search(text) is not None
    assert found is any(word in text for word in words)


def test_a_parents_arguments_are_tested_once_for_all_its_children(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Three children of one shell: the test on the shell's arguments is asked once, its
    answer remembered per parent command line (before: once per child)."""
    asked: list[Needles] = []
    holds = Needles.holds

    def counting(self: Needles, facts: Facts) -> bool:
        if self.parent:
            asked.append(self)
        return holds(self, facts)

    monkeypatch.setattr(Needles, "holds", counting)
    rule = _QueryRule(
        'process where process.parent.name == "bash"'
        ' and process.parent.command_line : "*run-command*"'
    )
    log = _family_log(
        [
            (200, 1, "bash", ("bash", "/var/lib/run-command/x.sh")),
            (201, 200, "cat", ("cat", "a")),
            (202, 200, "cat", ("cat", "b")),
            (203, 200, "id", ("id",)),
        ]
    )
    det = Detector([rule], host_name="h", options=DetectorOptions(fast_path=True))
    out = fingerprint(feed_in_pieces(det, log))
    fast_asks = len(asked)
    reference = Detector([rule], host_name="h", options=DetectorOptions(fast_path=False))
    assert out == fingerprint(feed_in_pieces(reference, log))
    assert len(out) == 3
    # cat's verdict asks once for both cats; id's verdict once more.
    assert fast_asks == 2


@settings(max_examples=300, deadline=None)
@given(data=st.data(), parent=st.booleans())
def test_many_needles_hold_as_a_look_for_each(data: st.DataObject, parent: bool) -> None:
    """More than a few needles are looked for with one trie search per case: it finds
    what ``text in line`` for each needle finds (needles sharing their ends, as the
    ``0.0`` to ``9.9`` rows do, among them)."""
    line = data.draw(st.text(alphabet="01a.A \u212a\xe9\udcff", max_size=16))
    pieces = st.text(alphabet="01a.A\u212a\xe9\udcff", min_size=1, max_size=3)
    drawn = [
        (text.lower() if nocase else text, nocase)
        for text, nocase in data.draw(
            st.lists(st.tuples(pieces, st.booleans()), min_size=4, max_size=24)
        )
    ]
    known = ("n", "e", line)
    facts = Facts(known, (lambda: known) if parent else None)
    expected = any(text in (line.lower() if nocase else line) for text, nocase in drawn)
    assert Needles(frozenset(drawn), parent).holds(facts) is expected
    assert NeedleGate(drawn).shut(Facts(known)) is not any(
        text in (line.lower() if nocase else line) for text, nocase in drawn
    )


def test_needles_sharing_their_ends_are_one_look_per_place() -> None:
    """Before, the hundred needles ``0.0`` to ``9.9`` made a trie of ten alternatives of
    ten: now one class, a dot, one class (and words with the same rest share one)."""
    digits = [f"{i}.{j}".encode() for i in range(10) for j in range(10)]
    search = _one_of(digits)
    assert search is not None
    assert search.pattern == rb"[0123456789]\.[0123456789]"
    search = _one_of([b"ab", b"cb", b"a-"])
    assert search is not None
    assert search.pattern == rb"(?:a[\-b]|cb)"
    assert [bool(search.search(t)) for t in (b"xcb", b"a-", b"ac", b"b")] == [
        True,
        True,
        False,
        False,
    ]


def test_quoted_arguments_are_looked_at_in_the_bodies_as_they_are(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before, every argument was read out of the bodies (a regex, a join) before the
    look: where all are quoted, the bodies hold them as they are and are searched at
    once; found in a field name only, the arguments are read out after all."""
    read: list[bytes] = []
    real = argtest._ARG

    class Counting:
        def findall(self, raw: bytes) -> list[tuple[bytes, bytes]]:
            read.append(raw)
            return real.findall(raw)

    monkeypatch.setattr(argtest, "_ARG", Counting())
    gate = NeedleGate([("history", False), ("/dev/tcp", True), ("0", False)])
    assert gate.shut_raw(b'argc=3 a1="ls" a2="-l" a3="/srv"')
    assert read == []
    assert gate.shut_raw(b'argc=1 a0="ls"')  # "0" only in a field name
    assert read == [b'argc=1 a0="ls"']
    assert not gate.shut_raw(b'argc=2 a1="cat" a2="/DEV/TCP/h"')
    hexed = b'argc=2 a0="ls" a1=' + b"two words".hex().upper().encode()
    assert gate.shut_raw(hexed)
    assert read[-1] == hexed


def test_an_open_gate_asks_only_the_tests_whose_needles_are_there(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Three rules with needles of their own: a run holding one rule's needle asks that
    rule's test alone (before: all three once the shared gate was open). Same alerts as
    the reference path."""
    asked: list[frozenset[tuple[str, bool]]] = []
    holds = Needles.holds

    def counting(self: Needles, facts: Facts) -> bool:
        asked.append(self.needles)
        return holds(self, facts)

    monkeypatch.setattr(Needles, "holds", counting)
    rules = [
        _QueryRule('process where process.args : "--alpha"'),
        _QueryRule('process where process.command_line : "*beta-x*"'),
        _QueryRule('process where process.args == "gamma"'),
    ]
    log = _exec_log([("ls", "--alpha"), ("ls", "plain"), ("ls", "x", "gamma")])
    det = Detector(rules, host_name="h", options=DetectorOptions(fast_path=True))
    out = fingerprint(feed_in_pieces(det, log))
    fast_asks = list(asked)
    reference = Detector(rules, host_name="h", options=DetectorOptions(fast_path=False))
    assert out == fingerprint(feed_in_pieces(reference, log))
    assert len(out) == 2
    assert sorted(next(iter(n))[0] for n in fast_asks) == ["--alpha", "gamma"]


def _general_argv(raw: bytes) -> tuple[bytes, ...]:
    """argv as the field-by-field reading gives it (what whole_argv must equal)."""
    argv, _, _ = argv_from_execve([parse_fields(body)[0] for body in raw.split(b"\n")])
    return tuple(argv)


@settings(max_examples=800, deadline=None)
@given(data=st.data())
def test_the_whole_argument_reading_equals_the_field_by_field_one(data: st.DataObject) -> None:
    """Bodies in the kernel's forms and odd ones (split, lower-case hex, hostile quotes,
    argc too small or too large, indices out of order): where whole_argv reads a body it
    gives the field-by-field reading's argv; argv_of_execve_bodies always does."""
    raw = data.draw(_bodies())
    if data.draw(st.booleans()):  # indices out of order, or a field twice
        raw = raw.replace(b" a1=", b" a2=", 1) if data.draw(st.booleans()) else raw + raw[6:]
    whole = whole_argv(raw)
    assert whole is None or whole == _general_argv(raw)
    assert argv_of_execve_bodies(raw) == _general_argv(raw)


def test_the_kernels_plainest_form_is_read_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before, every EXECVE body was split field by field (hundreds of microseconds for
    a compiler's command line): now a body of whole quoted or hex arguments in order is
    read in two C-level passes; any other body is read field by field as before."""
    split: list[bytes] = []

    def counting(body: bytes) -> Any:
        split.append(body)
        return parse_fields(body)

    monkeypatch.setattr(fastpath, "parse_fields", counting)
    hexed = b"two words".hex().upper().encode()
    assert argv_of_execve_bodies(b'argc=3 a0="ls" a1=' + hexed + b' a2=""') == (
        b"ls",
        b"two words",
        b"",
    )
    assert argv_of_execve_bodies(b"argc=0") == ()
    assert split == []
    for odd in (
        b'argc=3 a0="ls" a2="x"',  # argc beyond the arguments: padded
        b'argc=1 a0="ls" a1="x"',  # an argument beyond argc: dropped
        b"argc=1 a0=6c73",  # lower-case hex
        b'argc=1 a0_len=4 a0[0]="ab" a0[1]="cd"',
        b'argc=1 a0="ls"\nargc=1 a0="ls"',
        b"argc=1 a0=(null)",
    ):
        assert whole_argv(odd) is None
        assert argv_of_execve_bodies(odd) == _general_argv(odd)
    # Field by field: each odd body's records, but the pieces (split_argv reads them).
    assert len(split) == 7 - 1


def test_a_runs_parent_is_found_without_matching_its_head_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before, asking for a run's parent matched the whole SYSCALL head a second time for
    its ppid: now the ppid is read where the canonical layout puts it. Same alerts as
    the reference path."""
    matched: list[int] = []
    real = scanner.SYSCALL_HEAD

    class Counting:
        def search(self, buf: bytes, pos: int = 0) -> Any:
            return real.search(buf, pos)

        def match(self, buf: bytes, pos: int = 0) -> Any:
            matched.append(pos)
            return real.match(buf, pos)

    monkeypatch.setattr(scanner, "SYSCALL_HEAD", Counting())
    rule = _QueryRule('process where process.parent.name == "bash" and process.args : "-x"')
    log = _family_log(
        [(200, 1, "bash", ("bash",)), (201, 200, "ls", ("ls", "-x")), (202, 7, "ls", ("ls",))]
    )
    det = Detector([rule], host_name="h", options=DetectorOptions(fast_path=True))
    out = fingerprint(feed_in_pieces(det, log))
    assert matched == []
    reference = Detector([rule], host_name="h", options=DetectorOptions(fast_path=False))
    assert out == fingerprint(feed_in_pieces(reference, log))
    assert len(out) == 1


def _family_log(rows: list[tuple[int, int, str, tuple[str, ...]]]) -> bytes:
    """Execs (pid, ppid, comm, args), one a millisecond, in the canonical SYSCALL layout."""
    lines: list[bytes] = []
    for serial, (pid, ppid, comm, args) in enumerate(rows, start=1):
        for line in exec_lines(
            serial,
            t=f"1700000000.{serial:03d}",
            pid=pid,
            ppid=ppid,
            comm=comm,
            exe=f"/bin/{comm}",
            args=args,
        ):
            lines.append(line.replace(b" exit=0 items=", b" exit=0 a0=1 a1=2 a2=3 a3=4 items="))
    return join(lines)


def test_long_bodies_are_looked_for_in_the_decoded_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before, a compiler's 4 KB body was searched raw, and, a piece of a needle being in
    some argument, searched again decoded: now a body beyond MAX_RAW_LOOK is searched
    decoded only (its quoted arguments read by one split). Short bodies still raw."""
    looked: list[bytes] = []
    shut_raw = NeedleGate.shut_raw

    def counting(self: NeedleGate, raw: bytes) -> bool:
        looked.append(raw)
        return shut_raw(self, raw)

    monkeypatch.setattr(NeedleGate, "shut_raw", counting)
    gate = NeedleGate([("-o x", True), ("/dev/tcp", False)])
    args = [b"gcc", b"-O2", b"-o", b"app"] + [b"-I/usr/include/d%d" % i for i in range(200)]
    raw = b"argc=%d " % len(args) + b" ".join(b'a%d="%s"' % (i, arg) for i, arg in enumerate(args))
    assert len(raw) > argtest.MAX_RAW_LOOK
    line = command_line_of(args)
    assert gate.shut(Facts(("gcc", "/usr/bin/gcc", None), line=lambda: line, raw_args=raw))
    assert looked == []
    short = b'argc=2 a0="ls" a1="-l"'
    assert gate.shut(Facts(("ls", "/bin/ls", None), line=lambda: "ls -l", raw_args=short))
    assert looked == [short]


def test_quoted_bodies_are_read_by_one_split(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before, every argument of a quoted body was matched by a regex (hundreds for a
    linker line): now such a body is split at its quotes; any other form as before."""
    matched: list[bytes] = []
    real = fastpath._WHOLE_ARGV

    class Counting:
        def fullmatch(self, raw: bytes) -> Any:
            matched.append(raw)
            return real.fullmatch(raw)

    monkeypatch.setattr(fastpath, "_WHOLE_ARGV", Counting())
    assert whole_argv(b'argc=3 a0="ls" a1="-l" a2=""') == (b"ls", b"-l", b"")
    assert whole_argv(b'argc=1 a0="a b"') == (b"a b",)
    assert matched == []
    for other in (
        b'argc=2 a0="ls" a1=2D6C',  # hex
        b'argc=2 a0="ls" a2="-l"',  # an index out of order
        b'argc=3 a0="ls" a1="-l"',  # argc beyond the arguments
        b'argc=02 a0="ls" a1="-l"',
        b'argc=1 a0="ls"\nargc=1 a0="ls"',
    ):
        read = whole_argv(other)
        assert read is None or read == _general_argv(other)
    assert len(matched) == 5


def _quoted_body(args: list[bytes]) -> bytes:
    return b"argc=%d " % len(args) + b" ".join(
        b"a%d=" % i + _kernel_form(arg) for i, arg in enumerate(args)
    )


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_the_look_by_argument_answers_as_the_gate(data: st.DataObject) -> None:
    """Bodies looked at argument by argument (all of them; before, those beyond
    MAX_RAW_LOOK only), with what each argument holds remembered and the new ones
    searched at once: the gate's answer, and that of a look for each needle in the
    decoded line, for needles with and without spaces (empty ones too), arguments beyond
    ASCII, and other forms."""
    drawn = _needles(data, "ab -K=e")
    sigmas = ["\u03c3", "\u03c2", "a\u03c2", "i\u0307"]  # sigma, final sigma, dotted i
    drawn += [(text, True) for text in data.draw(st.lists(st.sampled_from(sigmas)))]
    look = scanner._GateLook(frozenset(drawn))
    for _ in range(data.draw(st.integers(1, 3))):
        words = st.sampled_from(
            # é, capital sigma (lower-cased by its neighbours), dotted capital I (two
            # characters lower-cased), a byte that is no UTF-8
            [b"a", b"B", b"-", b"ab", b"-K", b"=e", b"\xc3\xa9", b"x y"]
            + [b"\xce\xa3", b"A\xce\xa3", b"\xc4\xb0", b"\xff", b"\xe2\x84\xaa"]
        )
        args = data.draw(st.lists(st.lists(words, max_size=3).map(b"".join), max_size=5))
        raw = _quoted_body(args) if data.draw(st.booleans()) else data.draw(_bodies())
        line = command_line_of(argv_of_execve_bodies(raw) or ())
        facts = Facts(("n", "e", None), line=lambda line=line: line, raw_args=raw)
        reference = Facts(("n", "e", None), line=lambda line=line: line, raw_args=raw)
        shut = look.shut(facts)
        assert shut == look.gate.shut(reference)
        assert shut is not any(text in (line.lower() if nocase else line) for text, nocase in drawn)


def test_a_long_line_of_recurring_arguments_is_not_searched_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two compiler lines sharing their arguments: before, each 2 KB line was decoded
    and searched whole; now each argument is looked at once (those new in a line in one
    search), and the second line is decided by what its arguments were found to hold."""
    searched: list[str] = []
    found = argtest.LineSearch.found

    def counting(self: argtest.LineSearch, facts: Facts, parent: bool, line: str) -> bool:
        searched.append(line)
        return found(self, facts, parent, line)

    monkeypatch.setattr(argtest.LineSearch, "found", counting)
    look = scanner._GateLook(frozenset({("/dev/tcp", False), ("history", True)}))
    args = [b"gcc", b"-O2"] + [b"-I/usr/include/d%d" % (i % 40) for i in range(120)]
    for tail in (b"a.c", b"b.c"):
        raw = _quoted_body([*args, tail])
        assert len(raw) > argtest.MAX_RAW_LOOK
        line = command_line_of(argv_of_execve_bodies(raw) or ())
        facts = Facts(("gcc", "/usr/bin/gcc", None), line=lambda line=line: line, raw_args=raw)
        assert look.shut(facts)
    # The first line's 43 distinct arguments at once, then the second's new one.
    assert len(searched) == 2
    assert sorted(searched[0].split(" ")) == sorted({arg.decode() for arg in [*args, b"a.c"]})
    assert searched[1] == "b.c"


def test_short_lines_of_recurring_arguments_are_decided_by_their_arguments(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before, a body up to MAX_RAW_LOOK was searched whole, raw, every time: now its
    arguments are looked at as a long body's are, and a line of arguments seen before
    costs no search at all (c30: 1,200 of 3,100 short bodies the memo misses)."""
    searched: list[str] = []
    found = argtest.LineSearch.found

    def counting(self: argtest.LineSearch, facts: Facts, parent: bool, line: str) -> bool:
        searched.append(line)
        return found(self, facts, parent, line)

    monkeypatch.setattr(argtest.LineSearch, "found", counting)
    monkeypatch.setattr(NeedleGate, "shut_raw", lambda self, raw: pytest.fail("a raw look"))
    look = scanner._GateLook(frozenset({("/dev/tcp", False), ("history", True)}))
    for args in ([b"cc", b"-c", b"a.c"], [b"cc", b"a.c", b"-c"], [b"cc", b"-c", b"/dev/tcp"]):
        raw = _quoted_body(args)
        facts = Facts(("cc", "/usr/bin/cc", command_line_of(args)), raw_args=raw)
        assert look.shut(facts) is (b"/dev/tcp" not in args)
    # The first line's arguments at once; none for the second; the third's new one at
    # once and, a needle being there, one by one (to remember which holds it).
    assert searched == [searched[0], "/dev/tcp", "/dev/tcp"]


def test_a_needle_holding_another_is_not_searched_for() -> None:
    """Before, every needle went into the searches: now one holding another of the same
    case is left out (where it is, the other is), and the tries are smaller (the
    rules' ``.bash_history`` rows: ``/root/.bash_history``, ``/users/.bash_history``...).
    The looks above check that the answers are those of a look for every needle."""
    exact, folded = argtest._texts_of(
        {
            ("/root/.bash_history", True),
            (".bash_history", True),
            ("xdg-open", False),
            ("/usr/bin/xdg-open", False),
            ("a b", False),
            ("z", True),
            ("z c", True),
        }
    )
    assert exact == ("a b", "xdg-open")
    assert folded == (".bash_history", "z")
    gate = NeedleGate([("/usr/bin/xdg-open", False), ("xdg-open", False)])
    assert not gate.shut(Facts(("n", "e", "/bin/xdg-open x")))
    assert gate.shut(Facts(("n", "e", "/bin/xdg-opan x")))


@st.composite
def _split_bodies(draw: st.DrawFn) -> bytes:
    """EXECVE bodies with long arguments in pieces, as the kernel writes them (pieces in
    order, all quoted or all hex) and not (mixed forms, pieces missing or out of order,
    odd hex, argc off), fields a space or a record apart."""
    alphabet = st.sampled_from([b"a", b"B", b"-", b" ", b"\xc3\xa9", b"\xff", b"K", b"0"])
    args = draw(st.lists(st.lists(alphabet, max_size=6).map(b"".join), max_size=4))
    fields = [b"argc=%d" % (len(args) + draw(st.sampled_from([0, 0, 0, 1, -1])))]
    for i, arg in enumerate(args):
        if not draw(st.booleans()):
            fields.append(b"a%d=" % i + _kernel_form(arg))
            continue
        cuts = sorted(draw(st.lists(st.integers(0, len(arg)), min_size=1, max_size=3)))
        pieces = [arg[a:b] for a, b in zip([0, *cuts], [*cuts, len(arg)], strict=True)]
        hexed = draw(st.booleans()) or any(b" " in p or b"\xff" in p for p in pieces)
        numbers = list(range(len(pieces)))
        if draw(st.integers(0, 5)) == 0:
            numbers = draw(st.permutations(numbers)) if len(numbers) > 1 else [1]
        fields.append(b"a%d_len=%d" % (i, len(arg)))
        for number, piece in zip(numbers, pieces, strict=True):
            form = draw(st.sampled_from(["same", "same", "same", "other", "odd"]))
            as_hex = hexed is (form == "same") or form == "odd"
            text = piece.hex().upper().encode() if as_hex else b'"' + piece + b'"'
            if form == "odd":
                text += b"A"
            fields.append(b"a%d[%d]=" % (i, number) + text)
    body = fields[0]
    for field in fields[1:]:
        body += draw(st.sampled_from([b" ", b" ", b"\n"])) + field
    return body


@settings(max_examples=800, deadline=None)
@given(raw=_split_bodies())
def test_the_reading_of_arguments_in_pieces_equals_the_field_by_field_one(raw: bytes) -> None:
    """Where split_argv reads bodies it gives the field-by-field reading's argv, and it
    reads every body in the kernel's form (argc right, pieces in order and of one form,
    no odd hex)."""
    split = fastpath.split_argv(raw)
    assert split is None or split == _general_argv(raw)
    assert argv_of_execve_bodies(raw) == _general_argv(raw)


def test_a_class_path_in_pieces_is_read_without_the_field_by_field_reading(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A JVM's command line (a 30 KB class path in hex pieces over records): before, it
    was read field by field (parse_fields, argv_from_execve: ~0.5 ms); now by
    split_argv, and a needle gate looks at it by argument."""
    path = b":".join(b"/opt/app/lib/lib-%d.jar" % i for i in range(1500))
    code = path.hex().upper().encode()
    pieces = [code[i : i + 7000] for i in range(0, len(code), 7000)]
    raw = b'argc=4 a0="java" a1="-cp" a2_len=%d' % len(path)
    for number, piece in enumerate(pieces):
        raw += (b"\n" if number % 2 else b" ") + b"a2[%d]=" % number + piece
    raw += b' a3="com.example.Main"'
    expected = _general_argv(raw)
    assert expected == (b"java", b"-cp", path, b"com.example.Main")
    monkeypatch.setattr(fastpath, "parse_fields", lambda body: pytest.fail("field by field"))
    assert argv_of_execve_bodies(raw) == expected
    look = scanner._GateLook(frozenset({("/dev/tcp", False), ("history", True)}))
    monkeypatch.setattr(NeedleGate, "shut", lambda self, facts: pytest.fail("the whole line"))
    assert look.shut(Facts(("java", "/usr/bin/java", None), raw_args=raw))


def test_arguments_beyond_ascii_are_looked_at_by_argument(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before, a body with an argument beyond ASCII (a UTF-8 file name) was decoded and
    searched whole by the gate, every time: now it is looked at by argument too, with the
    same answers (lower-cased as the line is: a final sigma, a dotted capital I)."""
    monkeypatch.setattr(NeedleGate, "shut", lambda self, facts: pytest.fail("the whole line"))
    needles = {("/dev/tcp", False), ("\u03c3", True), ("i\u0307x", True)}  # sigma, dotted i
    look = scanner._GateLook(frozenset(needles))
    for args, shut in (
        ([b"cp", "résumé.txt".encode(), b"/tmp"], True),
        ([b"cp", "\u0391\u03a3".encode(), b"/tmp"], True),  # lower-cased: a final sigma
        ([b"cp", "\u0391\u03a3\u0391".encode(), b"/tmp"], False),  # a sigma
        ([b"cp", b"Ix", b"\xff"], True),
        ([b"cp", "\u0130x".encode(), b"\xff"], False),  # lower-cased: i, dot above, x
        ([b"cat", "résumé.txt".encode(), b"/dev/tcp/1"], False),
    ):
        line = command_line_of(args)
        assert any(t in (line.lower() if c else line) for t, c in look._needles) is not shut
        assert look.shut(Facts(("n", "e", line), raw_args=_quoted_body(args))) is shut
