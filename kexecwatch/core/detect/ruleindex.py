"""The rule index: each document is tried only by the rules that could match it.

Theory of operation: most rules require one field to hold one of a few literal values
(``process.name in ("nc", "ncat")``, ``process.args : "-e"``). :func:`requirements` reads
them from a query's condition: a comparison that holds when *some element* of a field
equals (``==``, ``in``), equals ignoring case (``:``, ``in~`` without wildcards) or
matches (wildcards, regular expressions) one of its values; ``and`` keeps every
operand's requirements, ``or`` the fields all its operands require (their values
joined); ``not`` and anything else require nothing. Whatever a rule matches satisfies
each of its requirements (Rule 1: a requirement may accept too much, never too little).

:class:`RuleIndex` files each rule under one requirement made only of literal values
(no pattern), chosen by how selective its field tends to be (``process.name`` first,
event facets such as ``event.action`` last), in a table ``value -> rules``: exact values
as they are, case-insensitive ones lower-cased. A document then costs one look-up per
value of each indexed field; the rules it finds, plus those with no such requirement,
are tried in their original order, so the alerts are exactly those of trying every rule.

:func:`name_filter` gives the prefilter (:mod:`kexecwatch.core.scan.prefilter`) the same
knowledge for ``process.name`` and ``process.executable``, patterns included, so an
event whose name no rule can want is not even parsed in full. :func:`args_test` does it
for ``process.args`` and ``process.command_line`` (:mod:`kexecwatch.core.scan.argtest`), and
:func:`can_match` says when a rule requires a field that process documents never hold.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any, Generic, TypeVar

from kexecwatch.core.detect.rule.ast import And, Comparison, Field, Op, Or, Query
from kexecwatch.core.detect.rule.evaluate import compile_ast
from kexecwatch.core.detect.rule.lexer import QuerySource
from kexecwatch.core.detect.rule.needles import regex_needles
from kexecwatch.core.detect.rule.sequence import CompiledSequence
from kexecwatch.core.process.docfields import (
    FACET_FIELDS,
    process_facets,
    process_fields,
)
from kexecwatch.core.process.events import EVENTS_AS
from kexecwatch.core.scan.argtest import (
    CREDENTIAL_FIELDS,
    AllOf,
    AnyOf,
    ArgsTest,
    CapsTest,
    CredTest,
    Needle,
    Needles,
    Part,
    ValueTest,
)
from kexecwatch.core.scan.prefilter import EVERYTHING, Prefilter, prefilter_from_values

__all__ = [
    "Disjunction",
    "Requirement",
    "RuleIndex",
    "alternatives",
    "args_test",
    "can_match",
    "name_filter",
    "prefilters_of",
    "requirements",
]

R = TypeVar("R")

#: Indexed fields, most selective first; any other field comes after these, and the
#: event facets last.
_PREFERRED = (
    "process.name",
    "process.executable",
    "process.parent.name",
    "process.parent.executable",
    "process.args",
    "process.parent.args",
    "process.command_line",
    "process.parent.command_line",
)
#: Fields whose values repeat from event to event: patterns on them are worth remembering.
_REPEATING = frozenset(
    {"process.name", "process.executable", "process.parent.name", "process.parent.executable"}
)
_FACETS = ("event.action", "event.type", "event.outcome", "event.category", "event.kind")


@dataclass(frozen=True, slots=True)
class Requirement:
    """Some element of ``field`` is in ``exact``, lower-cases into ``folded``, or makes one of
    ``patterns`` (comparisons on ``field`` alone) true."""

    field: str
    exact: frozenset[str] = frozenset()
    folded: frozenset[str] = frozenset()
    patterns: tuple[Comparison, ...] = ()

    def join(self, other: Requirement) -> Requirement:
        """Either requirement (an ``or``)."""
        return Requirement(
            self.field,
            self.exact | other.exact,
            self.folded | other.folded,
            self.patterns + other.patterns,
        )

    def accepts(self, value: str) -> bool:
        """Whether the element ``value`` satisfies the requirement."""
        if value in self.exact or value.lower() in self.folded:
            return True
        return any(_leaf_holds(p, value) for p in self.patterns)


_POSITIVE = frozenset(
    {Op.EQ, Op.IN, Op.IN_NOCASE, Op.SEQ, Op.LIKE, Op.LIKE_NOCASE, Op.REGEX, Op.REGEX_NOCASE}
)


def requirements(condition: Any) -> dict[str, Requirement]:
    """``field -> requirement`` that every document matching ``condition`` satisfies."""
    return {d[0].field: d[0] for d in alternatives(condition) if len(d) == 1}


#: Requirements of which at least one holds (on different fields).
Disjunction = tuple[Requirement, ...]


def alternatives(condition: Any) -> list[Disjunction]:
    """Disjunctions that every document matching ``condition`` satisfies, one or more
    per conjunct: ``a == "x" or b : "y*"`` gives one, ``(a == "x") and (b == "y")`` two."""
    if isinstance(condition, Comparison):
        return [(req,) for req in _leaf(condition).values()]
    if isinstance(condition, And):
        return [d for item in condition.operands for d in alternatives(item)]
    if isinstance(condition, Or):
        joined: dict[str, Requirement] = {}
        for item in condition.operands:
            found = alternatives(item)
            if not found:
                return []  # this operand requires nothing: neither does the whole
            for req in min(found, key=_cost):
                joined[req.field] = joined[req.field].join(req) if req.field in joined else req
        return [tuple(joined.values())]
    return []


def _cost(disjunction: Disjunction) -> tuple[int, int, tuple[int, str]]:
    """Which disjunction to file a rule under: the one whose least selective requirement
    is the most selective (:func:`_selectivity`), then the shortest, then by field."""
    return (
        max(_selectivity(r) for r in disjunction),
        len(disjunction),
        max(_rank(r.field) for r in disjunction),
    )


def _selectivity(req: Requirement) -> int:
    """0: a facet value kexecwatch never emits (the rule is never tried); 1: literal
    values; 2: patterns on a field whose values repeat (names and executables: the
    answer per value is remembered) or that kexecwatch never sets; 3: no help at all
    (a facet value every event of a kind has, or patterns on arguments and command
    lines, whose values rarely repeat: testing them costs as much as trying the rule)."""
    emitted = _emitted().get(req.field)
    if emitted is None:
        if not req.patterns:
            return 1
        # A field kexecwatch never sets costs nothing to look at: it is never there.
        return 2 if req.field in _REPEATING or req.field not in process_fields() else 3
    if req.patterns or emitted & req.exact or {v.lower() for v in emitted} & req.folded:
        return 3
    return 0


@cache
def _vocabulary(events_as: str | None) -> Mapping[str, frozenset[str]]:
    """The values of each facet field in process documents of the event vocabulary
    ``events_as`` (``--events-as``; ``None``: of every one)."""
    return {
        name: frozenset(
            v
            for vocabulary in (EVENTS_AS if events_as is None else (events_as,))
            for facets in process_facets(vocabulary)
            for v in facets[name]
        )
        for name in FACET_FIELDS
    }


@cache
def _emitted() -> Mapping[str, frozenset[str]]:
    return {
        name: frozenset(v for facets in process_facets() for v in facets[name])
        for name in FACET_FIELDS
    }


def _leaf(cmp: Comparison) -> dict[str, Requirement]:
    if cmp.op not in _POSITIVE or not isinstance(cmp.left, Field):
        return {}
    if not cmp.values or not all(isinstance(v, str) for v in cmp.values):
        return {}
    name = cmp.left.name
    values = frozenset(str(v) for v in cmp.values)
    if cmp.op in (Op.EQ, Op.IN):
        return {name: Requirement(name, exact=values)}
    # A backslash may escape a wildcard: such a value is left to the pattern matcher.
    wildcard = any("*" in v or "?" in v or "\\" in v for v in values)
    if cmp.op is Op.IN_NOCASE or (cmp.op is Op.SEQ and not wildcard):
        return {name: Requirement(name, folded=frozenset(v.lower() for v in values))}
    return {name: Requirement(name, patterns=(cmp,))}


@cache
def _compiled_leaf(cmp: Comparison) -> Callable[[Mapping[str, Any]], bool]:
    return compile_ast(Query("any", cmp), QuerySource("", "<index>")).matches


def _leaf_holds(cmp: Comparison, value: str) -> bool:
    """Whether the comparison holds on a document whose field holds ``value`` alone."""
    assert isinstance(cmp.left, Field)
    doc: dict[str, Any] = {}
    target = doc
    *parents, leaf = cmp.left.path
    for key in parents:
        target = target.setdefault(key, {})
    target[leaf] = value
    return _compiled_leaf(cmp)(doc)


def _condition_of(rule: object) -> Any:
    query = getattr(rule, "query", None)
    return getattr(query, "condition", None) if query is not None else None


def name_filter(rule: object) -> Callable[[str, str], bool] | None:
    """A test on ``process.name`` and ``process.executable`` that every event ``rule``
    matches passes (Rule 1), or ``None`` when the rule requires neither.

    Every requirement on those two fields counts, including an ``or`` of both
    (``process.name in~ ("curl", "sh") or process.executable : "/tmp/*"``).
    """
    condition = _condition_of(rule)
    if condition is None:
        return None
    wanted = [d for d in alternatives(condition) if {r.field for r in d} <= _NAME_FIELDS]
    if not wanted:
        return None

    def accepts(process_name: str, executable: str) -> bool:
        values = {"process.name": process_name, "process.executable": executable}
        return all(any(r.accepts(values[r.field]) for r in d) for d in wanted)

    return accepts


_NAME_FIELDS = frozenset({"process.name", "process.executable"})
_ARG_FIELDS = frozenset(
    {
        "process.args",
        "process.command_line",
        "process.parent.args",
        "process.parent.command_line",
    }
)
#: The fields of :class:`~kexecwatch.core.scan.argtest.ValueTest`, by its ``field`` number.
_VALUE_FIELDS = (
    "process.name",
    "process.executable",
    "process.parent.name",
    "process.parent.executable",
    "process.working_directory",
)
#: The capability sets: only an event with a record stating them has them
#: (:class:`~kexecwatch.core.scan.argtest.CapsTest`).
_CAPABILITY_FIELDS = frozenset(
    {"process.thread.capabilities.effective", "process.thread.capabilities.permitted"}
)


def can_match(rule: object, events_as: str | None = None) -> bool:
    """``False`` when no process document can match ``rule``: it requires (Rule 1 of
    :func:`requirements`) a value of a field that process documents never hold, or, with
    ``events_as``, an ``event.*`` value that vocabulary never emits (``None``: any)."""
    condition = _condition_of(rule)
    return condition is None or _reduce(condition, events_as) is not False


def args_test(rule: object, events_as: str | None = None) -> ArgsTest | None:
    """An :class:`~kexecwatch.core.scan.argtest.ArgsTest` that every document ``rule`` matches
    (in the event vocabulary ``events_as``; ``None``: any) passes, or ``None`` when its
    query requires no text of its arguments, nothing of its parent and none of its ids (a
    test of the process's own name and executable alone is :func:`name_filter`'s, which
    the prefilter decides once per name)."""
    condition = _condition_of(rule)
    if condition is None:
        return None
    reduced = _reduce(condition, events_as)
    if isinstance(reduced, bool):
        return None
    test = ArgsTest(reduced)
    return test if test.reads_event else None


def _reduce(condition: Any, events_as: str | None) -> Part | bool:
    """``condition`` reduced as :mod:`kexecwatch.core.scan.argtest` says: ``True`` where
    nothing is known, ``False`` where it can never hold (in documents of the event
    vocabulary ``events_as``; ``None``: of any)."""
    if isinstance(condition, Comparison):
        return _reduce_leaf(condition, events_as)
    if isinstance(condition, And | Or):
        stop = isinstance(condition, Or)  # the value that decides: True for or
        parts: list[Part] = []
        for item in condition.operands:
            part = _reduce(item, events_as)
            if part is stop:
                return stop
            if not isinstance(part, bool):
                parts.append(part)
        if not parts:
            return not stop
        if len(parts) == 1:
            return parts[0]
        return AnyOf(tuple(parts)) if stop else AllOf(tuple(parts))
    return True


def _reduce_leaf(cmp: Comparison, events_as: str | None) -> Part | bool:
    credential = _credential_test(cmp)
    if credential is not None:
        return credential
    found = _leaf(cmp)
    if not found:
        return True
    [(name, req)] = found.items()
    if name not in process_fields():
        return False  # a positive comparison on a field that is never there
    facets = _vocabulary(events_as).get(name)
    if facets is not None and not any(req.accepts(v) for v in facets):
        return False  # a value process documents never have, in this vocabulary
    if name in _CAPABILITY_FIELDS:
        return CapsTest()
    if name in _VALUE_FIELDS:
        return ValueTest(_VALUE_FIELDS.index(name), req.accepts)
    if name not in _ARG_FIELDS:
        return True
    needles = _needles(req, parent=name.startswith("process.parent."))
    return True if needles is None else needles


def _credential_test(cmp: Comparison) -> CredTest | None:
    """A test of the process's own id that ``==``, ``in`` or ``!=`` with text on it
    stands for, or ``None``."""
    if not isinstance(cmp.left, Field) or cmp.op not in (Op.EQ, Op.IN, Op.NE):
        return None
    key = CREDENTIAL_FIELDS.get(cmp.left.name)
    if key is None or not cmp.values or not all(type(v) is str for v in cmp.values):
        return None
    return CredTest(key, frozenset(str(v) for v in cmp.values), negate=cmp.op is Op.NE)


def _needles(req: Requirement, parent: bool) -> Part | None:
    """A test that the command line of a document satisfying ``req`` passes (``None``:
    no text is known that it must hold)."""
    found: set[Needle] = {(v, False) for v in req.exact} | {(v, True) for v in req.folded}
    regexes: list[Part] = []
    for cmp in req.patterns:
        nocase = cmp.op in (Op.SEQ, Op.LIKE_NOCASE, Op.REGEX_NOCASE)
        for value in cmp.values:
            text = str(value).lower() if nocase else str(value)
            if cmp.op in (Op.REGEX, Op.REGEX_NOCASE):
                rows = regex_needles(str(value), nocase=nocase)
                if not rows:
                    return None
                parts = [Needles(frozenset((t, nocase) for t in row), parent) for row in rows]
                regexes.append(parts[0] if len(parts) == 1 else AllOf(tuple(parts)))
                continue
            # Wildcards (no escape character): a matching element holds every literal
            # piece, so the command line holds them all.
            pieces = sorted({t for t in text.replace("?", "*").split("*") if t}, key=len)
            if not pieces:
                return None  # only wildcards: any text
            if len(pieces) == 1:
                found.add((pieces[0], nocase))
                continue
            regexes.append(
                AllOf(tuple(Needles(frozenset({(t, nocase)}), parent) for t in pieces[::-1]))
            )
    if any(not t for t, _ in found):
        return None
    tests = [*([Needles(frozenset(found), parent)] if found else []), *regexes]
    if not tests:
        return None
    return tests[0] if len(tests) == 1 else AnyOf(tuple(tests))


def _rank(name: str) -> tuple[int, str]:
    if name in _PREFERRED:
        return (0, f"{_PREFERRED.index(name):03d}")
    return (2 if name in _FACETS or name.startswith(("host.", "event.")) else 1, name)


class RuleIndex(Generic[R]):
    """Rules filed by what they require; see the module documentation."""

    def __init__(self, rules: Sequence[R]) -> None:
        self.rules = list(rules)
        self._always: list[int] = []
        self._exact: dict[tuple[str, ...], dict[str, list[int]]] = {}
        self._folded: dict[tuple[str, ...], dict[str, list[int]]] = {}
        # Rules filed under requirements with patterns: field -> [(rule, requirement)].
        self._patterned: dict[tuple[str, ...], list[tuple[int, Requirement]]] = {}
        for i, rule in enumerate(self.rules):
            if isinstance(getattr(rule, "query", None), CompiledSequence):
                continue  # matched by the sequence engine; its matches() is always false
            condition = _condition_of(rule)
            found = alternatives(condition) if condition is not None else []
            best = min(found, key=_cost) if found else ()
            if not best or _cost(best)[0] == 3:
                self._always.append(i)
                continue
            for req in best:
                path = tuple(req.field.split("."))
                if req.patterns:
                    self._patterned.setdefault(path, []).append((i, req))
                    continue
                for table, values in ((self._exact, req.exact), (self._folded, req.folded)):
                    slot = table.setdefault(path, {})
                    for value in values:
                        slot.setdefault(value, []).append(i)

        # Candidates remembered by the indexed fields' values (see candidates).
        self._known: dict[tuple[Any, ...], list[R]] = {}
        self._known_chars = 0
        self._fields = [
            _FieldTables(
                path,
                self._exact.get(path, {}),
                self._folded.get(path, {}),
                tuple(self._patterned.get(path, ())),
            )
            for path in dict.fromkeys([*self._exact, *self._folded, *self._patterned])
        ]

    @property
    def indexed(self) -> int:
        """How many rules are tried only when the document holds what they require."""
        return len(self.rules) - len(self._always)

    def candidates(self, document: Mapping[str, Any]) -> list[R]:
        """The rules that could match ``document``, in their original order.

        They depend only on the values of the indexed fields (their text elements): the
        answer is remembered by those values (a list's as a tuple), when they make a key.
        """
        values: list[Any] = []
        for tables in self._fields:
            value: Any = document
            for key in tables.path:
                value = value.get(key) if type(value) is dict else None
            # Only text and lists are looked up: any other value is as good as none.
            kind = type(value)
            values.append(value if kind is str else tuple(value) if kind is list else None)
        known_key = tuple(values)
        try:
            known = self._known.get(known_key)
        except TypeError:  # an object or a list among the values: no key
            return self._find(values)
        if known is None:
            known = self._find(values)
            size = _text_size(values)
            if size <= _MAX_KNOWN_KEY_CHARS:
                if len(self._known) >= _MAX_KNOWN or self._known_chars + size > _MAX_KNOWN_CHARS:
                    self._known.clear()
                    self._known_chars = 0
                self._known[known_key] = known
                self._known_chars += size
        return list(known)

    def _find(self, values: list[Any]) -> list[R]:
        """:meth:`candidates` of the indexed fields' ``values`` (in ``_fields`` order)."""
        found = set(self._always)
        for tables, value in zip(self._fields, values, strict=True):
            if value is None:
                continue
            for item in value if type(value) is tuple else (value,):
                if type(item) is str:
                    tables.lookup(item, found)
        return [self.rules[i] for i in sorted(found)]


@dataclass(slots=True)
class _FieldTables:
    """The rules filed under one field: by exact value, lower-cased value, or pattern."""

    path: tuple[str, ...]
    exact: dict[str, list[int]]
    folded: dict[str, list[int]]
    patterned: tuple[tuple[int, Requirement], ...]
    seen: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def lookup(self, value: str, found: set[int]) -> None:
        """Add the rules ``value`` may satisfy to ``found``."""
        if self.exact:
            hits = self.exact.get(value)
            if hits:
                found.update(hits)
        if self.folded:
            hits = self.folded.get(value.lower())
            if hits:
                found.update(hits)
        if self.patterned:
            known = self.seen.get(value)
            if known is None:
                if len(self.seen) >= _MAX_SEEN:
                    self.seen.clear()
                known = self.seen[value] = tuple(
                    i for i, req in self.patterned if req.accepts(value)
                )
            found.update(known)


#: Values remembered per patterned field (then forgotten all at once): bounds memory.
_MAX_SEEN = 65_536
#: Candidate lists remembered per index, and characters of text in their keys, before all
#: are forgotten at once; a longer key is never kept.
_MAX_KNOWN = 4_096
_MAX_KNOWN_CHARS = 1 << 20
_MAX_KNOWN_KEY_CHARS = 1 << 14


def _text_size(values: list[Any]) -> int:
    """Characters of text among indexed fields' values (a tuple's elements included)."""
    size = 0
    for value in values:
        if type(value) is str:
            size += len(value)
        elif type(value) is tuple:
            size += len(value) + sum(len(x) for x in value if type(x) is str)
    return size


def prefilters_of(rule: object, events_as: str | None = None) -> list[Prefilter]:
    """What a rule needs: its own statement (``prefilters()``), its query's literals
    (``query.required_values()``, a test on the name and executable when those give no
    literal name, and a test on the arguments), or everything.

    A sequence or sample needs what any of its stages needs: an event that matches no
    stage never changes a sequence. One whose stage (other than a missing event or
    ``until``) can never match needs nothing: it can never start or complete.

    ``events_as``: the event vocabulary of the documents the rule will see
    (``--events-as``); a query that requires an ``event.*`` value only the other
    vocabulary emits (Elastic Defend's ``event.action == "exec"`` among Auditbeat's
    documents) can never match them. ``None``: documents of either vocabulary.
    """
    stated = getattr(rule, "prefilters", None)
    if callable(stated):
        return list(stated())
    query = getattr(rule, "query", None)
    stages = getattr(query, "all_stages", None)
    if callable(stages):
        until = getattr(query, "until", None)
        found: list[Prefilter] = []
        for stage in stages():
            needs = _query_prefilters(stage, events_as)
            if not needs and stage is not until and not getattr(stage, "missing", False):
                return []
            found += needs
        return found
    return _query_prefilters(rule, events_as)


def _query_prefilters(rule: object, events_as: str | None) -> list[Prefilter]:
    """:func:`prefilters_of` a rule (or a sequence's stage) with a single-event query."""
    query = getattr(rule, "query", None)
    required = getattr(query, "required_values", None)
    if not callable(required):
        return [EVERYTHING]
    prefilter = prefilter_from_values(required())
    if prefilter is None:
        return []
    # Tests on the name, executable and arguments (case-insensitive values, wildcards):
    # can_match and args_test, of one reduction.
    condition = _condition_of(rule)
    reduced = True if condition is None else _reduce(condition, events_as)
    if reduced is False:
        return []
    if prefilter.comms is None and prefilter.exes is None:
        test = name_filter(rule)
        if test is not None:
            prefilter = replace(prefilter, where=test)
    if not isinstance(reduced, bool):
        args = ArgsTest(reduced)
        if args.reads_event:
            prefilter = replace(prefilter, args=args)
    return [prefilter]
