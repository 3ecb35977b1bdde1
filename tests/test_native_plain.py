"""The native plain-fact verdict cache (issue 15, ``native/src/plain.rs``).

With many rules, nearly every exec's verdict key has rule prefilters that read, besides
the exec's own argument needles, only plain facts: the parent's name, executable or
command line, the working directory, the ids, whether a record states the capability
sets (``_Accepting.split()``'s gate and plain parts). Before, the session handed every
relevant run of such a key to Python, which decided it and, nearly always, only taught
the table from it. Now the session keys Python's "learned only" answer by those facts,
exactly (bytes): a run with the same facts and none of its needles stays native. These
tests count what Python reads, hold both scanners to the same outputs, counters and
checkpoint state (with a hypothesis campaign over parents, ids, directories and
capabilities), and check the cache's invalidation and the binding's arguments.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.generate import Generator, _Proc
from kexecwatch.core.audit.nativeapi import STOP_HANDBACK, STOP_PLAIN, QuietState, ScanResult
from kexecwatch.core.detect.detector import DetectionRule, Detector, DetectorOptions
from kexecwatch.core.scan.nativescan import NativeScanner, plain_split
from kexecwatch.native import NativeError
from kexecwatch.rules import load_rules
from tests.builders import feed_in_pieces
from tests.native.test_table import session
from tests.nativelib import native_lib
from tests.test_native_differential import assert_same
from tests.test_native_handbacks import _RULE as _PARENT_RULE
from tests.test_native_handbacks import _execs, _times
from tests.test_native_needles import _RULE as _NEEDLE_RULE


def _rule(rule_id: str, query: str) -> str:
    return _NEEDLE_RULE.replace('"needle-test"', f'"{rule_id}"').replace(
        'process.args : "--needle-FLAG" or process.command_line like~ "*/evil/*"', query
    )


#: A rule on the working directory and the parent's command line, one on the capability
#: sets and the parent's executable.
_CWD_RULE = _rule(
    "cwd-test",
    'process.working_directory == "/root" and process.parent.command_line like~ "*-x*"',
)
_CAPS_RULE = _rule(
    "caps-test",
    'process.thread.capabilities.effective : "CAP_NET_RAW" and '
    'process.parent.executable == "/usr/sbin/sshd"',
)


def _load(tmp: Path, *texts: str) -> list[DetectionRule]:
    for n, text in enumerate(texts):
        (tmp / f"rule{n}.toml").write_text(text)
    return list(load_rules([str(tmp)], builtin=False))


@pytest.fixture(scope="module")
def plain_rules(tmp_path_factory: pytest.TempPathFactory) -> list[DetectionRule]:
    """The parent/ids rule beside the needle rule: an ``ls`` key's prefilters split into
    a gate (the needles) and plain parts (the parent's name, the ids)."""
    return _load(tmp_path_factory.mktemp("rules"), _PARENT_RULE, _NEEDLE_RULE)


@pytest.fixture(scope="module")
def every_fact_rules(tmp_path_factory: pytest.TempPathFactory) -> list[DetectionRule]:
    """Rules whose plain parts read every fact a plain key holds."""
    return _load(
        tmp_path_factory.mktemp("rules"), _PARENT_RULE, _NEEDLE_RULE, _CWD_RULE, _CAPS_RULE
    )


class Spy:
    """The Python fast path's whole runs read, and the scan calls' stops, of one replay."""

    def __init__(self, det: Detector) -> None:
        scanner = det._scanner
        assert isinstance(scanner, NativeScanner)
        self.scanner = scanner
        self.runs = 0
        self.stops: Counter[int] = Counter()
        scan = scanner.session.scan
        event = scanner.fast_event

        def counted(
            buf: bytes, start: int, state: QuietState, due_ms: int | None = None
        ) -> ScanResult:
            result = scan(buf, start, state, due_ms)
            self.stops[result.stop] += 1
            return result

        def fast_event(*args: Any, **kwargs: Any) -> bool:
            if not kwargs.get("taken", len(args) > 5 and args[5]):
                self.runs += 1
            return event(*args, **kwargs)

        scanner.session.scan = counted  # type: ignore[method-assign]
        scanner.fast_event = fast_event  # type: ignore[method-assign]


def _replay(log: bytes, rules: Sequence[DetectionRule], **options: Any) -> tuple[Detector, Spy]:
    det = Detector(
        copy.deepcopy(list(rules)),
        host_name="h",
        options=DetectorOptions(**options),
        native=native_lib(),
    )
    spy = Spy(det)
    feed_in_pieces(det, log)
    return det, spy


def test_an_ls_keys_prefilters_are_a_gate_and_plain_parts(
    plain_rules: list[DetectionRule], every_fact_rules: list[DetectionRule]
) -> None:
    """What the verdict sends the session: the needle rule's needles, and the plain
    parts' reads as bits (parent name 1, cwd 2, ids 4, capabilities 8, parent line 16)."""
    key = (b"arch=c000003e syscall=59", b"yes", b'"ls"', b'"/usr/bin/ls"')
    for rules, reads in ((plain_rules, 1 | 4), (every_fact_rules, 31)):
        det = Detector(copy.deepcopy(rules), host_name="h", native=native_lib())
        scanner = det._scanner
        assert isinstance(scanner, NativeScanner)
        verdict = scanner.verdict(key)
        split = plain_split(verdict[5], verdict[0])
        assert split is not None
        needles, empty_if_no_execve, bits = split
        assert needles == {("--needle-flag", True), ("/evil/", True)}
        assert (empty_if_no_execve, bits) == (True, reads)
        _code, sent = scanner.verdict_and_needles(b"\0".join(key))
        assert sent is not None and sent[2] == reads
        assert not scanner.hands_back(key, relevant=True)


def test_runs_with_the_same_plain_facts_stay_native(plain_rules: list[DetectionRule]) -> None:
    """60 execs by one shell: before, Python read each of them (the key's parent/ids test
    sent every relevant run back); now it reads the shell's exec, the first child (whose
    plain facts the session then knows), the two by user 4242 (other ids: the rule needs
    them) and the one with a needle. The alerts are the Python scanner's."""
    log = _execs(60, hits=(20, 41)).replace(b'a2="33"', b'a2="--needle-flag"')
    assert log.count(b"--needle-flag") == 1
    det, spy = _replay(log, plain_rules)
    assert spy.runs <= 6, spy.runs  # before: 61
    # The first child, the two by 4242, and the needle (its full key: Python needs it).
    assert spy.stops[STOP_PLAIN] == 4, spy.stops
    assert spy.stops[STOP_HANDBACK] == 0, spy.stops
    assert det.stats.events == 61
    keys = assert_same(log, plain_rules)
    assert sum(k.startswith("alert ") for k in keys) == 3
    times = _times(log)
    assert_same(log, plain_rules, since_ms=times[10], until_ms=times[40])
    assert_same(log, plain_rules, cuts=(len(log) // 3, len(log) // 2))
    assert_same(log, plain_rules, max_inflight=1)


def test_another_parent_asks_again(plain_rules: list[DetectionRule]) -> None:
    """The children of an sshd: other plain facts (the parent's name), another answer
    (the rule needs them all): each is Python's."""
    log = _execs(10, parent="sshd")
    _det, spy = _replay(log, plain_rules)
    assert spy.runs == 11
    keys = assert_same(log, plain_rules)
    assert sum(k.startswith("alert ") for k in keys) == 10


def test_plain_answers_go_when_the_rules_change(plain_rules: list[DetectionRule]) -> None:
    """A reload (the prefilters change) forgets the answers, here and in the session."""
    log = _execs(20)
    det, spy = _replay(log, plain_rules)
    session = spy.scanner.session
    count, size = session.plain_len()  # type: ignore[attr-defined]
    assert count >= 1 and size > 0
    det.replace_rules(copy.deepcopy(plain_rules))
    assert session.plain_len() == (0, 0)  # type: ignore[attr-defined]


def _plain_session() -> Any:
    s = session(native_lib())
    s.set_needles([(b"zz", False)])
    return s


_KEY = b'arch=c000003e syscall=59\0yes\0"ls"\0"/usr/bin/ls"'


def test_the_binding_checks_plain_arguments() -> None:
    s = _plain_session()
    try:
        for bad in (-1, 32, 1 << 8):
            with pytest.raises(NativeError, match="plain reads"):
                s.set_verdict_needles(
                    _KEY, 0x80, [(b"zz", False)], empty_if_no_execve=True, plain=bad
                )
        s.set_verdict_needles(_KEY, 0x80, [(b"zz", False)], empty_if_no_execve=True, plain=31)
        assert not s.plain_learned()  # nothing pending
        assert s.plain_len() == (0, 0)
    finally:
        s.close()


def _log(*runs: tuple[int, int, str]) -> bytes:
    """Exec runs (time offset ms, serial, cwd) of ``ls`` by pid 77's child."""
    out = []
    for offset, serial, cwd in runs:
        t = 1_700_000_000_000 + offset
        tag = f"{t // 1000}.{t % 1000:03}:{serial}"
        out += [
            f"type=SYSCALL msg=audit({tag}): arch=c000003e syscall=59 success=yes exit=0 a0=1 "
            f"a1=2 a2=3 a3=0 items=1 ppid=77 pid={1000 + serial} auid=1000 uid=1000 gid=1000 "
            "euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=3 "
            'comm="ls" exe="/usr/bin/ls" key=(null)',
            f'type=EXECVE msg=audit({tag}): argc=1 a0="ls"',
            f'type=CWD msg=audit({tag}): cwd="{cwd}"',
            f"type=PROCTITLE msg=audit({tag}): proctitle=6C73",
        ]
    return "".join(line + "\n" for line in out).encode()


def _quiet(expected: int) -> QuietState:
    return QuietState(1_700_000_000_000, 0, expected, 1_700_000_000_000)


def test_a_stop_asks_for_the_plain_key_once() -> None:
    """The session stops at a run whose plain key it does not know (STOP_PLAIN, the key
    in the result); Python's answer keeps it, and a run with the same facts (another
    time, pid and serial) is taken; another directory is asked again. An answer after
    the inodes changed is not kept (the stop's key went with them)."""
    s = _plain_session()
    try:
        s.set_verdict_needles(
            _KEY, 1 | 4 | 0x80, [(b"zz", False)], empty_if_no_execve=True, plain=2
        )
        first = _log((10, 100, "/root"))
        result = s.scan(b"\n" + first, 1, _quiet(100))
        assert (result.stop, result.end, result.events) == (STOP_PLAIN, 1, 0)
        assert result.key is not None and b'cwd="/root"' in result.key
        assert b"1700000000.010:100" not in result.key
        assert s.plain_learned()
        assert not s.plain_learned()  # answered once
        same = _log((20, 101, "/root"))
        result = s.scan(b"\n" + same, 1, _quiet(101))
        assert (result.stop, result.events) == (0, 1)
        other = _log((30, 102, "/tmp"))
        result = s.scan(b"\n" + other, 1, _quiet(102))
        assert result.stop == STOP_PLAIN
        s.set_inodes([5])
        assert not s.plain_learned()
        assert s.plain_len()[0] == 0
        result = s.scan(b"\n" + same, 1, _quiet(101))
        assert result.stop == STOP_PLAIN  # the answers went with the inodes
    finally:
        s.close()


_Family = tuple[tuple[str, str, tuple[str, ...]], int, str]


def _families(seed: int, *families: _Family) -> bytes:
    """For each family, a parent's exec (name, executable, argv), then ``n`` ``ls``
    execs by it (with ``privilege``, as the generator writes it), in one log."""
    gen = Generator(seed=seed)
    init = _Proc(1, "systemd", "/usr/lib/systemd/systemd", ("/sbin/init",), 1000, 1, "(none)", 0)
    lines: list[str] = []
    for parent, n, privilege in families:
        event, shell = gen.exec_event(init, *parent)
        lines += event
        for _ in range(n):
            event, _child = gen.exec_event(shell, "ls", "/usr/bin/ls", ("ls",), privilege=privilege)
            lines += event
    return "".join(line + "\n" for line in lines).encode()


_BASH_X = ("bash", "/usr/bin/bash", ("bash", "-x", "run.sh"))
_SSHD = ("sshd", "/usr/sbin/sshd", ("/usr/sbin/sshd",))


_SSHX = ("sshx", "/usr/sbin/sshd", ("/usr/sbin/sshd",))


@pytest.mark.parametrize(
    ("rule_id", "log"),
    [
        # The working directory: the generator's vary, /root is the rule's.
        ("cwd-test", _families(3, (_BASH_X, 24, ""))),
        # The same shell name and executable, another command line.
        (
            "cwd-test",
            _families(3, (("bash", "/usr/bin/bash", ("bash", "-i")), 12, ""), (_BASH_X, 12, "")),
        ),
        # The capability sets: stated (fcaps) or not.
        ("caps-test", _families(5, (_SSHX, 4, ""), (_SSHX, 4, "fcaps"))),
        # The parent's name alone differs (its executable and arguments are the same).
        ("parent-test", _families(6, (_SSHX, 4, ""), (_SSHD, 4, ""))),
        # (The ids: test_runs_with_the_same_plain_facts_stay_native, user 4242.)
    ],
)
def test_each_plain_fact_is_in_the_key(
    rule_id: str, log: bytes, every_fact_rules: list[DetectionRule]
) -> None:
    """Runs that differ in one fact a rule reads, those it needs after those it does
    not: the later ones are Python's (a key without that fact would take them natively
    and lose their alerts)."""
    keys = assert_same(log, every_fact_rules)
    assert any(k.startswith("alert ") and f'"id":"{rule_id}"' in k for k in keys)


_PARENTS = (
    ("bash", "/usr/bin/bash", ("bash", "-i")),
    ("bash", "/usr/bin/bash", ("bash", "-x", "run.sh")),
    ("sshd", "/usr/sbin/sshd", ("/usr/sbin/sshd", "-D")),
    ("sh", "/usr/bin/sh", ("sh", "-c", "ls")),
)
_STEP = st.tuples(
    st.integers(0, len(_PARENTS) - 1),  # the parent
    st.sampled_from(["ls", "cat"]),
    st.sampled_from([(), ("-l",), ("--needle-FLAG",), ("/evil/x",)]),
    st.sampled_from([1000, 4242]),  # the uid
    st.sampled_from(["", "fcaps"]),
)


@settings(max_examples=40, suppress_health_check=list(HealthCheck), deadline=None)
@given(steps=st.lists(_STEP, min_size=5, max_size=40), seed=st.integers(0, 50))
def test_plain_keys_are_exact(
    steps: list[tuple[int, str, tuple[str, ...], int, str]],
    seed: int,
    every_fact_rules: list[DetectionRule],
) -> None:
    """Execs by a few parents, users, directories and capability sets, with rules whose
    plain parts read every fact a plain key holds: the native scanner, remembering
    Python's answers by those facts, gives the Python scanner's outputs, counters and
    checkpoint state."""
    gen = Generator(seed=seed)
    init = _Proc(1, "systemd", "/usr/lib/systemd/systemd", ("/sbin/init",), 1000, 1, "(none)", 0)
    lines: list[str] = []
    shells = []
    for comm, exe, argv in _PARENTS:
        event, shell = gen.exec_event(init, comm, exe, argv)
        lines += event
        shells.append(shell)
    for parent, comm, args, uid, privilege in steps:
        shell = shells[parent]
        shell.uid = uid
        event, _child = gen.exec_event(
            shell, comm, "/usr/bin/" + comm, (comm, *args), privilege=privilege
        )
        lines += event
    log = "".join(line + "\n" for line in lines).encode()
    assert_same(log, every_fact_rules)


#: A rule whose needle ("--needle-flag") is in many a command line that it does not
#: match (``process.args`` is another argument): the session's needle test hands such a
#: run to Python, which only learns from it.
_NEAR_RULE = _rule("near-test", 'process.args : "--needle-FLAG" and process.parent.name == "sshd"')


@pytest.fixture(scope="module")
def near_rules(tmp_path_factory: pytest.TempPathFactory) -> list[DetectionRule]:
    return _load(tmp_path_factory.mktemp("rules"), _NEAR_RULE, _PARENT_RULE)


def _near_execs(args: Sequence[tuple[str, ...]], parent: str = "bash") -> bytes:
    """A ``parent``'s exec, then an ``ls`` exec by it with each of ``args``."""
    gen = Generator(seed=9)
    init = _Proc(1, "systemd", "/usr/lib/systemd/systemd", ("/sbin/init",), 1000, 1, "(none)", 0)
    lines, shell = gen.exec_event(init, parent, "/usr/bin/" + parent, (parent,))
    for argv in args:
        event, _child = gen.exec_event(shell, "ls", "/usr/bin/ls", ("ls", *argv))
        lines += event
    return "".join(line + "\n" for line in lines).encode()


def test_a_repeated_command_holding_a_needle_stays_native(near_rules: list[DetectionRule]) -> None:
    """45 execs of one command line holding the rule's needle, by a shell (the rule wants
    an sshd's): before, the session handed each back (its needle may matter) and Python
    read all 47 runs; now Python answers the first of each working directory by its full
    key (every fact and the command line) and the session takes the others. Another
    command line, or the same by an sshd (the rule's), is Python's again; the alerts are
    the Python scanner's."""
    same = ("--needle-FLAG", "-l")
    log = _near_execs([same] * 40 + [("--needle-FLAG", "-a")] + [same] * 5)
    det, spy = _replay(log, near_rules)
    # The shell's, then one per working directory (the generator's four) and the "-a" one.
    assert spy.runs <= 6, spy.runs  # before: 47
    assert spy.stops[STOP_HANDBACK] == 0, spy.stops
    assert det.stats.events == 47
    assert_same(log, near_rules)
    times = _times(log)
    assert_same(log, near_rules, since_ms=times[10], until_ms=times[30])
    assert_same(log, near_rules, cuts=(len(log) // 3, len(log) // 2))
    assert_same(log, near_rules, max_inflight=1)
    by_sshd = _near_execs([same] * 6, parent="sshd")
    _det, spy = _replay(by_sshd, near_rules)
    assert spy.runs == 7
    keys = assert_same(by_sshd, near_rules)
    assert sum(k.startswith("alert ") and '"id":"near-test"' in k for k in keys) == 6


_NEAR_ARGS = st.sampled_from(
    [(), ("-l",), ("--needle-FLAG",), ("--needle-FLAGx",), ("x--needle-flag", "-l"), ("/evil/x",)]
)


@settings(max_examples=40, suppress_health_check=list(HealthCheck), deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.integers(0, len(_PARENTS) - 1), _NEAR_ARGS, st.sampled_from([1000, 4242])),
        min_size=5,
        max_size=40,
    ),
    seed=st.integers(0, 50),
)
def test_full_keys_are_exact(
    steps: list[tuple[int, tuple[str, ...], int]],
    seed: int,
    near_rules: list[DetectionRule],
    every_fact_rules: list[DetectionRule],
) -> None:
    """Execs by a few parents and users with command lines that hold a rule's needle or
    not, repeated: the native scanner, remembering Python's answers for runs whose needles
    may be present by their full keys, gives the Python scanner's outputs, counters and
    checkpoint state."""
    gen = Generator(seed=seed)
    init = _Proc(1, "systemd", "/usr/lib/systemd/systemd", ("/sbin/init",), 1000, 1, "(none)", 0)
    lines: list[str] = []
    shells = []
    for comm, exe, argv in _PARENTS:
        event, shell = gen.exec_event(init, comm, exe, argv)
        lines += event
        shells.append(shell)
    for parent, args, uid in steps:
        shell = shells[parent]
        shell.uid = uid
        event, _child = gen.exec_event(shell, "ls", "/usr/bin/ls", ("ls", *args))
        lines += event
    log = "".join(line + "\n" for line in lines).encode()
    assert_same(log, near_rules)
    assert_same(log, every_fact_rules)
