"""The syntax tree of a parsed EQL query: frozen values, no behaviour.

Every node keeps ``pos``, its offset in the query text, so later stages (the
evaluator compiling a regex, for instance) can raise errors that point at it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = [
    "And",
    "BoolConst",
    "Comparison",
    "Expr",
    "Field",
    "Length",
    "Not",
    "Op",
    "Or",
    "Query",
    "Scalar",
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


Expr = Comparison | BoolConst | Not | And | Or


@dataclass(frozen=True, slots=True)
class Query:
    """``<category> where <condition>``."""

    category: str
    condition: Expr
