"""The tests behind a needle verdict's gate, as needle clauses (ABI 10).

A verdict whose rules' argument tests sit behind a gate of needles (``_Accepting.split``)
gave the session one needle set: a run whose command line holds any of them went to
Python. A rule's test usually needs more than its rarest needle (``process.args : "-o"
and process.command_line : "*/tmp/*"``): each conjunct's needles, an alternative's
union. The session now holds each test's clauses (:func:`needle_clauses`) and hands a
run to Python for its needles only when every clause of some test has one there
(``native/src/verdicts.rs`` ``needle_hit``); else Python's decision is its plain tests'
alone, as for a run without needles. These tests check the clauses, count what Python
reads and hold both scanners to the same outputs (with a hypothesis campaign).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.generate import Generator, _Proc
from kexecwatch.core.audit.nativeapi import STOP_END, STOP_PLAIN
from kexecwatch.core.detect.detector import DetectionRule, Detector, DetectorOptions
from kexecwatch.core.scan.argtest import AllOf, AnyOf, CredTest, Needles
from kexecwatch.core.scan.nativescan import NativeScanner, needle_clauses, needle_tests
from kexecwatch.native import NativeError
from kexecwatch.rules import load_rules
from tests.builders import feed_in_pieces
from tests.native.test_scan import EXEC, T0, eid, key, quiet, syscall
from tests.native.test_table import session
from tests.nativelib import native_lib
from tests.test_native_differential import assert_same
from tests.test_native_handbacks import _RULE as _PARENT_RULE
from tests.test_native_plain import _rule

NEEDLE = 0x80


def test_the_clauses_of_a_test() -> None:
    a, b, c = (frozenset({(t, True)}) for t in ("-a", "-bb", "-ccc"))
    assert needle_clauses(Needles(a)) == [a]
    assert needle_clauses(Needles(a, parent=True)) == []
    assert needle_clauses(AllOf((Needles(a), Needles(b)))) == [a, b]
    assert needle_clauses(CredTest("uid", frozenset({"0"}))) == []
    assert needle_clauses(AllOf((Needles(a), CredTest("uid", frozenset({"0"}))))) == [a]
    # An alternative: the union of one clause (the rarest) of each.
    assert needle_clauses(AnyOf((Needles(a), AllOf((Needles(b), Needles(c)))))) == [a | c]
    assert needle_clauses(AnyOf((Needles(a), CredTest("uid", frozenset({"0"}))))) == []
    assert needle_tests(True) == ()


#: Needs two needles: the rule's "--needle-flag" alone is in many a command line.
_BOTH_RULE = _rule(
    "both-test", 'process.args : "--needle-FLAG" and process.command_line : "*secret*"'
)


def _load(tmp: Path, *texts: str) -> list[DetectionRule]:
    for n, text in enumerate(texts):
        (tmp / f"rule{n}.toml").write_text(text)
    return list(load_rules([str(tmp)], builtin=False))


@pytest.fixture(scope="module")
def both_rules(tmp_path_factory: pytest.TempPathFactory) -> list[DetectionRule]:
    return _load(tmp_path_factory.mktemp("rules"), _BOTH_RULE)


@pytest.fixture(scope="module")
def both_and_parent_rules(tmp_path_factory: pytest.TempPathFactory) -> list[DetectionRule]:
    return _load(tmp_path_factory.mktemp("rules"), _BOTH_RULE, _PARENT_RULE)


def _execs(args: Sequence[tuple[str, ...]], parent: str = "bash", seed: int = 9) -> bytes:
    gen = Generator(seed=seed)
    init = _Proc(1, "systemd", "/usr/lib/systemd/systemd", ("/sbin/init",), 1000, 1, "(none)", 0)
    lines, shell = gen.exec_event(init, parent, "/usr/bin/" + parent, (parent,))
    for argv in args:
        event, _child = gen.exec_event(shell, "ls", "/usr/bin/ls", ("ls", *argv))
        lines += event
    return "".join(line + "\n" for line in lines).encode()


def _python_runs(log: bytes, rules: Sequence[DetectionRule]) -> int:
    det = Detector(
        copy.deepcopy(list(rules)), host_name="h", options=DetectorOptions(), native=native_lib()
    )
    scanner = det._scanner
    assert isinstance(scanner, NativeScanner)
    runs = 0
    event = scanner.fast_event

    def fast_event(*args: Any, **kwargs: Any) -> bool:
        nonlocal runs
        if not kwargs.get("taken", len(args) > 5 and args[5]):
            runs += 1
        return event(*args, **kwargs)

    scanner.fast_event = fast_event  # type: ignore[method-assign]
    feed_in_pieces(det, log)
    return runs


def test_a_needle_without_its_other_clause_stays_native(both_rules: list[DetectionRule]) -> None:
    """30 execs holding the rule's "--needle-flag" (each another command line) but not
    "secret": before, each was Python's (its gate's needle is there); now the session
    takes them (the test's other clause has no needle there). The two with "secret"
    alert, from both scanners alike."""
    args: list[tuple[str, ...]] = [("--needle-FLAG", str(i)) for i in range(30)]
    args[7] = ("--needle-FLAG", "secret")
    args[20] = ("--needle-FLAG", "x", "top-secret")
    log = _execs(args)
    assert _python_runs(log, both_rules) <= 3  # before: 31
    keys = assert_same(log, both_rules)
    assert sum(k.startswith("alert ") for k in keys) == 2
    assert_same(log, both_rules, cuts=(len(log) // 3,))
    assert_same(log, both_rules, max_inflight=1)


def test_the_session_is_given_each_tests_clauses(both_rules: list[DetectionRule]) -> None:
    det = Detector(copy.deepcopy(both_rules), host_name="h", native=native_lib())
    scanner = det._scanner
    assert isinstance(scanner, NativeScanner)
    raw = (b"arch=c000003e syscall=59", b"yes", b'"ls"', b'"/usr/bin/ls"')
    code, sent = scanner.verdict_and_needles(b"\0".join(raw))
    assert code & NEEDLE and sent is not None
    assert sent[3] == ((frozenset({(b"--needle-flag", True)}), frozenset({(b"secret", True)})),)


def _log(argv: str) -> bytes:
    tag = eid(T0, 100)
    return (
        syscall(T0, 100, 59, 200, 1, "ls")
        + f"type=EXECVE msg=audit({tag}): {argv}\n"
        + f"type=PROCTITLE msg=audit({tag}): proctitle=6C73\n"
    ).encode()


def test_tests_cross_the_abi() -> None:
    s = session(native_lib())
    try:
        s.set_needles([(b"-l", False), (b"zz", False)])
        log = _log('argc=2 a0="ls" a1="-l"')
        s.set_verdict_needles(
            key(59, "ls"), EXEC | NEEDLE, [(b"-l", False)], empty_if_no_execve=False
        )
        assert s.scan(log, 0, quiet()).stop == STOP_PLAIN  # "-l" is there
        s.set_verdict_needles(
            key(59, "ls"),
            EXEC | NEEDLE,
            [(b"-l", False)],
            empty_if_no_execve=False,
            tests=[[[(b"-l", False)], [(b"zz", False)]]],
        )
        assert s.scan(log, 0, quiet()).stop == STOP_END  # "-l" without "zz"
        s.set_verdict_needles(
            key(59, "ls"),
            EXEC | NEEDLE,
            [(b"-l", False)],
            empty_if_no_execve=False,
            tests=[[[(b"-l", False)], [(b"zz", False)]], [[(b"-l", False)]]],
        )
        assert s.scan(log, 0, quiet()).stop == STOP_PLAIN  # the second test may hold
        with pytest.raises(NativeError, match="was not set"):
            s.set_verdict_needles(
                key(59, "ls"),
                EXEC | NEEDLE,
                [(b"-l", False)],
                empty_if_no_execve=False,
                tests=[[[(b"yy", False)]]],
            )
    finally:
        s.close()


_ARGS = st.sampled_from(
    [
        (),
        ("-l",),
        ("--needle-FLAG",),
        ("--needle-FLAG", "secret"),
        ("--needle-FLAGx", "secret"),
        ("x--needle-flag", "-secret-"),
        ("secret",),
        ("/evil/x",),
    ]
)


@settings(max_examples=40, suppress_health_check=list(HealthCheck), deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["bash", "sshd"]), _ARGS, st.sampled_from([1000, 4242])),
        min_size=3,
        max_size=30,
    ),
    seed=st.integers(0, 50),
)
def test_clauses_are_exact(
    steps: list[tuple[str, tuple[str, ...], int]],
    seed: int,
    both_and_parent_rules: list[DetectionRule],
) -> None:
    """Execs by two parents and users with command lines holding one, both or none of
    a test's needles: the native scanner gives the Python scanner's outputs, counters and
    checkpoint state."""
    gen = Generator(seed=seed)
    init = _Proc(1, "systemd", "/usr/lib/systemd/systemd", ("/sbin/init",), 1000, 1, "(none)", 0)
    lines: list[str] = []
    shells = {}
    for parent in ("bash", "sshd"):
        event, shells[parent] = gen.exec_event(init, parent, "/usr/bin/" + parent, (parent,))
        lines += event
    for parent, args, uid in steps:
        shell = shells[parent]
        shell.uid = uid
        event, _child = gen.exec_event(shell, "ls", "/usr/bin/ls", ("ls", *args))
        lines += event
    log = "".join(line + "\n" for line in lines).encode()
    assert_same(log, both_and_parent_rules)


#: A rule whose only test behind the gate has a guard on the parent's name.
_GUARDED_RULE = _rule(
    "guarded-test", 'process.args : "--needle-FLAG" and process.parent.name == "sshd"'
)


@pytest.fixture(scope="module")
def guarded_rules(tmp_path_factory: pytest.TempPathFactory) -> list[DetectionRule]:
    return _load(tmp_path_factory.mktemp("rules"), _GUARDED_RULE, _PARENT_RULE)


def test_a_guard_that_fails_keeps_the_needle_native(guarded_rules: list[DetectionRule]) -> None:
    """30 execs by a shell, each another command line holding the rule's needle (the
    rule wants an sshd's): before, each was Python's; now Python tells the session once,
    for the shell's facts, that the test's guard fails, and the session takes them. By an
    sshd, the guard holds: Python's, and they alert."""
    args = [("--needle-FLAG", str(i)) for i in range(30)]
    log = _execs(args)
    assert _python_runs(log, guarded_rules) <= 2  # before: 31
    assert_same(log, guarded_rules)
    assert_same(log, guarded_rules, cuts=(len(log) // 2,))
    by_sshd = _execs(args[:5], parent="sshd")
    assert _python_runs(by_sshd, guarded_rules) == 6
    keys = assert_same(by_sshd, guarded_rules)
    assert sum(k.startswith("alert ") and '"id":"guarded-test"' in k for k in keys) == 5


def test_the_session_is_given_the_guards(guarded_rules: list[DetectionRule]) -> None:
    det = Detector(copy.deepcopy(guarded_rules), host_name="h", native=native_lib())
    scanner = det._scanner
    assert isinstance(scanner, NativeScanner)
    raw = (b"arch=c000003e syscall=59", b"yes", b'"ls"', b'"/usr/bin/ls"')
    _code, sent = scanner.verdict_and_needles(b"\0".join(raw))
    assert sent is not None
    assert sent[4] == (1, 1)  # the parent's name, test 0


@settings(max_examples=40, suppress_health_check=list(HealthCheck), deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["bash", "sshd", "sshx"]), _ARGS, st.sampled_from([1000, 4242])),
        min_size=3,
        max_size=30,
    ),
    seed=st.integers(0, 50),
)
def test_guards_are_exact(
    steps: list[tuple[str, tuple[str, ...], int]],
    seed: int,
    guarded_rules: list[DetectionRule],
) -> None:
    """Execs by parents the guard wants or not, with command lines holding the needle
    or not: the native scanner gives the Python scanner's outputs, counters and
    checkpoint state."""
    gen = Generator(seed=seed)
    init = _Proc(1, "systemd", "/usr/lib/systemd/systemd", ("/sbin/init",), 1000, 1, "(none)", 0)
    lines: list[str] = []
    shells = {}
    for parent in ("bash", "sshd", "sshx"):
        event, shells[parent] = gen.exec_event(init, parent, "/usr/bin/" + parent, (parent,))
        lines += event
    for parent, args, uid in steps:
        shell = shells[parent]
        shell.uid = uid
        event, _child = gen.exec_event(shell, "ls", "/usr/bin/ls", ("ls", *args))
        lines += event
    log = "".join(line + "\n" for line in lines).encode()
    assert_same(log, guarded_rules)
