"""The field list check-rule names is the one process documents really carry."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from kexecwatch.core.audit.syscalls import (
    CRED_SYSCALLS,
    EXEC_SYSCALLS,
    KEXEC_SYSCALLS,
    PROCESS_SYSCALLS,
)
from kexecwatch.core.process import docfields
from kexecwatch.core.process.docfields import process_categories, process_fields
from kexecwatch.core.process.events import EVENTS_AS

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


def _facets_of_full_documents(events_as: str) -> set[tuple[tuple[str, tuple[str, ...]], ...]]:
    """The facets read off documents with every optional part present (docfields' samples),
    for every process syscall, outcome and credential change: what the facets must be."""
    exec_event, kexec_call, _ = docfields._samples()
    found = set()
    for syscall in EXEC_SYSCALLS | KEXEC_SYSCALLS | PROCESS_SYSCALLS:
        base = exec_event if syscall in EXEC_SYSCALLS else kexec_call
        for success in (True, False):
            for changed in (None, "uid", "gid") if syscall in CRED_SYSCALLS else (None,):
                event = replace(
                    base, syscall=syscall, success=success, changed=changed, events_as=events_as
                )
                doc = event.to_document()
                found.add(tuple((f, docfields._get(doc, f)) for f in docfields.FACET_FIELDS))
    if events_as == "defend":
        doc = replace(exec_event, syscall=None, events_as=events_as, running=True).to_document()
        found.add(tuple((f, docfields._get(doc, f)) for f in docfields.FACET_FIELDS))
    return found


@pytest.mark.parametrize("events_as", EVENTS_AS)
def test_facets_are_those_of_full_documents(events_as: str) -> None:
    # process_facets renders lean events (start-up cost); their facets must be exactly
    # those of documents with every part present.
    facets = docfields.process_facets(events_as)
    assert {tuple(f.items()) for f in facets} == _facets_of_full_documents(events_as)
    assert len({tuple(f.items()) for f in facets}) == len(facets)
