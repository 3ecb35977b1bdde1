"""The recorded scenarios against the manifest's hand-stated expectations.

For every scenario of ``fixtures/scenarios.toml`` and both recorded formats:

* ``--ruleset upstream`` raises exactly the manifest's ``upstream`` alerts
  (argv and parent name, in order): the v7 rule keeps exact parity;
* ``--ruleset kexecwatch`` raises exactly the ``extended`` detections (by
  detection name, and argv, system call or gap cause), and nothing on the
  upstream rule's own alerts except where the manifest says so.

Where the recording shows the manifest's proposal is wrong, the difference is
stated in :data:`CORRECTIONS`, with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kexecwatch.core.detect.alerts import Alert
from kexecwatch.core.detect.detector import Detector
from kexecwatch.rules import load_builtin_rules

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "fixtures" / "scenarios.toml"
FORMATS = ("raw", "enriched")

if MANIFEST.exists():
    from tools.scenarios import ExpectedDetection, Scenario, load_manifest

    SCENARIOS = load_manifest(MANIFEST).scenarios
else:  # pragma: no cover - before the fixtures are merged
    SCENARIOS = ()

#: The gap causes of the manifest, as telemetry ``event.action`` values.
CAUSES = {
    "rules-removed": "audit-rule-removed",
    "audit-disabled": "audit-disabled",
    "auditd-stopped": "auditd-stopped",
    "auditd-aborted": "auditd-aborted",
    "events-lost": "events-lost",
}

Key = tuple[str, Any]


def _drop(key: Key) -> Callable[[list[Key]], list[Key]]:
    return lambda keys: [k for k in keys if k != key]


def _add(key: Key) -> Callable[[list[Key]], list[Key]]:
    return lambda keys: [*keys, key]


#: Scenario -> (correction of the manifest's extended list, why).
CORRECTIONS: dict[str, tuple[Callable[[list[Key]], list[Key]], str]] = {
    "v7-unlisted-args": (
        _drop(("kexec-args-evasion", ("kexec", "--load=/srv/kxlab/vmlinuz-stub"))),
        "--load takes no argument: getopt_long rejects --load=K, kexec prints its usage "
        "and returns 1 without loading anything",
    ),
    "telemetry-gap": (
        _add(("audit-telemetry-gap", "events-lost")),
        "the run while auditd was stopped never reached the log: four kernel serials are "
        "missing (the manifest's own notes), which is an events-lost alert",
    ),
}


def log_paths(scenario: str) -> list[Path]:
    return [ROOT / "fixtures" / "audit" / fmt / f"{scenario}.log" for fmt in FORMATS]


def run(path: Path, ruleset: str) -> list[Alert]:
    det = Detector(load_builtin_rules(ruleset), host_name="fixture-host")
    outputs = det.feed(path.read_bytes()) + det.flush()
    return [o for o in outputs if isinstance(o, Alert)]


def key_of(alert: Alert) -> Key:
    doc = alert.to_document()
    name = getattr(alert.rule, "detection_name", "upstream")
    if name == "kexec-syscall":
        return name, doc["event"]["action"]
    if name == "audit-telemetry-gap":
        return name, doc["event"]["action"]
    return name, tuple(doc["process"]["args"])


def expected_key(d: ExpectedDetection) -> Key:
    if d.cause is not None:
        return d.name, CAUSES[d.cause]
    if d.syscall is not None:
        return d.name, d.syscall
    return d.name, d.args


CASES = [
    pytest.param(sc, path, id=f"{path.parent.name}/{sc.name}")
    for sc in SCENARIOS
    for path in log_paths(sc.name)
]


@pytest.mark.parametrize(("scenario", "path"), CASES)
def test_upstream_ruleset_gives_exactly_the_manifest_alerts(scenario: Scenario, path: Path) -> None:
    got = [
        (
            tuple(a.to_document()["process"]["args"]),
            a.to_document()["process"]["parent"].get("name"),
        )
        for a in run(path, "upstream")
    ]
    assert got == [(e.args, e.parent_name) for e in scenario.upstream]


@pytest.mark.parametrize(("scenario", "path"), CASES)
def test_kexecwatch_ruleset_gives_the_extended_detections(scenario: Scenario, path: Path) -> None:
    expected = [expected_key(d) for d in scenario.extended]
    if scenario.name in CORRECTIONS:
        correct, _why = CORRECTIONS[scenario.name]
        expected = correct(expected)
    found = run(path, "kexecwatch")
    assert sorted(map(key_of, found), key=repr) == sorted(expected, key=repr)
    assert all(a.reason for a in found)


@pytest.mark.parametrize("path", [p for p in log_paths("kdump-flows")], ids=FORMATS)
def test_kdump_flows_raise_nothing_but_the_v7_kdump_config_false_positive(path: Path) -> None:
    if not path.exists():
        pytest.skip("fixtures not merged")
    found = run(path, "all")
    assert [(a.rule.rule_id, tuple(a.to_document()["process"]["args"])) for a in found] == [
        ("4d4c35f4-414e-4d0c-bb7e-6db7c80a6957", ("/sbin/kexec", "-p", "-u"))
    ]
    assert found[0].to_document()["process"]["parent"]["name"] == "kdump-config"


def test_every_correction_names_a_scenario() -> None:
    names = {sc.name for sc in SCENARIOS}
    assert not SCENARIOS or set(CORRECTIONS) <= names
