"""Elastic's Linux sequence rules on a real recording: exactly the alerts the manifest states.

``elastic-sequence-rules`` (fixtures/scenarios.toml) was recorded with the real auditd as
the unprivileged lab user (tools/record_fixtures.py): harmless versions of what 11 of the
snapshot's process-only sequence rules look for, and two near misses that wait a little
longer than a rule's maxspan between its two steps. Replayed with the snapshot's rules
under each event profile (most of these rules name Elastic Defend's ``event.action``
values, one only Auditbeat's), each format must give exactly the manifest's alerts: rule
id, the completing event's argv and every event of the sequence, and nothing from any
other rule. Skips, saying so, without the snapshot in ../shared.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.test_cli import kexecwatch
from tests.test_rule_source import SNAPSHOT, needs_snapshot
from tools.scenarios import Scenario, load_manifest

ROOT = Path(__file__).resolve().parent.parent
NAME = "elastic-sequence-rules"
SCENARIO = load_manifest().scenario(NAME)
WILDCARD = "0b803267-74c5-444d-ae29-32b5db2d562a"  # tar then its shell, maxspan=1s
BASE64 = "03d856c2-7f74-4540-a530-e20af5e39789"  # two base64 -d of one parent, maxspan=3s


def log(fmt: str, name: str = NAME) -> Path:
    return ROOT / "fixtures" / "audit" / fmt / f"{name}.log"


def replay(fmt: str, *extra: str, name: str = NAME) -> list[dict[str, Any]]:
    done = kexecwatch(
        "replay",
        "--host-id",
        "lab-host",  # RAW records have no node=, and every rule here joins on host.id
        "--format",
        "json",
        "--quiet",
        *extra,
        str(log(fmt, name)),
    )
    assert done.returncode in (0, 1), done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def argv_steps(alert: dict[str, Any]) -> tuple[tuple[str, ...], ...]:
    sequence = alert.get("kexecwatch", {}).get("sequence")
    if sequence is None:
        return ()
    return tuple(tuple(e["process"]["args"]) for e in sequence["events"])


def seconds(doc: dict[str, Any]) -> float:
    return datetime.fromisoformat(doc["@timestamp"].replace("Z", "+00:00")).timestamp()


def stated_and_found(
    scenario: Scenario, fmt: str, profile: str
) -> tuple[list[dict[str, Any]], Counter[Any], Counter[Any]]:
    """The alerts of the snapshot's rules on ``scenario``'s recording in one format and
    profile; what they are (rule, argv, argv of each step) and what the manifest states."""
    alerts = replay(
        fmt,
        "--events-as",
        profile,
        "--no-builtin-rules",
        "--rule",
        str(SNAPSHOT / "rules"),
        name=scenario.name,
    )
    found = Counter((a["rule"]["id"], tuple(a["process"]["args"]), argv_steps(a)) for a in alerts)
    expected = Counter(
        (a.rule, a.args, a.sequence)
        for a in scenario.elastic
        if fmt in a.formats and profile in a.events_as
    )
    return alerts, found, expected


def test_the_manifest_states_at_least_5_sequence_rules() -> None:
    assert len({a.rule for a in SCENARIO.elastic if a.sequence}) >= 5


@needs_snapshot
@pytest.mark.parametrize("profile", ["defend", "auditbeat"])
@pytest.mark.parametrize("fmt", ["raw", "enriched"])
def test_exactly_the_stated_alerts_and_no_other(fmt: str, profile: str) -> None:
    alerts, found, expected = stated_and_found(SCENARIO, fmt, profile)
    assert found == expected
    # Every alert is of the lab user, and host.id comes from --host-id or node=.
    assert {a["user"]["id"] for a in alerts} == {alerts[0]["user"]["id"]} != {"0"}
    hosts = {a["kexecwatch"]["sequence"]["join"].get("host.id") for a in alerts if argv_steps(a)}
    assert hosts - {None} == {"lab-host" if fmt == "raw" else "kxlab-node"}


@needs_snapshot
@pytest.mark.parametrize("fmt", ["raw", "enriched"])
def test_the_near_misses_miss_the_maxspan_just_so(fmt: str) -> None:
    """slow/tar's shell and the late base64 come 1.2 s and 3.2 s after their first step:
    a little over the rules' maxspan, so only the quick versions alert (above)."""
    for rule, maxspan in ((WILDCARD, "maxspan=1s"), (BASE64, "maxspan=3s")):
        text = next(p for p in (SNAPSHOT / "rules").rglob("*.toml") if rule in p.read_text())
        assert maxspan in text.read_text()
    events = replay(fmt, "--events-as", "defend", "--events")
    children: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        children.setdefault(e["process"]["parent"].get("entity_id", ""), []).append(e)

    (slow_tar,) = [e for e in events if e["process"]["args"][1:2] == ["slow/tar"]]
    (shell,) = [
        c for c in children[slow_tar["process"]["entity_id"]] if c["process"]["name"] == "sh"
    ]
    assert 1.0 < seconds(shell) - seconds(slow_tar) < 1.5

    (late_parent,) = [
        e
        for e in events
        if e["process"]["name"] == "sh" and "sleep 3.2" in e["process"]["args"][-1]
    ]
    first, second = [
        c for c in children[late_parent["process"]["entity_id"]] if c["process"]["name"] == "base64"
    ]
    assert 3.0 < seconds(second) - seconds(first) < 3.5
    assert first["process"]["working_directory"] == "/var/tmp"
