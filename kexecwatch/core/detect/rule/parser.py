"""Recursive-descent parser for Elasticsearch's EQL: single-event queries, sequences, samples.

Grammar (precedence: ``not`` binds tighter than ``and``, which binds tighter than ``or``;
``* / %`` tighter than ``+ -``)::

    statement  := query EOF | sequence EOF | sample EOF
    sequence   := "sequence" ["by" keys] ["with" "maxspan" "=" duration] stage stage*
                  ["until" "[" query "]" ["by" keys]]      (by/with in either order)
    stage      := "!"? "[" query "]" ["by" keys] ["with" "runs" "=" NUMBER]
    sample     := "sample" ["by" keys] ("[" query "]" ["by" keys])+
    query      := category "where" or_expr
    category   := IDENT | STRING
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | primary
    primary    := "(" or_expr ")" | "true" | "false" | comparison
    comparison := value ( ("==" | "!=" | "<" | "<=" | ">" | ">=") literal
                        | "not"? ("in" | "in~") list
                        | (":" | "like" | "like~" | "regex" | "regex~") (literal | list) )
                | call                                  (a function returning a boolean)
    value      := term (("+" | "-") term)*
    term       := unary (("*" | "/" | "%") unary)*
    unary      := "-" unary | call | literal | field
    call       := IDENT "~"? "(" [value ("," value)*] ")"
    field      := "?"? IDENT ("." IDENT)*
    keys       := field ("," field)*
    list       := "(" literal ("," literal)* ")"
    literal    := STRING | "-"? NUMBER | "true" | "false" | "null"
    duration   := NUMBER ("ms" | "s" | "m" | "h" | "d")

As in Elasticsearch, the right-hand side of a comparison is constants: there are no
field-to-field comparisons (functions such as ``startsWith`` take fields as arguments).
Function names are case-insensitive (``cidrmatch``); their argument and result types are
checked here (:mod:`.functions`), as Elasticsearch checks them before running a query.

Limits (rule files are input too, and a SIGHUP must never kill the daemon): a condition
nests at most :data:`MAX_NESTING` levels of parentheses, ``not``, stages and calls; an
integer fits in 64 bits (Elasticsearch's ``long``) and a decimal number in a double;
``with runs=`` is at most :data:`MAX_RUNS`. Beyond them the error names the token, as
every other error does.
"""

from __future__ import annotations

from kexecwatch.core.detect.rule.ast import (
    ORDER_OPS,
    STRING_OPS,
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
    SampleQuery,
    Scalar,
    SequenceQuery,
    Stage,
    Statement,
    Value,
)
from kexecwatch.core.detect.rule.functions import FUNCTION_NAMES, kind_of, lookup, returns
from kexecwatch.core.detect.rule.lexer import QuerySource, Token, TokenKind, tokenize
from kexecwatch.errors import RuleError

__all__ = ["MAX_NESTING", "MAX_RUNS", "parse_query", "parse_statement"]

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
_UNSUPPORTED_QUERIES = frozenset({"join"})
_SINGLE_OPS = {"==": Op.EQ, "!=": Op.NE, "<": Op.LT, "<=": Op.LE, ">": Op.GT, ">=": Op.GE}
_PATTERN_OPS = {
    ":": Op.SEQ,
    "like": Op.LIKE,
    "like~": Op.LIKE_NOCASE,
    "regex": Op.REGEX,
    "regex~": Op.REGEX_NOCASE,
}
#: The most times ``with runs=N`` may repeat a stage (Elasticsearch's own limit).
MAX_RUNS = 100
_DURATION = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_query(src: QuerySource) -> Query:
    """Parse ``src.text`` into a :class:`Query` (``<category> where <condition>``).

    Raises:
        RuleError: with the line, column, source line and a caret of the first problem;
            a sequence or sample is an error here (see :func:`parse_statement`).
    """
    parser = _Parser(src)
    tok = parser.tok
    if tok.kind is TokenKind.IDENT and tok.value in ("sequence", "sample"):
        raise src.error(tok.pos, f"a {tok.value} is not a single-event query")
    return parser.single()


def parse_statement(src: QuerySource) -> Statement:
    """Parse a whole rule query: a single-event query, a ``sequence`` or a ``sample``.

    Raises:
        RuleError: with the line, column, source line and a caret of the first problem.
    """
    parser = _Parser(src)
    tok = parser.tok
    if tok.kind is TokenKind.IDENT and tok.value == "sequence":
        return parser.sequence()
    if tok.kind is TokenKind.IDENT and tok.value == "sample":
        return parser.sample()
    return parser.single()


class _Parser:
    def __init__(self, src: QuerySource) -> None:
        self.src = src
        self.tokens = tokenize(src)
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

    def single(self) -> Query:
        query = self.query()
        if self.tok.kind is not TokenKind.EOF:
            raise self.unexpected("'and', 'or' or the end of the query")
        return query

    def query(self) -> Query:
        tok = self.tok
        if tok.kind is TokenKind.IDENT and tok.value in _UNSUPPORTED_QUERIES:
            raise self.src.error(
                tok.pos,
                f"{tok.value} queries are not supported; only single-event queries, "
                "sequence and sample",
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
        return Query(category, condition)

    # -- sequence and sample -------------------------------------------------------

    def sequence(self) -> SequenceQuery:
        pos = self.advance().pos
        keys: tuple[Field, ...] = ()
        maxspan: int | None = None
        for _ in range(2):  # "by ... with maxspan=..." in either order
            if self.is_word("by") and not keys:
                self.advance()
                keys = self.keys()
            elif self.is_word("with") and maxspan is None:
                self.advance()
                self.word("maxspan")
                self.expect_op("=")
                maxspan = self.duration()
        stages: list[Stage] = []
        until: Stage | None = None
        while self.tok.kind is TokenKind.LBRACKET or self.is_op("!"):
            stages.append(self.stage(keys, stages, runs_allowed=True))
        if self.is_word("until"):
            self.advance()
            until = self.stage(keys, stages, runs_allowed=False, missing_allowed=False)
        if self.tok.kind is not TokenKind.EOF:
            raise self.unexpected("'[' to start a stage, 'until' or the end of the query")
        self.check_stages(pos, stages, "sequence")
        missing = [s for s in stages if s.missing]
        if missing:
            if all(s.missing for s in stages):
                raise self.src.error(missing[0].pos, "a sequence needs a stage that is not missing")
            if maxspan is None:  # as Elasticsearch requires
                raise self.src.error(
                    missing[0].pos, "a sequence with a missing event needs 'with maxspan='"
                )
        return SequenceQuery(keys, maxspan, tuple(stages), until, pos)

    def sample(self) -> SampleQuery:
        pos = self.advance().pos
        keys: tuple[Field, ...] = ()
        if self.is_word("by"):
            self.advance()
            keys = self.keys()
        stages: list[Stage] = []
        while self.tok.kind is TokenKind.LBRACKET or self.is_op("!"):
            stages.append(self.stage(keys, stages, runs_allowed=False, missing_allowed=False))
        if self.tok.kind is not TokenKind.EOF:
            raise self.unexpected("'[' to start a stage or the end of the query")
        self.check_stages(pos, stages, "sample")
        return SampleQuery(keys, tuple(stages), pos)

    def check_stages(self, pos: int, stages: list[Stage], what: str) -> None:
        if sum(s.runs for s in stages) < 2:
            raise self.src.error(
                pos, f"a {what} needs at least two stages ('[...] [...]' or 'with runs=N')"
            )

    def stage(
        self,
        shared: tuple[Field, ...],
        earlier: list[Stage],
        *,
        runs_allowed: bool,
        missing_allowed: bool = True,
    ) -> Stage:
        pos = self.tok.pos
        missing = self.is_op("!")
        if missing:
            if not missing_allowed:
                raise self.src.error(pos, "a missing event ('![...]') is not allowed here")
            self.advance()
        self.expect(TokenKind.LBRACKET, "'[' to start a stage")
        self.nest(pos)
        query = self.query()
        self.expect(TokenKind.RBRACKET, "']' to end the stage")
        self.depth -= 1
        keys: tuple[Field, ...] = ()
        if self.is_word("by"):
            self.advance()
            keys = self.keys()
        if earlier and len(keys) != len(earlier[0].keys):
            raise self.src.error(
                pos,
                f"every stage needs the same number of join keys: this one has {len(keys)}, "
                f"the first has {len(earlier[0].keys)}",
            )
        runs = 1
        if self.is_word("with"):
            with_pos = self.advance().pos
            if not runs_allowed or missing:
                raise self.src.error(with_pos, "'with runs=' is not allowed here")
            self.word("runs")
            self.expect_op("=")
            tok = self.expect(TokenKind.NUMBER, "a whole number of runs")
            if type(tok.value) is not int or not 1 <= tok.value <= MAX_RUNS:
                raise self.src.error(tok.pos, f"runs must be a whole number from 1 to {MAX_RUNS}")
            runs = tok.value
        return Stage(query, keys, runs, missing, pos)

    def keys(self) -> tuple[Field, ...]:
        keys = [self.field()]
        while self.tok.kind is TokenKind.COMMA:
            self.advance()
            keys.append(self.field())
        return tuple(keys)

    def word(self, word: str) -> None:
        if not self.is_word(word):
            raise self.unexpected(f"'{word}'")
        self.advance()

    def expect_op(self, op: str) -> None:
        if not self.is_op(op):
            raise self.unexpected(f"'{op}'")
        self.advance()

    def duration(self) -> int:
        tok = self.expect(TokenKind.NUMBER, "a duration such as 30s")
        unit = self.tok
        if (
            type(tok.value) is not int
            or unit.kind is not TokenKind.IDENT
            or unit.value not in _DURATION
        ):
            raise self.src.error(
                tok.pos, "expected a duration: a whole number and one of ms, s, m, h, d (30s)"
            )
        self.advance()
        value = tok.value * _DURATION[str(unit.value)]
        if not 0 < value <= _LONG_MAX:
            raise self.src.error(tok.pos, "maxspan must be positive")
        return value

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
        left = self.value()
        tok = self.tok
        if tok.kind is TokenKind.OP and tok.value == "=":
            raise self.src.error(tok.pos, "'=' is not supported; use '==' or ':'")
        if tok.kind is TokenKind.OP and tok.value in _SINGLE_OPS:
            self.advance()
            op = _SINGLE_OPS[str(tok.value)]
            value, vpos = self.literal()
            return self.checked(left, op, (value,), (vpos,), tok.pos)
        negate = self.is_word("not")
        if negate:
            self.advance()
            if not (self.is_word("in") or self.is_word("in~")):
                raise self.unexpected("'in' or 'in~' after 'not'")
        if self.is_word("in") or self.is_word("in~"):
            op = Op.IN if self.advance().value == "in" else Op.IN_NOCASE
            values, positions = self.literal_list()
            cmp = self.checked(left, op, values, positions, tok.pos)
            return Not(cmp, tok.pos) if negate else cmp
        if (tok.kind is TokenKind.OP or tok.kind is TokenKind.IDENT) and tok.value in _PATTERN_OPS:
            self.advance()
            op = _PATTERN_OPS[str(tok.value)]
            if self.tok.kind is TokenKind.LPAREN:
                values, positions = self.literal_list()
            else:
                value, vpos = self.literal()
                values, positions = (value,), (vpos,)
            return self.checked(left, op, values, positions, tok.pos)
        if isinstance(left, Call):
            if returns(left) not in ("boolean", "any"):
                raise self.src.error(
                    left.pos, f"{left.name}() does not return a boolean; compare its result"
                )
            return CallCondition(left, left.pos)
        raise self.unexpected(
            "a comparison operator (==, !=, <, <=, >, >=, :, in, in~, like, like~, regex, regex~)"
        )

    # -- values: fields, constants, functions, arithmetic ------------------------------

    def value(self) -> Value:
        """``term (("+" | "-") term)*``."""
        left = self.term()
        while self.tok.kind is TokenKind.OP and self.tok.value in ("+", "-"):
            op = str(self.advance().value)
            left = self.arith(op, left, self.term())
        return left

    def term(self) -> Value:
        """``unary (("*" | "/" | "%") unary)*``."""
        left = self.unary()
        while self.tok.kind is TokenKind.OP and self.tok.value in ("*", "/", "%"):
            op = str(self.advance().value)
            left = self.arith(op, left, self.unary())
        return left

    def arith(self, op: str, left: Value, right: Value) -> Arith:
        for side in (left, right):
            if returns(side) not in ("number", "any"):
                raise self.src.error(side.pos, f"'{op}' needs numbers on both sides")
        return Arith(op, left, right, left.pos)

    def unary(self) -> Value:
        tok = self.tok
        if tok.kind is TokenKind.OP and tok.value == "-":
            self.advance()
            if self.tok.kind is TokenKind.NUMBER:
                number = self.advance().value
                assert not isinstance(number, str)
                return Literal(self.in_range(-number, tok.pos), tok.pos)
            operand = self.unary()
            if returns(operand) not in ("number", "any"):
                raise self.src.error(operand.pos, "'-' needs a number")
            return Negate(operand, tok.pos)
        return self.atom()

    def atom(self) -> Value:
        tok = self.tok
        nxt = self.tokens[self.i + 1] if tok.kind is not TokenKind.EOF else tok
        if tok.kind is TokenKind.IDENT and nxt.kind is TokenKind.LPAREN:
            return self.call()
        if tok.kind in (TokenKind.STRING, TokenKind.NUMBER) or (
            tok.kind is TokenKind.IDENT and tok.value in ("true", "false", "null")
        ):
            value, pos = self.literal()
            return Literal(value, pos)
        return self.field()

    def call(self) -> Value:
        tok = self.advance()
        spelled = str(tok.value)
        nocase = spelled.endswith("~")
        signature = lookup(spelled.removesuffix("~"))
        if signature is None:
            raise self.src.error(
                tok.pos, f"unknown function {spelled!r}; supported: {', '.join(FUNCTION_NAMES)}"
            )
        if nocase and not signature.nocase:
            raise self.src.error(tok.pos, f"{signature.name} has no case-insensitive '~' form")
        self.advance()  # (
        self.nest(tok.pos)
        args: list[Value] = []
        if self.tok.kind is not TokenKind.RPAREN:
            args.append(self.value())
            while self.tok.kind is TokenKind.COMMA:
                self.advance()
                args.append(self.value())
        self.expect(TokenKind.RPAREN, "')' after the function arguments")
        self.depth -= 1
        if len(args) == 1 and signature.name == "length" and isinstance(args[0], Field):
            return Length(args[0], tok.pos)
        problem = signature.check(args)
        if problem is not None:
            where, message = problem
            raise self.src.error(args[where].pos if where < len(args) else tok.pos, message)
        return Call(signature.name, tuple(args), nocase, tok.pos)

    def field(self) -> Field:
        pos = self.tok.pos
        optional = self.tok.kind is TokenKind.QMARK
        if optional:
            self.advance()
        if self.tok.kind is not TokenKind.IDENT or self.tok.value in _KEYWORDS:
            raise self.unexpected("a field name")
        parts = [self.name_part()]
        while self.is_op("."):
            self.advance()
            if self.tok.kind is not TokenKind.IDENT:
                raise self.unexpected("a field name after '.'")
            parts.append(self.name_part())
        return Field(tuple(parts), optional, pos)

    def name_part(self) -> str:
        tok = self.advance()
        word = str(tok.value)
        if word.endswith("~"):
            raise self.src.error(
                tok.pos + len(word) - 1, "'~' only follows in, like, regex or a function name"
            )
        return word

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
        tokens = self.tokens
        string, rparen, comma = TokenKind.STRING, TokenKind.RPAREN, TokenKind.COMMA
        while True:
            # Lists of hundreds of strings are common in rule sets: a string element is
            # taken here, anything else by literal().
            tok = tokens[self.i]
            if tok.kind is string:
                self.i += 1
                values.append(tok.value)
                positions.append(tok.pos)
            else:
                value, pos = self.literal()
                values.append(value)
                positions.append(pos)
            kind = tokens[self.i].kind
            if kind is rparen:
                self.i += 1
                return tuple(values), tuple(positions)
            if kind is not comma:
                raise self.unexpected("',' or ')' in the list")
            self.i += 1

    def checked(
        self,
        left: Value,
        op: Op,
        values: tuple[Scalar, ...],
        positions: tuple[int, ...],
        pos: int,
    ) -> Expr:
        """Type rules Elasticsearch enforces at query time, enforced here at compile time."""
        if isinstance(left, Literal):
            raise self.src.error(left.pos, "the left-hand side of a comparison must be a field")
        kind = returns(left)
        string_op, order_op = op in STRING_OPS, op in ORDER_OPS
        null_op, length = op in (Op.EQ, Op.NE), isinstance(left, Length)
        for value, vpos in zip(values, positions, strict=True):
            if type(value) is str and not length and kind in ("string", "any"):
                continue  # the common case, which no rule below refuses
            if string_op and not isinstance(value, str):
                raise self.src.error(vpos, f"'{op.value}' compares strings only")
            if value is None and not null_op:
                raise self.src.error(vpos, "null can only be compared with '==' or '!='")
            if order_op and isinstance(value, bool):
                raise self.src.error(vpos, f"'{op.value}' cannot order booleans")
            if length and (isinstance(value, bool | str) or string_op):
                raise self.src.error(vpos, "length() returns a number; compare it with a number")
            if value is not None and kind != "any" and kind_of(value) != kind:
                raise self.src.error(
                    vpos, f"{_described(left)} returns a {kind}; compare it with a {kind}"
                )
        if isinstance(left, Field | Length):
            return Comparison(op, left, values, positions, pos)
        return Computed(op, left, values, positions, pos)


def _described(value: Value) -> str:
    if isinstance(value, Call):
        return f"{value.name}()"
    return "arithmetic"


def _flatten(items: list[Expr], kind: type[And] | type[Or]) -> tuple[Expr, ...]:
    out: list[Expr] = []
    for item in items:
        out.extend(item.operands if isinstance(item, kind) else (item,))
    return tuple(out)
