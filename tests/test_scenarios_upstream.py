"""The upstream rule on real recordings: exactly the alerts the manifest states by hand.

fixtures/scenarios.toml lists, for every recorded scenario, each alert Elastic's v7
rule must raise (the kexec argv and the parent's name). This test replays both the
RAW and the ENRICHED recording of each scenario, and of the combined stream, with the
upstream rule alone and compares the multisets: every expected alert, and no other.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from kexecwatch.core.detect.alerts import Alert
from kexecwatch.core.detect.detector import Detector
from kexecwatch.rules import load_builtin_rules
from tools.scenarios import load_manifest

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = load_manifest()
UPSTREAM_ID = "4d4c35f4-414e-4d0c-bb7e-6db7c80a6957"


def expected(name: str) -> Counter[tuple[tuple[str, ...], str | None]]:
    members = next((c.members for c in MANIFEST.combined if c.name == name), (name,))
    wanted: Counter[tuple[tuple[str, ...], str | None]] = Counter()
    for member in members:
        for alert in MANIFEST.scenario(member).upstream:
            wanted[(alert.args, alert.parent_name)] += 1
    return wanted


def upstream_alerts(path: Path) -> Counter[tuple[tuple[str, ...], str | None]]:
    rules = [r for r in load_builtin_rules() if r.rule_id == UPSTREAM_ID]
    assert len(rules) == 1
    det = Detector(rules, host_name="fixture-host")
    got: Counter[tuple[tuple[str, ...], str | None]] = Counter()
    for item in det.feed(path.read_bytes()) + det.flush():
        if isinstance(item, Alert):
            doc = item.to_document()
            got[(tuple(doc["process"]["args"]), doc["process"]["parent"].get("name"))] += 1
    return got


CASES = [(fmt, name) for name in MANIFEST.fixture_names for fmt in ("raw", "enriched")]


@pytest.mark.parametrize(("fmt", "name"), CASES, ids=[f"{f}/{n}" for f, n in CASES])
def test_upstream_alerts_are_exactly_the_manifest(fmt: str, name: str) -> None:
    path = ROOT / "fixtures" / "audit" / fmt / f"{name}.log"
    assert path.exists(), f"{path} not recorded"
    got = upstream_alerts(path)
    want = expected(name)
    assert got == want, f"missing {want - got}, unexpected {got - want}"


def test_the_manifest_expects_alerts_at_all() -> None:
    assert sum(expected("all-scenarios").values()) == 18
