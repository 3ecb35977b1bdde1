"""Why a document did not match: the first failing top-level conjunct, in words.

Theory of operation: a rule such as ``a and b and not c`` is compiled conjunct by
conjunct (:mod:`kexecwatch.core.detect.rule.evaluate` keeps each top-level conjunct with its
predicate). :func:`explain_failure` evaluates them in query order and describes the
first one that fails, using the document's own values:

* ``not f in (...)`` / ``f not in (...)`` / ``not f == x`` that fails means the
  document was excluded by one of those values: ``excluded: f <value>``;
* ``f in (a, b, ...)`` that fails: ``f not in list`` (or ``f missing``);
* ``f == x`` that fails: ``f is <value>, not x`` (or ``f missing``);
* anything else: ``failed: <the conjunct as EQL>``.

Values come from the document, so they may hold anything; callers that show the text
on a terminal must escape it (:func:`kexecwatch.core.text.textsafe.escape_text`).

Rule 1: explaining never raises on a JSON-like document and never disagrees with
``matches``: ``explain(doc) is None`` exactly when every conjunct holds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from kexecwatch.core.detect.rule.ast import (
    And,
    Arith,
    BoolConst,
    Call,
    CallCondition,
    Comparison,
    Expr,
    Field,
    Length,
    Literal,
    Negate,
    Not,
    Op,
    Or,
    Value,
)

__all__ = ["explain_failure", "unparse", "unparse_value"]

Conjunct = tuple[Expr, Callable[[Mapping[str, Any]], bool]]

_PLAIN = re.compile(r"[A-Za-z0-9_.:/@+%=,-]+")
_MISSING: Any = object()


def explain_failure(conjuncts: Sequence[Conjunct], document: Mapping[str, Any]) -> str | None:
    """Describe the first conjunct that ``document`` fails, or ``None`` if all hold.

    Args:
        conjuncts: the top-level conjuncts in query order, each with its predicate.
        document: the ECS document the query was evaluated against.

    Returns:
        A short sentence such as ``excluded: process.parent.name kdumpctl`` or
        ``process.args not in list``; ``None`` when the document satisfies them all.
    """
    for expr, predicate in conjuncts:
        if not predicate(document):
            return _describe(expr, document)
    return None


def _describe(expr: Expr, doc: Mapping[str, Any]) -> str:
    if isinstance(expr, Not):
        return "excluded: " + _matched(expr.operand, doc)
    if isinstance(expr, BoolConst):
        return "query is always false"
    if not isinstance(expr, Comparison) or isinstance(expr.left, Length):
        return "failed: " + unparse(expr)
    name = expr.left.name
    values = list(_values(doc, expr.left.path))
    null_test = expr.values == (None,)
    if null_test and expr.op is Op.EQ:
        return f"{name} is set"
    if not values:  # a failing `f != x` always has values; `f != null` has none
        return f"{name} missing"
    if expr.op is Op.EQ:
        return f"{name} is {_shown(values)}, not {_literal(expr.values[0])}"
    if expr.op is Op.IN and len(expr.values) > 1:
        return f"{name} not in list"
    if expr.op is Op.IN:
        return f"{name} is {_shown(values)}, not {_literal(expr.values[0])}"
    if expr.op is Op.NE:
        return f"{name} is {_literal(expr.values[0])}"
    return f"{name} is {_shown(values)}: failed {unparse(expr)}"


def _matched(expr: Expr, doc: Mapping[str, Any]) -> str:
    """What made ``expr`` true (it is the operand of a failing ``not``)."""
    if isinstance(expr, Comparison) and isinstance(expr.left, Field):
        values = list(_values(doc, expr.left.path))
        if expr.values == (None,):
            return f"{expr.left.name} {'missing' if expr.op is Op.EQ else 'is set'}"
        if expr.op in (Op.EQ, Op.IN):
            wanted = set(expr.values)
            hits = [v for v in values if type(v) is str and v in wanted]
            if hits:
                return f"{expr.left.name} {_literal(hits[0])}"
        if expr.op is Op.IN_NOCASE:
            wanted_lower = {str(v).lower() for v in expr.values}
            hits = [v for v in values if type(v) is str and v.lower() in wanted_lower]
            if hits:
                return f"{expr.left.name} {_literal(hits[0])}"
        if values and expr.op not in (Op.EQ, Op.NE):
            return f"{expr.left.name} {_shown(values)} ({unparse(expr)})"
    return unparse(expr)


def _values(doc: Mapping[str, Any], path: tuple[str, ...]) -> Iterator[Any]:
    value: Any = doc
    for key in path:
        if not isinstance(value, Mapping):
            return
        value = value.get(key, _MISSING)
    yield from _flatten(value)


def _flatten(value: Any) -> Iterator[Any]:
    if isinstance(value, list):
        for item in value:
            yield from _flatten(item)
    elif value is not None and value is not _MISSING:
        yield value


def _shown(values: list[Any], limit: int = 3) -> str:
    if len(values) == 1:
        return _literal(values[0])
    head = ", ".join(_literal(v) for v in values[:limit])
    more = ", ..." if len(values) > limit else ""
    return f"[{head}{more}]"


def _literal(value: Any) -> str:
    """A value as EQL would spell it; plain words stay unquoted for readability."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if _PLAIN.fullmatch(value) else json.dumps(value, ensure_ascii=False)
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)


def _quoted(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return _literal(value)


def unparse(expr: Expr) -> str:
    """``expr`` as EQL text (normalised: ``x not in (...)`` reads ``not x in (...)``)."""
    if isinstance(expr, BoolConst):
        return "true" if expr.value else "false"
    if isinstance(expr, Not):
        inner = unparse(expr.operand)
        return f"not {inner}" if isinstance(expr.operand, Comparison) else f"not ({inner})"
    if isinstance(expr, And | Or):
        word = " and " if isinstance(expr, And) else " or "
        return word.join(
            f"({unparse(o)})" if isinstance(o, And | Or) else unparse(o) for o in expr.operands
        )
    if isinstance(expr, CallCondition):
        return unparse_value(expr.call)
    lhs = unparse_value(expr.left)
    if expr.op in (Op.IN, Op.IN_NOCASE) or len(expr.values) > 1:
        return f"{lhs} {expr.op.value} ({', '.join(_quoted(v) for v in expr.values)})"
    return f"{lhs} {expr.op.value} {_quoted(expr.values[0])}"


def unparse_value(value: Value) -> str:
    """A value (field, constant, call, arithmetic) as EQL text."""
    if isinstance(value, Field):
        return ("?" if value.optional else "") + value.name
    if isinstance(value, Length):
        return f"length({unparse_value(value.field)})"
    if isinstance(value, Literal):
        return _quoted(value.value)
    if isinstance(value, Call):
        args = ", ".join(unparse_value(a) for a in value.args)
        return f"{value.name}{'~' if value.nocase else ''}({args})"
    if isinstance(value, Arith):
        return f"{_operand(value.left)} {value.op} {_operand(value.right)}"
    assert isinstance(value, Negate)
    return f"-{_operand(value.operand)}"


def _operand(value: Value) -> str:
    # Arithmetic nested as an operand is spelled with the function it stands for, since
    # EQL parentheses group conditions, not values.
    if isinstance(value, Arith):
        name = {"+": "add", "-": "subtract", "*": "multiply", "/": "divide", "%": "modulo"}
        return f"{name[value.op]}({unparse_value(value.left)}, {unparse_value(value.right)})"
    return unparse_value(value)
