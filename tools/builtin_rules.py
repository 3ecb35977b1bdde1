"""Write ``kexecwatch/rules/builtin.json``, the built-in rules' precomputed form.

Run after editing a built-in rule file or the EQL parser (``tests/test_builtin_precomputed.py``
fails until then)::

    python -m tools.builtin_rules          # rewrite the file
    python -m tools.builtin_rules --check  # exit 1 if it is not up to date
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kexecwatch.rules import BUILTIN_RULE_FILES, precomputed

RULES = Path(__file__).resolve().parent.parent / "kexecwatch" / "rules"


def expected() -> str:
    """The text ``builtin.json`` must hold for today's rule files and parsers."""
    texts = {name: (RULES / name).read_text(encoding="utf-8") for name in BUILTIN_RULE_FILES}
    return json.dumps(precomputed.entries(texts), indent=1, sort_keys=True) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only say whether it is stale")
    args = parser.parse_args()
    target = RULES / precomputed.FILE
    text = expected()
    current = target.read_text(encoding="utf-8") if target.exists() else ""
    if args.check:
        if current != text:
            print(f"{target} is stale: run python -m tools.builtin_rules", file=sys.stderr)
            return 1
        return 0
    target.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
