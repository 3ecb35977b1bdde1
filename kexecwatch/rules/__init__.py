"""Rules shipped with kexecwatch, read from package data.

This is I/O (``importlib.resources``), so it lives outside the pure core; parsing and
compiling are :func:`kexecwatch.core.rule.load_rule`'s job.
"""

from __future__ import annotations

from importlib import resources

from kexecwatch.core.rule import Rule, load_rule

__all__ = ["BUILTIN_RULE_FILES", "load_builtin_rules"]

#: File names of the built-in rules, in load order.
BUILTIN_RULE_FILES = ("privilege_escalation_load_and_unload_of_kernel_via_kexec.toml",)


def load_builtin_rules() -> list[Rule]:
    """Load and compile every built-in rule.

    Raises:
        RuleError: if a shipped rule is broken (a packaging bug; the tests load them all).
    """
    package = resources.files(__package__)
    return [
        load_rule(package.joinpath(name).read_text(encoding="utf-8"), f"{__package__}/{name}")
        for name in BUILTIN_RULE_FILES
    ]
