"""Run the daemon with a plain-Python kexec rule while the EQL rule engine is not merged.

Usage: ``python tests/daemon/stand_in_rules.py [run options]``. Remove once
``kexecwatch.rules.load_builtin_rules`` exists on main; the tests then run
``python -m kexecwatch run``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from kexecwatch.adapters import coreglue, daemon
from kexecwatch.errors import RuleError
from tests.core.simple_rule import SimpleRule

ARGS = {"--exec", "-e", "--load", "-l", "--unload", "-u"}


def kexec_rule(doc: dict[str, Any]) -> bool:
    p = doc.get("process", {})
    args = p.get("args") or []
    parent = (p.get("parent") or {}).get("name")
    return (p.get("name") == "kexec" and doc["event"]["type"] == ["start"]
            and any(a in ARGS for a in args) and parent not in ("kdumpctl", "unload.sh"))


def load_rules(paths: list[str]) -> list[SimpleRule]:
    for path in paths:  # extra rule files cannot be compiled here: only check they exist
        if not Path(path).is_file():
            raise RuleError(f"{path}: cannot read rule file")
    return [SimpleRule(kexec_rule, rule_id="4d4c35f4-414e-4d0c-bb7e-6db7c80a6957")]


coreglue.load_rules = load_rules  # type: ignore[assignment]

if __name__ == "__main__":
    sys.exit(daemon.main())
