"""Terminal-safe text: nothing from a log may steer the terminal that shows it."""

from __future__ import annotations

from collections.abc import Callable, Iterable

__all__ = [
    "ARG_BYTES",
    "COMMAND_BYTES",
    "QUOTE_LIMIT",
    "VALUE_BYTES",
    "clip",
    "clip_command",
    "escape_json_text",
    "escape_text",
    "quote_input",
    "shorten",
    "utf8_len",
]

#: Text for people shortens each argument, and a whole command line, to these many bytes.
ARG_BYTES = 200
COMMAND_BYTES = 1000
#: Any other long value in text for people (an executable, a reason) is cut here.
VALUE_BYTES = 500
#: How many characters of input text a diagnostic may quote.
QUOTE_LIMIT = 60

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


def utf8_len(value: str) -> int:
    """The length of ``value`` in UTF-8 bytes (an undecodable byte counts as one)."""
    try:
        return len(value.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:
        return len(value.encode("utf-8", "surrogatepass"))


def clip(value: str, limit: int) -> str:
    """``value`` if it holds at most ``limit`` UTF-8 bytes; else its longest prefix of
    whole characters within ``limit`` bytes, then ``…(+N bytes)`` naming what was left out.

    Text for people (a text alert line, a syslog message, the live view) uses this; JSON
    documents keep every byte.
    """
    total = utf8_len(value)
    if total <= limit:
        return value
    kept = value[: max(0, limit)]
    size = utf8_len(kept)
    while size > limit:
        # A character is at most 4 bytes, so this never cuts more than it must.
        kept = kept[: len(kept) - -(-(size - limit) // 4)]
        size = utf8_len(kept)
    return f"{kept}…(+{total - size} bytes)"


def clip_command(args: Iterable[str], quote: Callable[[str], str] = str) -> str:
    """An argv as one line for people: each argument clipped to :data:`ARG_BYTES`, then
    quoted with ``quote``, the line clipped to :data:`COMMAND_BYTES`."""
    return clip(" ".join(quote(clip(a, ARG_BYTES)) for a in args), COMMAND_BYTES)


def escape_json_text(line: str) -> str:
    """A JSON line with what JSON left unescaped but a terminal could act on escaped.

    ``json.dumps`` escapes C0 controls but keeps C1 controls, format characters
    (bidirectional overrides) and lone surrogates; they become ``\\uXXXX``, which is
    still valid JSON, rather than :func:`escape_text`'s ``\\xNN``.
    """
    if line.isprintable():
        return line
    out: list[str] = []
    for ch in line:
        if ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            code = ord(ch) - 0x10000
            out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
    return "".join(out)


def quote_input(data: bytes, length: int | None = None, limit: int = QUOTE_LIMIT) -> str:
    """A short, escaped prefix of input bytes, for a diagnostic that quotes input.

    At most ``limit`` characters after escaping; when bytes are left out, the
    text ends with ``…(+N bytes)``, counted against ``length`` (the length of
    the whole input, when ``data`` is only its start). Nothing more of a line
    that is not an audit record (a password file, say) reaches a terminal or a log.
    """
    total = len(data) if length is None else max(length, len(data))
    text = data.decode("utf-8", "surrogateescape")
    shown: list[str] = []
    used = 0  # characters shown
    consumed = 0  # bytes they stand for
    for ch in text:
        piece = escape_text(ch)
        if used + len(piece) > limit:
            break
        shown.append(piece)
        used += len(piece)
        consumed += utf8_len(ch)
    left = total - consumed
    return "".join(shown) + (f"…(+{left} bytes)" if left else "")
