"""A linear-time matcher for the regular expressions :mod:`.patterns` translates.

Theory of operation: Python's ``re`` backtracks, so ``(a+)+b`` on thirty ``a`` takes
seconds and on a long argument forever. Rule patterns run on text any local user
writes (the arguments of an exec), so they are matched here instead, the way RE2 and
Lucene do: the pattern becomes a Thompson NFA, and matching walks the text once,
keeping the *set* of NFA states it can be in. Each set is a state of a DFA built
lazily and cached, so a text costs one dictionary look-up per character once the
states it visits are known, and at most one step over the NFA (its size, bounded by
:data:`MAX_STATES`) per character otherwise. Time is linear in the text whatever
the pattern; memory is bounded by the cache limit.

The input is the Python-regex translation of :func:`.patterns.lucene_to_python`,
already compiled once by ``re`` (so it is well formed): ``(?:...)``, ``|``, the
quantifiers ``* + ? {n} {n,} {n,m}``, ``.`` (any character, as with ``re.DOTALL``),
``[...]`` classes with ranges, and backslash escapes. Only ``fullmatch`` is needed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["MAX_STATES", "TooComplex", "compile_fullmatch"]

#: The most NFA states a pattern may compile to (counted repeats are expanded). This
#: bounds the work per character; like Lucene's ``max_determinized_states`` (10,000 by
#: default), a bigger pattern is refused rather than run slowly.
MAX_STATES = 10_000
# Cached DFA transitions per pattern; past it the cache starts again (still linear).
_MAX_CACHED = 50_000
_CONTROL = {"t": "\t", "n": "\n", "r": "\r", "f": "\f", "v": "\v"}


class TooComplex(ValueError):
    """The pattern would need more than :data:`MAX_STATES` NFA states."""


@dataclass(frozen=True, slots=True)
class _Class:
    """A set of characters: ``chars`` and ``ranges``, or everything else if ``negated``."""

    negated: bool
    chars: frozenset[str]
    ranges: tuple[tuple[str, str], ...]

    def accepts(self, forms: tuple[str, ...]) -> bool:
        """Whether a character whose case forms are ``forms`` is in the set."""
        chars, ranges = self.chars, self.ranges
        inside = any(c in chars or any(lo <= c <= hi for lo, hi in ranges) for c in forms)
        return inside != self.negated


_ANY = _Class(True, frozenset(), ())

# The syntax tree: a class, a sequence, a choice, or a repeat (``hi`` None: unbounded).
_Node = tuple[object, ...]


class _Parser:
    """Reads the translated subset into a tree of tuples."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0

    def peek(self) -> str:
        return self.text[self.i] if self.i < len(self.text) else ""

    def alternation(self) -> _Node:
        options = [self.sequence()]
        while self.peek() == "|":
            self.i += 1
            options.append(self.sequence())
        return ("alt", options) if len(options) > 1 else options[0]

    def sequence(self) -> _Node:
        items: list[_Node] = []
        while self.peek() not in ("", "|", ")"):
            items.append(self.repeat())
        return ("seq", items)

    def repeat(self) -> _Node:
        node = self.atom()
        while True:
            c = self.peek()
            if c in ("*", "+", "?"):
                self.i += 1
                node = ("rep", node, 1 if c == "+" else 0, 1 if c == "?" else None)
            elif c == "{":
                end = self.text.index("}", self.i)
                low, comma, high = self.text[self.i + 1 : end].partition(",")
                self.i = end + 1
                hi = int(high) if high else (None if comma else int(low))
                node = ("rep", node, int(low), hi)
            else:
                return node

    def atom(self) -> _Node:
        c = self.text[self.i]
        self.i += 1
        if c == "(":
            self.i += 2  # "?:"
            inner = self.alternation()
            self.i += 1  # ")"
            return inner
        if c == ".":
            return ("cls", _ANY)
        if c == "[":
            return ("cls", self.char_class())
        if c == "\\":
            c = self.text[self.i]
            self.i += 1
        return ("cls", _Class(False, frozenset(c), ()))

    def class_char(self) -> str:
        c = self.text[self.i]
        self.i += 1
        if c == "\\":
            c = self.text[self.i]
            self.i += 1
            return _CONTROL.get(c, c)
        return c

    def char_class(self) -> _Class:
        negated = self.peek() == "^"
        if negated:
            self.i += 1
        chars: set[str] = set()
        ranges: list[tuple[str, str]] = []
        first = True
        while first or self.peek() != "]":
            first = False
            lo = self.class_char()
            if self.peek() == "-" and self.text[self.i + 1] != "]":
                self.i += 1
                ranges.append((lo, self.class_char()))
            else:
                chars.add(lo)
        self.i += 1
        return _Class(negated, frozenset(chars), tuple(ranges))


class _Nfa:
    """Thompson NFA: ``tests[q]`` and ``nexts[q]`` for a character state, or ``None``
    test and up to two epsilon successors; state 0 is the match state."""

    def __init__(self) -> None:
        self.tests: list[_Class | None] = [None]
        self.nexts: list[tuple[int, ...]] = [()]

    def add(self, test: _Class | None, nexts: tuple[int, ...]) -> int:
        if len(self.tests) >= MAX_STATES:
            raise TooComplex(f"more than {MAX_STATES} states")
        self.tests.append(test)
        self.nexts.append(nexts)
        return len(self.tests) - 1

    def build(self, node: _Node, then: int) -> int:
        """States for ``node`` followed by state ``then``; returns its entry state."""
        kind = node[0]
        if kind == "cls":
            test = node[1]
            assert isinstance(test, _Class)
            return self.add(test, (then,))
        if kind == "seq":
            items = node[1]
            assert isinstance(items, list)
            for item in reversed(items):
                then = self.build(item, then)
            return then
        if kind == "alt":
            options = node[1]
            assert isinstance(options, list)
            entries = tuple(self.build(option, then) for option in options)
            return self.add(None, entries)
        _, inner, low, high = node
        assert isinstance(inner, tuple)
        assert isinstance(low, int)
        if self.build(inner, then) == then:
            return then  # it matches only the empty string, however often repeated
        if high is None:
            loop = self.add(None, ())
            body = self.build(inner, loop)
            self.nexts[loop] = (body, then)
            then = loop
        else:
            assert isinstance(high, int)
            for _ in range(high - low):
                then = self.add(None, (self.build(inner, then), then))
        for _ in range(low):
            then = self.build(inner, then)
        return then


class _Dfa:
    """The lazily built DFA of an NFA: sets of character states, cached transitions."""

    def __init__(self, nfa: _Nfa, start: int, nocase: bool) -> None:
        self.nfa = nfa
        self.nocase = nocase
        self.start_set = self._closure((start,))
        self._reset()

    def _reset(self) -> None:
        self.ids: dict[frozenset[int], int] = {}
        self.sets: list[frozenset[int]] = []
        self.accepting: list[bool] = []
        self.moves: list[dict[str, int]] = []
        self.cached = 0
        self.start = self._state(self.start_set)
        self.dead = self._state(frozenset())

    def _closure(self, entries: tuple[int, ...] | list[int]) -> frozenset[int]:
        tests, nexts = self.nfa.tests, self.nfa.nexts
        seen: set[int] = set()
        out: set[int] = set()
        stack = list(entries)
        while stack:
            q = stack.pop()
            if q in seen:
                continue
            seen.add(q)
            if tests[q] is None and q != 0:
                stack.extend(nexts[q])
            else:
                out.add(q)
        return frozenset(out)

    def _state(self, states: frozenset[int]) -> int:
        known = self.ids.get(states)
        if known is None:
            known = self.ids[states] = len(self.sets)
            self.sets.append(states)
            self.accepting.append(0 in states)
            self.moves.append({})
        return known

    def step(self, state: int, c: str) -> int:
        """The state after ``c`` from ``state``, computed and cached."""
        if self.cached >= _MAX_CACHED:
            states = self.sets[state]
            self._reset()
            state = self._state(states)
        tests, nexts = self.nfa.tests, self.nfa.nexts
        forms = (c, c.lower(), c.upper()) if self.nocase else (c,)
        targets = [
            nexts[q][0]
            for q in self.sets[state]
            if (test := tests[q]) is not None and test.accepts(forms)
        ]
        after = self._state(self._closure(targets))
        self.moves[state][c] = after
        self.cached += 1
        return after

    def fullmatch(self, text: str) -> bool:
        moves = self.moves
        state = self.start
        dead = self.dead
        for c in text:
            after = moves[state].get(c)
            if after is None:
                after = self.step(state, c)
                moves, dead = self.moves, self.dead  # a reset replaces the tables
            if after == dead:
                return False
            state = after
        return self.accepting[state]


def compile_fullmatch(translated: str, *, nocase: bool = False) -> Callable[[str], bool]:
    """A linear-time ``fullmatch`` for a pattern in the translated subset.

    ``nocase`` matches a character when it, its lower case or its upper case would.

    Raises:
        TooComplex: when the pattern needs more than :data:`MAX_STATES` NFA states.
    """
    parser = _Parser(translated)
    tree = parser.alternation()
    nfa = _Nfa()
    dfa = _Dfa(nfa, nfa.build(tree, 0), nocase)
    return dfa.fullmatch
