"""Terminal-safe text: nothing from a log may steer the terminal that shows it."""

from __future__ import annotations

__all__ = ["escape_text", "shorten"]

_SIMPLE = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape_text(value: str) -> str:
    """Escape everything a terminal could act on, visibly and reversibly.

    Control characters (C0, DEL, C1), Unicode format characters such as
    bidirectional overrides, line and paragraph separators and lone
    surrogates (undecodable bytes) become ``\\xNN``, ``\\uNNNN`` or
    ``\\U00NNNNNN`` escapes; a backslash becomes ``\\\\`` so the escapes stay
    unambiguous. Printable text, including non-ASCII, is kept.
    """
    if value.isprintable() and "\\" not in value:
        return value
    out: list[str] = []
    for ch in value:
        simple = _SIMPLE.get(ch)
        if simple is not None:
            out.append(simple)
            continue
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")  # an undecodable byte
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x100:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out)


def shorten(value: str, limit: int) -> str:
    """Cut ``value`` to at most ``limit`` characters, ending with an ellipsis."""
    if limit < 1:
        return ""
    return value if len(value) <= limit else value[: limit - 1] + "…"
