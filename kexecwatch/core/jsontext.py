"""JSON text that stays on one line for every reader.

``json.dumps`` escapes the C0 controls (so ``\\n``, ``\\r``, ``\\v``, ``\\f`` never appear
raw) but, with ``ensure_ascii=False``, keeps U+0085 (NEL), U+2028 (LINE SEPARATOR) and
U+2029 (PARAGRAPH SEPARATOR). Readers that split on Unicode line breaks (Python's
``str.splitlines``, JavaScript before ES2019) would cut a document in two there.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["dumps"]

_LINE_BREAKS = str.maketrans({"\u0085": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def dumps(obj: Any, *, indent: int | None = None) -> str:
    """``obj`` as JSON, keys sorted, non-ASCII kept, Unicode line breaks escaped.

    Compact (no spaces) unless ``indent`` is given. The three characters can only occur
    inside JSON strings, so replacing them by their escapes keeps the same value.
    """
    separators = (",", ":") if indent is None else (",", ": ")
    text = json.dumps(obj, ensure_ascii=False, sort_keys=True, indent=indent, separators=separators)
    return text.translate(_LINE_BREAKS)
