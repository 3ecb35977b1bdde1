"""Needles of a Lucene regular expression: literal text every match must hold.

Used by the prefilter's argument test (:mod:`kexecwatch.core.scan.argtest`,
:func:`kexecwatch.core.detect.ruleindex.args_test`) for ``regex`` and ``regex~`` comparisons
on arguments and command lines.
"""

from __future__ import annotations

from kexecwatch.core.detect.rule.patterns import PatternError, _char_class

__all__ = ["regex_needles"]

#: At most this many needles stand for one required run of a regular expression.
_MAX_EXPANSION = 128
_CLASS_SETS = {"d": frozenset("0123456789")}


def regex_needles(pattern: str, *, nocase: bool) -> list[frozenset[str]]:
    """Needle sets of the Lucene regex ``pattern`` (:mod:`kexecwatch.core.detect.rule.patterns`):
    every text it fully matches holds one needle of each set. Empty when nothing is known.

    Read conservatively, outside any group (``(...)``) and only without a ``|`` outside
    groups: literal characters, escapes and ``[0-9]``/``\\d`` in a row must appear in a
    row; a repeated atom (``+``, ``{n,m}`` with ``n`` >= 1) is there at least once and
    ends one row and starts the next; an optional atom (``?``, ``*``, ``{0,m}``) and
    anything else ends the row. With ``nocase`` (``regex~``), only ASCII counts (a
    character matches its other case, which ``str.lower`` of the whole text maps alike
    only for ASCII) and the needles are lower-case.
    """
    atoms = _regex_atoms(pattern)
    if atoms is None:
        return []
    rows: list[list[frozenset[str]]] = [[]]
    for chars, low, high in atoms:
        known = chars
        if known is not None and nocase:
            ascii_only = all(c.isascii() for c in known)
            known = frozenset(c.lower() for c in known) if ascii_only else None
        if known is None or low == 0:
            rows.append([])
            continue
        rows[-1].append(known)
        if high != 1:  # repeated: the last copy starts what follows
            rows.append([known])
    found = []
    for row in rows:
        best = _best_window(row)
        if best:
            found.append(best)
    return found


def _best_window(row: list[frozenset[str]]) -> frozenset[str]:
    """The needles of the longest stretch of ``row`` with few enough combinations."""
    best: list[frozenset[str]] = []
    for start in range(len(row)):
        size = 1
        end = start
        while end < len(row) and size * len(row[end]) <= _MAX_EXPANSION:
            size *= len(row[end])
            end += 1
        if end - start > len(best):
            best = row[start:end]
    needles = {""}
    for chars in best:
        needles = {n + c for n in needles for c in chars}
    return frozenset(n for n in needles if n)


_Atom = tuple[frozenset[str] | None, int, int]  # characters (None: any), least, most (-1: any)


def _regex_atoms(pattern: str) -> list[_Atom] | None:
    """The top-level atoms of ``pattern``; ``None`` for a ``|`` outside groups."""
    atoms: list[_Atom] = []
    i = 0
    n = len(pattern)
    while i < n:
        c = pattern[i]
        if c in "?*+{":
            if not atoms:
                return None
            chars, low, high = atoms.pop()
            more_low, more_high, i = _repeat(pattern, i)
            # Stacked repeats ("a?+"): optional if either is, repeated if either is.
            atoms.append((chars, min(low, more_low), -1 if -1 in (high, more_high) else 1))
            continue
        if c == "|":
            return None
        if c == "(":
            i = _skip_group(pattern, i)
            if i < 0:
                return None
            atoms.append((None, 1, 1))
            continue
        if c == "[":
            end = _class_end(pattern, i)
            if end < 0:
                return None
            inside = pattern[i + 1 : end - 1]
            atoms.append((_CLASS_SETS["d"] if inside == "0-9" else None, 1, 1))
            i = end
            continue
        if c == '"':
            end = pattern.find('"', i + 1)
            if end < 0:
                return None
            atoms.append((None, 1, 1))  # a quoted run: not read
            i = end + 1
            continue
        if c == "\\" and i + 1 < n:
            e = pattern[i + 1]
            if e.isalnum():
                atoms.append((_CLASS_SETS.get(e), 1, 1))
            else:
                atoms.append((frozenset(e), 1, 1))
            i += 2
            continue
        atoms.append((None if c == "." else frozenset(c), 1, 1))
        i += 1
    return atoms


def _repeat(pattern: str, i: int) -> tuple[int, int, int]:
    """The repetition at ``pattern[i]``: least, most (-1: unbounded), and where it ends."""
    c = pattern[i]
    if c == "?":
        return 0, 1, i + 1
    if c == "*":
        return 0, -1, i + 1
    if c == "+":
        return 1, -1, i + 1
    end = pattern.find("}", i)
    body = pattern[i + 1 : end] if end > 0 else ""
    low_text, _, high_text = body.partition(",")
    if not low_text.isdigit():
        return 0, -1, (end + 1 if end > 0 else len(pattern))
    low = int(low_text)
    high = low if "," not in body else (int(high_text) if high_text.isdigit() else -1)
    return min(low, 1), (1 if high == 1 else -1), end + 1


def _skip_group(pattern: str, i: int) -> int:
    """Where the group opening at ``pattern[i]`` ends (past its ``)``), or -1."""
    depth = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if c == "[":
            i = _class_end(pattern, i)
            if i < 0:
                return -1
            continue
        if c == '"':
            end = pattern.find('"', i + 1)
            if end < 0:
                return -1
            i = end + 1
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return -1


def _class_end(pattern: str, start: int) -> int:
    """Where the character class opening at ``pattern[start]`` ends (past its ``]``), or
    -1; read as :func:`kexecwatch.core.detect.rule.patterns.lucene_to_python` reads it."""
    try:
        return _char_class(pattern, start)[1]
    except PatternError:
        return -1
