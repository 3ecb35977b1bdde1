"""Loading kexecwatch's own rule files, and the built-in rule sets."""

from __future__ import annotations

from importlib import resources

import pytest

from kexecwatch.core.detect.detections import DETECTIONS, NativeRule, load_native_rule
from kexecwatch.core.detect.rule import Rule
from kexecwatch.errors import ConfigError, RuleError
from kexecwatch.rules import NATIVE_RULE_FILES, load_builtin_rules

UPSTREAM_ID = "4d4c35f4-414e-4d0c-bb7e-6db7c80a6957"


def native_text(name: str = "kexecwatch_kexec_syscall.toml") -> str:
    return resources.files("kexecwatch.rules").joinpath(name).read_text(encoding="utf-8")


def test_rule_sets() -> None:
    everything = load_builtin_rules()
    assert [r.rule_id for r in load_builtin_rules("upstream")] == [UPSTREAM_ID]
    assert isinstance(everything[0], Rule) and everything[0].version == 7
    native = load_builtin_rules("kexecwatch")
    assert all(isinstance(r, NativeRule) for r in native)
    assert [r.rule_id for r in everything] == [UPSTREAM_ID] + [r.rule_id for r in native]
    assert sorted(r.detection_name for r in native) == sorted(DETECTIONS)
    with pytest.raises(ConfigError, match="unknown rule set 'v7'"):
        load_builtin_rules("v7")


def test_native_rules_have_their_own_metadata() -> None:
    native = load_builtin_rules("kexecwatch")
    assert len({r.rule_id for r in native}) == len(native) == len(NATIVE_RULE_FILES)
    for rule in native:
        assert isinstance(rule, NativeRule)
        assert rule.rule_id != UPSTREAM_ID and rule.version == 1
        assert rule.severity in ("medium", "high") and 0 < rule.risk_score <= 100
        assert rule.threat_documents() and rule.description.strip()
        assert rule.interval_ms == 300_000 and rule.max_signals == 100
        assert rule.applies_to == (
            "telemetry" if rule.detection_name.startswith("audit") else "process"
        )


def test_each_load_has_its_own_detection_state() -> None:
    first, second = (load_native_rule(native_text(), "x.toml") for _ in range(2))
    assert first.detection is not second.detection


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ('detection = "kexec-syscall"', 'detection = "kexec-magic"'),
            "rule.detection must be one of",
        ),
        (('detection = "kexec-syscall"\n', ""), "found None"),
        (('language = "kexecwatch"', 'language = "eql"'), "rule.language must be 'kexecwatch'"),
        (('severity = "high"', 'severity = "dire"'), "rule.severity must be one of"),
        (("risk_score = 73", 'risk_score = "73"'), "rule.risk_score must be of type integer"),
    ],
)
def test_bad_native_rule_files(edit: tuple[str, str], message: str) -> None:
    text = native_text()
    assert edit[0] in text
    with pytest.raises(RuleError, match=message) as caught:
        load_native_rule(text.replace(*edit), "bad.toml")
    assert str(caught.value).startswith("bad.toml")


def test_an_eql_rule_file_is_not_a_native_rule() -> None:
    text = (
        resources.files("kexecwatch.rules")
        .joinpath("privilege_escalation_load_and_unload_of_kernel_via_kexec.toml")
        .read_text(encoding="utf-8")
    )
    with pytest.raises(RuleError, match=r"rule\.type must be 'kexecwatch'"):
        load_native_rule(text, "v7.toml")


def test_eql_reason_names_the_values_that_matched() -> None:
    [rule] = load_builtin_rules("upstream")
    doc = {"process": {"name": "kexec", "args": ["kexec", "-s", "-l", "-e", "-l"]}}
    assert rule.reason(doc) == "process.name kexec with process.args -l -e (EQL rule v7)"
