"""CompiledQuery.explain: the first failing top-level conjunct, readably."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kexecwatch.core.detect.rule import compile_query
from kexecwatch.core.detect.rule.explain import unparse
from kexecwatch.rules import load_builtin_rules

KEXEC = load_builtin_rules()[0].query


def kexec_doc(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "host": {"os": {"type": "linux"}},
        "event": {"category": ["process"], "type": ["start"], "action": "executed"},
        "process": {
            "name": "kexec",
            "args": ["kexec", "-e"],
            "parent": {"name": "bash", "pid": 7},
        },
    }
    for dotted, value in overrides.items():
        *path, leaf = dotted.split("__")
        target = doc
        for key in path:
            target = target.setdefault(key, {})
        if value is None:
            target.pop(leaf, None)
        else:
            target[leaf] = value
    return doc


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({}, None),
        ({"process__parent__name": "kdumpctl"}, "excluded: process.parent.name kdumpctl"),
        ({"process__parent__name": "unload.sh"}, "excluded: process.parent.name unload.sh"),
        ({"process__args": ["kexec", "-p"]}, "process.args not in list"),
        ({"process__args": None}, "process.args missing"),
        ({"process__name": "bash"}, "process.name is bash, not kexec"),
        ({"event__type": ["info"]}, "event.type is info, not start"),
        ({"event__category": ["file"]}, "event.category is file, not process"),
        ({"event__category": None}, "event.category missing"),
        # the first failing conjunct in query order wins, not the last one tried
        (
            {"process__name": "x", "process__parent__name": "kdumpctl"},
            "process.name is x, not kexec",
        ),
        ({"process__parent__name": None}, None),  # `not f in (...)` holds on a missing f
    ],
)
def test_kexec_rule_reasons(overrides: dict[str, Any], reason: str | None) -> None:
    doc = kexec_doc(**overrides)
    assert KEXEC.explain(doc) == reason
    assert KEXEC.matches(doc) is (reason is None)


def test_values_that_are_not_plain_words_are_quoted() -> None:
    doc = kexec_doc(process__parent__name="kdump ctl")
    query = compile_query('process where not process.parent.name in ("kdump ctl", "x y")')
    assert query.explain(doc) == 'excluded: process.parent.name "kdump ctl"'


def test_multi_valued_fields_show_a_short_list() -> None:
    query = compile_query('any where process.args == "--exec"')
    doc = {"process": {"args": ["kexec", "-l", "a", "b"]}}
    assert query.explain(doc) == "process.args is [kexec, -l, a, ...], not --exec"


@pytest.mark.parametrize(
    ("query", "doc", "reason"),
    [
        ("any where x != null", {}, "x missing"),
        ("any where x == null", {"x": 1}, "x is set"),
        ('any where x != "a"', {"x": "a"}, "x is a"),
        ("any where not x == null", {}, "excluded: x missing"),
        ('any where x not in ("a", "b")', {"x": ["c", "b"]}, "excluded: x b"),
        ('any where not x in~ ("A")', {"x": "a"}, "excluded: x a"),
        ("any where x > 3", {"x": 2}, "x is 2: failed x > 3"),
        ('any where x like "a*" and y == 1', {"x": "b", "y": 1}, 'x is b: failed x like "a*"'),
        ('any where not x like "a*"', {"x": "ab"}, 'excluded: x ab (x like "a*")'),
        ("any where x == 1 or y == 2", {}, "failed: x == 1 or y == 2"),
        ("any where length(x) > 2", {"x": "a"}, "failed: length(x) > 2"),
        ("any where not (x == 1 and y == 2)", {"x": 1, "y": 2}, "excluded: x == 1 and y == 2"),
        ("any where false", {}, "query is always false"),
    ],
)
def test_general_reasons(query: str, doc: dict[str, Any], reason: str) -> None:
    compiled = compile_query(query)
    assert compiled.explain(doc) == reason
    assert not compiled.matches(doc)


def test_unparse_reads_back_as_the_same_query() -> None:
    text = (
        'process where (a == "x" or ?b in ("1", "2")) and not c like~ "k*" '
        "and length(d) >= 3 and e != null and f not in (1, true)"
    )
    shown = unparse(compile_query(text).condition)
    assert shown == (
        '(a == "x" or ?b in ("1", "2")) and not c like~ "k*" and length(d) >= 3 '
        "and e != null and not f in (1, true)"
    )
    assert unparse(compile_query(f"process where {shown}").condition) == shown


_values = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.sampled_from(["kexec", "-e", "kdumpctl", "x"])
)
_docs = st.recursive(
    st.one_of(_values, st.lists(_values, max_size=3)),
    lambda inner: st.dictionaries(
        st.sampled_from(["process", "name", "args", "parent", "event", "category"]),
        inner,
        max_size=4,
    ),
    max_leaves=12,
)


@given(_docs)
def test_explain_agrees_with_matches(doc: Any) -> None:
    if not isinstance(doc, dict):
        doc = {"process": doc}
    for query in (KEXEC, compile_query("any where process.name == null or process.args > 1")):
        reason = query.explain(doc)
        assert (reason is None) is query.matches(doc)
        assert reason is None or isinstance(reason, str)
