"""The command line shared by the tools that write a generated file of the package."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def write_or_check(target: Path, text: str, module: str, description: str) -> int:
    """Write ``text`` to ``target``, or with ``--check`` only say whether it holds it.

    ``module`` is the tool's ``python -m`` name (for the stale message); returns the exit code.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--check", action="store_true", help="only say whether it is stale")
    args = parser.parse_args()
    current = target.read_text(encoding="utf-8") if target.exists() else ""
    if args.check:
        if current != text:
            print(f"{target} is stale: run python -m {module}", file=sys.stderr)
            return 1
        return 0
    target.write_text(text, encoding="utf-8")
    return 0
