"""The native needle test with rules that test arguments (issue 15, "many rules").

A verdict whose rule prefilters can take an exec only for a needle in its own command
line (``PythonScanner.verdict_needles``) carries ``NEEDLE_IF_RELEVANT``: the native scan
keeps such an exec when no needle can be in its command line, and hands it back
otherwise (``native/src/needles.rs``). These tests hold the native scanner to the Python
scanner's outputs, counters and checkpoint state with such rules (a handwritten one, and
every loadable rule of the detection-rules snapshot when ``../shared`` has it), and show
that the execs without a needle now stay native.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

import pytest

from bench.generate import Generator, _Proc
from kexecwatch.core.audit.nativeapi import QuietState, ScanResult
from kexecwatch.core.detect.detector import DetectionRule, Detector, DetectorOptions
from kexecwatch.core.scan.nativescan import NativeScanner
from kexecwatch.rules import load_rules
from tests.builders import feed_in_pieces
from tests.core.detect.test_ruleindex import literal_log
from tests.nativelib import native_lib
from tests.test_native_differential import assert_same, fixture_files, generated
from tests.test_rule_source import SNAPSHOT, needs_snapshot

_RULE = """[metadata]
creation_date = "2026/12/06"
updated_date = "2026/12/06"
maturity = "production"
[rule]
rule_id = "needle-test"
name = "a rule on an argument alone"
description = "x"
risk_score = 1
severity = "low"
language = "eql"
type = "eql"
author = ["me"]
license = "MIT"
query = '''
process where process.args : "--needle-FLAG" or process.command_line like~ "*/evil/*"
'''
"""


@pytest.fixture(scope="module")
def args_rule(tmp_path_factory: pytest.TempPathFactory) -> list[DetectionRule]:
    folder = tmp_path_factory.mktemp("rules")
    (folder / "needle.toml").write_text(_RULE)
    return list(load_rules([str(folder)], builtin=False))


@pytest.fixture(scope="module")
def snapshot_rules() -> list[DetectionRule]:
    if not (SNAPSHOT / "rules").is_dir():
        pytest.skip(f"the detection-rules snapshot is absent ({SNAPSHOT})")
    return list(load_rules([str(SNAPSHOT / "rules")], builtin=False))


def native_events(log: bytes, rules: Sequence[DetectionRule]) -> tuple[int, int]:
    """(events the native scan took, events in all) replaying ``log``."""
    det = Detector(
        copy.deepcopy(list(rules)), host_name="h", options=DetectorOptions(), native=native_lib()
    )
    scanner = det._scanner
    assert isinstance(scanner, NativeScanner)
    session = scanner.session
    scan = session.scan
    taken: list[int] = []

    def counted(buf: bytes, start: int, state: QuietState, due_ms: int | None = None) -> ScanResult:
        result = scan(buf, start, state, due_ms)
        taken.append(result.events)
        return result

    session.scan = counted  # type: ignore[method-assign]
    feed_in_pieces(det, log)
    return sum(taken), det.stats.events


def _execs(args: Sequence[tuple[str, ...]]) -> bytes:
    """Execs of ``args`` by one shell, as the kernel writes them (arguments with a space
    hex-encoded)."""
    gen = Generator(seed=4)
    shell = _Proc(1000, "bash", "/usr/bin/bash", ("bash",), 1000, 3, "pts0", 1)
    lines: list[str] = []
    for argv in args:
        event, _child = gen.exec_event(shell, argv[0], "/usr/bin/" + argv[0], argv)
        lines += event
    return "".join(line + "\n" for line in lines).encode()


def test_execs_without_a_needle_stay_native(args_rule: list[DetectionRule]) -> None:
    plain = [("ls", "-l", "/tmp"), ("cat", "/etc/hostname"), ("ls", "--needle")] * 20
    hits = [("ls", "--NEEDLE-flag"), ("cat", "/srv/EVIL/x y")]
    log = _execs([*plain[:30], hits[0], *plain[30:], hits[1]])
    keys = assert_same(log, args_rule)
    assert sum(k.startswith("alert ") for k in keys) == 2
    taken, events = native_events(log, args_rule)
    assert events == 62
    # Before the needle test every exec went back to Python (taken 0).
    assert taken >= 58, taken
    assert_same(log, args_rule, since_ms=1_700_000_000_010, until_ms=1_700_000_000_040)
    assert_same(log, args_rule, cuts=(len(log) // 3,))


def test_generated_logs_are_the_same_with_an_argument_rule(args_rule: list[DetectionRule]) -> None:
    for shape in ("classic", "mixed", "fcaps"):
        data = generated(shape, n=3000, seed=3)
        assert_same(data, args_rule)
        taken, events = native_events(data, args_rule)
        assert taken > events // 2, (shape, taken, events)


@needs_snapshot
@pytest.mark.parametrize("shape", ["classic", "mixed", "eoe"])
def test_snapshot_rules_on_generated_logs(shape: str, snapshot_rules: list[DetectionRule]) -> None:
    data = generated(shape, n=4000, seed=21)
    assert_same(data, snapshot_rules)
    assert_same(data, snapshot_rules, cuts=(len(data) // 2,), since_ms=1717000141500)


@needs_snapshot
def test_snapshot_rules_on_the_rules_own_literals(
    tmp_path: Path, snapshot_rules: list[DetectionRule]
) -> None:
    log = tmp_path / "literals.log"
    literal_log(log, snapshot_rules, 1500, seed=9)
    keys = assert_same(log.read_bytes(), snapshot_rules)
    assert sum(k.startswith("alert ") for k in keys) > 50


@needs_snapshot
def test_snapshot_rules_on_the_fixtures(snapshot_rules: list[DetectionRule]) -> None:
    for path in fixture_files():
        assert_same(path.read_bytes(), snapshot_rules)
