"""Compile a parsed query into closures, once, and evaluate it on many documents.

Rule 1: ``CompiledQuery.matches`` never raises on a JSON-like document (dicts, lists,
str, int, float, bool, None, at any depth); anything unexpected simply does not match.
Rule 2: every leaf is TWO-valued, as an Elasticsearch query is: it either matches the
document or not. There is no SQL-style ``unknown``.

Theory of operation. Elasticsearch compiles an EQL condition into a bool query. A leaf
``f == "x"`` is a ``term`` query: it matches when ANY value of ``f`` equals ``"x"``
(arrays are multi-valued fields) and never matches when ``f`` is missing. ``not X`` is
``must_not(X)``: plain boolean negation of X's two-valued result. So:

* ``f != "x"`` is ``not (f == "x")``: true when ``f`` is missing, false when any
  element of an array equals ``"x"``.
* ``not f in ("a", "b")`` and ``f not in ("a", "b")`` are true when ``f`` is missing.
* ``f == null`` (or ``?f == null``) is "``f`` has no value"; ``f != null`` is "``f`` has
  a value". JSON ``null``, an empty list and a list of nulls all count as no value.
* ``<``, ``<=``, ``>``, ``>=`` and ``length(f)`` hold when ANY element satisfies them;
  ``not (f > 3)`` on a missing ``f`` is therefore true.

Documents are nested dicts walked by the dotted path; a missing level, or a non-dict on
the way, means a missing field. Case-insensitive operators lower-case both sides with
``str.lower()`` (Elasticsearch's case-insensitive term queries normalise by lower-casing
as well). Lone surrogates from ``surrogateescape`` decoding are ordinary characters here.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from kexecwatch.core.detect.rule.ast import (
    And,
    Arith,
    BoolConst,
    Call,
    CallCondition,
    Comparison,
    Computed,
    Expr,
    Field,
    Length,
    Literal,
    Negate,
    Not,
    Op,
    Or,
    Query,
    Scalar,
    Value,
)
from kexecwatch.core.detect.rule.compute import compile_call_condition, compile_computed, order_test
from kexecwatch.core.detect.rule.explain import Conjunct, explain_failure
from kexecwatch.core.detect.rule.lexer import QuerySource
from kexecwatch.core.detect.rule.needles import regex_needles
from kexecwatch.core.detect.rule.patterns import (
    Matcher,
    PatternError,
    any_of,
    regex_matcher,
    wildcard_matcher,
)

__all__ = ["CompiledQuery", "Document", "compile_ast", "value_field_nodes", "value_fields"]

#: A document: a nested ECS dict (``{"process": {"name": "kexec"}}``).
Document = Mapping[str, Any]
_Predicate = Callable[[Document], bool]
_Getter = Callable[[Document], Any]
_MISSING: Any = object()
_CATEGORY_FIELD = ("event", "category")


@dataclass(frozen=True, slots=True)
class CompiledQuery:
    """A query compiled for fast repeated evaluation.

    Attributes:
        text: the query text it was compiled from.
        category: the event category before ``where`` (``process``, ``any``, ...).
            A ``process`` query only matches documents whose ``event.category`` contains
            ``"process"``; ``any`` matches every document.
        condition: the parsed condition (after ``where``).
        fields: every field the query reads, dotted, including ``event.category`` unless
            the category is ``any``.
        matches: ``matches(doc) -> bool``; true when the document satisfies the query.
            It never raises on JSON-like documents.
        conjuncts: the top-level conjuncts in query order (the category test first),
            each with its own predicate; :meth:`explain` reads them.
    """

    text: str
    category: str
    condition: Expr
    fields: frozenset[str]
    matches: Callable[[Document], bool] = field(repr=False, compare=False)
    conjuncts: tuple[Conjunct, ...] = field(default=(), repr=False, compare=False)

    def explain(self, document: Document) -> str | None:
        """Why ``document`` does not match, or ``None`` when it does.

        Names the first top-level conjunct (in query order) that fails, with the
        document's value: ``excluded: process.parent.name kdumpctl`` for a failing
        ``not ... in (...)``, ``process.args not in list`` for a failing ``in``,
        ``process.name is bash, not kexec`` for a failing ``==``. The text holds
        document values verbatim: escape it before showing it on a terminal.
        Consistent with :attr:`matches`: ``None`` exactly when it returns true.
        """
        if not self.conjuncts:  # compiled lazily and not built yet: the first call builds
            self.matches(document)
        return explain_failure(self.conjuncts, document)

    def required_values(self) -> dict[str, frozenset[str]]:
        """Fields that must hold one of a few exact strings for the query to match.

        For each returned ``field -> values``, any document the query matches has at
        least one element of ``field`` equal (exactly, case-sensitively) to one of
        ``values``. Only top-level ``and`` conjuncts of ``==``/``in`` over string
        constants (and the category) are used, which keeps this sound; a field with no
        such conjunct is simply absent. Returns ``{}`` when nothing can be derived.
        """
        out: dict[str, frozenset[str]] = {}
        if self.category != "any":
            out["event.category"] = frozenset({self.category})
        conjuncts = (
            self.condition.operands if isinstance(self.condition, And) else (self.condition,)
        )
        for item in conjuncts:
            if (
                isinstance(item, Comparison)
                and item.op in (Op.EQ, Op.IN)
                and isinstance(item.left, Field)
                and all(type(v) is str for v in item.values)
            ):
                values = frozenset(str(v) for v in item.values)
                name = item.left.name
                # Two conjuncts on one array field may be met by different elements, so
                # intersecting them would be unsound; keeping the smaller set is not.
                if name not in out or len(values) < len(out[name]):
                    out[name] = values
        return out


def compile_ast(query: Query, src: QuerySource, *, lazy: bool = False) -> CompiledQuery:
    """Compile a parsed query; ``src`` is used for errors in patterns (bad regexes).

    Args:
        lazy: build the predicates (closures, wildcard and regex matchers) on the first
            call of :attr:`~CompiledQuery.matches` or :meth:`~CompiledQuery.explain`
            instead of now. Only for a query known to compile (the rule cache's word
            that this query compiled with this very compiler): the build then cannot
            raise, and a rule no event reaches never pays for it.

    Raises:
        RuleError: for a regular expression outside the supported Lucene subset
            (never when ``lazy``).
    """
    condition = query.condition
    fields = set(_fields(condition))
    if query.category != "any":
        fields.add(".".join(_CATEGORY_FIELD))
    if not lazy:
        parts = _conjuncts(query, src)
        predicate = _all(tuple(pred for _, pred in parts))
        return CompiledQuery(
            src.text, query.category, condition, frozenset(fields), predicate, parts
        )

    def build(document: Document) -> bool:
        # The first call swaps the real predicate and conjuncts into the (frozen) query,
        # so later look-ups of ``compiled.matches`` reach the predicate directly. Should
        # two threads get here at once, both build the same value: no harm.
        parts = _conjuncts(query, src)
        predicate = _all(tuple(pred for _, pred in parts))
        object.__setattr__(compiled, "conjuncts", parts)
        object.__setattr__(compiled, "matches", predicate)
        return predicate(document)

    compiled = CompiledQuery(src.text, query.category, condition, frozenset(fields), build)
    return compiled


def _conjuncts(query: Query, src: QuerySource) -> tuple[Conjunct, ...]:
    """The top-level conjuncts of ``query`` with their predicates, the category first."""
    condition = query.condition
    rest = condition.operands if isinstance(condition, And) else (condition,)
    parts: tuple[Conjunct, ...] = tuple((item, _compile(item, src)) for item in rest)
    if query.category != "any":
        category = Comparison(Op.EQ, Field(_CATEGORY_FIELD, False, 0), (query.category,), (0,), 0)
        in_category = _membership(_CATEGORY_FIELD, frozenset({query.category}))
        parts = ((category, in_category), *parts)
    return parts


def _fields(expr: Expr) -> Iterator[str]:
    if isinstance(expr, Comparison | Computed):
        yield from value_fields(expr.left)
    elif isinstance(expr, CallCondition):
        yield from value_fields(expr.call)
    elif isinstance(expr, Not):
        yield from _fields(expr.operand)
    elif isinstance(expr, And | Or):
        for item in expr.operands:
            yield from _fields(item)


def value_fields(value: Value) -> Iterator[str]:
    """Every field a value reads, dotted, in query order."""
    for fld in value_field_nodes(value):
        yield fld.name


def value_field_nodes(value: Value) -> Iterator[Field]:
    """Every field node a value reads, in query order."""
    if isinstance(value, Field):
        yield value
    elif isinstance(value, Length):
        yield value.field
    elif isinstance(value, Call):
        for arg in value.args:
            yield from value_field_nodes(arg)
    elif isinstance(value, Arith):
        yield from value_field_nodes(value.left)
        yield from value_field_nodes(value.right)
    elif isinstance(value, Negate):
        yield from value_field_nodes(value.operand)
    else:
        assert isinstance(value, Literal)


def _compile(expr: Expr, src: QuerySource) -> _Predicate:
    if isinstance(expr, Computed):
        return compile_computed(
            expr, _getter, (lambda: _pattern(expr, src)) if expr.op in _PATTERN_OPS else None
        )
    if isinstance(expr, CallCondition):
        return compile_call_condition(expr, _getter)
    if isinstance(expr, BoolConst):
        value = expr.value
        return lambda doc: value
    if isinstance(expr, Not):
        inner = _compile(expr.operand, src)
        return lambda doc: not inner(doc)
    if isinstance(expr, And):
        return _all(tuple(_compile(item, src) for item in expr.operands))
    if isinstance(expr, Or):
        return _any_of(tuple(_compile(item, src) for item in expr.operands))
    return _comparison(expr, src)


def _all(preds: tuple[_Predicate, ...]) -> _Predicate:
    """A conjunction that tries first whichever conjunct failed last (move-to-front).

    On a stream of process events the same conjunct (``process.name == "kexec"``)
    rejects nearly every document, so after the first miss it is tried first and one
    leaf decides. Leaves are pure and total (Rule 1), so order never changes the result.
    The order is a tuple replaced in one assignment: a concurrent caller iterates a
    consistent snapshot, never a half-updated list.
    """
    if len(preds) == 1:
        return preds[0]
    state = [preds]

    def all_of(doc: Document) -> bool:
        order = state[0]
        for pred in order:
            if not pred(doc):
                if pred is not order[0]:
                    state[0] = (pred, *(p for p in order if p is not pred))
                return False
        return True

    return all_of


def _any_of(preds: tuple[_Predicate, ...]) -> _Predicate:
    def any_of(doc: Document) -> bool:
        # A loop, not any() over a generator: no generator frame per call.
        for pred in preds:  # noqa: SIM110
            if pred(doc):
                return True
        return False

    return any_of


# -- field access --------------------------------------------------------------------


def _getter(path: tuple[str, ...]) -> _Getter:
    """A function returning the raw value at ``path``, or ``_MISSING``."""
    # Specialised for the common depths: this is the hot loop of every leaf.
    if len(path) == 1:
        (a,) = path
        return lambda doc: doc.get(a, _MISSING)
    if len(path) == 2:
        a, b = path

        def get2(doc: Document) -> Any:
            d = doc.get(a)
            return d.get(b, _MISSING) if type(d) is dict else _MISSING

        return get2
    if len(path) == 3:
        a, b, c = path

        def get3(doc: Document) -> Any:
            d = doc.get(a)
            if type(d) is dict:
                d = d.get(b)
                if type(d) is dict:
                    return d.get(c, _MISSING)
            return _MISSING

        return get3

    def get_n(doc: Document) -> Any:
        d: Any = doc
        for key in path:
            if type(d) is not dict:
                return _MISSING
            d = d.get(key, _MISSING)
        return d

    return get_n


def _elements(value: Any) -> Iterator[Any]:
    """The non-null scalar values of a field value, arrays (and nested arrays) flattened."""
    if type(value) is list:
        for item in value:
            yield from _elements(item)
    elif value is not None and value is not _MISSING:
        yield value


def _length_getter(get: _Getter) -> _Getter:
    def lengths(doc: Document) -> Any:
        values = [len(v) for v in _elements(get(doc)) if type(v) is str]
        return values or _MISSING

    return lengths


# -- leaves --------------------------------------------------------------------------


def _comparison(cmp: Comparison, src: QuerySource) -> _Predicate:
    if isinstance(cmp.left, Length):
        get = _length_getter(_getter(cmp.left.field.path))
        path = None
    else:
        get = _getter(cmp.left.path)
        path = cmp.left.path
    op, values = cmp.op, cmp.values
    if op in (Op.EQ, Op.NE) and values == (None,):

        def present(doc: Document) -> bool:
            return next(_elements(get(doc)), _MISSING) is not _MISSING

        return present if op is Op.NE else lambda doc: not present(doc)
    if op in (Op.EQ, Op.IN):
        return _equals(get, path, values)
    if op is Op.NE:
        equal = _equals(get, path, values)
        return lambda doc: not equal(doc)
    if op is Op.IN_NOCASE:
        lowered = frozenset(str(v).lower() for v in values)
        return _any_element(get, lambda x: type(x) is str and x.lower() in lowered)
    if op in (Op.LT, Op.LE, Op.GT, Op.GE):
        return _ordered(get, op, values[0])
    match = _pattern(cmp, src)
    lower = op in (Op.SEQ, Op.LIKE_NOCASE)
    search = _needle_search(cmp)
    if search is None:
        return _any_element(get, _remembered(match, lower=lower))
    test = _remembered(match, lower=lower)

    def pred(doc: Document) -> bool:
        value = get(doc)
        if type(value) is list:
            # One search of the elements joined (NUL: no case, no letter: the lower case
            # of the whole is that of each) for text one of them must hold: arguments
            # rarely repeat, and most lists hold none of it.
            try:
                joined = "\0".join(value)
            except TypeError:  # other elements than strings: each in turn
                pass
            else:
                if search(joined.lower() if lower else joined) is None:
                    return False
            for x in value:
                if type(x) is list:
                    if any(test(y) for y in _elements(x)):
                        return True
                elif x is not None and test(x):
                    return True
            return False
        return value is not _MISSING and value is not None and test(value)

    return pred


def _needle_search(cmp: Comparison) -> Callable[[str], object] | None:
    """A search for text an element must hold to match one of the patterns of ``cmp``
    (lower-case for ``:`` and ``like~``): of each wildcard its longest literal piece
    (wildcards have no escape), of each case-sensitive regex a needle alone in its set
    (:func:`.needles.regex_needles`); ``None`` when a pattern has none (``*``, or any
    ``regex~``: a character's other cases are not only ``str.lower``'s)."""
    lower = cmp.op in (Op.SEQ, Op.LIKE_NOCASE)
    needles: set[str] = set()
    for value in cmp.values:
        text = str(value)
        if cmp.op is Op.REGEX:
            pieces = [t for row in regex_needles(text, nocase=False) if len(row) == 1 for t in row]
        elif cmp.op in (Op.LIKE, Op.SEQ, Op.LIKE_NOCASE):
            text = text.lower() if lower else text
            pieces = [t for t in text.replace("?", "*").split("*") if t]
        else:
            return None
        if not pieces:
            return None
        needles.add(max(pieces, key=lambda t: (len(t), t)))
    if not needles:
        return None
    ordered = tuple(sorted(needles, key=lambda t: (-len(t), t)))
    if len(ordered) <= _FEW_NEEDLES:
        # A few needles: one str search each (a fast scan per needle) costs less than
        # the regex engine trying every alternative at every place.

        def search(text: str) -> object:
            for needle in ordered:
                if needle in text:
                    return True
            return None

        return search
    return re.compile("|".join(re.escape(t) for t in ordered)).search


#: Up to this many needles, :func:`_needle_search` tries each with ``in``.
_FEW_NEEDLES = 32


#: Verdicts of pattern leaves, by (leaf, text), over all queries; forgotten all at once
#: when this many are held, or when their texts would hold more than
#: ``_MAX_VERDICT_CHARS`` characters.
_MAX_VERDICTS = 8_192
_MAX_VERDICT_CHARS = 1 << 19
#: Longer texts are matched every time.
_MAX_VERDICT_TEXT = 1 << 16
_verdicts: dict[tuple[int, str], bool] = {}
_verdict_chars = [0]  # characters of the texts _verdicts holds
_leaf_serials = itertools.count()


def _remembered(match: Matcher, *, lower: bool) -> Callable[[Any], bool]:
    """``match`` of a string element (of its lower case when ``lower``), remembered.

    The same names, paths, arguments and command lines recur event after event, and a
    leaf with many patterns (or a regular expression walked character by character)
    costs far more than a look-up. A matcher is a pure function of its text, so a
    remembered verdict is the verdict. Keys carry a serial per leaf, never reused
    (unlike ``id()``).
    """
    serial = next(_leaf_serials)
    verdicts = _verdicts
    held = _verdict_chars

    def test(x: Any) -> bool:
        if type(x) is not str:
            return False
        key = (serial, x)
        known = verdicts.get(key)
        if known is None:
            known = match(x.lower() if lower else x)
            size = len(x)
            if size <= _MAX_VERDICT_TEXT:
                if len(verdicts) >= _MAX_VERDICTS or held[0] + size > _MAX_VERDICT_CHARS:
                    verdicts.clear()
                    held[0] = 0
                verdicts[key] = known
                held[0] += size
        return known

    return test


def _any_element(get: _Getter, test: Callable[[Any], bool]) -> _Predicate:
    def pred(doc: Document) -> bool:
        value = get(doc)
        if type(value) is list:
            # _elements, with the flat list of strings (process.args) walked in place.
            for x in value:
                if type(x) is list:
                    if any(test(y) for y in _elements(x)):
                        return True
                elif x is not None and test(x):
                    return True
            return False
        return value is not _MISSING and value is not None and test(value)

    return pred


def _membership(path: tuple[str, ...], strings: frozenset[str]) -> _Predicate:
    """Any element is one of ``strings``: the hot path of ``==``/``in`` on strings.

    The field walk is inlined for paths of two and three parts, which saves a call per
    leaf; that is most of the cost of evaluating a rule on a document.
    """
    isdisjoint = strings.isdisjoint

    def test(value: Any) -> bool:
        if type(value) is list:
            try:
                return not isdisjoint(value)
            except TypeError:  # unhashable elements (nested lists): flatten and retry
                return not isdisjoint(v for v in _elements(value) if type(v) is str)
        return False

    if len(path) == 2:
        a, b = path

        def pred2(doc: Document) -> bool:
            d = doc.get(a)
            if type(d) is dict:
                value = d.get(b)
                return value in strings if type(value) is str else test(value)
            return False

        return pred2
    if len(path) == 3:
        a, b, c = path

        def pred3(doc: Document) -> bool:
            d = doc.get(a)
            if type(d) is dict:
                d = d.get(b)
                if type(d) is dict:
                    value = d.get(c)
                    return value in strings if type(value) is str else test(value)
            return False

        return pred3
    get = _getter(path)

    def pred(doc: Document) -> bool:
        value = get(doc)
        return value in strings if type(value) is str else test(value)

    return pred


def _equals(get: _Getter, path: tuple[str, ...] | None, values: tuple[Scalar, ...]) -> _Predicate:
    strings = frozenset(v for v in values if type(v) is str)
    if path is not None and len(strings) == len(values):
        return _membership(path, strings)
    bools = frozenset(v for v in values if type(v) is bool)
    numbers = frozenset(v for v in values if type(v) in (int, float))

    # Python's True == 1 must not leak in: booleans only equal booleans.
    def test(x: Any) -> bool:
        kind = type(x)
        if kind is str:
            return x in strings
        if kind is bool:
            return x in bools
        return kind in (int, float) and x in numbers

    return _any_element(get, test)


def _ordered(get: _Getter, op: Op, bound: Scalar) -> _Predicate:
    return _any_element(get, order_test(op, bound))


_PATTERN_OPS = frozenset({Op.SEQ, Op.LIKE, Op.LIKE_NOCASE, Op.REGEX, Op.REGEX_NOCASE})


def _pattern(cmp: Comparison | Computed, src: QuerySource) -> Matcher:
    """A linear-time ``fullmatch`` of any of ``cmp``'s patterns (see :mod:`.patterns`)."""
    nocase = cmp.op in (Op.SEQ, Op.LIKE_NOCASE)
    matchers: list[Matcher] = []
    for value, pos in zip(cmp.values, cmp.value_pos, strict=True):
        text = str(value)
        if cmp.op in (Op.REGEX, Op.REGEX_NOCASE):
            nocase = cmp.op is Op.REGEX_NOCASE
            try:
                matcher = regex_matcher(text, nocase=nocase)
            except PatternError as exc:
                raise src.error(pos, f"unsupported regular expression: {exc}") from None
            matchers.append(matcher if nocase else _literals_first(text, matcher))
        else:
            matchers.append(wildcard_matcher(text.lower() if nocase else text))
    return any_of(matchers)


def _literals_first(pattern: str, matcher: Matcher) -> Matcher:
    """``matcher`` of the case-sensitive regex ``pattern``, behind a test of text every
    match holds (``str`` and ``re`` searches, far cheaper than walking the automaton a
    character at a time): of each needle set of :func:`.needles.regex_needles`, its one
    needle, and for a set of several, one of them (a search for the alternation of its
    literals, after a ``str`` search for the characters they all share)."""
    required: set[str] = set()
    several: set[frozenset[str]] = set()
    for row in regex_needles(pattern, nocase=False):
        if len(row) == 1:
            required |= row
        else:
            required |= set.intersection(*(set(needle) for needle in row))
            several.add(row)
    if not required and not several:
        return matcher
    # Longest first: the rarest text rejects soonest.
    pieces = tuple(sorted(required, key=lambda t: (-len(t), t)))
    # A search for literals alone is linear in the text (no repetition to backtrack
    # over); the longest sets last, as they cost the most per character.
    searches = tuple(
        re.compile(_needle_regex(row)).search
        for row in sorted(several, key=lambda r: (len(r), sorted(r)))
    )
    if not searches:
        return lambda text: all(p in text for p in pieces) and matcher(text)

    def test(text: str) -> bool:
        for piece in pieces:
            if piece not in text:
                return False
        for search in searches:
            if search(text) is None:
                return False
        return matcher(text)

    return test


def _needle_regex(row: frozenset[str]) -> str:
    """A regex (for ``re.search``) of any needle of ``row``: a row of character classes
    when the needles are every combination of one character per place (``[0-9]\\.[0-9]``
    for ``0.0`` .. ``9.9``), else the alternation of the needles, longest first."""
    lengths = {len(t) for t in row}
    if len(lengths) == 1:
        places = [sorted({t[i] for t in row}) for i in range(lengths.pop())]
        combinations = 1
        for chars in places:
            combinations *= len(chars)
        if combinations == len(row):
            return "".join(
                re.escape(chars[0])
                if len(chars) == 1
                else "[" + "".join(re.escape(c) for c in chars) + "]"
                for chars in places
            )
    return "|".join(re.escape(t) for t in sorted(row, key=lambda t: (-len(t), t)))
