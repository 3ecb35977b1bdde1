"""What a rule file gets wrong besides syntax: unknown keys, missing keys, dead fields.

Theory of operation: :func:`key_problems` compares the parsed TOML with the detection-rules
keys kexecwatch knows (the ones it reads, and the ones detection-rules defines that
kexecwatch accepts and ignores, such as ``note`` and ``setup``). An unknown key is an
error: ``severty = "high"`` would otherwise leave the rule without the severity its author
meant. Every missing required key is reported in one message, not one per run.

:func:`field_problems` compares what a compiled query reads with what kexecwatch's
documents can carry (:mod:`kexecwatch.core.process.docfields`, derived from the code that builds
them): a misspelt field (``process.nmae``) or a category kexecwatch never produces
(``network where``) makes a rule that can never fire. Those are warnings, since a rule
may be shared with Elastic, and ``check-rule --strict`` makes them errors. A field written
``?field`` is optional by EQL's own rules and is not reported.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from kexecwatch.core.detect.rule.ast import (
    And,
    CallCondition,
    Comparison,
    Computed,
    Expr,
    Field,
    Not,
    Or,
)
from kexecwatch.core.detect.rule.evaluate import CompiledQuery, value_field_nodes
from kexecwatch.core.detect.rule.lexer import QuerySource
from kexecwatch.core.detect.rule.sequence import CompiledSequence
from kexecwatch.core.process.docfields import process_categories, process_fields
from kexecwatch.errors import RuleError, SourceLocation

__all__ = ["REQUIRED_KEYS", "field_problems", "key_problems"]

#: A key spec: ``None`` accepts any value; a dict names the keys of a table; a one-element
#: tuple is an array of tables, each checked against its element.
_Spec = Mapping[str, Any] | tuple[Any, ...] | None

_REF: Mapping[str, _Spec] = {"id": None, "name": None, "reference": None}
_THREAT: Mapping[str, _Spec] = {
    "framework": None,
    "tactic": _REF,
    "technique": ({**_REF, "subtechnique": (_REF,)},),
}
#: Required keys of each table, for every rule kind; ``rule.query`` (EQL) or
#: ``rule.detection`` (kexecwatch's own rules) come on top.
REQUIRED_KEYS: Mapping[str, tuple[str, ...]] = {
    "metadata": ("creation_date", "maturity", "updated_date"),
    "rule": (
        "author", "description", "language", "name", "risk_score", "rule_id", "severity", "type"
    ),
}  # fmt: skip
_KIND_KEY = {"eql": "query", "kexecwatch": "detection"}
_METADATA = (
    "creation_date", "updated_date", "maturity", "integration", "min_stack_version",
    "min_stack_comments", "deprecation_date", "comments", "query_schema_validation",
    "bypass_bbr_timing",
)  # fmt: skip
# What kexecwatch reads, then what detection-rules defines and kexecwatch ignores.
_RULE = (
    "author", "description", "name", "rule_id", "risk_score", "severity", "type", "language",
    "license", "from", "index", "tags", "references", "timestamp_override", "version",
    "max_signals", "interval", "threat",
    "actions", "alert_suppression", "building_block_type", "data_view_id", "enabled",
    "event_category_override", "exceptions_list", "false_positives", "filters",
    "investigation_fields", "meta", "namespace", "note", "output_index",
    "related_integrations", "required_fields", "risk_score_mapping", "rule_name_override",
    "setup", "severity_mapping", "throttle", "tiebreaker_field", "timeline_id",
    "timeline_title", "timestamp_field", "timestamp_override_fallback_disabled", "to",
)  # fmt: skip


def _spec(kind: str) -> Mapping[str, _Spec]:
    rule: dict[str, _Spec] = dict.fromkeys(_RULE)
    rule["threat"] = (_THREAT,)
    rule[_KIND_KEY.get(kind, "query")] = None
    # detection-rules' [transform] holds investigation-guide plugins: free-form.
    return {"metadata": dict.fromkeys(_METADATA), "rule": rule, "transform": None}


def key_problems(data: Mapping[str, Any], text: str, source: str, kind: str) -> list[RuleError]:
    """Unknown keys (one error each, at their line) and missing required keys (one error).

    Args:
        data: the parsed TOML file.
        text: its text, to find the line of an unknown key.
        source: the file name.
        kind: ``eql`` or ``kexecwatch`` (which of ``query``/``detection`` is required).
    """
    spec = _spec(kind)
    problems = [
        RuleError(message, where=_key_location(text, source, path))
        for path, message in _unknown(data, spec, "")
    ]
    missing: list[str] = []
    for table, keys in REQUIRED_KEYS.items():
        found = data.get(table)
        if found is None:
            missing.append(table)
            continue
        if not isinstance(found, Mapping):
            continue  # present but not a table: the reader names the type
        wanted = (*keys, _KIND_KEY[kind]) if table == "rule" else keys
        missing += [f"{table}.{k}" for k in wanted if k not in found]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        problems.append(
            RuleError(
                f"missing required key{plural} {', '.join(missing)}",
                where=SourceLocation(source),
            )
        )
    return problems


def _unknown(value: Any, spec: _Spec, path: str) -> Iterator[tuple[str, str]]:
    """``(dotted path, message)`` for every key ``spec`` does not know."""
    if spec is None:
        return
    if isinstance(spec, tuple):
        if isinstance(value, list):
            for i, item in enumerate(value):
                yield from _unknown(item, spec[0], f"{path}[{i}]")
        return
    if type(value) is not dict and not isinstance(value, Mapping):
        return  # a type error, which the reader reports
    for key, item in value.items():
        if key in spec:
            known = spec[key]
            if known is not None:  # else any value (most keys): nothing to look into
                yield from _unknown(item, known, f"{path}.{key}" if path else key)
            continue
        name = f"{path}.{key}" if path else key
        import difflib  # only for a problem found (a start-up cost otherwise)

        close = difflib.get_close_matches(key, list(spec), n=1, cutoff=0.75)
        hint = f" (did you mean {path + '.' if path else ''}{close[0]}?)" if close else ""
        what = "table" if not path else "key"
        yield name, f"unknown {what} {name}{hint}"


_HEADER = re.compile(r"^[ \t]*\[+[ \t]*([^\]]+?)[ \t]*\]", re.MULTILINE)


def _key_location(text: str, source: str, path: str) -> SourceLocation:
    """The line and column where the dotted ``path``'s last key is written, if found."""
    bare = re.sub(r"\[\d+\]", "", path)
    table, _, key = bare.rpartition(".")
    start = 0
    if table:
        # After the header of its table (the first one, for arrays of tables).
        header = next((m for m in _HEADER.finditer(text) if m.group(1) == table), None)
        start = header.end() if header else 0
    pattern = re.compile(
        rf"^([ \t]*)(?:\[+[ \t]*{re.escape(bare)}[ \t]*\]|[\"']?{re.escape(key)}[\"']?[ \t]*=)",
        re.MULTILINE,
    )
    m = pattern.search(text, start) or pattern.search(text)
    if m is None:
        return SourceLocation(source)
    line = text.count("\n", 0, m.start()) + 1
    return SourceLocation(source, line, len(m.group(1)) + 1)


def field_problems(query: CompiledQuery | CompiledSequence, src: QuerySource) -> list[RuleError]:
    """Warnings for a category and fields kexecwatch's documents never carry.

    For a sequence or sample, every stage's query is checked, and so are the join keys.

    Args:
        query: the compiled query.
        src: where the query sits in its file, for line, column and caret.
    """
    if isinstance(query, CompiledSequence):
        problems: list[RuleError] = []
        seen_messages: set[str] = set()
        for stage in query.all_stages():
            for problem in field_problems(stage.query, src):
                if problem.message not in seen_messages:
                    seen_messages.add(problem.message)
                    problems.append(problem)
        statement = query.statement
        keys = [*statement.keys, *(k for s in statement.stages for k in s.keys)]
        problems += _field_warnings(keys, src, {p.message for p in problems})
        return problems
    problems = []
    categories = process_categories()
    if query.category not in categories:
        pos = len(src.text) - len(src.text.lstrip())
        known = ", ".join(sorted(categories))
        problems.append(
            src.error(
                pos,
                f"event category {query.category!r} is never produced by kexecwatch, so the "
                f"rule can never fire; kexecwatch produces: {known}",
            )
        )
    problems += _field_warnings(_required_fields(query.condition), src, set())
    return problems


def _field_warnings(found: Iterable[Field], src: QuerySource, already: set[str]) -> list[RuleError]:
    """A warning for each field (first mention) kexecwatch never sets."""
    problems: list[RuleError] = []
    known_fields = process_fields()
    seen: set[str] = set()
    for fld in found:
        if fld.optional or fld.name in known_fields or fld.name in seen:
            continue
        seen.add(fld.name)
        import difflib  # only for a problem found (a start-up cost otherwise)

        close = difflib.get_close_matches(fld.name, sorted(known_fields), n=1, cutoff=0.8)
        hint = f" (did you mean {close[0]}?)" if close else ""
        # Name the fields of the same object (process.*), or all when none is alike.
        near = sorted(f for f in known_fields if f.split(".")[0] == fld.path[0])
        problems.append(
            src.error(
                fld.pos,
                f"field {fld.name} is never set by kexecwatch, so it never has a value"
                f"{hint}; it sets {', '.join(near or sorted(known_fields))}",
            )
        )
    return [p for p in problems if p.message not in already]


def _required_fields(expr: Expr) -> Iterator[Field]:
    """The fields ``expr`` reads that are not marked optional (``?field``), in query order."""
    if isinstance(expr, Comparison | Computed):
        for fld in value_field_nodes(expr.left):
            if not fld.optional:
                yield fld
    elif isinstance(expr, CallCondition):
        for fld in value_field_nodes(expr.call):
            if not fld.optional:
                yield fld
    elif isinstance(expr, Not):
        yield from _required_fields(expr.operand)
    elif isinstance(expr, And | Or):
        for item in expr.operands:
            yield from _required_fields(item)
