"""The entry points from query text to :class:`CompiledQuery` or :class:`CompiledSequence`."""

from __future__ import annotations

from collections.abc import Callable

from kexecwatch.core.detect.rule.ast import Query, Statement
from kexecwatch.core.detect.rule.evaluate import CompiledQuery, compile_ast
from kexecwatch.core.detect.rule.lexer import QuerySource
from kexecwatch.core.detect.rule.parser import parse_query, parse_statement
from kexecwatch.core.detect.rule.sequence import CompiledSequence, compile_sequence

__all__ = ["compile_query", "compile_source", "compile_statement"]


def compile_query(text: str, *, source: str = "<query>", line_offset: int = 0) -> CompiledQuery:
    """Parse and compile an EQL query such as ``process where process.name == "kexec"``.

    Args:
        text: the query.
        source: the name used in error locations (a file path, or ``<query>``).
        line_offset: lines before the query's first line in ``source``, so errors name
            the line in the file rather than in the query.

    Returns:
        The compiled query; its ``matches(doc)`` is cheap and never raises.

    Raises:
        RuleError: with ``where=SourceLocation(source, line, column)`` (1-based) and a
            detail of the source line plus a caret under the column.
    """
    return compile_source(QuerySource(text, source, line_offset))


def compile_source(src: QuerySource) -> CompiledQuery:
    """:func:`compile_query` for a query whose position in a file is fully known."""
    return compile_ast(parse_query(src), src)


def compile_statement(
    src: QuerySource,
    parse: Callable[[QuerySource], Statement] = parse_statement,
    *,
    lazy: bool = False,
) -> CompiledQuery | CompiledSequence:
    """Compile a rule's query: a single-event query, a ``sequence`` or a ``sample``.

    Args:
        parse: what parses ``src`` (the rule cache gives one that keeps the trees
            :func:`~kexecwatch.core.detect.rule.parser.parse_statement` built).
        lazy: build the predicates when first used (only for a query known to compile:
            see :func:`~kexecwatch.core.detect.rule.evaluate.compile_ast`).

    Raises:
        RuleError: as :func:`compile_query` does.
    """
    statement = parse(src)
    if isinstance(statement, Query):
        return compile_ast(statement, src, lazy=lazy)
    return compile_sequence(statement, src, lazy=lazy)
