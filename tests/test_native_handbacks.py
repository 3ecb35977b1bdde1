"""What the native scanner hands back with rules that test the parent or the ids (issue 15).

A rule prefilter that tests what the SYSCALL record's key (call, success, comm, exe) does
not hold, such as the parent's name or the ids, gives that key's verdict
``NEED_IF_RELEVANT``: the session hands back every relevant run of it, and Python decides
run by run. With many rules nearly every exec's key is such a key. Python then reads on
by itself through the runs the session would hand back anyway
(``NativeScanner.hands_back``), instead of calling the session once per run, and makes
each run's verdict once. These tests hold the native scanner to the Python scanner's
outputs, counters and checkpoint state with such rules, and count the round trips and
verdicts.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from bench.generate import Generator, _Proc
from kexecwatch.core.audit.nativeapi import STOP_HANDBACK
from kexecwatch.core.detect.detector import DetectionRule, Detector, DetectorOptions
from kexecwatch.core.scan.nativescan import NativeScanner
from kexecwatch.core.scan.scanner import PythonScanner
from kexecwatch.rules import load_rules
from tests.builders import feed_in_pieces
from tests.nativelib import native_lib
from tests.test_native_differential import assert_same, generated, stops_of
from tests.test_native_needles import _RULE as _NEEDLE_RULE

# The needle tests' rule file, with a query on the parent's name and the ids instead.
_RULE = (
    _NEEDLE_RULE.replace('"needle-test"', '"parent-test"')
    .replace("a rule on an argument alone", "a rule on the parent and the ids")
    .replace(
        'process.args : "--needle-FLAG" or process.command_line like~ "*/evil/*"',
        'process.parent.name == "sshd" or process.user.id == "4242"',
    )
)
assert "sshd" in _RULE


@pytest.fixture(scope="module")
def parent_rule(tmp_path_factory: pytest.TempPathFactory) -> list[DetectionRule]:
    folder = tmp_path_factory.mktemp("rules")
    (folder / "parent.toml").write_text(_RULE)
    return list(load_rules([str(folder)], builtin=False))


def _execs(n: int, parent: str = "bash", hits: Sequence[int] = ()) -> bytes:
    """The exec of a ``parent`` process, then ``n`` execs by it (a plain ``ls`` each);
    those at ``hits`` by user 4242."""
    gen = Generator(seed=4)
    init = _Proc(1, "systemd", "/usr/lib/systemd/systemd", ("/sbin/init",), 1000, 1, "(none)", 0)
    lines, shell = gen.exec_event(init, parent, "/usr/bin/" + parent, (parent,))
    for i in range(n):
        event, _child = gen.exec_event(shell, "ls", "/usr/bin/ls", ("ls", "-l", str(i)))
        if i in hits:
            event = [line.replace(" euid=1000 ", " euid=4242 ") for line in event]
        lines += event
    return "".join(line + "\n" for line in lines).encode()


def _times(log: bytes) -> list[int]:
    """The time (ms) of each SYSCALL line of ``log``."""
    return [
        int(float(line.split(b"(", 1)[1].split(b":", 1)[0]) * 1000 + 0.5)
        for line in log.splitlines()
        if line.startswith(b"type=SYSCALL ")
    ]


def test_runs_native_would_hand_back_are_read_on_in_python(
    parent_rule: list[DetectionRule],
) -> None:
    """60 execs whose key the rule's parent/ids test keeps from native: before, the
    session handed back each of them (60 round trips); then Python read on after the
    first hand-back; now Python reads them without asking the session at all (their
    key's code says it would hand them back). The alerts (two execs by user 4242) are
    the same."""
    log = _execs(60, hits=(20, 41))
    keys = assert_same(log, parent_rule)
    assert sum(k.startswith("alert ") for k in keys) == 2
    stops = [stop for stop, _ in stops_of(log, parent_rule)]
    assert stops.count(STOP_HANDBACK) == 0, stops
    times = _times(log)
    assert_same(log, parent_rule, since_ms=times[10], until_ms=times[40])
    assert_same(log, parent_rule, cuts=(len(log) // 3, len(log) // 2))
    assert_same(log, parent_rule, max_inflight=1)


def test_a_parent_that_matches_gives_the_same_alerts(parent_rule: list[DetectionRule]) -> None:
    log = _execs(30, parent="sshd")
    keys = assert_same(log, parent_rule)
    assert sum(k.startswith("alert ") for k in keys) == 30, keys[:3]
    assert [stop for stop, _ in stops_of(log, parent_rule)].count(STOP_HANDBACK) == 0


def _verdicts_made(
    log: bytes, rules: Sequence[DetectionRule], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, int]:
    """(fast-path verdicts made, events) replaying ``log`` natively."""
    made: list[int] = []
    real = PythonScanner.fast_verdict

    def counted(self: PythonScanner, *args: Any, **kwargs: Any) -> Any:
        made.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(PythonScanner, "fast_verdict", counted)
    det = Detector(
        copy.deepcopy(list(rules)), host_name="h", options=DetectorOptions(), native=native_lib()
    )
    assert isinstance(det._scanner, NativeScanner)
    feed_in_pieces(det, log)
    return len(made), det.stats.events


def test_each_run_read_on_in_python_has_its_verdict_made_once(
    parent_rule: list[DetectionRule], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, a run Python read on after a hand-back had its verdict made twice (the
    look-ahead, then taking it): 59 of the 60 runs here, 119 in all."""
    made, events = _verdicts_made(_execs(60, parent="sshd"), parent_rule, monkeypatch)
    assert events == 61
    assert made == 61, made


def test_generated_logs_are_the_same_with_a_parent_rule(parent_rule: list[DetectionRule]) -> None:
    for shape in ("classic", "mixed", "sessions"):
        data = generated(shape, n=3000, seed=13)
        assert_same(data, parent_rule)
        assert_same(data, parent_rule, cuts=(len(data) // 2,), since_ms=1717000141500)


def test_the_fixtures_are_the_same_with_a_parent_rule(parent_rule: list[DetectionRule]) -> None:
    root = Path(__file__).resolve().parent.parent / "fixtures" / "audit"
    for path in sorted(root.glob("*.log")):
        assert_same(path.read_bytes(), parent_rule)
