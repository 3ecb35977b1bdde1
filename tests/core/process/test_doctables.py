"""The stored document tables (kexecwatch/core/process/doctables.py) equal their derivation.

A replay used to render about 160 sample documents at start-up to learn which fields and
facet values process documents have; the results are stored now, and these tests keep the
stored form exactly what the derivation gives today (a change to ``to_document`` fails here
until ``python -m tools.doctables`` is run).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from kexecwatch.core.process import docfields, doctables
from kexecwatch.core.process.events import EVENTS_AS
from tools import doctables as tool


def test_the_committed_file_is_what_the_tool_writes_today() -> None:
    assert tool.TARGET.read_text(encoding="utf-8") == tool.expected()
    check = subprocess.run(
        [sys.executable, "-m", "tools.doctables", "--check"],
        capture_output=True,
        check=False,
        cwd=tool.TARGET.parents[3],
    )
    assert check.returncode == 0, check.stderr.decode()


def test_fields_and_categories_equal_the_derivation() -> None:
    assert docfields.process_fields() == docfields.derive_fields()
    assert docfields.process_categories() == docfields.derive_categories()
    assert "process.parent.name" in docfields.process_fields()


@pytest.mark.parametrize("events_as", EVENTS_AS)
def test_facets_equal_the_derivation_in_order(events_as: str) -> None:
    stored = docfields.process_facets(events_as)
    derived = docfields.derive_facets(events_as)
    # Same combinations, same order, same key order in each.
    assert [list(f.items()) for f in stored] == [list(f.items()) for f in derived]
    assert stored is doctables.PROCESS_FACETS[events_as]


def test_every_vocabulary_is_stored() -> None:
    assert sorted(doctables.PROCESS_FACETS) == sorted(EVENTS_AS)
