"""What the native scanner spends per run Python reads, with many rules (issue 15).

With every rule of the detection-rules snapshot, the session hands back nearly every exec
(a rule tests the parent or the ids) and Python reads on through them
(``NativeScanner._needed_runs``). Each such run then costs Python's verdict plus the
native table's round trips (the parent looked up, the exec stored). These tests pin the
savings that make that path cost no more than it must: a verdict key's prefilters are
judged once (not again for the session's code), the wire form of a recurring table entry
is decoded once, a recurring parent is made once, and each run read on has one verdict.
The outputs stay the Python scanner's (``assert_same``, also with every snapshot rule:
``tests/test_native_needles.py``).
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from kexecwatch.core.audit.nativeapi import STOP_HANDBACK, QuietState, ScanResult
from kexecwatch.core.detect.detector import DetectionRule, Detector, DetectorOptions
from kexecwatch.core.process.nativetable import NativeProcessTable
from kexecwatch.core.scan.fastpath import argv_of_execve_bodies
from kexecwatch.core.scan.nativescan import NativeScanner
from kexecwatch.core.scan.scanner import PythonScanner
from kexecwatch.native import NativeSession, RawEntry
from tests.builders import feed_in_pieces
from tests.native.test_table import session
from tests.nativelib import native_lib
from tests.test_native_differential import assert_same, generated
from tests.test_native_handbacks import _execs, _times
from tests.test_native_handbacks import parent_rule as parent_rule  # the fixture

_SHELL: RawEntry = (
    500,
    1,
    b'"bash"',
    True,
    b'"/usr/bin/bash"',
    True,
    b'argc=2 a0="bash" a1="-i"',
    1000,
    "1.000:7",
    "event",
    b"auid=0 uid=0",
)


@pytest.fixture
def table() -> Iterator[NativeSession]:
    s = session(native_lib())
    yield s
    s.close()


def test_a_recurring_entry_is_decoded_once(table: NativeSession) -> None:
    """The same wire bytes give the same entry object; a new entry for the pid is read
    anew (the memo is keyed by the wire form, so it cannot go stale)."""
    table.table_store(_SHELL)
    first = table.table_entry_at(500, 2000)
    assert first == _SHELL
    assert table.table_entry_at(500, 3000) is first
    assert table.table_latest(500) is first
    newer = (*_SHELL[:6], b'argc=1 a0="sh"', 4000, "4.000:9", *_SHELL[9:])
    table.table_store(newer)  # type: ignore[arg-type]
    assert table.table_entry_at(500, 5000) == newer
    assert table.table_entry_at(500, 3000) is first  # the lateness walk: the one before


def test_a_recurring_parent_is_made_once(table: NativeSession) -> None:
    """One shell is the parent of many execs: its Parent is made once while its entry
    stays the same, and made again once the shell execs something else."""
    processes = NativeProcessTable(table, decode=argv_of_execve_bodies)
    processes.learn_exec(500, 1, b"bash", b"/usr/bin/bash", b'argc=1 a0="bash"', 1000, b"1.000:7")
    parent = processes.parent_at(500, 2000)
    assert parent is not None
    assert parent.args == (b"bash",)
    assert processes.parent_at(500, 2500) is parent
    processes.learn_exec(500, 1, b"sh", b"/usr/bin/sh", b'argc=1 a0="sh"', 9000, b"9.000:8")
    again = processes.parent_at(500, 9500)
    assert again is not None
    assert (again.name, again.args) == (b"sh", (b"sh",))


def _verdicts_by_key(
    log: bytes, rules: list[DetectionRule], monkeypatch: pytest.MonkeyPatch
) -> Counter[tuple[bytes, ...]]:
    """How often the prefilters' verdict of each key was made, replaying natively."""
    made: Counter[tuple[bytes, ...]] = Counter()
    real = PythonScanner.verdict

    def counted(self: PythonScanner, key: tuple[bytes, bytes, bytes, bytes]) -> Any:
        made[key] += 1
        return real(self, key)

    monkeypatch.setattr(PythonScanner, "verdict", counted)
    det = Detector(
        copy.deepcopy(rules), host_name="h", options=DetectorOptions(), native=native_lib()
    )
    assert isinstance(det._scanner, NativeScanner)
    feed_in_pieces(det, log)
    return made


def test_a_keys_verdict_is_made_once(
    parent_rule: list[DetectionRule], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, the session's code for a key (verdict_and_needles) made the prefilters'
    verdict again, and with it every prefilter split and needle trie: twice per key."""
    made = _verdicts_by_key(_execs(40, hits=(7,)), parent_rule, monkeypatch)
    assert made, "no verdict made"
    assert set(made.values()) == {1}, made


def test_runs_read_on_keep_the_python_scanners_outputs(parent_rule: list[DetectionRule]) -> None:
    """Python reads on by the key's code alone (no look-ahead verdict): the same alerts,
    counters and checkpoint state as the Python scanner, with a window and cuts too."""
    log = _execs(50, hits=(3, 30))
    assert sum(k.startswith("alert ") for k in assert_same(log, parent_rule)) == 2
    times = _times(log)
    assert_same(log, parent_rule, since_ms=times[10], until_ms=times[35], cuts=(len(log) // 3,))
    data = generated("mixed", n=3000, seed=17)
    assert_same(data, parent_rule, cuts=(len(data) // 2,))


def _empty_handbacks(log: bytes, rules: list[DetectionRule]) -> tuple[int, int]:
    """(scan calls that handed back without taking anything, scan calls) replaying ``log``."""
    det = Detector(
        copy.deepcopy(rules), host_name="h", options=DetectorOptions(), native=native_lib()
    )
    scanner = det._scanner
    assert isinstance(scanner, NativeScanner)
    scan = scanner.session.scan
    calls: list[bool] = []

    def counted(buf: bytes, start: int, state: QuietState, due_ms: int | None = None) -> ScanResult:
        result = scan(buf, start, state, due_ms)
        calls.append(result.stop == STOP_HANDBACK and not result.lines)
        return result

    scanner.session.scan = counted  # type: ignore[method-assign]
    feed_in_pieces(det, log)
    return sum(calls), len(calls)


@pytest.mark.parametrize("shape", ["mixed", "classic"])
def test_no_round_trip_for_what_the_session_would_hand_straight_back(
    shape: str, parent_rule: list[DetectionRule]
) -> None:
    """Interleaved runs whose first run the session would hand back, and runs met right
    after a verdict or a due stop, are read by Python without asking the session first
    (before: a scan call each that took nothing)."""
    data = generated(shape, n=6000, seed=23)
    empty, calls = _empty_handbacks(data, parent_rule)
    assert empty <= calls // 10 + 1, (empty, calls)  # before: 51 of 295 (mixed), 32 of 55
    assert_same(data, parent_rule)
