"""Property tests: the core raises only RuleError, matches never raises, prefilters are sound."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from kexecwatch.core.detect.rule import CompiledQuery, compile_query
from kexecwatch.errors import RuleError

TOKENS = [
    "process",
    "any",
    "where",
    "and",
    "or",
    "not",
    "in",
    "in~",
    "like",
    "like~",
    "regex",
    "regex~",
    ":",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "=",
    "(",
    ")",
    ",",
    "?",
    ".",
    "-",
    "true",
    "false",
    "null",
    "length",
    "process.name",
    "process.args",
    '"a*"',
    '"b?"',
    '"""r\\aw"""',
    '"\\u{41}"',
    '"\\u{110000}"',
    '"\\"',
    "'x'",
    "1",
    "2.5",
    "1e3",
    "//c\n",
    "/*",
    "*/",
    "`f-1`",
    "|",
    "~",
    "\\",
    '"[a-"',
    '"(a"',
    '"a{2,1}"',
    '"a**"',
    '"<1-2>"',
]


def _compile_or_rule_error(text: str) -> CompiledQuery | None:
    try:
        return compile_query(text)
    except RuleError:
        return None


@given(st.text())
def test_arbitrary_text_raises_only_rule_error(text: str) -> None:
    _compile_or_rule_error(text)


@given(st.lists(st.sampled_from(TOKENS), max_size=14))
def test_token_soup_raises_only_rule_error(tokens: list[str]) -> None:
    _compile_or_rule_error(" ".join(tokens))


@given(st.lists(st.sampled_from(TOKENS[5:]), max_size=10))
def test_conditions_raise_only_rule_error(tokens: list[str]) -> None:
    _compile_or_rule_error("process where " + " ".join(tokens))


@given(st.text(alphabet='ab.*+?|()[]{}^$\\"0123-,dsw~&<>@#', max_size=12))
def test_arbitrary_regex_raises_only_rule_error(pattern: str) -> None:
    escaped = pattern.replace('"', "")
    _compile_or_rule_error(f'process where process.name regex~ """{escaped}"""')


KEYS = ["process", "name", "args", "parent", "event", "category", "type", "args_count", "x"]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(allow_nan=True)
    | st.sampled_from(["a", "b", "A", "kexec", "-l", "process", "\udc80", "bash", "é", ""])
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)
    ),
    max_leaves=12,
)
DOCS = st.dictionaries(st.sampled_from(KEYS), JSON, max_size=4)

QUERIES = [
    compile_query(q)
    for q in [
        'process where process.name == "a" and process.args in ("a", "-l", "")',
        'any where process.name != "a" or not process.args in~ ("A", "b")',
        'process where process.name : ("a*", "?") and process.args like~ "*L"',
        'process where process.args regex~ "[a-z]+" or process.name regex ".*"',
        "process where process.args_count >= 1 and process.args_count < 2.5",
        'process where process.name > "a" or process.name <= "B"',
        "process where length(process.name) == 1 or length(process.args) > 0",
        "process where process.name == null or ?process.parent.name != null",
        'process where process.x == true or process.args == 1 or process.args in (1, true, "a")',
        'any where event.category == "process" and event.type : "start"',
    ]
]


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(DOCS)
def test_matches_never_raises(doc: dict[str, Any]) -> None:
    for query in QUERIES:
        assert query.matches(doc) in (True, False)


_MISSING = object()


def _elements(value: Any) -> Iterator[Any]:
    if isinstance(value, list):
        for item in value:
            yield from _elements(item)
    elif value is not None:
        yield value


def _field(doc: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        if not isinstance(doc, dict) or key not in doc:
            return None
        doc = doc[key]
    return doc


FIELD_NAMES = ["process.name", "process.args", "event.type", "process.parent.name"]
VALUES = ['"a"', '"b"', '"A"', '"-l"', "1", "null", '"a*"']


@st.composite
def conjunct(draw: st.DrawFn) -> str:
    field = draw(st.sampled_from(FIELD_NAMES))
    kind = draw(st.sampled_from(["==", "!=", "in", "not in", ":", "in~", "like", "or", "not"]))
    if kind in ("in", "not in", "in~"):
        values = draw(st.lists(st.sampled_from(VALUES[:4]), min_size=1, max_size=3))
        return f"{field} {kind} ({', '.join(values)})"
    if kind in ("or", "not"):
        inner = draw(conjunct())
        other = draw(conjunct())
        return f"({inner} or {other})" if kind == "or" else f"not ({inner})"
    value = draw(st.sampled_from(VALUES if kind in ("==", "!=") else VALUES[:4] + VALUES[6:]))
    return f"{field} {kind} {value}"


@st.composite
def query_text(draw: st.DrawFn) -> str:
    category = draw(st.sampled_from(["process", "any"]))
    items = draw(st.lists(conjunct(), min_size=1, max_size=3))
    return f"{category} where " + " and ".join(items)


# Every combination of these values over FIELD_NAMES: small enough to enumerate (8**4
# documents), rich enough that generated queries match some of them.
FIELD_DOMAIN: list[Any] = [_MISSING, "a", "A", "b", ["a", "b"], ["A", 1], None, [["b"], "-l"]]


def _all_docs() -> list[dict[str, Any]]:
    docs = []
    for combo in itertools.product(FIELD_DOMAIN, repeat=len(FIELD_NAMES)):
        doc: dict[str, Any] = {"event": {"category": ["process"]}}
        for name, value in zip(FIELD_NAMES, combo, strict=True):
            if value is _MISSING:
                continue
            *parents, leaf = name.split(".")
            node = doc
            for key in parents:
                node = node.setdefault(key, {})
            node[leaf] = value
        docs.append(doc)
    return docs


ALL_DOCS = _all_docs()


@settings(max_examples=200, deadline=None)
@given(query_text())
# Two conjuncts on one array field can be met by different elements: ["a", "b"].
@example('process where process.args == "a" and process.args in ("b", "-l")')
def test_required_values_are_sound(text: str) -> None:
    query = compile_query(text)
    required = query.required_values()
    assert set(required) <= query.fields
    matched = [doc for doc in ALL_DOCS if query.matches(doc)]
    event("matched with a prefilter" if matched and len(required) > 1 else "vacuous")
    for doc in matched:
        for field, values in required.items():
            elements = [e for e in _elements(_field(doc, field)) if isinstance(e, str)]
            assert values.intersection(elements), (field, values, doc)


def test_required_values_of_the_kexec_shape() -> None:
    query = compile_query(
        'process where a.b == "x" and a.c in ("y", "z") and a.b in ("x", "w") and '
        'not a.d == "q" and (a.e == "r" or a.f == "s") and a.g : "t" and a.h == 1'
    )
    assert query.required_values() == {
        "event.category": frozenset({"process"}),
        "a.b": frozenset({"x"}),
        "a.c": frozenset({"y", "z"}),
    }
    assert compile_query('any where a == 1 or b == "x"').required_values() == {}
