"""JSON text that stays on one line for every reader.

``json.dumps`` escapes the C0 controls (so ``\\n``, ``\\r``, ``\\v``, ``\\f`` never appear
raw) but, with ``ensure_ascii=False``, keeps U+0085 (NEL), U+2028 (LINE SEPARATOR) and
U+2029 (PARAGRAPH SEPARATOR). Readers that split on Unicode line breaks (Python's
``str.splitlines``, JavaScript before ES2019) would cut a document in two there.
"""

from __future__ import annotations

import json
from typing import Any

from kexecwatch.core.textsafe import clip, utf8_len

__all__ = ["dumps", "dumps_within", "encode"]

_LINE_BREAKS = str.maketrans({"\u0085": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def dumps(obj: Any, *, indent: int | None = None, sort_keys: bool = True) -> str:
    """``obj`` as JSON, keys sorted (unless ``sort_keys`` is false: then in their own
    order), non-ASCII kept, Unicode line breaks escaped.

    Compact (no spaces) unless ``indent`` is given. The three characters can only occur
    inside JSON strings, so replacing them by their escapes keeps the same value.
    """
    separators = (",", ":") if indent is None else (",", ": ")
    text = json.dumps(
        obj, ensure_ascii=False, sort_keys=sort_keys, indent=indent, separators=separators
    )
    return text.translate(_LINE_BREAKS)


def encode(text: str) -> bytes:
    """JSON text as UTF-8; a lone surrogate (an undecodable byte) becomes ``\\udcNN``."""
    return text.encode("utf-8", "backslashreplace")


def dumps_within(obj: Any, max_bytes: int) -> str | None:
    """:func:`dumps` of ``obj`` cut to at most ``max_bytes`` bytes once encoded, or ``None``.

    A document too long as it is keeps its shape: every string longer than some limit
    ``n`` bytes is cut to ``n`` and ends in ``…(+N bytes)`` (:func:`~textsafe.clip`),
    every list longer than ``n`` items keeps ``n`` and ends in ``…(+N items)``, with the
    largest ``n`` that fits. Short values, keys and numbers are never touched, so the
    largest values (a hostile argument) give way first. ``None`` if nothing fits.
    """
    text = dumps(obj)
    if len(encode(text)) <= max_bytes:
        return text
    best: str | None = None
    lo, hi = 0, min(_largest(obj), max_bytes)  # a longer value could never fit
    while lo <= hi:  # the size grows with n: find the largest n that fits
        n = (lo + hi) // 2
        text = dumps(_cut(obj, n))
        if len(encode(text)) <= max_bytes:
            best, lo = text, n + 1
        else:
            hi = n - 1
    return best


def _largest(obj: Any) -> int:
    """The longest string (in bytes) or list (in items) anywhere in ``obj``."""
    if isinstance(obj, str):
        return utf8_len(obj)
    if isinstance(obj, dict):
        return max(map(_largest, obj.values()), default=0)
    if isinstance(obj, list):
        return max([len(obj), *map(_largest, obj)])
    return 0


def _cut(obj: Any, n: int) -> Any:
    """``obj`` with strings cut to ``n`` bytes and lists to ``n`` items where that is shorter."""
    if isinstance(obj, str):
        cut = clip(obj, n)
        return cut if len(cut) < len(obj) else obj
    if isinstance(obj, dict):
        return {k: _cut(v, n) for k, v in obj.items()}
    if isinstance(obj, list):
        if len(obj) > n + 1:  # the marker stands for two items or more
            return [_cut(v, n) for v in obj[:n]] + [f"…(+{len(obj) - n} items)"]
        return [_cut(v, n) for v in obj]
    return obj
