"""Write ``kexecwatch/rules/builtin.json``, the built-in rules' precomputed form.

Run after editing a built-in rule file or the EQL parser (``tests/test_builtin_precomputed.py``
fails until then)::

    python -m tools.builtin_rules          # rewrite the file
    python -m tools.builtin_rules --check  # exit 1 if it is not up to date
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from kexecwatch.rules import BUILTIN_RULE_FILES, precomputed
from tools.generated import write_or_check

RULES = Path(__file__).resolve().parent.parent / "kexecwatch" / "rules"


def expected() -> str:
    """The text ``builtin.json`` must hold for today's rule files and parsers."""
    texts = {name: (RULES / name).read_text(encoding="utf-8") for name in BUILTIN_RULE_FILES}
    return json.dumps(precomputed.entries(texts), indent=1, sort_keys=True) + "\n"


def main() -> int:
    text = expected()
    return write_or_check(
        RULES / precomputed.FILE, text, "tools.builtin_rules", __doc__.split("\n\n")[0]
    )


if __name__ == "__main__":
    sys.exit(main())
