"""Sequence and sample semantics, streamed: by, maxspan, until, runs, missing events,
record-time order, bounds and snapshots (before this work, both were refused)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from kexecwatch.core.detect.rule.lexer import QuerySource
from kexecwatch.core.detect.rule.query import compile_statement
from kexecwatch.core.detect.rule.sequence import CompiledSequence
from kexecwatch.core.detect.rule.sequence_state import SequenceEngine, SequenceMatch
from kexecwatch.errors import RuleError

T0 = 1_700_000_000_000


@dataclass(frozen=True)
class FakeRule:
    rule_id: str
    query: CompiledSequence
    from_: str = "now-6m"
    version: int = 3


def rule(text: str, *, rule_id: str = "r1", from_: str = "now-6m") -> FakeRule:
    compiled = compile_statement(QuerySource(text))
    assert isinstance(compiled, CompiledSequence)
    return FakeRule(rule_id, compiled, from_)


_serial = iter(range(1, 10**9))


def ev(
    name: str, t: int, *, user: str | None = "u1", parent: str = "p", **extra: Any
) -> dict[str, Any]:
    """A process document at ``T0 + t`` ms."""
    ms = T0 + t
    doc: dict[str, Any] = {
        "event": {"category": ["process"]},
        "process": {"name": name, "parent": {"name": parent}},
        "host": {"name": "h1"},
        "auditd": {"id": f"{ms // 1000}.{ms % 1000:03d}:{next(_serial)}"},
    }
    if user is not None:
        doc["user"] = {"id": user}
    doc.update(extra)
    return doc


def run(
    r: FakeRule, events: list[dict[str, Any]], *, reorder_ms: int = 0, **kw: Any
) -> list[SequenceMatch]:
    engine = SequenceEngine([r], reorder_ms=reorder_ms, **kw)
    out: list[SequenceMatch] = []
    for doc in events:
        out += engine.observe(doc, _time(doc))
    return out + engine.flush()


def _time(doc: dict[str, Any]) -> int:
    stamp = doc["auditd"]["id"].partition(":")[0]
    seconds, _, millis = stamp.partition(".")
    return int(seconds) * 1000 + int(millis)


def names(match: SequenceMatch) -> list[str]:
    return [d["process"]["name"] for d in match.events.documents]


AB = (
    "sequence by user.id with maxspan=10s "
    '[process where process.name == "a"] [process where process.name == "b"]'
)


def test_in_order_same_key_matches_with_its_events() -> None:
    (match,) = run(rule(AB), [ev("a", 0), ev("x", 1), ev("b", 2)])
    assert names(match) == ["a", "b"]
    assert match.events.join == (("user.id", "u1"),)
    assert match.reason == "sequence of 2 events by user.id=u1 (EQL rule v3)"
    doc = match.events.to_document()
    assert doc["process"]["name"] == "b"  # the last event is the alert's base
    assert [e["process"]["name"] for e in doc["kexecwatch"]["sequence"]["events"]] == ["a", "b"]
    assert doc["kexecwatch"]["sequence"]["kind"] == "sequence"


def test_other_key_or_wrong_order_does_not_match() -> None:
    assert run(rule(AB), [ev("a", 0, user="u1"), ev("b", 1, user="u2")]) == []
    assert run(rule(AB), [ev("b", 0), ev("a", 1)]) == []


def test_per_stage_join_keys() -> None:
    r = rule(
        'sequence [process where process.name == "a"] by user.id '
        '[process where process.name == "b"] by process.parent.name'
    )
    assert len(run(r, [ev("a", 0, user="x"), ev("b", 1, parent="x")])) == 1
    assert run(r, [ev("a", 0, user="x"), ev("b", 1, parent="y")]) == []


def test_shared_and_per_stage_keys_together() -> None:
    r = rule(
        "sequence by host.name "
        '[process where process.name == "a"] by user.id '
        '[process where process.name == "b"] by process.parent.name'
    )
    other_host = ev("b", 1, parent="x")
    other_host["host"] = {"name": "h2"}
    assert run(r, [ev("a", 0, user="x"), other_host]) == []
    assert len(run(r, [ev("a", 0, user="x"), ev("b", 1, parent="x")])) == 1


def test_maxspan_is_inclusive() -> None:
    assert len(run(rule(AB), [ev("a", 0), ev("b", 10_000)])) == 1
    assert run(rule(AB), [ev("a", 0), ev("b", 10_001)]) == []


@pytest.mark.parametrize(
    ("span", "ms"),
    [("500ms", 500), ("2s", 2_000), ("3m", 180_000), ("1h", 3_600_000), ("1d", 86_400_000)],
)
def test_maxspan_units(span: str, ms: int) -> None:
    r = rule(f"sequence with maxspan={span} " + AB.partition("maxspan=10s ")[2])
    assert r.query.maxspan_ms == ms
    assert len(run(r, [ev("a", 0), ev("b", ms)])) == 1
    assert run(r, [ev("a", 0), ev("b", ms + 1)]) == []


def test_until_ends_partial_sequences_of_its_key() -> None:
    r = rule(AB + ' until [process where process.name == "stop"]')
    assert run(r, [ev("a", 0), ev("stop", 1), ev("b", 2)]) == []
    assert len(run(r, [ev("a", 0), ev("stop", 1, user="u2"), ev("b", 2)])) == 1
    # a sequence started after the until event still matches
    assert len(run(r, [ev("stop", 0), ev("a", 1), ev("b", 2)])) == 1


def test_runs_repeats_a_stage_and_each_completed_sequence_fires_once() -> None:
    r = rule('sequence by user.id [process where process.name == "f"] with runs=3')
    assert len(r.query.stages) == 3
    assert run(r, [ev("f", i) for i in range(2)]) == []
    assert len(run(r, [ev("f", i) for i in range(3)])) == 1
    assert len(run(r, [ev("f", i) for i in range(5)])) == 1
    assert len(run(r, [ev("f", i) for i in range(6)])) == 2


def test_runs_then_another_stage() -> None:
    r = rule(
        'sequence by user.id [process where process.name == "f"] with runs=2 '
        '[process where process.name == "ok"]'
    )
    (match,) = run(r, [ev("f", 0), ev("f", 1), ev("ok", 2)])
    assert names(match) == ["f", "f", "ok"]
    assert run(r, [ev("f", 0), ev("ok", 2)]) == []


def test_the_most_recent_event_of_a_stage_is_kept() -> None:
    (match,) = run(rule(AB), [ev("a", 0, parent="first"), ev("a", 1, parent="second"), ev("b", 2)])
    assert match.events.documents[0]["process"]["parent"]["name"] == "second"


def test_one_sequence_per_completion() -> None:
    assert len(run(rule(AB), [ev("a", 0), ev("b", 1), ev("b", 2)])) == 1
    assert len(run(rule(AB), [ev("a", 0), ev("b", 1), ev("a", 2), ev("b", 3)])) == 2


def test_missing_event_between_stages() -> None:
    r = rule(
        'sequence by user.id with maxspan=1m [process where process.name == "a"] '
        '![process where process.name == "c"] [process where process.name == "b"]'
    )
    assert run(r, [ev("a", 0), ev("c", 1), ev("b", 2)]) == []
    assert len(run(r, [ev("a", 0), ev("c", 1, user="u2"), ev("b", 2)])) == 1
    assert len(run(r, [ev("c", 0), ev("a", 1), ev("b", 2)])) == 1


def test_missing_event_last_fires_only_after_maxspan() -> None:
    r = rule(
        'sequence by user.id with maxspan=10s [process where process.name == "a"] '
        '![process where process.name == "c"]'
    )
    engine = SequenceEngine([r], reorder_ms=0)
    assert engine.observe(ev("a", 0), T0) == []
    assert engine.advance(T0 + 10_000) == []  # the window is still open
    (match,) = engine.advance(T0 + 10_001)
    assert names(match) == ["a"]
    assert engine.advance(T0 + 99_000) == []  # once
    # with the missing event inside the window: nothing, ever
    engine = SequenceEngine([r], reorder_ms=0)
    engine.observe(ev("a", 0), T0)
    engine.observe(ev("c", 9_000), T0 + 9_000)
    assert engine.advance(T0 + 60_000) == []


def test_missing_event_first_vetoes_a_sequence_within_maxspan() -> None:
    r = rule(
        'sequence by user.id with maxspan=10s ![process where process.name == "c"] '
        '[process where process.name == "a"] [process where process.name == "b"]'
    )
    assert run(r, [ev("c", 0), ev("a", 1), ev("b", 2)]) == []
    assert len(run(r, [ev("c", 0), ev("a", 20_000), ev("b", 20_001)])) == 1
    assert len(run(r, [ev("a", 1), ev("b", 2)])) == 1


def test_events_are_matched_in_record_time_order() -> None:
    # b completes (reaches the engine) before a, but happened after it.
    engine = SequenceEngine([rule(AB)], reorder_ms=5_000)
    b, a = ev("b", 2_000), ev("a", 1_000)
    assert engine.observe(b, T0 + 2_000) == []
    assert engine.observe(a, T0 + 1_000) == []
    (match,) = engine.observe(ev("x", 7_001), T0 + 7_001)  # record time moved on
    assert names(match) == ["a", "b"]
    # without reordering, the same arrival order finds nothing
    assert run(rule(AB), [ev("b", 2_000), ev("a", 1_000)], reorder_ms=0) == []


def test_end_of_input_matches_what_waits_in_the_reorder_buffer() -> None:
    assert len(run(rule(AB), [ev("a", 0), ev("b", 1)], reorder_ms=60_000)) == 1


def test_null_join_key_takes_no_part_unless_optional() -> None:
    assert run(rule(AB), [ev("a", 0, user=None), ev("b", 1, user=None)]) == []
    optional = rule(AB.replace("by user.id", "by ?user.id"))
    assert len(run(optional, [ev("a", 0, user=None), ev("b", 1, user=None)])) == 1


def test_partials_are_capped_oldest_dropped_and_counted() -> None:
    engine = SequenceEngine([rule(AB)], reorder_ms=0, max_partials=3)
    for i in range(5):
        engine.observe(ev("a", i, user=f"u{i}"), T0 + i)
    assert engine.dropped == 2
    # u0 and u1 were the oldest: dropped; u4 still completes
    assert engine.observe(ev("b", 10, user="u0"), T0 + 10) == []
    assert len(engine.observe(ev("b", 11, user="u4"), T0 + 11)) == 1


def test_partials_expire_by_record_time() -> None:
    engine = SequenceEngine([rule(AB)], reorder_ms=0)
    engine.observe(ev("a", 0), T0)
    assert _partials(engine) == 1
    engine.observe(ev("x", 60_000), T0 + 60_000)
    assert _partials(engine) == 0


def _partials(engine: SequenceEngine) -> int:
    return sum(len(s["partials"]) for s in engine.to_state()["rules"].values())


def test_without_maxspan_the_rule_lookback_bounds_a_sequence() -> None:
    text = AB.replace(" with maxspan=10s", "")
    short = rule(text, from_="now-1m")
    assert len(run(short, [ev("a", 0), ev("b", 60_000)])) == 1
    assert run(short, [ev("a", 0), ev("b", 60_001)]) == []


def test_sample_matches_events_in_any_order_once_per_key() -> None:
    r = rule(
        'sample by user.id [process where process.name == "a"] '
        '[process where process.name == "b"] [process where process.name == "c"]'
    )
    (match,) = run(r, [ev("c", 0), ev("a", 1), ev("x", 2), ev("b", 3), ev("a", 4)])
    assert names(match) == ["a", "b", "c"]  # in stage order
    assert match.events.kind == "sample"
    assert run(r, [ev("c", 0), ev("a", 1, user="u2"), ev("b", 3)]) == []
    assert len(run(r, [ev(n, i) for i, n in enumerate("abcabc")])) == 2


def test_snapshot_round_trip_keeps_partial_sequences() -> None:
    r = rule(AB)
    first = SequenceEngine([r], reorder_ms=5_000)
    first.observe(ev("a", 0), T0)
    first.observe(ev("y", 6_000), T0 + 6_000)  # 'a' leaves the reorder buffer
    first.observe(ev("b", 7_000), T0 + 7_000)  # 'b' waits in it
    state = json.loads(json.dumps(first.to_state()))
    second = SequenceEngine([r], reorder_ms=5_000)
    second.restore(state)
    (match,) = second.flush()
    assert names(match) == ["a", "b"]


def test_snapshot_of_a_changed_query_is_not_restored() -> None:
    first = SequenceEngine([rule(AB)], reorder_ms=0)
    first.observe(ev("a", 0), T0)
    changed = rule(AB.replace('"b"', '"bb"'))
    second = SequenceEngine([changed], reorder_ms=0)
    second.restore(first.to_state())
    assert second.observe(ev("bb", 1), T0 + 1) == []


def test_corrupt_snapshot_is_a_value_error() -> None:
    engine = SequenceEngine([rule(AB)], reorder_ms=0)
    good = engine.to_state()
    with pytest.raises(ValueError, match="not a sequence state"):
        engine.restore({"version": 99})
    bad = json.loads(json.dumps(good))
    bad["rules"]["r1"]["partials"] = [["k", 7, [[], []]]]
    with pytest.raises(ValueError, match="corrupt sequence state of r1"):
        engine.restore(bad)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("sequence [process where true]", "a sequence needs at least two stages"),
        ("sequence [process where true] by a [process where true]", "same number of join keys"),
        ("sequence [process where true] with runs=0", "runs must be a whole number from 1 to 100"),
        (
            "sequence [process where true] with runs=101",
            "runs must be a whole number from 1 to 100",
        ),
        (
            "sequence with maxspan=10 [process where true] [process where true]",
            "expected a duration",
        ),
        (
            "sequence with maxspan=10y [process where true] [process where true]",
            "expected a duration",
        ),
        ("sequence [process where true] ![process where true]", "needs 'with maxspan='"),
        (
            "sequence [process where true] ![process where true] [process where true]",
            "a sequence with a missing event needs 'with maxspan='",
        ),
        (
            "sequence with maxspan=1s ![process where true] ![process where true]",
            "a stage that is not missing",
        ),
        ("sample [process where true] ![process where true]", "not allowed here"),
        (
            "sample [process where true] [process where true] with runs=2",
            "'with runs=' is not allowed here",
        ),
        (
            "sequence [process where true] [process where true] until ![process where true]",
            "not allowed here",
        ),
        ("sequence [process where true] [process where true", "expected ']' to end the stage"),
    ],
)
def test_sequence_syntax_errors(query: str, message: str) -> None:
    with pytest.raises(RuleError) as info:
        compile_statement(QuerySource(query))
    assert message in info.value.message


def test_required_values_are_the_union_of_what_every_stage_requires() -> None:
    r = rule(AB + ' until [process where process.name == "stop" and user.id == "0"]')
    assert r.query.required_values() == {
        "event.category": frozenset({"process"}),
        "process.name": frozenset({"a", "b", "stop"}),
    }


def test_sample_keys_expire_by_record_time() -> None:
    r = rule(
        'sample by user.id [process where process.name == "a"] [process where process.name == "b"]',
        from_="now-1m",
    )
    assert run(r, [ev("a", 0), ev("x", 61_000), ev("b", 61_001)]) == []
    assert len(run(r, [ev("a", 0), ev("b", 59_000)])) == 1


def test_events_held_are_capped_over_all_rules() -> None:
    # Two rules share 200 events: each holds at most 100, whatever the number of keys.
    runs = 'sequence by user.id [process where process.name == "f"] with runs=50'
    rules = [rule(runs, rule_id="r1"), rule(runs, rule_id="r2")]
    engine = SequenceEngine(rules, reorder_ms=0, max_events=200)
    for i in range(3 * 49):  # three users, 49 events each: three partials of 49
        engine.observe(ev("f", i, user=f"u{i // 49}"), T0 + i)
    state = engine.to_state()["rules"]
    for item in state.values():
        held = sum(len(p[2][0]) for p in item["partials"])
        assert held <= 100
    assert engine.dropped == 2  # per rule: u0's partial, let go when u2's came over 100


def test_sample_events_are_capped() -> None:
    r = rule(
        'sample by user.id [process where process.name == "a"] [process where process.name == "b"]'
    )
    engine = SequenceEngine([r], reorder_ms=0, max_events=1)  # at least 100 per rule
    for i in range(101):
        engine.observe(ev("a", i, user=f"u{i}"), T0 + i)
    assert engine.dropped == 1  # u0, the oldest
    assert engine.observe(ev("b", 200, user="u0"), T0 + 200) == []
    assert len(engine.observe(ev("b", 201, user="u100"), T0 + 201)) == 1


def test_a_sequence_or_sample_that_can_never_complete_holds_nothing() -> None:
    # A network stage: no process document ever matches it (prefilters_of: the rule needs
    # no event), so the process events the other stage matches are not held, nor
    # counted as dropped past the cap. Only the held state changes: neither could alert.
    never = rule(
        'sequence by process.pid [process where process.name == "a"] '
        '[network where process.name == "a"]'
    )
    sample = rule(
        'sample by process.pid [process where process.name == "a"] '
        '[network where process.name == "a"]',
        rule_id="r2",
    )
    engine = SequenceEngine([never, sample], reorder_ms=0, max_partials=2)
    for i in range(5):
        assert engine.observe(ev("a", i, process={"name": "a", "pid": i}), T0 + i) == []
    assert engine.flush() == []
    assert engine.dropped == 0
    state = engine.to_state()["rules"]
    assert state["r1"]["partials"] == []
    assert state["r2"]["slots"] == []
    assert engine.due_ms is None


def test_a_rule_that_needs_no_event_here_still_finishes_what_a_snapshot_held() -> None:
    # Taken with one event vocabulary, restored under another in which a stage can never
    # match (so the rule needs no event): the partial sequence it held still completes.
    r = rule(AB)
    before = SequenceEngine([r], reorder_ms=0)
    assert before.observe(ev("a", 0), T0) == []
    state = json.loads(json.dumps(before.to_state()))
    after = SequenceEngine([r], reorder_ms=0, needs_events=lambda rule: False)
    idle = SequenceEngine([r], reorder_ms=0, needs_events=lambda rule: False)
    assert idle.observe(ev("a", 0), T0) == []  # never shown: nothing held
    assert idle.to_state()["rules"]["r1"]["partials"] == []
    after.restore(state)
    [match] = after.observe(ev("b", 1000), T0 + 1000) + after.flush()
    assert names(match) == ["a", "b"]
