"""EQL wildcard patterns and Lucene regular expressions, translated to Python ``re``.

Both kinds of pattern match the WHOLE value (Elasticsearch ``wildcard`` and ``regexp``
queries are anchored), so every translation is used with ``fullmatch`` and ``re.DOTALL``
(Lucene's ``.`` matches any character, newlines included).

Wildcards: ``*`` is any run of characters, ``?`` exactly one; there is no escape
character (Elasticsearch's EQL builds its like-pattern with an unprintable escape
character, so a backslash is a literal backslash).

Lucene regex subset: literals, ``.``, ``?``, ``*``, ``+``, ``{n}``, ``{n,}``, ``{n,m}``,
``|``, ``( )``, ``[...]``/``[^...]`` with ranges, ``\\x`` (the literal ``x``),
``\\d \\D \\s \\S \\w \\W``, and ``"quoted"`` literal runs. ``^`` and ``$`` are not
anchors in Lucene but ordinary characters, and are translated as such. The optional
Lucene operators ``~ & < > @ #`` (complement, intersection, numeric interval, any
string, empty language) are rejected rather than guessed at.
"""

from __future__ import annotations

import re

__all__ = ["PatternError", "lucene_to_python", "wildcard_to_python"]


class PatternError(ValueError):
    """A pattern that cannot be translated; ``offset`` is the index of the problem in it."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


def has_wildcard(pattern: str) -> bool:
    """True when ``pattern`` contains ``*`` or ``?``."""
    return "*" in pattern or "?" in pattern


def wildcard_to_python(pattern: str) -> str:
    """Translate an EQL wildcard pattern (``*``, ``?``) to a Python regex for ``fullmatch``."""
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)


_CLASS_ESCAPES = {"d": "0-9", "s": " \\t\\n\\r\\f\\v", "w": "a-zA-Z0-9_"}
_ESCAPE_CLASSES = {
    "d": "[0-9]",
    "D": "[^0-9]",
    "s": "[ \\t\\n\\r\\f\\v]",
    "S": "[^ \\t\\n\\r\\f\\v]",
    "w": "[a-zA-Z0-9_]",
    "W": "[^a-zA-Z0-9_]",
}
_REPEAT = re.compile(r"\{(\d+)(,(\d*))?\}")
_REJECTED = {
    "~": "the Lucene complement operator '~' is not supported",
    "&": "the Lucene intersection operator '&' is not supported",
    "<": "Lucene numeric intervals '<n-m>' are not supported",
    ">": "Lucene numeric intervals '<n-m>' are not supported",
    "@": "the Lucene any-string operator '@' is not supported",
    "#": "the Lucene empty-language operator '#' is not supported",
}


def lucene_to_python(pattern: str) -> str:
    """Translate a Lucene regular expression to an equivalent Python regex for ``fullmatch``.

    Raises:
        PatternError: for constructs outside the documented subset, or a malformed pattern.
    """
    out: list[str] = []
    groups: list[int] = []  # indexes in ``out`` where open groups start
    atom = -1  # index in ``out`` where the last atom starts; -1 when nothing can repeat
    repeated = False  # Lucene stacks quantifiers ("a*+"); Python needs a group for that
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c in _REJECTED:
            raise PatternError(_REJECTED[c], i)
        if c in "*+?{":
            if atom < 0:
                raise PatternError(f"nothing to repeat before {c!r}", i)
            if repeated:
                out[atom:] = ["(?:", *out[atom:], ")"]
            if c == "{":
                m = _REPEAT.match(pattern, i)
                if m is None:
                    raise PatternError("'{' must be a repeat count like {2}, {2,} or {2,5}", i)
                low, comma, high = m.group(1), m.group(2), m.group(3)
                if high and int(high) < int(low):
                    raise PatternError("repeat range upper bound is below its lower bound", i)
                out.append("{" + low + ("," + high if comma else "") + "}")
                i = m.end()
            else:
                out.append(c)
                i += 1
            repeated = True
            continue
        repeated = False
        atom = len(out)
        if c == "(":
            groups.append(len(out))
            out.append("(?:")
            atom = -1
        elif c == ")":
            if not groups:
                raise PatternError("unbalanced ')'", i)
            atom = groups.pop()
            out.append(")")
        elif c == "|":
            out.append("|")
            atom = -1
        elif c == "[":
            cls, i = _char_class(pattern, i)
            out.append(cls)
            continue
        elif c == "\\":
            if i + 1 >= n:
                raise PatternError("the pattern ends with a lone backslash", i)
            nxt = pattern[i + 1]
            out.append(_ESCAPE_CLASSES.get(nxt, re.escape(nxt)))
            i += 2
            continue
        elif c == '"':
            end = pattern.find('"', i + 1)
            if end == -1:
                raise PatternError("unterminated quoted literal in the pattern", i)
            out.append("(?:" + re.escape(pattern[i + 1 : end]) + ")")
            i = end + 1
            continue
        else:
            out.append("." if c == "." else re.escape(c))
        i += 1
    if groups:
        raise PatternError("unbalanced '('", n)
    return "".join(out)


def _char_class(pattern: str, start: int) -> tuple[str, int]:
    """Translate ``[...]`` at ``start``; return the Python class and the index after it."""
    out = ["["]
    i = start + 1
    if pattern.startswith("^", i):
        out.append("^")
        i += 1
    first = True
    while True:
        if i >= len(pattern):
            raise PatternError("unterminated character class '['", start)
        c = pattern[i]
        if c == "]" and not first:
            out.append("]")
            return "".join(out), i + 1
        first = False
        if c == "\\":
            if i + 1 >= len(pattern):
                raise PatternError("unterminated character class '['", start)
            nxt = pattern[i + 1]
            out.append(_CLASS_ESCAPES.get(nxt, re.escape(nxt)))
            i += 2
        elif (
            c == "-"
            and out[-1] not in ("[", "^")
            and i + 1 < len(pattern)
            and (pattern[i + 1] != "]")
        ):
            out.append("-")
            i += 1
        else:
            out.append(re.escape(c))
            i += 1
