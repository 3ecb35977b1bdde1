"""Rules shipped with kexecwatch, read from package data.

Two rule sets: ``upstream``, Elastic's "Kernel Load or Unload via Kexec
Detected" v7 exactly as published (EQL), and ``kexecwatch``, kexecwatch's own
detections of what that rule misses (Python detections with the same kind of
metadata). ``all`` (the default) runs both.

This is I/O (files next to this module), so it lives outside the pure core; parsing and
compiling are :func:`kexecwatch.core.detect.rule.load_rule`'s and
:func:`kexecwatch.core.detect.detections.load_native_rule`'s job. The files' parsed
forms are precomputed in ``builtin.json`` (:mod:`kexecwatch.rules.precomputed`), used
for a file only while its text is the one they were computed from.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kexecwatch.core import (
    NativeRule,
    QuerySource,
    Rule,
    Statement,
    astjson,
    load_native_rule,
    load_parsed_native_rule,
    load_parsed_rule,
    load_rule,
    parse_statement,
)
from kexecwatch.errors import ConfigError
from kexecwatch.rules.source import VersionLock, load_rule_source, read_rule_file

if TYPE_CHECKING:
    from kexecwatch.rules.cache import RuleCache

__all__ = [
    "BUILTIN_RULE_FILES",
    "NATIVE_RULE_FILES",
    "RULESETS",
    "UPSTREAM_RULE_FILES",
    "load_builtin_rules",
    "load_rules",
    "read_rule_file",
]

#: The upstream rule, in detection-rules format.
UPSTREAM_RULE_FILES = ("privilege_escalation_load_and_unload_of_kernel_via_kexec.toml",)
#: kexecwatch's own rules.
NATIVE_RULE_FILES = (
    "kexecwatch_kexec_syscall.toml",
    "kexecwatch_kexec_args_evasion.toml",
    "kexecwatch_kexec_parent_masquerade.toml",
    "kexecwatch_kexec_disguised_binary.toml",
    "kexecwatch_audit_telemetry_gap.toml",
)
#: File names of the built-in rules, in load order.
BUILTIN_RULE_FILES = UPSTREAM_RULE_FILES + NATIVE_RULE_FILES
#: The values of ``--ruleset``.
RULESETS = ("all", "upstream", "kexecwatch")


def load_builtin_rules(ruleset: str = "all") -> list[Rule | NativeRule]:
    """Load and compile the built-in rules of one rule set.

    Args:
        ruleset: ``all`` (default), ``upstream`` (the v7 EQL rule alone) or
            ``kexecwatch`` (kexecwatch's own rules alone).

    Raises:
        ConfigError: for an unknown rule set.
        RuleError: if a shipped rule is broken (a packaging bug; the tests load them all).
    """
    if ruleset not in RULESETS:
        raise ConfigError(f"unknown rule set {ruleset!r}: expected one of {', '.join(RULESETS)}")

    def read(name: str) -> str:
        # The files beside this module (kexecwatch is installed as a directory: its
        # native library could not load from an archive). importlib.resources reads them
        # too, at about a tenth of an empty replay's start-up for its own imports.
        return Path(__file__).with_name(name).read_text(encoding="utf-8")

    from kexecwatch.rules import precomputed

    known = precomputed.read_entries(Path(__file__).with_name(precomputed.FILE))

    def load(name: str, native: bool) -> Rule | NativeRule:
        text, source = read(name), f"{__package__}/{name}"
        entry = known.get(name)
        if not isinstance(entry, dict) or entry.get("text") != text:
            return load_native_rule(text, source) if native else load_rule(text, source)
        data = entry["toml"]
        if native:
            return load_parsed_native_rule(data, text, source)
        return load_parsed_rule(data, text, source, parse=_precomputed_tree(entry))

    rules: list[Rule | NativeRule] = []
    if ruleset in ("all", "upstream"):
        rules += [load(n, False) for n in UPSTREAM_RULE_FILES]
    if ruleset in ("all", "kexecwatch"):
        rules += [load(n, True) for n in NATIVE_RULE_FILES]
    return rules


def _precomputed_tree(entry: dict[str, Any]) -> Callable[[QuerySource], Statement]:
    """A query parser that answers the entry's query with its precomputed tree."""

    def parse(src: QuerySource) -> Statement:
        if src.text == entry.get("query"):
            try:
                return astjson.from_data(entry.get("tree"))
            except ValueError:
                pass  # damaged: the parser says what the query is
        return parse_statement(src)

    return parse


def load_rules(
    paths: Sequence[str],
    *,
    builtin: bool = True,
    ruleset: str = "all",
    report: Callable[[str], None] | None = None,
    cache: RuleCache | None = None,
) -> list[Rule | NativeRule]:
    """The built-in rules of ``ruleset`` (unless ``builtin`` is false) plus rule paths.

    Each path is a rule file or a directory of them (:mod:`kexecwatch.rules.source`).

    Args:
        report: receives one line per directory (its counts), per rule file of a
            directory that did not load, and per unreadable version lock.
        cache: the rule files' parsed TOML from earlier runs (:mod:`kexecwatch.rules.cache`),
            written back once every path is loaded; ``None``: no cache.

    Raises:
        ConfigError: for an unknown rule set, or no rule at all (no built-in rules and
            no rule path): a run that could never alert is a usage mistake.
        RuleError: when a rule file, or a path, cannot be read or compiled.
    """
    if not builtin and not paths:
        raise ConfigError(
            "--no-builtin-rules needs at least one --rule FILE or DIR: no rule would run"
        )
    rules: list[Rule | NativeRule] = list(load_builtin_rules(ruleset)) if builtin else []
    lock = VersionLock()
    for path in paths:
        loaded = load_rule_source(path, lock, cache)
        rules += loaded.rules
        if report is None:
            continue
        for problem in (*loaded.failed, *loaded.warnings):
            report(str(problem).split("\n", 1)[0])
        if loaded.directory:
            report(loaded.summary())
    if cache is not None:
        cache.save()
    return rules
