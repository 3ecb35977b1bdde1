"""The built-in rules' precomputed form (``kexecwatch/rules/builtin.json``) is exactly
what the parsers give today, and the rules load the same with it and without it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kexecwatch.core import NativeRule, Rule, load_native_rule, load_rule
from kexecwatch.rules import (
    BUILTIN_RULE_FILES,
    NATIVE_RULE_FILES,
    UPSTREAM_RULE_FILES,
    load_builtin_rules,
    precomputed,
)
from tools import builtin_rules

RULES = Path(builtin_rules.RULES)


def test_the_committed_file_is_what_the_parsers_give_today() -> None:
    # After editing a built-in rule or the EQL parser: python -m tools.builtin_rules
    assert (RULES / precomputed.FILE).read_text(encoding="utf-8") == builtin_rules.expected()


def parsed_afresh() -> list[Rule | NativeRule]:
    rules: list[Rule | NativeRule] = []
    for name in BUILTIN_RULE_FILES:
        text = (RULES / name).read_text(encoding="utf-8")
        load = load_native_rule if name in NATIVE_RULE_FILES else load_rule
        rules.append(load(text, f"kexecwatch.rules/{name}"))
    return rules


def described(rule: Rule | NativeRule) -> dict[str, Any]:
    """Every field of a loaded rule; a compiled query by what it holds, a detection by kind."""
    found: dict[str, Any] = {}
    for name in rule._fields:  # the fields, as tests/core/test_frozen.py holds them
        value = getattr(rule, name)
        if name == "query":
            value = (repr(value), value.required_values())  # repr: text, category, tree
        elif name == "detection":
            value = type(value)
        found[name] = value
    return found


def test_the_rules_load_the_same_from_the_precomputed_form_and_from_their_files() -> None:
    assert precomputed.read_entries(RULES / precomputed.FILE)  # it is there and read
    loaded = load_builtin_rules()
    assert [described(r) for r in loaded] == [described(r) for r in parsed_afresh()]


def renamed(entries: dict[str, Any], text_too: bool) -> dict[str, Any]:
    for entry in entries.values():
        entry["toml"]["rule"]["name"] = "Renamed in builtin.json"
        if text_too:
            entry["text"] += "\n# edited since\n"
    return entries


def test_an_entry_is_used_only_for_the_text_it_was_computed_from(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = precomputed.read_entries
    monkeypatch.setattr(precomputed, "read_entries", lambda path: renamed(real(path), False))
    assert {r.name for r in load_builtin_rules()} == {"Renamed in builtin.json"}  # it is used
    monkeypatch.setattr(precomputed, "read_entries", lambda path: renamed(real(path), True))
    assert [described(r) for r in load_builtin_rules()] == [described(r) for r in parsed_afresh()]


@pytest.mark.parametrize("damage", ["no-file", "bad-tree", "other-query"])
def test_a_missing_or_damaged_precomputed_form_loads_the_rules_from_their_files(
    monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    real = precomputed.read_entries

    def damaged(path: Path) -> dict[str, Any]:
        if damage == "no-file":
            return real(path.with_name("no-such.json"))
        entries = real(path)
        for name in UPSTREAM_RULE_FILES:
            if damage == "bad-tree":
                entries[name]["tree"] = ["Query", "process", ["Nope"]]
            else:
                entries[name]["query"] = "process where true"
                entries[name]["tree"] = ["Query", "process", ["BoolConst", True, 14]]
        return entries

    monkeypatch.setattr(precomputed, "read_entries", damaged)
    assert [described(r) for r in load_builtin_rules()] == [described(r) for r in parsed_afresh()]
