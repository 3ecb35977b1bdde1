"""The syntax tree of a parsed EQL query: frozen values, no behaviour.

Every node keeps ``pos``, its offset in the query text, so later stages (the
evaluator compiling a regex, for instance) can raise errors that point at it.

The nodes behave as frozen dataclasses with slots would (equality and hash by type and
fields, the same ``repr``, assignment refused, copy and pickle), written out on
:class:`~kexecwatch.core.text.frozen.Frozen`: ``@dataclass`` compiles each class's methods
from source when the module is imported, and for these 17 classes that was about 8% of
every replay's start-up.
"""

from __future__ import annotations

from enum import Enum

from kexecwatch.core.text.frozen import Frozen, set_field

__all__ = [
    "And",
    "Arith",
    "BoolConst",
    "Call",
    "CallCondition",
    "Comparison",
    "Computed",
    "Expr",
    "Field",
    "Length",
    "Literal",
    "Negate",
    "Not",
    "Op",
    "Or",
    "Query",
    "SampleQuery",
    "Scalar",
    "SequenceQuery",
    "Stage",
    "Statement",
    "Value",
]

#: A literal value in a query: string, number, boolean, or ``None`` for ``null``.
Scalar = str | int | float | bool | None


class Op(Enum):
    """Comparison operators, spelled as in EQL."""

    EQ = "=="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    IN = "in"
    IN_NOCASE = "in~"
    SEQ = ":"
    LIKE = "like"
    LIKE_NOCASE = "like~"
    REGEX = "regex"
    REGEX_NOCASE = "regex~"


#: Operators that only compare strings.
STRING_OPS = frozenset({Op.IN_NOCASE, Op.SEQ, Op.LIKE, Op.LIKE_NOCASE, Op.REGEX, Op.REGEX_NOCASE})
#: Operators that order values.
ORDER_OPS = frozenset({Op.LT, Op.LE, Op.GT, Op.GE})


_set = set_field


class _Node(Frozen):
    """A node of the tree: a frozen value (:class:`~kexecwatch.core.text.frozen.Frozen`)."""

    __slots__ = ()


class Field(_Node):
    """A dotted field path such as ``process.parent.name``; ``optional`` for ``?field``."""

    __slots__ = _fields = ("path", "optional", "pos")

    path: tuple[str, ...]
    optional: bool
    pos: int

    def __init__(self, path: tuple[str, ...], optional: bool, pos: int) -> None:
        _set(self, "path", path)
        _set(self, "optional", optional)
        _set(self, "pos", pos)

    @property
    def name(self) -> str:
        """The dotted name, without the ``?``."""
        return ".".join(self.path)


class Length(_Node):
    """``length(field)``: the character length of each string value of ``field``."""

    __slots__ = _fields = ("field", "pos")

    field: Field
    pos: int

    def __init__(self, field: Field, pos: int) -> None:
        _set(self, "field", field)
        _set(self, "pos", pos)


class Literal(_Node):
    """A constant used as a function argument or an arithmetic operand."""

    __slots__ = _fields = ("value", "pos")

    value: Scalar
    pos: int

    def __init__(self, value: Scalar, pos: int) -> None:
        _set(self, "value", value)
        _set(self, "pos", pos)


class Call(_Node):
    """A function call such as ``startsWith~(process.name, "ba")``.

    ``name`` is the canonical spelling (``startsWith``); ``nocase`` is the ``~`` form.
    """

    __slots__ = _fields = ("name", "args", "nocase", "pos")

    name: str
    args: tuple[Value, ...]
    nocase: bool
    pos: int

    def __init__(self, name: str, args: tuple[Value, ...], nocase: bool, pos: int) -> None:
        _set(self, "name", name)
        _set(self, "args", args)
        _set(self, "nocase", nocase)
        _set(self, "pos", pos)


class Arith(_Node):
    """``left <op> right`` with ``op`` one of ``+ - * / %``."""

    __slots__ = _fields = ("op", "left", "right", "pos")

    op: str
    left: Value
    right: Value
    pos: int

    def __init__(self, op: str, left: Value, right: Value, pos: int) -> None:
        _set(self, "op", op)
        _set(self, "left", left)
        _set(self, "right", right)
        _set(self, "pos", pos)


class Negate(_Node):
    """``-operand`` for an operand that is not a number literal."""

    __slots__ = _fields = ("operand", "pos")

    operand: Value
    pos: int

    def __init__(self, operand: Value, pos: int) -> None:
        _set(self, "operand", operand)
        _set(self, "pos", pos)


#: Anything that evaluates to a value: a field, a constant, a function call, arithmetic.
Value = Field | Length | Literal | Call | Arith | Negate


class Comparison(_Node):
    """``left <op> value`` or ``left <op> (value, ...)``; one-element tuples for single values.

    ``value_pos`` holds each value's offset, for errors about a particular value.
    """

    __slots__ = _fields = ("op", "left", "values", "value_pos", "pos")

    op: Op
    left: Field | Length
    values: tuple[Scalar, ...]
    value_pos: tuple[int, ...]
    pos: int

    def __init__(
        self,
        op: Op,
        left: Field | Length,
        values: tuple[Scalar, ...],
        value_pos: tuple[int, ...],
        pos: int,
    ) -> None:
        _set(self, "op", op)
        _set(self, "left", left)
        _set(self, "values", values)
        _set(self, "value_pos", value_pos)
        _set(self, "pos", pos)


class BoolConst(_Node):
    """``true`` or ``false`` used as a whole condition (``any where true``)."""

    __slots__ = _fields = ("value", "pos")

    value: bool
    pos: int

    def __init__(self, value: bool, pos: int) -> None:
        _set(self, "value", value)
        _set(self, "pos", pos)


class Not(_Node):
    """``not <expr>``; also what ``x not in (...)`` parses to."""

    __slots__ = _fields = ("operand", "pos")

    operand: Expr
    pos: int

    def __init__(self, operand: Expr, pos: int) -> None:
        _set(self, "operand", operand)
        _set(self, "pos", pos)


class And(_Node):
    """``a and b and ...``, flattened."""

    __slots__ = _fields = ("operands", "pos")

    operands: tuple[Expr, ...]
    pos: int

    def __init__(self, operands: tuple[Expr, ...], pos: int) -> None:
        _set(self, "operands", operands)
        _set(self, "pos", pos)


class Or(_Node):
    """``a or b or ...``, flattened."""

    __slots__ = _fields = ("operands", "pos")

    operands: tuple[Expr, ...]
    pos: int

    def __init__(self, operands: tuple[Expr, ...], pos: int) -> None:
        _set(self, "operands", operands)
        _set(self, "pos", pos)


class Computed(_Node):
    """``<computed value> <op> constants``: the left side is a function call or
    arithmetic, evaluated as an Elasticsearch script is (a null never matches)."""

    __slots__ = _fields = ("op", "left", "values", "value_pos", "pos")

    op: Op
    left: Value
    values: tuple[Scalar, ...]
    value_pos: tuple[int, ...]
    pos: int

    def __init__(
        self, op: Op, left: Value, values: tuple[Scalar, ...], value_pos: tuple[int, ...], pos: int
    ) -> None:
        _set(self, "op", op)
        _set(self, "left", left)
        _set(self, "values", values)
        _set(self, "value_pos", value_pos)
        _set(self, "pos", pos)


class CallCondition(_Node):
    """A function returning a boolean used as a condition: ``cidrMatch(source.ip, ...)``."""

    __slots__ = _fields = ("call", "pos")

    call: Call
    pos: int

    def __init__(self, call: Call, pos: int) -> None:
        _set(self, "call", call)
        _set(self, "pos", pos)


Expr = Comparison | Computed | CallCondition | BoolConst | Not | And | Or


class Query(_Node):
    """``<category> where <condition>``."""

    __slots__ = _fields = ("category", "condition")

    category: str
    condition: Expr

    def __init__(self, category: str, condition: Expr) -> None:
        _set(self, "category", category)
        _set(self, "condition", condition)


class Stage(_Node):
    """One ``[query]`` of a sequence or sample.

    Attributes:
        query: the bracketed query.
        keys: its own ``by`` join keys (after the shared ones).
        runs: ``with runs=N``: the stage repeated N times.
        missing: ``![query]``: no such event may occur there.
        pos: offset of the ``[`` (or ``!``).
    """

    __slots__ = _fields = ("query", "keys", "runs", "missing", "pos")

    query: Query
    keys: tuple[Field, ...]
    runs: int
    missing: bool
    pos: int

    def __init__(
        self, query: Query, keys: tuple[Field, ...], runs: int, missing: bool, pos: int
    ) -> None:
        _set(self, "query", query)
        _set(self, "keys", keys)
        _set(self, "runs", runs)
        _set(self, "missing", missing)
        _set(self, "pos", pos)


class SequenceQuery(_Node):
    """``sequence [by keys] [with maxspan=D] stage stage... [until stage]``."""

    __slots__ = _fields = ("keys", "maxspan_ms", "stages", "until", "pos")

    keys: tuple[Field, ...]
    maxspan_ms: int | None
    stages: tuple[Stage, ...]
    until: Stage | None
    pos: int

    def __init__(
        self,
        keys: tuple[Field, ...],
        maxspan_ms: int | None,
        stages: tuple[Stage, ...],
        until: Stage | None,
        pos: int,
    ) -> None:
        _set(self, "keys", keys)
        _set(self, "maxspan_ms", maxspan_ms)
        _set(self, "stages", stages)
        _set(self, "until", until)
        _set(self, "pos", pos)


class SampleQuery(_Node):
    """``sample [by keys] stage stage...``: events sharing the keys, in any order."""

    __slots__ = _fields = ("keys", "stages", "pos")

    keys: tuple[Field, ...]
    stages: tuple[Stage, ...]
    pos: int

    def __init__(self, keys: tuple[Field, ...], stages: tuple[Stage, ...], pos: int) -> None:
        _set(self, "keys", keys)
        _set(self, "stages", stages)
        _set(self, "pos", pos)


#: What a rule's query text parses to.
Statement = Query | SequenceQuery | SampleQuery
