"""Compiled ``sequence`` and ``sample`` queries: their stages, join keys and time limits.

A :class:`CompiledSequence` is what a rule holds for a multi-event query; it has no
state. The events are matched by a
:class:`~kexecwatch.core.detect.rule.sequence_state.SequenceRunner`
per rule, which the detector feeds in record-time order. ``with runs=N`` is expanded
here into N copies of its stage, as Elasticsearch defines it.

A join key is the tuple of the ``by`` fields' values, the shared ones first. A stage
whose key has a null (missing) value takes no part, unless that key field is marked
optional (``?field``), when null is a value like any other.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from kexecwatch.core.detect.rule.ast import Field, SampleQuery, SequenceQuery, Stage
from kexecwatch.core.detect.rule.evaluate import CompiledQuery, Document, compile_ast
from kexecwatch.core.detect.rule.lexer import QuerySource

__all__ = ["CompiledSequence", "CompiledStage", "compile_sequence"]

#: A join key as text (JSON of the key values), or ``None`` when it has a null part.
KeyFn = Callable[[Document], str | None]


@dataclass(frozen=True, slots=True)
class CompiledStage:
    """One stage: its query, its join key function, and whether it is a missing event."""

    query: CompiledQuery
    key: KeyFn = field(repr=False, compare=False)
    key_fields: tuple[str, ...]
    missing: bool = False


@dataclass(frozen=True, slots=True)
class CompiledSequence:
    """A compiled ``sequence`` or ``sample``.

    Attributes:
        text: the query text.
        kind: ``sequence`` or ``sample``.
        stages: the stages in order, ``with runs=N`` expanded.
        until: the ``until`` stage, or ``None``.
        maxspan_ms: ``with maxspan=``, or ``None``.
        statement: the parsed query.
        fields: every field any stage reads, dotted, join keys included.
    """

    text: str
    kind: str
    stages: tuple[CompiledStage, ...]
    until: CompiledStage | None
    maxspan_ms: int | None
    statement: SequenceQuery | SampleQuery = field(repr=False, compare=False)
    fields: frozenset[str] = frozenset()

    @property
    def category(self) -> str:
        """``sequence`` or ``sample`` (single-event queries name an event category here)."""
        return self.kind

    def matches(self, document: Document) -> bool:
        """Always false: one document never makes a sequence (the runner matches them)."""
        return False

    def all_stages(self) -> Iterator[CompiledStage]:
        """Every stage, missing ones and ``until`` included."""
        yield from self.stages
        if self.until is not None:
            yield self.until

    def required_values(self) -> dict[str, frozenset[str]]:
        """What every event that matters to the query holds (see
        :meth:`CompiledQuery.required_values`): for a field every stage requires, the
        union of the values each stage allows. Sound: an event that matches no stage
        never changes a sequence."""
        per_stage = [stage.query.required_values() for stage in self.all_stages()]
        common = set(per_stage[0]).intersection(*per_stage[1:])
        return {name: frozenset().union(*(r[name] for r in per_stage)) for name in sorted(common)}


def compile_sequence(
    statement: SequenceQuery | SampleQuery, src: QuerySource, *, lazy: bool = False
) -> CompiledSequence:
    """Compile a parsed sequence or sample (regex errors point into ``src``); ``lazy``
    builds each stage's predicates when first used, as
    :func:`~kexecwatch.core.detect.rule.evaluate.compile_ast` says."""
    shared = statement.keys
    stages: list[CompiledStage] = []
    for stage in statement.stages:
        compiled = _stage(stage, shared, src, lazy)
        stages.extend([compiled] * stage.runs)
    until = None
    maxspan = None
    kind = "sample"
    if isinstance(statement, SequenceQuery):
        kind = "sequence"
        maxspan = statement.maxspan_ms
        if statement.until is not None:
            until = _stage(statement.until, shared, src, lazy)
    fields: set[str] = set()
    for compiled in (*stages, *([until] if until else [])):
        fields |= compiled.query.fields
        fields.update(compiled.key_fields)
    return CompiledSequence(
        src.text, kind, tuple(stages), until, maxspan, statement, frozenset(fields)
    )


def _stage(stage: Stage, shared: tuple[Field, ...], src: QuerySource, lazy: bool) -> CompiledStage:
    keys = (*shared, *stage.keys)
    return CompiledStage(
        compile_ast(stage.query, src, lazy=lazy),
        _key_function(keys),
        tuple(k.name for k in keys),
        stage.missing,
    )


def _key_function(keys: tuple[Field, ...]) -> KeyFn:
    paths = [(k.path, k.optional) for k in keys]

    def key(doc: Document) -> str | None:
        values: list[Any] = []
        for path, optional in paths:
            value: Any = doc
            for part in path:
                value = value.get(part) if type(value) is dict else None
            if value is None or value == []:
                if not optional:
                    return None
                value = None
            values.append(value)
        return json.dumps(values, separators=(",", ":"), default=str)

    return key
