"""A parsed EQL statement as plain JSON data, and back: what the rule cache keeps.

Theory of operation: parsing a query (tokenizer and recursive-descent parser) is about
half of what loading a rule costs, and its result, the syntax tree of
:mod:`kexecwatch.core.detect.rule.ast`, is plain frozen values. :func:`to_data` writes a
tree as nested JSON lists (a node is ``[class name, field, field, ...]`` in the class's
field order; a tuple is a list; an :class:`~.ast.Op` is its spelling; scalars are
themselves), and :func:`from_data` rebuilds an equal tree, checking every value against
the node's field kinds in :data:`_FIELDS`, so a damaged entry is refused
(:class:`ValueError`) rather than turned into a tree the compiler never sees from the
parser. Compiling stays a step of every load: only the parse is kept.

The rule cache keys these entries by the query text and a fingerprint of the parser's
source code, so a changed parser can never be served an old tree; the tests compare the
rebuilt tree with a fresh parse, field by field and by ``repr`` (which tells ``1``,
``1.0`` and ``True`` apart), for every built-in and snapshot rule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kexecwatch.core.detect.rule import ast
from kexecwatch.core.detect.rule.ast import Statement

__all__ = ["from_data", "to_data"]

# Field kinds: "node:A|B" (a node of one of those classes), "nodes:A|B" (a tuple of them),
# "opt:A|B" (such a node or None), "str", "strs", "int", "ints", "opt-int", "bool",
# "scalar", "scalars", "op".
_VALUE = "Field|Length|Literal|Call|Arith|Negate"
_EXPR = "Comparison|Computed|CallCondition|BoolConst|Not|And|Or"
_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "Field": (("path", "strs"), ("optional", "bool"), ("pos", "int")),
    "Length": (("field", "node:Field"), ("pos", "int")),
    "Literal": (("value", "scalar"), ("pos", "int")),
    "Call": (("name", "str"), ("args", f"nodes:{_VALUE}"), ("nocase", "bool"), ("pos", "int")),
    "Arith": (
        ("op", "str"),
        ("left", f"node:{_VALUE}"),
        ("right", f"node:{_VALUE}"),
        ("pos", "int"),
    ),
    "Negate": (("operand", f"node:{_VALUE}"), ("pos", "int")),
    "Comparison": (
        ("op", "op"),
        ("left", "node:Field|Length"),
        ("values", "scalars"),
        ("value_pos", "ints"),
        ("pos", "int"),
    ),
    "BoolConst": (("value", "bool"), ("pos", "int")),
    "Not": (("operand", f"node:{_EXPR}"), ("pos", "int")),
    "And": (("operands", f"nodes:{_EXPR}"), ("pos", "int")),
    "Or": (("operands", f"nodes:{_EXPR}"), ("pos", "int")),
    "Computed": (
        ("op", "op"),
        ("left", f"node:{_VALUE}"),
        ("values", "scalars"),
        ("value_pos", "ints"),
        ("pos", "int"),
    ),
    "CallCondition": (("call", "node:Call"), ("pos", "int")),
    "Query": (("category", "str"), ("condition", f"node:{_EXPR}")),
    "Stage": (
        ("query", "node:Query"),
        ("keys", "nodes:Field"),
        ("runs", "int"),
        ("missing", "bool"),
        ("pos", "int"),
    ),
    "SequenceQuery": (
        ("keys", "nodes:Field"),
        ("maxspan_ms", "opt-int"),
        ("stages", "nodes:Stage"),
        ("until", "opt:Stage"),
        ("pos", "int"),
    ),
    "SampleQuery": (("keys", "nodes:Field"), ("stages", "nodes:Stage"), ("pos", "int")),
}
_STATEMENT = "node:Query|SequenceQuery|SampleQuery"
_OPS = {op.value: op for op in ast.Op}


def to_data(statement: Statement) -> list[Any]:
    """``statement`` as nested lists of JSON values (see the module's docstring)."""
    data = _encode(statement)
    assert isinstance(data, list)
    return data


def from_data(data: Any) -> Statement:
    """The statement :func:`to_data` gave ``data`` for.

    Raises:
        ValueError: ``data`` is not such a statement (a damaged cache entry).
    """
    statement: Statement = _decode(data, _STATEMENT)
    return statement


def _encode(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_encode(v) for v in value]
    if isinstance(value, ast.Op):
        return value.value
    fields = _FIELDS.get(type(value).__name__)
    if fields is None:
        return value  # a scalar
    return [type(value).__name__, *(_encode(getattr(value, name)) for name, _ in fields)]


def _is_int(value: Any) -> bool:
    return type(value) is int


def _is_scalar(value: Any) -> bool:
    return value is None or type(value) in (str, int, float, bool)


_Decoder = Callable[[Any], Any]
_CHECKS: dict[str, Callable[[Any], bool]] = {
    "str": lambda v: type(v) is str,
    "int": _is_int,
    "opt-int": lambda v: v is None or type(v) is int,
    "bool": lambda v: type(v) is bool,
    "scalar": _is_scalar,
}
_TUPLES = {"strs": "str", "ints": "int", "scalars": "scalar"}


def _plain(kind: str) -> _Decoder:
    check = _CHECKS[kind]

    def decode(data: Any) -> Any:
        if not check(data):
            raise ValueError(f"not a {kind}: {data!r}")
        return data

    return decode


def _plain_tuple(kind: str) -> _Decoder:
    check = _CHECKS[kind]

    def decode(data: Any) -> Any:
        if type(data) is not list or not all(map(check, data)):
            raise ValueError(f"not a list of {kind}: {data!r}")
        return tuple(data)

    return decode


def _op(data: Any) -> ast.Op:
    op = _OPS.get(data) if type(data) is str else None
    if op is None:
        raise ValueError(f"not an operator: {data!r}")
    return op


def _node(classes: str) -> _Decoder:
    allowed = frozenset(classes.split("|"))

    def decode(data: Any) -> Any:
        if type(data) is not list or not data or data[0] not in allowed:
            raise ValueError(f"not one of {classes}: {data!r:.60}")
        node, fields = _SHAPES[data[0]]
        if len(data) != len(fields) + 1:
            raise ValueError(f"{data[0]} with {len(data) - 1} fields, not {len(fields)}")
        return node(*[field(v) for field, v in zip(fields, data[1:], strict=True)])

    return decode


def _many(one: _Decoder) -> _Decoder:
    def decode(data: Any) -> Any:
        if type(data) is not list:
            raise ValueError(f"not a list: {data!r:.60}")
        return tuple([one(v) for v in data])

    return decode


def _optional(one: _Decoder) -> _Decoder:
    return lambda data: None if data is None else one(data)


def _build() -> dict[str, _Decoder]:
    """A decoder for each field kind of :data:`_FIELDS` (and the statement)."""
    decoders = {kind: _plain(kind) for kind in _CHECKS}
    decoders.update({kind: _plain_tuple(item) for kind, item in _TUPLES.items()})
    decoders["op"] = _op
    kinds = {kind for fields in _FIELDS.values() for _, kind in fields} | {_STATEMENT}
    for kind in sorted(kinds - decoders.keys()):
        shape, _, classes = kind.partition(":")
        one = decoders.setdefault(f"node:{classes}", _node(classes))
        if shape == "nodes":
            decoders[kind] = _many(one)
        elif shape == "opt":
            decoders[kind] = _optional(one)
    return decoders


_DECODERS = _build()
#: Each node class and its fields' decoders, by class name.
_SHAPES = {
    name: (getattr(ast, name), tuple(_DECODERS[kind] for _, kind in fields))
    for name, fields in _FIELDS.items()
}


def _decode(data: Any, kind: str) -> Any:
    return _DECODERS[kind](data)
