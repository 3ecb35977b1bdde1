"""Which syscalls are evaluated follows the loaded rules (scanner.evaluated_syscalls).

Execs and kexec calls are always evaluated (counted as process events, returned with
``--events``, shown to the rules). A process end, a signal, a ``set*id`` call... only when
a loaded rule can match one (or with ``--events``): a rule set that cannot (the default
rules) only teaches the process table from them. Observed through the counts, the alerts
and ``--events``, on the fast path and the reference path, with the scanner the suite
runs (``KEXECWATCH_SCANNER``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest

from kexecwatch.core.detect.alerts import Alert
from kexecwatch.core.detect.detector import Detector, DetectorOptions, Output
from kexecwatch.core.detect.rule import compile_query
from kexecwatch.core.process.events import ProcessEvent
from kexecwatch.core.scan.prefilter import EVERYTHING, Prefilter
from kexecwatch.core.scan.scanner import ALWAYS_EVALUATED, EVALUATED, evaluated_syscalls
from kexecwatch.rules import load_builtin_rules
from tests.builders import exec_lines, join
from tests.core.detect.rule.test_sequence_detector import sequence_rule
from tests.core.process.test_syscall_events import call_lines
from tests.core.simple_rule import SimpleRule

EXEC_ONLY = 'process where event.type == "start" and process.name == "nothing-runs-this"'
KILL = 'process where event.action == "killed-pid" and process.name == "lab"'
ANY_LAB = 'process where process.name == "lab"'


class _Query(SimpleRule):
    def __init__(self, text: str) -> None:
        self.query = compile_query(text)
        super().__init__(self.query.matches)


def _log(later: int = 0) -> bytes:
    """An exec of lab (pid 100), then lab sends a signal, calls setuid and exits; ``later``
    seconds and serials later."""
    lines = exec_lines(1, pid=100, comm="lab", exe="/srv/kxlab/lab", args=("lab",))
    lines = [
        line.replace(b" exit=0 items=", b" exit=0 a0=1 a1=2 a2=3 a3=4 items=") for line in lines
    ]
    lines += call_lines(2, "kill", args=("1f4", "9", "0", "0"))
    lines += call_lines(3, "setuid")
    lines += call_lines(4, "exit_group", success=None)
    return re.sub(
        rb"\((\d+)\.(\d+):(\d+)\)",
        lambda m: b"(%d.%s:%d)" % (int(m[1]) + later, m[2], int(m[3]) + later),
        join(lines),
    )


def _run(rules: list[_Query], fast_path: bool, **options: object) -> tuple[Detector, list[Output]]:
    det = Detector(
        rules,
        host_name="h",
        options=DetectorOptions(fast_path=fast_path, **options),  # type: ignore[arg-type]
    )
    out = det.feed(_log()) + det.flush()
    return det, out


def _alerted(out: Sequence[object]) -> list[str]:
    """The syscall of each alert's event (of a sequence's: its last event's)."""
    return [a.to_document()["auditd"]["syscall"] for a in out if isinstance(a, Alert)]


@pytest.mark.parametrize("fast_path", [True, False])
def test_an_exec_only_rule_set_does_not_evaluate_other_process_syscalls(fast_path: bool) -> None:
    """Before: kill, setuid and exit_group were counted as process events (4) whatever
    the rules could match."""
    det, out = _run([_Query(EXEC_ONLY)], fast_path)
    assert det.stats.events == 4
    assert det.stats.process_events == 1
    assert _alerted(out) == []


@pytest.mark.parametrize("fast_path", [True, False])
def test_a_kill_rule_sees_kill_and_only_kill_among_the_others(fast_path: bool) -> None:
    det, out = _run([_Query(KILL)], fast_path)
    assert _alerted(out) == ["kill"]
    assert det.stats.process_events == 2  # the exec and the kill


@pytest.mark.parametrize("fast_path", [True, False])
def test_a_rule_naming_no_action_sees_every_process_syscall(fast_path: bool) -> None:
    det, out = _run([_Query(ANY_LAB)], fast_path)
    assert _alerted(out) == ["execve", "kill", "setuid", "exit_group"]
    assert det.stats.process_events == 4


@pytest.mark.parametrize("fast_path", [True, False])
def test_events_returns_every_process_syscall_whatever_the_rules(fast_path: bool) -> None:
    det, out = _run([_Query(EXEC_ONLY)], fast_path, emit_events=True)
    assert [o.syscall for o in out if isinstance(o, ProcessEvent)] == [
        "execve",
        "kill",
        "setuid",
        "exit_group",
    ]
    assert det.stats.process_events == 4


@pytest.mark.parametrize("fast_path", [True, False])
def test_a_reload_with_a_kill_rule_evaluates_kill_from_then_on(fast_path: bool) -> None:
    """The verdicts remembered for the exec-only rules are forgotten at the reload."""
    det = Detector([_Query(EXEC_ONLY)], host_name="h", options=DetectorOptions(fast_path=fast_path))
    out = det.feed(_log())
    assert _alerted(out) == []
    det.replace_rules([_Query(KILL)])
    out = det.feed(_log(later=10)) + det.flush()
    assert _alerted(out) == ["kill"]
    assert det.stats.process_events == 1 + 2


def test_the_default_rules_evaluate_execs_and_kexec_calls_only() -> None:
    det = Detector(load_builtin_rules(), host_name="h")
    assert det._scanner.evaluated == ALWAYS_EVALUATED


def test_evaluated_syscalls_of_prefilters() -> None:
    assert evaluated_syscalls([]) == ALWAYS_EVALUATED
    assert evaluated_syscalls([EVERYTHING]) == EVALUATED
    assert evaluated_syscalls([Prefilter(syscalls=frozenset({"kill", "openat"}))]) == (
        ALWAYS_EVALUATED | {"kill"}
    )
    assert (
        evaluated_syscalls(
            [Prefilter(syscalls=frozenset({"kill"})), Prefilter(comms=frozenset({b"x"}))]
        )
        == EVALUATED
    )


_STARTED_THEN_SETUID = (
    "sequence by process.pid with maxspan=1m\n"
    '  [process where event.type == "start" and process.name == "lab"]\n'
    '  [process where event.action == "setuid"]'
)


@pytest.mark.parametrize("fast_path", [True, False])
def test_a_sequence_stage_on_a_process_syscall_evaluates_it(fast_path: bool) -> None:
    rule = sequence_rule(_STARTED_THEN_SETUID)
    det = Detector([rule], host_name="h", options=DetectorOptions(fast_path=fast_path))
    out = det.feed(_log()) + det.flush()
    assert _alerted(out) == ["setuid"]
    assert det.stats.process_events == 2


@pytest.mark.parametrize("fast_path", [True, False])
def test_a_sequence_until_stage_on_a_signal_evaluates_it(fast_path: bool) -> None:
    """The signal (sent before the setuid call) ends the sequence: were signals not
    evaluated for this rule, it would alert."""
    until = '\nuntil [process where event.action == "killed-pid"]'
    rule = sequence_rule(_STARTED_THEN_SETUID + until)
    det = Detector([rule], host_name="h", options=DetectorOptions(fast_path=fast_path))
    out = det.feed(_log()) + det.flush()
    assert _alerted(out) == []
    assert det.stats.process_events == 3
