"""The syntax tree of a parsed EQL query: frozen values, no behaviour.

Every node keeps ``pos``, its offset in the query text, so later stages (the
evaluator compiling a regex, for instance) can raise errors that point at it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

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


@dataclass(frozen=True, slots=True)
class Field:
    """A dotted field path such as ``process.parent.name``; ``optional`` for ``?field``."""

    path: tuple[str, ...]
    optional: bool
    pos: int

    @property
    def name(self) -> str:
        """The dotted name, without the ``?``."""
        return ".".join(self.path)


@dataclass(frozen=True, slots=True)
class Length:
    """``length(field)``: the character length of each string value of ``field``."""

    field: Field
    pos: int


@dataclass(frozen=True, slots=True)
class Literal:
    """A constant used as a function argument or an arithmetic operand."""

    value: Scalar
    pos: int


@dataclass(frozen=True, slots=True)
class Call:
    """A function call such as ``startsWith~(process.name, "ba")``.

    ``name`` is the canonical spelling (``startsWith``); ``nocase`` is the ``~`` form.
    """

    name: str
    args: tuple[Value, ...]
    nocase: bool
    pos: int


@dataclass(frozen=True, slots=True)
class Arith:
    """``left <op> right`` with ``op`` one of ``+ - * / %``."""

    op: str
    left: Value
    right: Value
    pos: int


@dataclass(frozen=True, slots=True)
class Negate:
    """``-operand`` for an operand that is not a number literal."""

    operand: Value
    pos: int


#: Anything that evaluates to a value: a field, a constant, a function call, arithmetic.
Value = Field | Length | Literal | Call | Arith | Negate


@dataclass(frozen=True, slots=True)
class Comparison:
    """``left <op> value`` or ``left <op> (value, ...)``; one-element tuples for single values.

    ``value_pos`` holds each value's offset, for errors about a particular value.
    """

    op: Op
    left: Field | Length
    values: tuple[Scalar, ...]
    value_pos: tuple[int, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class BoolConst:
    """``true`` or ``false`` used as a whole condition (``any where true``)."""

    value: bool
    pos: int


@dataclass(frozen=True, slots=True)
class Not:
    """``not <expr>``; also what ``x not in (...)`` parses to."""

    operand: Expr
    pos: int


@dataclass(frozen=True, slots=True)
class And:
    """``a and b and ...``, flattened."""

    operands: tuple[Expr, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class Or:
    """``a or b or ...``, flattened."""

    operands: tuple[Expr, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class Computed:
    """``<computed value> <op> constants``: the left side is a function call or
    arithmetic, evaluated as an Elasticsearch script is (a null never matches)."""

    op: Op
    left: Value
    values: tuple[Scalar, ...]
    value_pos: tuple[int, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class CallCondition:
    """A function returning a boolean used as a condition: ``cidrMatch(source.ip, ...)``."""

    call: Call
    pos: int


Expr = Comparison | Computed | CallCondition | BoolConst | Not | And | Or


@dataclass(frozen=True, slots=True)
class Query:
    """``<category> where <condition>``."""

    category: str
    condition: Expr


@dataclass(frozen=True, slots=True)
class Stage:
    """One ``[query]`` of a sequence or sample.

    Attributes:
        query: the bracketed query.
        keys: its own ``by`` join keys (after the shared ones).
        runs: ``with runs=N``: the stage repeated N times.
        missing: ``![query]``: no such event may occur there.
        pos: offset of the ``[`` (or ``!``).
    """

    query: Query
    keys: tuple[Field, ...]
    runs: int
    missing: bool
    pos: int


@dataclass(frozen=True, slots=True)
class SequenceQuery:
    """``sequence [by keys] [with maxspan=D] stage stage... [until stage]``."""

    keys: tuple[Field, ...]
    maxspan_ms: int | None
    stages: tuple[Stage, ...]
    until: Stage | None
    pos: int


@dataclass(frozen=True, slots=True)
class SampleQuery:
    """``sample [by keys] stage stage...``: events sharing the keys, in any order."""

    keys: tuple[Field, ...]
    stages: tuple[Stage, ...]
    pos: int


#: What a rule's query text parses to.
Statement = Query | SequenceQuery | SampleQuery
