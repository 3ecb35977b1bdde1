"""fixtures/rule_cases.toml over fixtures/process_events.jsonl: rule behaviour as data."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from kexecwatch.core.detect.rule import CompiledQuery, compile_query
from kexecwatch.rules import load_builtin_rules

ROOT = Path(__file__).resolve().parents[4]
CASES_FILE = ROOT / "fixtures" / "rule_cases.toml"
EVENTS_FILE = ROOT / "fixtures" / "process_events.jsonl"


def _events() -> list[dict[str, Any]]:
    lines = EVENTS_FILE.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip() and not line.startswith("#")]


EVENTS = _events()
CASES = tomllib.loads(CASES_FILE.read_text(encoding="utf-8"))["cases"]


def test_event_ids_are_unique() -> None:
    ids = [e["id"] for e in EVENTS]
    assert len(ids) == len(set(ids))


def _query(case: dict[str, Any]) -> CompiledQuery:
    if "rule" in case:
        rules = {r.source.rsplit("/", 1)[-1]: r for r in load_builtin_rules()}
        return rules[case["rule"]].query
    return compile_query(case["query"], source=CASES_FILE.name)


@pytest.mark.parametrize(
    "case", CASES, ids=[f"{CASES_FILE.name}:{n}" for n in range(1, len(CASES) + 1)]
)
def test_rule_case(case: dict[str, Any]) -> None:
    known = {e["id"] for e in EVENTS}
    assert set(case["expected_ids"]) <= known, "expected_ids names an unknown event"
    query = _query(case)
    over = [e for e in EVENTS if e["id"].startswith(case.get("over", ""))]
    assert over, "the case selects no events"
    matched = sorted(e["id"] for e in over if query.matches(e["doc"]))
    assert matched == sorted(case["expected_ids"])
