"""Recursive-descent parser for the ``<category> where <condition>`` EQL subset.

Grammar (precedence: ``not`` binds tighter than ``and``, which binds tighter than ``or``)::

    query      := category "where" or_expr EOF
    category   := IDENT | STRING
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | primary
    primary    := "(" or_expr ")" | "true" | "false" | comparison
    comparison := operand ( ("==" | "!=" | "<" | "<=" | ">" | ">=") literal
                          | "not"? ("in" | "in~") list
                          | (":" | "like" | "like~" | "regex" | "regex~") (literal | list) )
    operand    := "?"? field | "length" "(" "?"? field ")"
    field      := IDENT ("." IDENT)*
    list       := "(" literal ("," literal)* ")"
    literal    := STRING | "-"? NUMBER | "true" | "false" | "null"

As in Elasticsearch, a comparison always has a field on the left and constants on the
right: there are no field-to-field comparisons.

Limits (rule files are input too, and a SIGHUP must never kill the daemon): a condition
nests at most :data:`MAX_NESTING` levels of parentheses and ``not``; an integer fits in
64 bits (Elasticsearch's ``long``) and a decimal number in a double. Beyond them the error
names the token, as every other error does.
"""

from __future__ import annotations

import re

from kexecwatch.core.rule.ast import (
    ORDER_OPS,
    STRING_OPS,
    And,
    BoolConst,
    Comparison,
    Expr,
    Field,
    Length,
    Not,
    Op,
    Or,
    Query,
    Scalar,
)
from kexecwatch.core.rule.lexer import QuerySource, Token, TokenKind, tokenize
from kexecwatch.errors import RuleError

__all__ = ["MAX_NESTING", "parse_query"]

#: The deepest a condition may nest parentheses and ``not`` (counted together). Real
#: rules nest a few levels; the parser recurses once per level.
MAX_NESTING = 100
_LONG_MAX = 2**63 - 1

_KEYWORDS = frozenset(
    {
        "and",
        "or",
        "not",
        "where",
        "in",
        "in~",
        "like",
        "like~",
        "regex",
        "regex~",
        "true",
        "false",
        "null",
    }
)
_UNSUPPORTED_QUERIES = frozenset({"sequence", "sample", "join"})
_UNSUPPORTED_START = re.compile(r"\s*(sequence|sample|join)\b")
_FUNCTIONS = ("length",)
_SINGLE_OPS = {"==": Op.EQ, "!=": Op.NE, "<": Op.LT, "<=": Op.LE, ">": Op.GT, ">=": Op.GE}
_PATTERN_OPS = {
    ":": Op.SEQ,
    "like": Op.LIKE,
    "like~": Op.LIKE_NOCASE,
    "regex": Op.REGEX,
    "regex~": Op.REGEX_NOCASE,
}


def parse_query(src: QuerySource) -> Query:
    """Parse ``src.text`` into a :class:`Query`.

    Raises:
        RuleError: with the line, column, source line and a caret of the first problem.
    """
    return _Parser(src).query()


class _Parser:
    def __init__(self, src: QuerySource) -> None:
        self.src = src
        try:
            self.tokens = tokenize(src)
        except RuleError:
            # "sequence [...]" fails in the lexer at '['; name the real problem instead.
            m = _UNSUPPORTED_START.match(src.text)
            if m:
                raise src.error(
                    m.start(1),
                    f"{m.group(1)} queries are not supported; only '<category> where <condition>'",
                ) from None
            raise
        self.i = 0
        self.depth = 0

    # -- token helpers -------------------------------------------------------------

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind is not TokenKind.EOF:
            self.i += 1
        return tok

    def is_word(self, word: str) -> bool:
        return self.tok.kind is TokenKind.IDENT and self.tok.value == word

    def is_op(self, op: str) -> bool:
        return self.tok.kind is TokenKind.OP and self.tok.value == op

    def expect(self, kind: TokenKind, what: str) -> Token:
        if self.tok.kind is not kind:
            raise self.unexpected(what)
        return self.advance()

    def unexpected(self, what: str) -> RuleError:
        tok = self.tok
        found = "end of query" if tok.kind is TokenKind.EOF else repr(self.src.text[tok.pos])
        if tok.kind in (TokenKind.IDENT, TokenKind.NUMBER, TokenKind.OP):
            found = repr(str(tok.value))
        elif tok.kind is TokenKind.STRING:
            found = "a string"
        return self.src.error(tok.pos, f"expected {what}, found {found}")

    # -- grammar -------------------------------------------------------------------

    def query(self) -> Query:
        tok = self.tok
        if tok.kind is TokenKind.IDENT and tok.value in _UNSUPPORTED_QUERIES:
            raise self.src.error(
                tok.pos,
                f"{tok.value} queries are not supported; only '<category> where <condition>'",
            )
        if tok.kind is TokenKind.STRING or (
            tok.kind is TokenKind.IDENT and tok.value not in _KEYWORDS
        ):
            category = str(self.advance().value)
        else:
            raise self.unexpected("an event category such as 'process' or 'any'")
        if not self.is_word("where"):
            raise self.unexpected("'where'")
        self.advance()
        condition = self.or_expr()
        if self.tok.kind is not TokenKind.EOF:
            raise self.unexpected("'and', 'or' or the end of the query")
        return Query(category, condition)

    def or_expr(self) -> Expr:
        pos = self.tok.pos
        items = [self.and_expr()]
        while self.is_word("or"):
            self.advance()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Or(_flatten(items, Or), pos)

    def and_expr(self) -> Expr:
        pos = self.tok.pos
        items = [self.not_expr()]
        while self.is_word("and"):
            self.advance()
            items.append(self.not_expr())
        return items[0] if len(items) == 1 else And(_flatten(items, And), pos)

    def nest(self, pos: int) -> None:
        """Enter one level of parentheses or ``not`` at ``pos``; refuse past the limit."""
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.src.error(
                pos,
                f"the condition is nested more than {MAX_NESTING} levels deep "
                "(parentheses and 'not' together)",
            )

    def not_expr(self) -> Expr:
        if self.is_word("not"):
            pos = self.advance().pos
            self.nest(pos)
            inner = self.not_expr()
            self.depth -= 1
            return Not(inner, pos)
        return self.primary()

    def primary(self) -> Expr:
        tok = self.tok
        if tok.kind is TokenKind.LPAREN:
            self.nest(tok.pos)
            self.advance()
            inner = self.or_expr()
            self.expect(TokenKind.RPAREN, "')'")
            self.depth -= 1
            return inner
        if tok.kind is TokenKind.IDENT and tok.value in ("true", "false"):
            self.advance()
            return BoolConst(tok.value == "true", tok.pos)
        return self.comparison()

    def comparison(self) -> Expr:
        left = self.operand()
        tok = self.tok
        if tok.kind is TokenKind.OP and tok.value in _SINGLE_OPS:
            self.advance()
            op = _SINGLE_OPS[str(tok.value)]
            value, vpos = self.literal()
            return self.checked(Comparison(op, left, (value,), (vpos,), tok.pos))
        negate = self.is_word("not")
        if negate:
            self.advance()
            if not (self.is_word("in") or self.is_word("in~")):
                raise self.unexpected("'in' or 'in~' after 'not'")
        if self.is_word("in") or self.is_word("in~"):
            op = Op.IN if self.advance().value == "in" else Op.IN_NOCASE
            values, positions = self.literal_list()
            cmp = self.checked(Comparison(op, left, values, positions, tok.pos))
            return Not(cmp, tok.pos) if negate else cmp
        if (tok.kind is TokenKind.OP or tok.kind is TokenKind.IDENT) and tok.value in _PATTERN_OPS:
            self.advance()
            op = _PATTERN_OPS[str(tok.value)]
            if self.tok.kind is TokenKind.LPAREN:
                values, positions = self.literal_list()
            else:
                value, vpos = self.literal()
                values, positions = (value,), (vpos,)
            return self.checked(Comparison(op, left, values, positions, tok.pos))
        raise self.unexpected(
            "a comparison operator (==, !=, <, <=, >, >=, :, in, in~, like, like~, regex, regex~)"
        )

    def operand(self) -> Field | Length:
        tok = self.tok
        nxt = self.tokens[self.i + 1] if tok.kind is not TokenKind.EOF else tok
        if tok.kind is TokenKind.IDENT and nxt.kind is TokenKind.LPAREN:
            name = str(tok.value)
            if name not in _FUNCTIONS:
                raise self.src.error(
                    tok.pos, f"unknown function {name!r}; supported: {', '.join(_FUNCTIONS)}"
                )
            self.advance()
            self.advance()
            field = self.field()
            self.expect(TokenKind.RPAREN, "')' after the function argument")
            return Length(field, tok.pos)
        return self.field()

    def field(self) -> Field:
        pos = self.tok.pos
        optional = self.tok.kind is TokenKind.QMARK
        if optional:
            self.advance()
        if self.tok.kind is not TokenKind.IDENT or self.tok.value in _KEYWORDS:
            raise self.unexpected("a field name")
        parts = [str(self.advance().value)]
        while self.is_op("."):
            self.advance()
            if self.tok.kind is not TokenKind.IDENT:
                raise self.unexpected("a field name after '.'")
            parts.append(str(self.advance().value))
        return Field(tuple(parts), optional, pos)

    def literal(self) -> tuple[Scalar, int]:
        tok = self.tok
        if tok.kind is TokenKind.STRING:
            self.advance()
            return tok.value, tok.pos
        if tok.kind is TokenKind.NUMBER:
            self.advance()
            assert not isinstance(tok.value, str)
            return self.in_range(tok.value, tok.pos), tok.pos
        if tok.kind is TokenKind.OP and tok.value == "-":
            self.advance()
            number = self.expect(TokenKind.NUMBER, "a number after '-'")
            assert not isinstance(number.value, str)
            return self.in_range(-number.value, tok.pos), tok.pos
        if tok.kind is TokenKind.IDENT and tok.value in ("true", "false", "null"):
            self.advance()
            return {"true": True, "false": False, "null": None}[str(tok.value)], tok.pos
        if tok.kind in (TokenKind.IDENT, TokenKind.QMARK):
            raise self.src.error(
                tok.pos,
                "comparing a field to another field is not supported; "
                "the right-hand side must be a constant",
            )
        raise self.unexpected("a string, number, true, false or null")

    def in_range(self, value: int | float, pos: int) -> int | float:
        if type(value) is int and not -_LONG_MAX - 1 <= value <= _LONG_MAX:
            raise self.src.error(
                pos, "number out of range: integers are 64-bit, as in Elasticsearch"
            )
        return value

    def literal_list(self) -> tuple[tuple[Scalar, ...], tuple[int, ...]]:
        self.expect(TokenKind.LPAREN, "'(' to start a list")
        values: list[Scalar] = []
        positions: list[int] = []
        while True:
            value, pos = self.literal()
            values.append(value)
            positions.append(pos)
            if self.tok.kind is TokenKind.RPAREN:
                self.advance()
                return tuple(values), tuple(positions)
            self.expect(TokenKind.COMMA, "',' or ')' in the list")

    def checked(self, cmp: Comparison) -> Comparison:
        """Type rules Elasticsearch enforces at query time, enforced here at compile time."""
        for value, pos in zip(cmp.values, cmp.value_pos, strict=True):
            if cmp.op in STRING_OPS and not isinstance(value, str):
                raise self.src.error(pos, f"'{cmp.op.value}' compares strings only")
            if value is None and cmp.op not in (Op.EQ, Op.NE):
                raise self.src.error(pos, "null can only be compared with '==' or '!='")
            if cmp.op in ORDER_OPS and isinstance(value, bool):
                raise self.src.error(pos, f"'{cmp.op.value}' cannot order booleans")
            if isinstance(cmp.left, Length) and (
                isinstance(value, bool | str) or cmp.op in STRING_OPS
            ):
                raise self.src.error(pos, "length() returns a number; compare it with a number")
        return cmp


def _flatten(items: list[Expr], kind: type[And] | type[Or]) -> tuple[Expr, ...]:
    out: list[Expr] = []
    for item in items:
        out.extend(item.operands if isinstance(item, kind) else (item,))
    return tuple(out)
