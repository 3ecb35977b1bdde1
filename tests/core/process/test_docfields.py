"""The field list check-rule names is the one process documents really carry."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from kexecwatch.core.process.docfields import process_categories, process_fields

GOLDEN = Path(__file__).resolve().parents[3] / "fixtures" / "golden"


def leaves(doc: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in doc.items():
        if isinstance(value, Mapping):
            yield from leaves(value, f"{prefix}{key}.")
        elif not (isinstance(value, list) and value and isinstance(value[0], Mapping)):
            yield f"{prefix}{key}"


def test_every_field_of_the_recorded_process_events_is_listed() -> None:
    seen: set[str] = set()
    for path in GOLDEN.glob("*/*.events.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            seen |= set(leaves(json.loads(line)))
    assert seen, "no golden events"
    assert seen <= process_fields(), sorted(seen - process_fields())
    # Fields only a kexec system call or enriched logs carry are listed too.
    assert {"auditd.data.a3", "auditd.self_exec_id", "user.name", "process.parent.args"} <= (
        process_fields()
    )


def test_categories() -> None:
    assert process_categories() == {"process", "any"}
