"""Evaluate computed values (functions, arithmetic) and the conditions built on them.

Theory of operation. Elasticsearch runs a condition on a computed value as a script:
the value is computed, then compared; a null anywhere makes the value null, and a null
value satisfies no condition (``cidrMatch(source.ip, ...)`` with no ``source.ip`` is
false, and so is ``length(x) + 1 > 0``). A ``not`` in front is plain negation of that
two-valued result, as for every other condition (:mod:`.evaluate`).

A value compiles to a function from a document to its *candidates*: the non-null values
it may take. A field has one candidate per element (arrays are multi-valued fields); a
function or an operator maps over the candidates of its first operand, taking the first
candidate of the others. A condition holds when any candidate satisfies it, as
Elasticsearch's queries hold when any element of a field does. So the cost stays linear
in the size of the document, whatever the nesting.

Comparisons follow the kinds: strings compare with strings, numbers with numbers (ints
and floats alike), booleans with booleans; values of different kinds are never equal and
never ordered. ``!=`` on a computed value is "has a value and it is not equal".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kexecwatch.core.detect.rule.ast import (
    Arith,
    Call,
    CallCondition,
    Computed,
    Field,
    Length,
    Literal,
    Negate,
    Op,
    Scalar,
    Value,
)
from kexecwatch.core.detect.rule.functions import apply, lookup
from kexecwatch.core.detect.rule.patterns import Matcher

__all__ = ["candidates", "compile_call_condition", "compile_computed", "order_test"]

Document = Any
_Candidates = Callable[[Document], list[Any]]
_Predicate = Callable[[Document], bool]


def candidates(
    value: Value, getter: Callable[[tuple[str, ...]], Callable[[Document], Any]]
) -> _Candidates:
    """Compile ``value`` to ``doc -> [non-null values]``; ``getter(path)`` reads a field."""
    if isinstance(value, Literal):
        constant = [] if value.value is None else [value.value]
        return lambda doc: constant
    if isinstance(value, Field):
        get = getter(value.path)
        return lambda doc: list(_elements(get(doc)))
    if isinstance(value, Length):
        get = getter(value.field.path)
        return lambda doc: [len(v) for v in _elements(get(doc)) if type(v) is str]
    if isinstance(value, Negate):
        inner = candidates(value.operand, getter)
        return lambda doc: [-v for v in inner(doc) if type(v) in (int, float)]
    if isinstance(value, Arith):
        name = {"+": "add", "-": "subtract", "*": "multiply", "/": "divide", "%": "modulo"}
        call = Call(name[value.op], (value.left, value.right), False, value.pos)
        return _call(call, getter)
    return _call(value, getter)


def _call(
    call: Call, getter: Callable[[tuple[str, ...]], Callable[[Document], Any]]
) -> _Candidates:
    signature = lookup(call.name)
    assert signature is not None  # the parser only makes calls of known functions
    args = [candidates(arg, getter) for arg in call.args]
    nocase = call.nocase
    if not args:
        return lambda doc: []
    first, rest = args[0], args[1:]

    def run(doc: Document) -> list[Any]:
        others = [next(iter(a(doc)), None) for a in rest]
        out = []
        for value in first(doc):
            result = apply(signature, nocase, (value, *others))
            if result is not None:
                out.append(result)
        return out

    return run


def _elements(value: Any) -> list[Any]:
    if type(value) is list:
        out: list[Any] = []
        for item in value:
            out.extend(_elements(item))
        return out
    # Anything but a JSON scalar (null, an object, evaluate.py's missing marker) is no value.
    return [value] if _scalar(value) else []


def _scalar(value: Any) -> bool:
    return type(value) in (str, int, float, bool)


def compile_call_condition(
    cond: CallCondition, getter: Callable[[tuple[str, ...]], Callable[[Document], Any]]
) -> _Predicate:
    """``cidrMatch(...)`` and other boolean functions as a condition: any candidate true."""
    values = candidates(cond.call, getter)
    return lambda doc: any(v is True for v in values(doc))


def compile_computed(
    cmp: Computed,
    getter: Callable[[tuple[str, ...]], Callable[[Document], Any]],
    pattern: Callable[[], Matcher] | None,
) -> _Predicate:
    """``<computed> <op> constants``; ``pattern()`` builds the matcher of ``:``/like/regex."""
    values = candidates(cmp.left, getter)
    op = cmp.op
    consts = cmp.values
    if op in (Op.EQ, Op.NE) and consts == (None,):
        # Elasticsearch's script: "value == null" on a computed value.
        def present(doc: Document) -> bool:
            return bool(values(doc))

        return present if op is Op.NE else lambda doc: not present(doc)
    if op in (Op.EQ, Op.IN, Op.NE):
        wanted = [c for c in consts if c is not None]

        def equal(x: Any) -> bool:
            return any(_same(x, c) for c in wanted)

        if op is Op.NE:

            def not_equal(doc: Document) -> bool:
                found = values(doc)
                return bool(found) and not any(equal(x) for x in found)

            return not_equal
        return lambda doc: any(equal(x) for x in values(doc))
    if op is Op.IN_NOCASE:
        lowered = frozenset(str(c).lower() for c in consts)
        return lambda doc: any(type(x) is str and x.lower() in lowered for x in values(doc))
    if op in (Op.LT, Op.LE, Op.GT, Op.GE):
        bound = consts[0]
        test = order_test(op, bound)
        return lambda doc: any(test(x) for x in values(doc))
    assert pattern is not None
    match = pattern()
    if op in (Op.SEQ, Op.LIKE_NOCASE):
        return lambda doc: any(type(x) is str and match(x.lower()) for x in values(doc))
    return lambda doc: any(type(x) is str and match(x) for x in values(doc))


def _same(x: Any, c: Scalar) -> bool:
    kinds = (type(x), type(c))
    if str in kinds or bool in kinds:
        return kinds[0] is kinds[1] and bool(x == c)
    return bool(x == c)


def order_test(op: Op, bound: Scalar) -> Callable[[Any], bool]:
    """``x <op> bound`` for one value: numbers order with numbers, strings with strings."""
    numeric = type(bound) in (int, float)

    def comparable(x: Any) -> bool:
        return type(x) in (int, float) if numeric else type(x) is str

    compare: Callable[[Any], bool] = {
        Op.LT: lambda x: x < bound,
        Op.LE: lambda x: x <= bound,
        Op.GT: lambda x: x > bound,
        Op.GE: lambda x: x >= bound,
    }[op]
    return lambda x: comparable(x) and bool(compare(x))
