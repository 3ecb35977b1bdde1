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

from kexecwatch.adapters import coreglue, daemon  # noqa: E402
from tests.core.simple_rule import SimpleRule  # noqa: E402

ARGS = {"--exec", "-e", "--load", "-l", "--unload", "-u"}


def kexec_rule(doc: dict[str, Any]) -> bool:
    p = doc.get("process", {})
    args = p.get("args") or []
    parent = (p.get("parent") or {}).get("name")
    return (p.get("name") == "kexec" and doc["event"]["type"] == ["start"]
            and any(a in ARGS for a in args) and parent not in ("kdumpctl", "unload.sh"))


coreglue.load_rules = lambda paths: [  # type: ignore[assignment]
    SimpleRule(kexec_rule, rule_id="4d4c35f4-414e-4d0c-bb7e-6db7c80a6957")]

if __name__ == "__main__":
    sys.exit(daemon.main())
