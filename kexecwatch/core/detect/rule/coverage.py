"""Whether a compiled rule can ever fire on kexecwatch's process events, and if not, why.

Theory of operation: a process document's facets
(:data:`~kexecwatch.core.process.docfields.FACET_FIELDS`:
``event.category``, ``event.type``, ``event.action``, ...) take one of a few value
combinations (:func:`~kexecwatch.core.process.docfields.process_facets`), and a field that
:func:`~kexecwatch.core.process.docfields.process_fields` does not list is never set. Both come
from the code that builds the documents, so this module holds no list of its own.

For each facet combination the condition is evaluated three-valued: a comparison on a
facet is evaluated exactly (with the real evaluator, on a document holding only that
facet), a comparison on a field that is never set is evaluated on a document without it
(``f == "x"`` is false, ``f != "x"`` true), and anything else may go either way. ``and``,
``or`` and ``not`` combine these as usual. The rule can fire when some combination is not
"never". Otherwise the *blockers* are the leaves that decide the outcome: the ones that
block every combination when there are such (``event.action`` in Elastic Defend's values),
else all of them.

Sound in one direction only: "cannot fire" is a proof on the documents kexecwatch builds;
"can fire" means no such proof was found (a value no process has is not detected).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from functools import cache
from typing import Any

from kexecwatch.core.detect.rule.ast import (
    And,
    BoolConst,
    Comparison,
    Field,
    Length,
    Not,
    Or,
    Query,
)
from kexecwatch.core.detect.rule.evaluate import CompiledQuery, compile_ast
from kexecwatch.core.detect.rule.lexer import QuerySource
from kexecwatch.core.detect.rule.sequence import CompiledSequence
from kexecwatch.core.process.docfields import FACET_FIELDS, process_facets, process_fields

__all__ = ["Blocker", "Coverage", "coverage"]


class _V(Enum):
    NEVER = 0
    ALWAYS = 1
    MAYBE = 2


@dataclass(frozen=True, slots=True, order=True)
class Blocker:
    """Why a rule cannot fire, one reason.

    Attributes:
        kind: ``category`` (an event category kexecwatch never produces), ``value``
            (a facet compared with values kexecwatch never emits) or ``field`` (a field
            kexecwatch never sets).
        field: the field (``event.category`` for ``category``).
        message: one line for people.
    """

    kind: str
    field: str
    message: str

    @property
    def key(self) -> str:
        """What the counts group by: ``field host.id``, ``event.action value``."""
        return f"field {self.field}" if self.kind == "field" else f"{self.field} value"


@dataclass(frozen=True, slots=True)
class Coverage:
    """The verdict on one query: whether it can fire and, if not, its blockers."""

    can_fire: bool
    blockers: tuple[Blocker, ...] = ()


def coverage(query: CompiledQuery | CompiledSequence, events_as: str = "auditbeat") -> Coverage:
    """Whether ``query`` can match a process document kexecwatch builds (see module doc),
    in the event vocabulary ``events_as`` (``--events-as``).

    A sequence or sample can fire when every stage that is not a missing event can, and
    every join key that is not optional (``?field``) is a field kexecwatch sets: an event
    without its join key takes no part. Its blockers are those of the stages that cannot
    fire, and the join keys never set.
    """
    if isinstance(query, CompiledSequence):
        return _sequence_coverage(query, events_as)
    per_combo: list[set[Blocker]] = []
    for facets in process_facets(events_as):
        if query.category != "any" and query.category not in facets["event.category"]:
            per_combo.append({_category_blocker(query.category, events_as)})
            continue
        verdict = _eval(query.condition, facets)
        if verdict is not _V.NEVER:
            return Coverage(True)
        per_combo.append(_why(query.condition, facets, want=_V.NEVER, events_as=events_as))
    common = set.intersection(*per_combo) if per_combo else set()
    return Coverage(False, tuple(sorted(common or set().union(*per_combo))))


def _sequence_coverage(query: CompiledSequence, events_as: str) -> Coverage:
    blockers: set[Blocker] = set()
    for stage in dict.fromkeys(s for s in query.stages if not s.missing):
        verdict = coverage(stage.query, events_as)
        blockers.update(verdict.blockers if not verdict.can_fire else ())
    statement = query.statement
    for key in (*statement.keys, *(k for s in statement.stages for k in s.keys)):
        if not key.optional and key.name not in process_fields():
            message = f"join key {key.name} is never set by kexecwatch"
            blockers.add(Blocker("field", key.name, message))
    return Coverage(not blockers, tuple(sorted(blockers)))


def _category_blocker(category: str, events_as: str) -> Blocker:
    known = sorted({c for f in process_facets(events_as) for c in f["event.category"]})
    return Blocker(
        "category",
        "event.category",
        f"event category {category!r} is never produced (kexecwatch produces {', '.join(known)})",
    )


def _eval(expr: Any, facets: Mapping[str, tuple[str, ...]]) -> _V:
    if isinstance(expr, BoolConst):
        return _V.ALWAYS if expr.value else _V.NEVER
    if isinstance(expr, Not):
        inner = _eval(expr.operand, facets)
        return {_V.NEVER: _V.ALWAYS, _V.ALWAYS: _V.NEVER}.get(inner, _V.MAYBE)
    if isinstance(expr, And | Or):
        values = [_eval(item, facets) for item in expr.operands]
        decisive, other = (_V.NEVER, _V.ALWAYS) if isinstance(expr, And) else (_V.ALWAYS, _V.NEVER)
        if decisive in values:
            return decisive
        return other if all(v is other for v in values) else _V.MAYBE
    if isinstance(expr, Comparison):
        return _leaf(expr, facets)
    return _V.MAYBE  # a construct this analysis does not know: it may go either way


def _leaf(expr: Comparison, facets: Mapping[str, tuple[str, ...]]) -> _V:
    name = _field_of(expr).name
    if name in FACET_FIELDS:
        return _V.ALWAYS if _test(expr, _document(name, facets[name])) else _V.NEVER
    if name not in process_fields():
        return _V.ALWAYS if _test(expr, {}) else _V.NEVER
    return _V.MAYBE


def _why(
    expr: Any, facets: Mapping[str, tuple[str, ...]], *, want: _V, events_as: str
) -> set[Blocker]:
    """The leaves that make ``expr`` evaluate to ``want`` (NEVER or ALWAYS)."""
    if isinstance(expr, Not):
        flip = _V.ALWAYS if want is _V.NEVER else _V.NEVER
        return _why(expr.operand, facets, want=flip, events_as=events_as)
    if isinstance(expr, And | Or):
        decisive = _V.NEVER if isinstance(expr, And) else _V.ALWAYS
        found: set[Blocker] = set()
        for item in expr.operands:
            # The decisive value: the operands that have it; otherwise all of them.
            if want is not decisive or _eval(item, facets) is want:
                found |= _why(item, facets, want=want, events_as=events_as)
        return found
    if isinstance(expr, Comparison):
        return {_leaf_blocker(expr, events_as)}
    return set()


def _leaf_blocker(expr: Comparison, events_as: str) -> Blocker:
    name = _field_of(expr).name
    if name not in FACET_FIELDS:
        return Blocker("field", name, f"field {name} is never set by kexecwatch")
    emitted = sorted({v for f in process_facets(events_as) for v in f[name]})
    wanted = ", ".join(str(v) for v in expr.values)
    return Blocker(
        "value",
        name,
        f"{name} {expr.op.value} {wanted} never holds: kexecwatch emits {', '.join(emitted)}",
    )


def _field_of(expr: Comparison) -> Field:
    return expr.left.field if isinstance(expr.left, Length) else expr.left


def _document(name: str, values: Iterable[str]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    target = doc
    *parents, leaf = name.split(".")
    for key in parents:
        target = target.setdefault(key, {})
    target[leaf] = list(values)
    return doc


@cache
def _compiled(expr: Comparison) -> CompiledQuery:
    return compile_ast(Query("any", expr), QuerySource("", "<coverage>"))


def _test(expr: Comparison, document: dict[str, Any]) -> bool:
    return _compiled(expr).matches(document)
