"""Every EQL rule of Elastic's Linux rule set loads: rules/linux and the cross-platform
rules tagged "OS: Linux" (read from ../shared, never copied; skipped when absent).
Before sequences, samples and the functions, 262 of the 343 loaded."""

from __future__ import annotations

import tomllib
from collections import Counter
from pathlib import Path

import pytest

from kexecwatch.core.detect.rule.ruleset import check_rule
from kexecwatch.core.detect.rule.sequence import CompiledSequence

SNAPSHOT = Path(__file__).resolve().parents[4].parent / "shared" / "detection-rules" / "rules"

pytestmark = pytest.mark.skipif(
    not SNAPSHOT.is_dir(), reason=f"Elastic's detection-rules snapshot is not at {SNAPSHOT}"
)


def _linux_eql_rules() -> list[Path]:
    found = []
    for path in sorted((SNAPSHOT / "linux").rglob("*.toml")) + sorted(
        (SNAPSHOT / "cross-platform").rglob("*.toml")
    ):
        rule = tomllib.loads(path.read_text(encoding="utf-8")).get("rule", {})
        if rule.get("language") != "eql":
            continue
        if path.parent.name == "cross-platform" and "OS: Linux" not in rule.get("tags", []):
            continue
        found.append(path)
    return found


def test_every_linux_eql_rule_loads(capsys: pytest.CaptureFixture[str]) -> None:
    paths = _linux_eql_rules()
    kinds: Counter[str] = Counter()
    failed = []
    for path in paths:
        result = check_rule(path.read_text(encoding="utf-8"), str(path))
        if result.rule is None:
            failed.append(f"{path.name}: {result.errors[0].message}")
            continue
        query = result.rule.query
        kinds[query.kind if isinstance(query, CompiledSequence) else "single-event"] += 1
    with capsys.disabled():
        print(
            f"\n{len(paths) - len(failed)} of {len(paths)} Linux EQL rules load "
            f"({kinds['single-event']} single-event, {kinds['sequence']} sequences, "
            f"{kinds['sample']} samples)"
        )
    assert failed == []
    assert len(paths) == 343
    assert kinds == Counter({"single-event": 265, "sequence": 75, "sample": 3})
