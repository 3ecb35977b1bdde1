"""Tokens of the Elasticsearch EQL subset, and the error format shared with the parser.

Rule 1: the lexer never evaluates anything; it turns query text into :class:`Token`
values with their offset in the text, or raises :class:`RuleError` pointing at the
offending character.

Theory of operation: one left-to-right scan. Whitespace, ``// line`` and ``/* block */``
comments are skipped anywhere, which is why comments inside parenthesised lists work.
Strings are decoded here (``"..."`` with ``\\n \\r \\t \\\\ \\"`` and ``\\u{XXXX}``, and
``\"\"\"raw\"\"\"`` with no escapes at all), so the parser only sees finished values.
"""

from __future__ import annotations

import math
import re
from enum import Enum
from typing import NamedTuple

from kexecwatch.core.text.frozen import Frozen, set_field
from kexecwatch.errors import RuleError, SourceLocation

__all__ = ["QuerySource", "Token", "TokenKind", "tokenize"]


class QuerySource(Frozen):
    """The text being compiled, and where it sits in its file (for error locations).

    Attributes:
        text: the query text.
        source: a file name or ``<query>``.
        line_offset: lines before the query's first line in ``source``.
        column_offset: columns before the query's first character on its first line.
        file_first_line: the whole first line in the file, for carets (defaults to the
            query's own first line).
    """

    __slots__ = (  # noqa: RUF023 - the fields, in order
        "text",
        "source",
        "line_offset",
        "column_offset",
        "file_first_line",
    )

    text: str
    source: str
    line_offset: int
    column_offset: int
    file_first_line: str | None

    def __init__(
        self,
        text: str,
        source: str = "<query>",
        line_offset: int = 0,
        column_offset: int = 0,
        file_first_line: str | None = None,
    ) -> None:
        set_field(self, "text", text)
        set_field(self, "source", source)
        set_field(self, "line_offset", line_offset)
        set_field(self, "column_offset", column_offset)
        set_field(self, "file_first_line", file_first_line)

    def error(self, pos: int, message: str) -> RuleError:
        """A :class:`RuleError` at text offset ``pos``, with the source line and a caret."""
        pos = max(0, min(pos, len(self.text)))
        line_start = self.text.rfind("\n", 0, pos) + 1
        line_end = self.text.find("\n", pos)
        if line_end == -1:
            line_end = len(self.text)
        index = self.text.count("\n", 0, pos)
        shown = self.text[line_start:line_end]
        col = pos - line_start + 1
        if index == 0:
            col += self.column_offset
            if self.file_first_line is not None:
                shown = self.file_first_line
        # Copy tabs from the shown line so the caret lines up in a terminal.
        prefix = "".join(c if c == "\t" else " " for c in shown[: col - 1])
        where = SourceLocation(self.source, index + 1 + self.line_offset, col)
        return RuleError(message, where=where, detail=f"{shown.rstrip()}\n{prefix}^")


class TokenKind(Enum):
    """What a token is."""

    IDENT = "identifier"
    STRING = "string"
    NUMBER = "number"
    OP = "operator"
    LPAREN = "'('"
    RPAREN = "')'"
    COMMA = "','"
    QMARK = "'?'"
    LBRACKET = "'['"
    RBRACKET = "']'"
    EOF = "end of query"


class Token(NamedTuple):
    """One token: its kind, its decoded value, its text offset, and for strings the raw flag.

    A named tuple rather than a frozen dataclass: a rule set of hundreds of queries makes
    tens of thousands of tokens, and a tuple is the cheapest immutable record to build.
    """

    kind: TokenKind
    value: str | int | float
    pos: int
    raw: bool = False


_NUMBER = re.compile(r"\d+(\.\d+)?([eE][+-]?\d+)?")
_OPERATORS = ("==", "!=", "<=", ">=", "<", ">", ":", ".", "+", "-", "*", "/", "%", "!", "=")
# Whitespace, then what may start there, in the order the kinds are tried (a comment
# before the operator '/', a raw string before an empty one): one match per token. re's
# \s is str.isspace()'s Unicode whitespace.
_SPACES = re.compile(r"\s*")
_TOKEN = re.compile(
    r"\s*(?:"
    + "|".join(
        (
            r"(?P<line>//)",
            r"(?P<block>/\*)",
            r'(?P<raw>""")',
            r'(?P<plain>"[^"\\\r\n]*")',
            r'(?P<escaped>")',
            r"(?P<single>')",
            r"(?P<backquote>`)",
            r"(?P<ident>[A-Za-z_@][A-Za-z0-9_@]*~?)",
            r"(?P<number>\d)",
            r"(?P<punct>[(),?\[\]])",
            "(?P<op>" + "|".join(re.escape(op) for op in _OPERATORS) + ")",
        )
    )
    + ")"
)
_PUNCTUATION = {
    "(": TokenKind.LPAREN,
    ")": TokenKind.RPAREN,
    ",": TokenKind.COMMA,
    "?": TokenKind.QMARK,
    "[": TokenKind.LBRACKET,
    "]": TokenKind.RBRACKET,
}
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"'}
_HEX = re.compile(r"\{([0-9A-Fa-f]{2,8})\}")


def tokenize(src: QuerySource) -> list[Token]:
    """Split ``src.text`` into tokens, ending with one ``EOF`` token.

    Raises:
        RuleError: on an unknown character, a single-quoted string,
            an unterminated string or comment, or a bad escape sequence.
    """
    text = src.text
    tokens: list[Token] = []
    append = tokens.append
    match = _TOKEN.match
    i, n = 0, len(text)
    while True:
        m = match(text, i)
        if m is None:
            spaces = _SPACES.match(text, i)
            assert spaces is not None  # \s* matches anywhere
            i = spaces.end()
            if i >= n:
                break
            c = text[i]
            if c == "|":
                raise src.error(i, "pipes ('|') are not supported")
            raise src.error(i, f"unexpected character {c!r}")
        kind = m.lastgroup
        assert kind is not None  # every alternative is a named group
        i = m.start(kind)
        if kind == "ident":
            # in~, like~, regex~ and the functions' ~ forms (startsWith~); the parser
            # refuses a ~ anywhere else.
            append(Token(TokenKind.IDENT, m.group(kind), i))
            i = m.end()
        elif kind == "op":
            append(Token(TokenKind.OP, m.group(kind), i))
            i = m.end()
        elif kind == "punct":
            c = m.group(kind)
            append(Token(_PUNCTUATION[c], c, i))
            i += 1
        elif kind == "plain":  # a string without escapes: most strings
            end = m.end()
            append(Token(TokenKind.STRING, text[i + 1 : end - 1], i))
            i = end
        elif kind == "number":
            number = _NUMBER.match(text, i)
            assert number is not None
            append(Token(TokenKind.NUMBER, _number(src, number, i), i))
            i = number.end()
        elif kind == "line":
            end = text.find("\n", i)
            i = n if end == -1 else end + 1
        elif kind == "block":
            end = text.find("*/", i + 2)
            if end == -1:
                raise src.error(i, "unterminated /* comment")
            i = end + 2
        elif kind == "raw":
            end = text.find('"""', i + 3)
            if end == -1:
                raise src.error(i, "unterminated raw string")
            append(Token(TokenKind.STRING, text[i + 3 : end], i, raw=True))
            i = end + 3
        elif kind == "escaped":
            value, i_next = _string(src, i)
            append(Token(TokenKind.STRING, value, i))
            i = i_next
        elif kind == "single":
            raise src.error(i, "single-quoted strings are not supported; use double quotes")
        else:  # a `quoted` field name
            end = i + 1
            while True:
                end = text.find("`", end)
                if end == -1:
                    raise src.error(i, "unterminated `escaped` field name")
                if not text.startswith("``", end):
                    break
                end += 2
            append(Token(TokenKind.IDENT, text[i + 1 : end].replace("``", "`"), i))
            i = end + 1
    tokens.append(Token(TokenKind.EOF, "", n))
    return tokens


def _number(src: QuerySource, m: re.Match[str], pos: int) -> int | float:
    """The value of a number token; one beyond a double, or of more digits than a 64-bit
    integer has (which ``int()`` would be slow on, or refuse), is an error."""
    literal = m.group()
    if m.group(1) or m.group(2):
        value = float(literal)
        if math.isinf(value):
            raise src.error(pos, "number out of range of a double")
        return value
    if len(literal.lstrip("0")) > 19:
        raise src.error(pos, "number out of range: integers are 64-bit, as in Elasticsearch")
    return int(literal)


def _string(src: QuerySource, start: int) -> tuple[str, int]:
    """Decode the ``"..."`` string at ``start``; return its value and the offset after it."""
    text = src.text
    out: list[str] = []
    i = start + 1
    while True:
        if i >= len(text) or text[i] in "\r\n":
            raise src.error(start, "unterminated string")
        c = text[i]
        if c == '"':
            return "".join(out), i + 1
        if c != "\\":
            out.append(c)
            i += 1
            continue
        nxt = text[i + 1 : i + 2]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt == "u" and (m := _HEX.match(text, i + 2)):
            code = int(m.group(1), 16)
            if code > 0x10FFFF:
                raise src.error(i, "unicode escape is beyond U+10FFFF")
            out.append(chr(code))
            i = m.end()
        elif nxt == "u":
            raise src.error(i, "bad unicode escape; write \\u{XXXX} with 2 to 8 hex digits")
        else:
            shown = nxt or "end of query"
            raise src.error(i, f'unknown escape sequence \\{shown}; use a raw """string"""')
