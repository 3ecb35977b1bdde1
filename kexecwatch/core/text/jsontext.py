"""JSON text that stays on one line for every reader.

``json.dumps`` escapes the C0 controls (so ``\\n``, ``\\r``, ``\\v``, ``\\f`` never appear
raw) but, with ``ensure_ascii=False``, keeps U+0085 (NEL), U+2028 (LINE SEPARATOR) and
U+2029 (PARAGRAPH SEPARATOR). Readers that split on Unicode line breaks (Python's
``str.splitlines``, JavaScript before ES2019) would cut a document in two there.

Speed: compact documents (every NDJSON line: alerts, ``--events``) are written by
orjson when it is installed (the optional extra ``kexecwatch[fast]``), 16 times faster
than the standard library. The bytes are the same either way: orjson writes what
``json.dumps`` writes for strings, integers, booleans, ``None``, lists and dicts with
string keys (the only values documents hold), and anything it would write differently
or refuses (a lone surrogate from an undecodable byte, a key that is not a string, an
integer beyond 64 bits, a subclass of a built-in type, a dataclass) makes it raise, and
the standard library writes that document instead. Floats are the one difference left
(``1e+16`` against ``1e16``): no document holds one, and tests compare both writers on
every document the golden files hold.
"""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

from kexecwatch.core.text.textsafe import clip, utf8_len

__all__ = [
    "JsonText",
    "ascii_compact",
    "ascii_compact_with",
    "compact",
    "dumps",
    "dumps_within",
    "encode",
    "line",
    "writer",
]

_LINE_BREAKS = str.maketrans({"\u0085": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})

#: orjson is imported when the first document is written (a replay that writes none,
#: the usual run, does not pay its import): until then this stands in its place.
_UNTRIED = ModuleType("orjson, not imported yet")
_orjson: ModuleType | None = _UNTRIED
# Types orjson would write but json.dumps would not, or would write otherwise: passed
# through to a missing ``default``, so that orjson raises and the stdlib decides.
_STRICT = 0


def _load() -> ModuleType | None:
    """orjson (imported now), or ``None`` when it is not installed."""
    global _orjson, _STRICT  # noqa: PLW0603 - the import is deferred, its result kept here
    try:
        import orjson
    except ImportError:  # pragma: no cover - the optional extra is not installed
        _orjson = None
        return None
    _STRICT = (
        orjson.OPT_PASSTHROUGH_DATACLASS
        | orjson.OPT_PASSTHROUGH_DATETIME
        | orjson.OPT_PASSTHROUGH_SUBCLASS
    )
    _orjson = orjson
    return orjson


# The UTF-8 of U+0085 and the first two bytes of U+2028 and U+2029. In valid UTF-8 a
# lead byte (0xC2, 0xE2) never continues another character, so a match is that character.
_NEL = b"\xc2\x85"
_SEPARATORS = b"\xe2\x80"


def writer() -> str:
    """Which writer compact documents go through: ``orjson`` or ``stdlib``."""
    return "stdlib" if (_orjson if _orjson is not _UNTRIED else _load()) is None else "orjson"


def line(obj: Any) -> bytes:
    """``obj`` as one NDJSON line: :func:`dumps` (keys sorted, compact) as UTF-8 (lone
    surrogates as ``\\udcNN``, see :func:`encode`), then a newline.

    The same bytes whichever writer is installed (see the module docstring).
    """
    orjson = _orjson if _orjson is not _UNTRIED else _load()
    if orjson is not None:
        fast = _fast(orjson, obj, orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE)
        if fast is not None:
            return fast
    return encode(_stdlib(obj, indent=None, sort_keys=True)) + b"\n"


def compact(obj: Any) -> bytes:
    """:func:`line` without its newline: ``obj``'s bytes as they appear inside a line, so
    that a line can be put together from parts (each the same bytes as in the whole)."""
    orjson = _orjson if _orjson is not _UNTRIED else _load()
    if orjson is not None:
        fast = _fast(orjson, obj, orjson.OPT_SORT_KEYS)
        if fast is not None:
            return fast
    return encode(_stdlib(obj, indent=None, sort_keys=True))


def ascii_compact(obj: Any) -> bytes:
    """``json.dumps(obj, separators=(",", ":"), ensure_ascii=True)`` as bytes (keys in
    their own order), as state files are written: the daemon's checkpoint, 800 KB of it
    every few seconds under load, 16 times faster by orjson.

    orjson's bytes when they hold no byte outside printable ASCII: for the values of the
    module docstring those are the same bytes (``ensure_ascii`` only changes characters
    outside it, and ``\\x7f``); otherwise, or where orjson refuses, the standard library's.
    """
    orjson = _orjson if _orjson is not _UNTRIED else _load()
    if orjson is not None:
        try:
            out: bytes = orjson.dumps(obj, option=_STRICT)
        except TypeError:  # orjson.JSONEncodeError: the standard library decides
            pass
        else:
            if out.isascii() and b"\x7f" not in out:
                return out
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=True).encode("ascii")


class JsonText:
    """A value already written as :func:`ascii_compact` text, for :func:`ascii_compact_with`
    (the daemon's checkpoint gets the process table's rows this way, written natively).

    The text is ``b"".join(parts)``: pieces (say, views of a buffer the rows were written
    into) are copied once, into the whole document.
    """

    __slots__ = ("parts",)

    def __init__(self, *parts: bytes | memoryview) -> None:
        self.parts = parts

    @property
    def text(self) -> bytes:
        """The text, joined."""
        return b"".join(self.parts)

    def __repr__(self) -> str:
        text = self.text
        return f"JsonText({text[:40]!r}...)" if len(text) > 40 else f"JsonText({text!r})"


def ascii_compact_with(obj: Any) -> bytes:
    """:func:`ascii_compact` of ``obj`` in which each :class:`JsonText` (a value of a dict,
    at any depth of dicts) stands for the value its text is: the same bytes as
    :func:`ascii_compact` of the values themselves (each piece copied once)."""
    pieces: list[bytes | memoryview] = []
    _pieces(obj, pieces)
    return b"".join(pieces)


def _pieces(obj: Any, out: list[bytes | memoryview]) -> None:
    if isinstance(obj, JsonText):
        out.extend(obj.parts)
    elif isinstance(obj, dict) and _holds_text(obj):
        sep = b"{"
        for key, value in obj.items():
            if not isinstance(key, str):
                raise TypeError(f"key {key!r} is not a string")
            out.append(sep + ascii_compact(key) + b":")
            _pieces(value, out)
            sep = b","
        out.append(b"}")  # not empty: it holds a JsonText
    else:
        out.append(ascii_compact(obj))


def _holds_text(obj: dict[Any, Any]) -> bool:
    return any(
        isinstance(v, JsonText) or (isinstance(v, dict) and _holds_text(v)) for v in obj.values()
    )


def _fast(orjson: ModuleType, obj: Any, option: int) -> bytes | None:
    """orjson's text of ``obj``, line breaks escaped; ``None`` where it would differ."""
    try:
        out: bytes = orjson.dumps(obj, option=option | _STRICT)
    except TypeError:  # orjson.JSONEncodeError: the standard library decides
        return None
    if _NEL in out or _SEPARATORS in out:
        out = (
            out.replace(_NEL, b"\\u0085")
            .replace(b"\xe2\x80\xa8", b"\\u2028")
            .replace(b"\xe2\x80\xa9", b"\\u2029")
        )
    return out


def dumps(obj: Any, *, indent: int | None = None, sort_keys: bool = True) -> str:
    """``obj`` as JSON, keys sorted (unless ``sort_keys`` is false: then in their own
    order), non-ASCII kept, Unicode line breaks escaped.

    Compact (no spaces) unless ``indent`` is given. The three characters can only occur
    inside JSON strings, so replacing them by their escapes keeps the same value.
    """
    orjson = _orjson if _orjson is not _UNTRIED else _load()
    if indent is None and orjson is not None:
        option = orjson.OPT_SORT_KEYS if sort_keys else 0
        fast = _fast(orjson, obj, option)
        if fast is not None:
            return fast.decode("utf-8")
    return _stdlib(obj, indent=indent, sort_keys=sort_keys)


def _stdlib(obj: Any, *, indent: int | None, sort_keys: bool) -> str:
    """:func:`dumps` by the standard library."""
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
