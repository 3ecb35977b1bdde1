"""A linear-time matcher for the regular expressions :mod:`.patterns` translates.

Theory of operation: Python's ``re`` backtracks, so ``(a+)+b`` on thirty ``a`` takes
seconds and on a long argument forever. Rule patterns run on text any local user
writes (the arguments of an exec), so they are matched here instead, the way Lucene
does: the pattern becomes a Thompson NFA, and the NFA a DFA whose states are sets of
NFA states. Characters are first sorted into *classes* that every character set of
the pattern treats alike (the intervals between the sets' bounds), so a DFA state has
one transition per class, not per character. The DFA is built when the pattern is
compiled; a pattern whose DFA would exceed :data:`MAX_DFA_STATES` states (or whose NFA
exceeds :data:`MAX_STATES`) is refused, as Lucene refuses one beyond
``max_determinized_states``. Matching then walks the text once, two look-ups per
character: time linear in the text, whatever it holds.

For ``regex~`` a character belongs to a set when it, its lower case or its upper case
does, and its class is given by the three. A case pair no class showed at compile time
(rare letters such as the Kelvin sign) gets its transitions when first met; should that
outgrow the bounds, the rest of that text runs on the NFA, one NFA step per character.

The input is the Python-regex translation of :func:`.patterns.lucene_to_python`,
already compiled once by ``re`` (so it is well formed): ``(?:...)``, ``|``, the
quantifiers ``* + ? {n} {n,} {n,m}``, ``.`` (any character, as with ``re.DOTALL``),
``[...]`` classes with ranges, and backslash escapes. Only ``fullmatch`` is needed.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["MAX_DFA_STATES", "MAX_STATES", "TooComplex", "compile_fullmatch"]

#: The most NFA states a pattern may compile to (counted repeats are expanded).
MAX_STATES = 10_000
#: The most DFA states a pattern may determinize to: Lucene's default
#: ``max_determinized_states``. ``[ab]*a[ab]{20}`` needs 2**21 and is refused.
MAX_DFA_STATES = 10_000
# NFA states visited while determinizing: bounds the time a compile may take (about 1 s).
_MAX_WORK = 1_000_000
# Characters whose class is remembered; past it the memory starts again.
_MAX_REMEMBERED = 65_536
_CONTROL = {"t": "\t", "n": "\n", "r": "\r", "f": "\f", "v": "\v"}


class TooComplex(ValueError):
    """The pattern needs more than :data:`MAX_STATES` NFA or :data:`MAX_DFA_STATES` DFA states."""


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


class _Alphabet:
    """Sorts characters into classes that every character set of a pattern treats alike."""

    def __init__(self, sets: list[_Class], nocase: bool) -> None:
        bounds = {0}
        for cls in sets:
            for c in cls.chars:
                bounds.update((ord(c), ord(c) + 1))
            for lo, hi in cls.ranges:
                bounds.update((ord(lo), ord(hi) + 1))
        self.bounds = sorted(bounds)
        self.nocase = nocase
        self.ids: dict[tuple[int, ...], int] = {}
        self.forms: list[tuple[str, ...]] = []  # the case forms of each class's representative
        self.known: dict[str, int] = {}
        for start in self.bounds:
            if start > 0x10FFFF:
                break
            self.class_of(chr(start))
            if nocase:
                for c in (chr(start).lower(), chr(start).upper()):
                    if len(c) == 1:
                        self.class_of(c)

    def class_of(self, c: str) -> int:
        """The class of character ``c`` (a new one when its case forms are new)."""
        known = self.known.get(c)
        if known is not None:
            return known
        forms: tuple[str, ...] = (c,)
        if self.nocase:
            forms = tuple({c, *(f for f in (c.lower(), c.upper()) if len(f) == 1)})
        key = tuple(sorted({bisect_right(self.bounds, ord(f)) for f in forms}))
        cid = self.ids.get(key)
        if cid is None:
            cid = self.ids[key] = len(self.forms)
            self.forms.append(forms)
        if len(self.known) >= _MAX_REMEMBERED:
            self.known.clear()
        self.known[c] = cid
        return cid


class _Dfa:
    """The DFA of an NFA: sets of character states, one transition per character class.

    Built when the pattern is compiled, over one representative of each class known
    then; a class first met in a text (``regex~`` case pairs only) gets its transitions
    when met, and past the bounds the rest of that text runs on the NFA itself.
    """

    def __init__(self, nfa: _Nfa, start: int, nocase: bool) -> None:
        self.nfa = nfa
        self.alphabet = _Alphabet([t for t in nfa.tests if t is not None], nocase)
        self.ids: dict[frozenset[int], int] = {}
        self.sets: list[frozenset[int]] = []
        self.accepting: list[bool] = []
        self.moves: list[list[int | None]] = []
        self.work = 0
        self.closures: dict[frozenset[int], tuple[frozenset[int], int]] = {}
        # Per class: the character states whose test accepts it (filled as classes appear).
        self.accept: list[frozenset[int]] = []
        # Character states by their test, so each distinct test is asked once per class.
        self.by_test: dict[_Class, list[int]] = {}
        for q, test in enumerate(nfa.tests):
            if test is not None:
                self.by_test.setdefault(test, []).append(q)
        self.start = self._state(self._closure((start,)))
        self.dead = self._state(frozenset())
        pending = [self.start]
        while pending:
            state = pending.pop()
            for cid in range(len(self.alphabet.forms)):
                before = len(self.sets)
                self.step(state, cid)
                if len(self.sets) > before:
                    pending.append(before)

    def _closure(self, entries: tuple[int, ...] | list[int]) -> frozenset[int]:
        # Many (state, class) pairs lead to the same targets: each set is walked once,
        # and a repeat counts the same work as the walk did.
        key = frozenset(entries)
        known = self.closures.get(key)
        if known is not None:
            self.work += known[1]
            return known[0]
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
        self.work += len(seen)
        closure = frozenset(out)
        self.closures[key] = (closure, len(seen))
        return closure

    def _state(self, states: frozenset[int]) -> int:
        known = self.ids.get(states)
        if known is None:
            if len(self.sets) >= MAX_DFA_STATES:
                raise TooComplex(f"more than {MAX_DFA_STATES} states once determinized")
            if self.work > _MAX_WORK:
                raise TooComplex(f"its DFA takes more than {_MAX_WORK} steps to build")
            known = self.ids[states] = len(self.sets)
            self.sets.append(states)
            self.accepting.append(0 in states)
            self.moves.append([])
        return known

    def _accepting(self, cid: int) -> frozenset[int]:
        """The character states whose test accepts a character of class ``cid``."""
        accept = self.accept
        forms = self.alphabet.forms
        while len(accept) <= cid:
            chars = forms[len(accept)]
            accept.append(
                frozenset(q for t, qs in self.by_test.items() if t.accepts(chars) for q in qs)
            )
        return accept[cid]

    def _targets(self, states: frozenset[int], cid: int) -> list[int]:
        nexts = self.nfa.nexts
        self.work += len(states)
        return [nexts[q][0] for q in states & self._accepting(cid)]

    def step(self, state: int, cid: int) -> int:
        """The state after a character of class ``cid`` from ``state``, computed and kept."""
        after = self._state(self._closure(self._targets(self.sets[state], cid)))
        row = self.moves[state]
        row.extend([None] * (cid + 1 - len(row)))
        row[cid] = after
        return after

    def fullmatch(self, text: str) -> bool:
        alphabet = self.alphabet
        known = alphabet.known
        moves = self.moves
        state = self.start
        dead = self.dead
        for i, c in enumerate(text):
            cid = known.get(c)
            if cid is None:
                cid = alphabet.class_of(c)
            row = moves[state]
            after = row[cid] if cid < len(row) else None
            if after is None:
                try:
                    after = self.step(state, cid)
                except TooComplex:
                    return self._simulate(self.sets[state], text, i)
            if after == dead:
                return False
            state = after
        return self.accepting[state]

    def _simulate(self, states: frozenset[int], text: str, start: int) -> bool:
        """The rest of ``text`` on the NFA itself (one NFA step per character): for a
        ``regex~`` text whose case pairs would grow the DFA past its bounds."""
        alphabet = self.alphabet
        for c in text[start:]:
            states = self._closure(self._targets(states, alphabet.class_of(c)))
            if not states:
                return False
        return 0 in states


def compile_fullmatch(translated: str, *, nocase: bool = False) -> Callable[[str], bool]:
    """A linear-time ``fullmatch`` for a pattern in the translated subset.

    ``nocase`` matches a character when it, its lower case or its upper case would.

    Raises:
        TooComplex: when the pattern needs more than :data:`MAX_STATES` NFA states or
            :data:`MAX_DFA_STATES` DFA states (or too much work to find out).
    """
    parser = _Parser(translated)
    tree = parser.alternation()
    nfa = _Nfa()
    dfa = _Dfa(nfa, nfa.build(tree, 0), nocase)
    return dfa.fullmatch
