"""What the Python scanner remembers to decide a run nobody needs in full ("learned only")
cheaply: the tests open behind a verdict's needle gate, per EXECVE bodies. It must answer
as the decision made afresh does, never across different bodies or verdicts, and stay
bounded whatever the input."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kexecwatch.core.detect.detector import Detector, DetectorOptions
from kexecwatch.core.scan import scanner
from kexecwatch.core.scan.argtest import Facts, NeedleGate, Needles, command_line_of
from kexecwatch.core.scan.fastpath import argv_of_execve_bodies
from kexecwatch.core.scan.prefilter import Prefilter
from kexecwatch.core.scan.scanner import PythonScanner
from tests.builders import exec_lines, feed_in_pieces, join
from tests.core.detect.test_detector import fingerprint
from tests.core.scan.test_fast_path import _QueryRule


def _log(rows: Sequence[tuple[str, tuple[str, ...]]], *, ppid: int = 1) -> bytes:
    """Execs (comm, args), one a millisecond, in the canonical SYSCALL layout."""
    lines: list[bytes] = []
    for serial, (comm, args) in enumerate(rows, start=1):
        for line in exec_lines(
            serial,
            t=f"1700000000.{serial % 1000:03d}",
            pid=1000 + serial,
            ppid=ppid,
            comm=comm,
            exe=f"/bin/{comm}",
            args=args,
        ):
            lines.append(line.replace(b" exit=0 items=", b" exit=0 a0=1 a1=2 a2=3 a3=4 items="))
    return join(lines)


def _python(rules: list[Any], *, fast: bool = True) -> Detector:
    return Detector(rules, host_name="h", options=DetectorOptions(fast_path=fast), native=None)


def _rules() -> list[Any]:
    return [
        _QueryRule('process where process.args : "--alpha"'),
        _QueryRule('process where process.command_line : "*beta x*"'),
        _QueryRule('process where process.args == "gamma" and process.name == "ls"'),
    ]


def test_recurring_arguments_open_the_gate_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Five runs of one verdict, three of them with the same arguments: the gate looks
    at each set of arguments once (before: once per run). Same alerts as the reference.
    (The gate's look: NeedleGate.shut itself is not asked of bodies of whole arguments.)"""
    looked: list[bytes | None] = []
    shut = scanner._GateLook.shut

    def counting(self: scanner._GateLook, facts: Facts) -> bool:
        looked.append(facts.raw_args)
        return shut(self, facts)

    monkeypatch.setattr(scanner._GateLook, "shut", counting)
    rows = [
        ("ls", ("ls", "-l")),
        ("ls", ("ls", "-l")),
        ("ls", ("ls", "--alpha")),
        ("ls", ("ls", "-l")),
        ("ls", ("ls", "--alpha")),
    ]
    out = fingerprint(feed_in_pieces(_python(_rules()), _log(rows)))
    assert out == fingerprint(feed_in_pieces(_python(_rules(), fast=False), _log(rows)))
    assert len(out) == 2
    assert len(looked) == 2
    assert len(set(looked)) == 2


def test_the_memo_never_answers_for_other_arguments_or_verdicts() -> None:
    """The same arguments under two verdicts (ls, cat) and arguments that differ by one
    byte: each decided as the reference decides it."""
    rows = [
        ("ls", ("ls", "gamma")),  # the third rule: ls only
        ("cat", ("cat", "gamma")),
        ("ls", ("ls", "gammA")),
        ("cat", ("cat", "beta x")),
        ("ls", ("ls", "beta", "x")),
        ("ls", ("ls", "beta", "y")),
        ("ls", ("ls", "gamma")),
    ]
    out = fingerprint(feed_in_pieces(_python(_rules()), _log(rows)))
    assert out == fingerprint(feed_in_pieces(_python(_rules(), fast=False), _log(rows)))
    assert len(out) == 4


def test_the_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Distinct arguments beyond the bound: what is remembered stays within it, and
    bodies longer than MAX_OPEN_RAW are never kept."""
    monkeypatch.setattr(scanner, "MAX_OPEN_TESTS", 8)
    det = _python(_rules())
    rows = [("ls", ("ls", f"x{i}")) for i in range(30)]
    rows.append(("ls", ("ls", "y" * scanner.MAX_OPEN_RAW)))
    feed_in_pieces(det, _log(rows))
    memo = det._scanner._open
    assert 0 < len(memo) <= 8
    assert all(raw is None or len(raw) <= scanner.MAX_OPEN_RAW for *_, raw in memo)


def test_a_rule_change_forgets_the_memo() -> None:
    det = _python(_rules())
    feed_in_pieces(det, _log([("ls", ("ls", "-l"))]))
    sc = det._scanner
    assert isinstance(sc, PythonScanner)
    assert sc._open
    det.replace_rules([_QueryRule('process where process.args : "-l"')])
    assert not sc._open


_WORDS = st.sampled_from(["ls", "-l", "--alpha", "gamma", "beta", "x", "beta x", "GAMMA", "é"])


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["ls", "cat", "bash", "zsh"]),
            st.lists(_WORDS, max_size=4).map(tuple),
            st.integers(0, 13),
        ),
        min_size=1,
        max_size=14,
    )
)
def test_remembered_decisions_equal_the_reference(
    rows: list[tuple[str, tuple[str, ...], int]],
) -> None:
    """Runs drawn from few words and parents (so arguments and parents recur), each the
    child of init or of an earlier run: the fast path with what it remembers raises
    exactly the reference path's alerts."""
    log = _family(
        [
            (1000 + i, 1000 + parent if parent < i else 1, comm, (comm, *args))
            for i, (comm, args, parent) in enumerate(rows)
        ]
    )

    def rules() -> list[Any]:
        return [
            *_rules(),
            _QueryRule('process where process.working_directory : "/x/*" or process.args == "x"'),
            _QueryRule('process where process.working_directory == "/srv" and process.args : "é"'),
            _QueryRule('process where process.parent.name == "bash" and process.args : "x"'),
            _QueryRule(
                'process where process.parent.command_line : "*beta*" and process.args : "-l"'
            ),
            # Needles there (the gate opens) while the test fails, decided by the
            # command line alone (and remembered so).
            _QueryRule('process where process.args : "-l" and process.args == "x"'),
            _QueryRule('process where process.args : "x" and process.args : "gamma"'),
        ]

    out = fingerprint(feed_in_pieces(_python(rules()), log))
    assert out == fingerprint(feed_in_pieces(_python(rules(), fast=False), log))


@settings(max_examples=500, deadline=None)
@given(args=st.lists(st.binary(max_size=6), max_size=5))
def test_the_command_line_is_each_argument_decoded_and_joined(args: list[bytes]) -> None:
    """Decoding the joined bytes at once gives what decoding each argument gives (invalid
    and truncated UTF-8 at the ends of arguments among them)."""
    expected = " ".join(a.decode("utf-8", "surrogateescape") for a in args)
    assert command_line_of(args) == expected


def test_alternatives_are_sorted_each_on_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rule on the working directory or some arguments: before, the test was asked
    whole for every run (its argument part decoding every command line); now the
    directory alternative is asked by what it reads and the argument alternative behind
    the gate: only the run holding the needle is decoded. Same alerts as the reference."""
    decoded: list[bytes] = []
    real = argv_of_execve_bodies

    def counting(raw: bytes) -> Any:
        decoded.append(raw)
        return real(raw)

    monkeypatch.setattr(scanner, "argv_of_execve_bodies", counting)
    rules = [
        _QueryRule(
            'process where process.working_directory : "/srv/*" or process.args : "--secret"'
        )
    ]
    rows = [
        ("ls", ("ls", "-l")),
        ("ls", ("ls", "/tmp")),
        ("ls", ("ls", "--SECRET")),
        ("ls", ("ls", "x", "y")),
    ]
    out = fingerprint(feed_in_pieces(_python(rules), _log(rows)))
    assert out == fingerprint(feed_in_pieces(_python(rules, fast=False), _log(rows)))
    assert len(out) == 1
    assert [b"--SECRET" in raw for raw in decoded] == [True]


def test_verdicts_with_the_same_needles_share_one_gate(monkeypatch: pytest.MonkeyPatch) -> None:
    """ls, cat and id under rules that do not name them: one gate for their one needle
    set (before: one per verdict, each compiling its searches)."""
    made: list[frozenset[tuple[str, bool]]] = []
    init = NeedleGate.__init__

    def counting(self: NeedleGate, needles: Any) -> None:
        needles = frozenset(needles)
        made.append(needles)
        init(self, needles)

    monkeypatch.setattr(NeedleGate, "__init__", counting)
    monkeypatch.setattr(scanner, "_GATES", {}, raising=False)
    rules = [_QueryRule('process where process.args : ("--delta", "--omega")')]
    rows = [("ls", ("ls", "-l")), ("cat", ("cat", "--delta")), ("id", ("id",))]
    out = fingerprint(feed_in_pieces(_python(rules), _log(rows)))
    assert out == fingerprint(feed_in_pieces(_python(rules, fast=False), _log(rows)))
    assert len(out) == 1
    assert made == [frozenset({("--delta", True), ("--omega", True)})]


def _family(rows: Sequence[tuple[int, int, str, tuple[str, ...]]]) -> bytes:
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
            uid=0 if comm == "id" else 1000,
        ):
            lines.append(line.replace(b" exit=0 items=", b" exit=0 a0=1 a1=2 a2=3 a3=4 items="))
    return join(lines)


_PLAIN_RULES = (
    'process where process.parent.name == "zsh" and process.args : "--alpha"',
    'process where process.parent.command_line : "*deploy*" or process.args : "--beta"',
    'process where process.working_directory == "/nowhere" or process.args : "--gamma"',
    'process where process.user.id == "0" and process.parent.name == "bash"',
    'process where process.thread.capabilities.effective : "CAP_SYS_ADMIN"',
)


def test_runs_decided_by_remembered_answers_make_no_facts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Six children of one shell, three arguments recurring: before, each run made its
    Facts (its comm and exe decoded, its callables made); now only a run that an answer
    remembered per bodies and per parent does not decide. Same alerts as the reference."""
    made: list[Facts] = []
    init = Facts.__init__

    def counting(self: Facts, *args: Any, **kwargs: Any) -> None:
        made.append(self)
        init(self, *args, **kwargs)

    monkeypatch.setattr(Facts, "__init__", counting)
    rules = [_QueryRule(text) for text in _PLAIN_RULES]
    rows = [(200, 1, "bash", ("bash", "deploy.sh"))]
    rows += [(201 + i, 200, "ls", ("ls", "-l" if i % 2 else "/srv")) for i in range(6)]
    out = fingerprint(feed_in_pieces(_python(rules), _family(rows)))
    fast_made = len(made)
    assert out == fingerprint(feed_in_pieces(_python(rules, fast=False), _family(rows)))
    # bash's run (its parent unknown), then the first ls runs of each arguments.
    assert fast_made <= 3


def test_a_runs_key_is_its_facts_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a run's answers are remembered by equals what its Facts give (every
    combination of reads, on runs with and without known parents, ids and arguments)."""
    checked: list[object] = []
    real = scanner._Run.key

    def checking(self: Any, reads: Any) -> Any:
        for bits in range(32):
            b = [bool(bits >> i & 1) for i in range(5)]
            every = (b[0], b[1], b[2], b[3], b[4])
            assert real(self, every) == self().key(every)
        checked.append(reads)
        return real(self, reads)

    monkeypatch.setattr(scanner._Run, "key", checking)
    rules = [_QueryRule(text) for text in _PLAIN_RULES]
    rows = [
        (200, 1, "bash", ("bash", "deploy.sh")),
        (201, 200, "ls", ("ls",)),
        (202, 200, "id", ("id", "-u")),
        (203, 999, "ls", ("ls", "x" * 2000)),
        (204, 203, "cat", ("cat", "y")),
    ]
    out = fingerprint(feed_in_pieces(_python(rules), _family(rows)))
    assert out == fingerprint(feed_in_pieces(_python(rules, fast=False), _family(rows)))
    assert len(checked) >= 4


def test_reference_path_events_ask_each_rule_once_per_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Events the fast path cannot take whole (no PROCTITLE record) are skimmed: before,
    every rule prefilter's SYSCALL constraints were asked for each; now once per
    (syscall, success, comm, exe, host), then only the prefilters they admit. Same
    alerts as the reference path."""
    asked: list[object] = []
    static = Prefilter.accepts_static

    def counting(self: Prefilter, *args: Any) -> bool:
        asked.append(self)
        return static(self, *args)

    monkeypatch.setattr(Prefilter, "accepts_static", counting)
    rules = [
        _QueryRule('process where process.name == "cat" and process.args : "--x"'),
        _QueryRule('process where process.name == "id"'),
        _QueryRule('process where process.args : "--alpha"'),
    ]
    lines: list[bytes] = []
    for serial in range(1, 6):
        for line in exec_lines(
            serial,
            t=f"1700000000.{serial:03d}",
            pid=100 + serial,
            comm="ls",
            exe="/bin/ls",
            args=("ls", "--alpha" if serial == 3 else "-l"),
            proctitle=False,
        ):
            lines.append(line.replace(b" exit=0 items=", b" exit=0 a0=1 a1=2 a2=3 a3=4 items="))
    log = join(lines)
    out = fingerprint(feed_in_pieces(_python(rules), log))
    fast_asks = len(asked)
    assert out == fingerprint(feed_in_pieces(_python(rules, fast=False), log))
    assert len(out) == 1
    # Each rule once for ls's values, then the one admitted (--alpha) once per event
    # (its accepts asks again); before: every rule for every event (15).
    assert fast_asks <= len(rules) + 5


def test_a_test_whose_guard_fails_is_not_looked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rule on the arguments of the children of one parent: for the children of any
    other parent, its needles are not looked for at all (before: their command lines,
    which hold "-o", were decoded and searched). Same alerts as the reference path."""
    decoded: list[bytes] = []
    real = argv_of_execve_bodies

    def counting(raw: bytes) -> Any:
        decoded.append(raw)
        return real(raw)

    monkeypatch.setattr(scanner, "argv_of_execve_bodies", counting)
    rules = [
        _QueryRule('process where process.parent.name == "ollama" and process.args : "-o"'),
        _QueryRule('process where process.args : "--alpha"'),
    ]
    rows = [
        (200, 1, "bash", ("bash",)),
        (201, 200, "curl", ("curl", "-o", "x", "http://a")),
        (202, 200, "curl", ("curl", "-o", "y", "http://b")),
        (300, 1, "ollama", ("ollama", "serve")),
        (301, 300, "curl", ("curl", "-o", "z", "http://c")),
        (302, 200, "curl", ("curl", "--alpha")),
    ]
    out = fingerprint(feed_in_pieces(_python(rules), _family(rows)))
    assert out == fingerprint(feed_in_pieces(_python(rules, fast=False), _family(rows)))
    assert len(out) == 2
    assert [raw for raw in decoded if b'"-o"' in raw] == [
        b'argc=4 a0="curl" a1="-o" a2="z" a3="http://c"'
    ]


def test_recurring_arguments_are_tested_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs of one verdict whose arguments hold a rule's needle but fail its test
    (``-l`` is there, ``x`` is not): before, every such run decoded its command line and
    tested it again; now the answer, from the command line alone, is remembered with the
    gate's per bodies. Same alerts as the reference."""
    tested: list[str | None] = []
    holds = Needles.holds

    def counting(self: Needles, facts: Facts) -> bool:
        tested.append(facts.own[2])
        return holds(self, facts)

    monkeypatch.setattr(Needles, "holds", counting)
    rules = [_QueryRule('process where process.args : "-l" and process.args == "x"')]
    rows = [("ls", ("ls", "-l", "y"))] * 4 + [("ls", ("ls", "-l", "x"))] * 2
    out = fingerprint(feed_in_pieces(_python(rules), _log(rows)))
    fast = len(tested)
    assert out == fingerprint(feed_in_pieces(_python(rules, fast=False), _log(rows)))
    assert len(out) == 2
    assert 0 < fast <= 2 * 2  # each of the two command lines once (its two needles)
