"""EQL wildcard patterns and Lucene regular expressions, matched in linear time.

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

Matching: the values are attacker-controlled text (any user's exec arguments), and
Python's ``re`` backtracks (``(a+)+b`` on 30 characters takes seconds, ``*a*a*a*b`` on 500
takes minutes). So :func:`wildcard_matcher` matches a wildcard segment by segment (each
``*``-free segment has a fixed length, so the leftmost place for each is the right one),
and :func:`regex_matcher` runs the translation on the linear-time automaton of
:mod:`.automaton`. The ``re`` translations stay the definition the matchers are tested
against.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from kexecwatch.core.detect.rule.automaton import MAX_STATES, TooComplex, compile_fullmatch

__all__ = [
    "MAX_STATES",
    "Matcher",
    "PatternError",
    "any_of",
    "lucene_to_python",
    "regex_matcher",
    "wildcard_matcher",
    "wildcard_to_python",
]

#: A ``fullmatch`` test on one string.
Matcher = Callable[[str], bool]


class PatternError(ValueError):
    """A pattern that cannot be translated; ``offset`` is the index of the problem in it."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


def wildcard_to_python(pattern: str) -> str:
    """Translate an EQL wildcard pattern (``*``, ``?``) to a Python regex for ``fullmatch``."""
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)


def any_of(matchers: Sequence[Matcher]) -> Matcher:
    """A test that holds when any of ``matchers`` holds."""
    if len(matchers) == 1:
        return matchers[0]
    return lambda text: any(m(text) for m in matchers)


def wildcard_matcher(pattern: str) -> Matcher:
    """A linear-time test: does a string fully match the wildcard ``pattern``?"""
    # Each segment between stars is fixed-length (literals and '?'), so it matches
    # without backtracking; between the anchored first and last segments, taking each
    # middle one at its leftmost place leaves the most room for the rest. A segment
    # without '?' (nearly all of them) is a plain string: str methods test it, and no
    # regex is compiled.
    parts = pattern.split("*")
    if len(parts) == 1:
        if "?" not in pattern:
            return pattern.__eq__
        whole = _segment(pattern)
        return lambda text: whole.fullmatch(text) is not None
    head, tail = len(parts[0]), len(parts[-1])
    starts = _prefix_test(parts[0])
    ends = _suffix_test(parts[-1])
    finders = [_finder(part) for part in parts[1:-1] if part]

    def match(text: str) -> bool:
        end = len(text) - tail
        if end < head or not starts(text) or not ends(text, end):
            return False
        pos = head
        for find in finders:
            pos = find(text, pos, end)
            if pos < 0:
                return False
        return True

    return match


def _segment(part: str) -> re.Pattern[str]:
    return re.compile(wildcard_to_python(part), re.DOTALL)


def _prefix_test(part: str) -> Callable[[str], bool]:
    """Whether a text starts with the fixed-length segment ``part``."""
    if "?" not in part:
        return lambda text: text.startswith(part)
    segment = _segment(part)
    return lambda text: segment.match(text) is not None


def _suffix_test(part: str) -> Callable[[str, int], bool]:
    """Whether ``text[end:]`` is the fixed-length segment ``part`` (``end`` is
    ``len(text) - len(part)``, never negative)."""
    if "?" not in part:
        return lambda text, end: text.endswith(part)
    segment = _segment(part)
    return lambda text, end: segment.fullmatch(text, end) is not None


def _finder(part: str) -> Callable[[str, int, int], int]:
    """The end of the leftmost place of segment ``part`` in ``text[pos:end]``, or -1."""
    if "?" not in part:
        size = len(part)

        def find_literal(text: str, pos: int, end: int) -> int:
            found = text.find(part, pos, end)
            return found if found < 0 else found + size

        return find_literal
    segment = _segment(part)

    def find_pattern(text: str, pos: int, end: int) -> int:
        found = segment.search(text, pos, end)
        return -1 if found is None else found.end()

    return find_pattern


def regex_matcher(pattern: str, *, nocase: bool = False) -> Matcher:
    """A linear-time test: does a string fully match the Lucene regex ``pattern``?

    ``nocase`` is ``regex~``: a character matches when it, or its other case, would.

    Raises:
        PatternError: for a pattern outside the subset, or one too large to match in
            linear time (more than :data:`MAX_STATES` automaton states); ``offset`` is
            the index in the pattern, or 0.
    """
    translated = lucene_to_python(pattern)
    try:
        re.compile(translated, re.DOTALL)  # catches what the translation lets through
        return compile_fullmatch(translated, nocase=nocase)
    except (re.error, OverflowError) as exc:
        raise PatternError(str(exc), 0) from None
    except RecursionError:
        raise PatternError("groups nested too deeply", 0) from None
    except TooComplex as exc:
        raise PatternError(f"too large to match in linear time: {exc}", 0) from None


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
                if len(low) > 9 or len(high or "") > 9:
                    # No automaton could hold it, and int() of thousands of digits raises.
                    raise PatternError("repeat count too large", i)
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
