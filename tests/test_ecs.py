"""Alert and event documents are ECS: every field by name and type (issue 14).

Reads the ECS definitions from ../shared and skips, saying so, when they are absent.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kexecwatch.core.process.docfields import process_fields
from tests import ecs

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = sorted((ROOT / "fixtures" / "golden").glob("**/*.alerts.jsonl")) + sorted(
    (ROOT / "fixtures" / "golden").glob("**/*.events.jsonl")
)
FIXTURE = ROOT / "fixtures" / "audit" / "enriched" / "all-scenarios.log"

pytestmark = pytest.mark.skipif(
    not ecs.ECS_FLAT.is_file(), reason=f"ECS definitions not found at {ecs.ECS_FLAT}"
)


def documents(lines: list[str]) -> list[dict[str, Any]]:
    """The alert and event documents among NDJSON lines (diagnostics have no event)."""
    docs = [json.loads(line) for line in lines if line.strip()]
    return [d for d in docs if "event" in d]


def test_the_schema_is_read() -> None:
    fields = ecs.ecs_fields()
    assert len(fields) > 1000
    assert fields["@timestamp"] == ecs.EcsField("date", False)
    assert fields["event.category"] == ecs.EcsField("keyword", True)
    assert fields["rule.version"] == ecs.EcsField("keyword", False)
    assert fields["event.risk_score"].type == "float"


def test_the_check_finds_what_is_outside_ecs() -> None:
    bad = {
        "alert": {"id": "x"},
        "rule": {"version": 1, "reference": ["a", "b"]},
        "event": {"category": ["process"], "created": "yesterday"},
        "kexecwatch": {"anything": [{"goes": 1}]},
    }
    assert sorted(p.split(":")[0] for p in ecs.problems(bad)) == [
        "alert.id",
        "event.created",
        "rule.reference",
        "rule.version",
    ]


@pytest.mark.parametrize("golden", GOLDEN, ids=lambda p: str(p.relative_to(ROOT)))
def test_golden_documents_are_ecs(golden: Path) -> None:
    docs = documents(golden.read_text(encoding="utf-8").splitlines())
    found = {f"{golden.name}:{n}: {p}" for n, d in enumerate(docs, 1) for p in ecs.problems(d)}
    assert not found, "\n".join(sorted(found)[:40])


def replay(*args: str) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, "-m", "kexecwatch", "replay", "--host-name", "h", *args, str(FIXTURE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr
    return documents(proc.stdout.splitlines())


@pytest.mark.parametrize("args", [(), ("--events",)], ids=["alerts", "events"])
def test_replayed_documents_are_ecs(args: tuple[str, ...]) -> None:
    docs = replay(*args)
    assert docs
    assert all(not ecs.problems(d) for d in docs), [ecs.problems(d) for d in docs][:5]


def test_every_field_a_rule_can_read_is_ecs() -> None:
    """All optional parts of a process document (tty, ids, names) included."""
    ecs_names = ecs.ecs_fields()
    outside = {
        f
        for f in process_fields()
        if f not in ecs_names and f.split(".", 1)[0] not in ecs.OWN_NAMESPACES
    }
    assert not outside
