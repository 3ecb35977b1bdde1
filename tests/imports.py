"""What a Python file imports, read from its syntax tree: for the guards on the package's
import structure (tests/test_core_is_pure.py, tests/test_import_cycles.py,
tests/core/test_stages.py)."""

from __future__ import annotations

import ast
from collections.abc import Collection
from pathlib import Path


def module_name(path: Path, root: Path) -> str:
    """The dotted name of the module in ``path``, a file under ``root``."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_in(path: Path, root: Path, known: Collection[str] = ()) -> set[str]:
    """Every module ``path`` (a file under ``root``) imports, anywhere in the file (an
    import inside a function is a dependency all the same); relative imports resolved.
    ``from P import N`` names ``P.N`` when that is one of the ``known`` modules, else ``P``.
    """
    package = path.relative_to(root).with_suffix("").parts[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
    return found
