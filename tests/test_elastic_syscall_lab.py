"""Elastic's Linux rules on process system calls besides execs, on a real recording.

``elastic-process-syscalls`` (fixtures/scenarios.toml) was recorded with the real auditd
as the unprivileged lab user (tools/record_fixtures.py), with the scenario's own audit
rules for exit_group, kill, prctl, finit_module, the set*id calls and setsid (scoped to the
lab user like the rest): a process's end, signals, a prctl, a module load refused, set*id
calls to the user's own ids and a setsid. Replayed with the snapshot's rules under each
event profile, each format must give exactly the manifest's alerts (rule id, argv, the
steps of a sequence) and nothing from any other rule. Skips, saying so, without the
snapshot in ../shared.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.test_elastic_sequence_lab import replay as lab_replay
from tests.test_elastic_sequence_lab import seconds, stated_and_found
from tests.test_rule_source import SNAPSHOT, needs_snapshot
from tools.scenarios import load_manifest

ROOT = Path(__file__).resolve().parent.parent
NAME = "elastic-process-syscalls"
SCENARIO = load_manifest().scenario(NAME)
STRACE = "9eaa3fb1-3f70-48ed-bb0e-d7ae4d3c8f28"  # sshd ends, then strace starts; maxspan=3s


def replay(fmt: str, *extra: str) -> list[dict[str, Any]]:
    return lab_replay(fmt, *extra, name=NAME)


@needs_snapshot
@pytest.mark.parametrize("profile", ["defend", "auditbeat"])
@pytest.mark.parametrize("fmt", ["raw", "enriched"])
def test_exactly_the_stated_alerts_and_no_other(fmt: str, profile: str) -> None:
    alerts, found, expected = stated_and_found(SCENARIO, fmt, profile)
    assert found == expected
    assert {a["user"]["id"] for a in alerts} == {alerts[0]["user"]["id"]} != {"0"}


@pytest.mark.parametrize("fmt", ["raw", "enriched"])
def test_the_built_in_rules_stay_silent(fmt: str) -> None:
    assert replay(fmt) == []
    assert replay(fmt, "--events-as", "defend") == []


@pytest.mark.parametrize("fmt", ["raw", "enriched"])
def test_each_call_reads_as_the_profiles_state(fmt: str) -> None:
    ours: dict[str, dict[str, set[tuple[str, str]]]] = {"auditbeat": {}, "defend": {}}
    for profile, seen in ours.items():
        for e in replay(fmt, "--events-as", profile, "--events"):
            call = e["auditd"]["syscall"]
            seen.setdefault(call, set()).add((e["event"]["action"], e["event"]["type"][0]))
    beat, defend = ours["auditbeat"], ours["defend"]
    assert beat["exit_group"] == {("exit_group", "end")} and defend["exit_group"] == {
        ("end", "end")
    }
    assert beat["kill"] == {("killed-pid", "info")} and defend["kill"] == {("kill", "info")}
    assert defend["finit_module"] == {("finit_module", "info")}  # refused: nothing loaded
    assert defend["setsid"] == {("session_id_change", "change")}
    assert defend["prctl"] == beat["prctl"] == {("prctl", "info")}


@pytest.mark.parametrize("fmt", ["raw", "enriched"])
def test_a_set_id_call_is_a_change_only_when_the_ids_moved(fmt: str) -> None:
    """The driver's setpriv (run as root: its exec is not audited) first sets its uids to
    the lab user's (the table learns it from that event, still with gid 0), then its gids
    from 0 to the lab group's: a real gid_change. python's calls to its own ids: none."""
    calls = [
        (e["process"]["name"], e["auditd"]["syscall"], e["event"]["action"], e["group"]["id"])
        for e in replay(fmt, "--events-as", "defend", "--events")
        if e["auditd"]["syscall"] in ("setresuid", "setresgid")
    ]
    lab_group = calls[-1][3]
    assert lab_group != "0"
    assert calls == [
        ("setpriv", "setresuid", "setresuid", "0"),
        ("setpriv", "setresgid", "gid_change", lab_group),
        ("python3", "setresuid", "setresuid", lab_group),
        ("python3", "setresgid", "setresgid", lab_group),
    ]


@needs_snapshot
@pytest.mark.parametrize("fmt", ["raw", "enriched"])
def test_the_near_misses_miss(fmt: str) -> None:
    """The second sshd ends 3.2 s before its strace (maxspan=3s), and SIGTERM (a1 f) is
    not among the unusual signals: only the quick pair and signal 35 alert (above)."""
    text = next(p for p in (SNAPSHOT / "rules").rglob("*.toml") if STRACE in p.read_text())
    assert "maxspan=3s" in text.read_text()
    events = replay(fmt, "--events-as", "defend", "--events")
    ends = [
        e for e in events if e["process"].get("name") == "sshd" and e["event"]["action"] == "end"
    ]
    straces = [
        e for e in events if e["process"]["name"] == "strace" and e["event"]["type"] == ["start"]
    ]
    assert len(ends) == len(straces) == 2
    assert seconds(straces[0]) - seconds(ends[0]) < 3.0
    assert 3.0 < seconds(straces[1]) - seconds(ends[1]) < 3.5
    signals = [e["auditd"]["data"]["a1"] for e in events if e["auditd"]["syscall"] == "kill"]
    assert sorted(signals) == ["23", "f"]
