"""Elastic's Linux rules on a real recording: exactly the alerts the manifest states.

``elastic-linux-rules`` (fixtures/scenarios.toml) was recorded with the real auditd as the
unprivileged lab user (tools/record_fixtures.py): harmless versions of what 69 of the
snapshot's process rules look for, inside the lab directory. Replayed with the snapshot's
rules alone, each format must give exactly the manifest's alerts (rule id and argv, as
many times as stated) and nothing from any other rule. Skips, saying so, without the
snapshot in ../shared.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tests.test_cli import kexecwatch
from tests.test_rule_source import SNAPSHOT, needs_snapshot
from tools.scenarios import load_manifest

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = load_manifest().scenario("elastic-linux-rules")


def test_the_manifest_states_at_least_30_rules() -> None:
    assert len({a.rule for a in SCENARIO.elastic}) == len(SCENARIO.elastic) == 69


@needs_snapshot
@pytest.mark.parametrize("fmt", ["raw", "enriched"])
def test_exactly_the_stated_alerts_and_no_other(fmt: str) -> None:
    log = ROOT / "fixtures" / "audit" / fmt / "elastic-linux-rules.log"
    done = kexecwatch(
        "replay",
        "--no-builtin-rules",
        "--rule",
        str(SNAPSHOT / "rules"),
        "--format",
        "json",
        "--quiet",
        str(log),
    )
    assert done.returncode == 1, done.stderr
    alerts = [json.loads(line) for line in done.stdout.splitlines()]
    found = Counter((a["rule"]["id"], tuple(a["process"]["args"])) for a in alerts)
    expected = Counter((a.rule, a.args) for a in SCENARIO.elastic)
    assert found == expected
    # Every alert is of the lab user, in the lab directory.
    assert {a["user"]["id"] for a in alerts} == {alerts[0]["user"]["id"]} != {"0"}
    assert {a["process"]["working_directory"] for a in alerts} <= {"/srv/kxlab", "/srv/kxlab/home"}
