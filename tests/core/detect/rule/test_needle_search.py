"""A pattern leaf on an array (``process.args like~ (...)``) first searches the elements
joined by NUL for text one of them must hold (issue 15: arguments rarely repeat, so
their verdicts are rarely remembered, and most argument lists hold none of it). The
answer is always that of trying each element."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from kexecwatch.core.detect.rule import compile_query, evaluate

QUERIES = [
    'process where process.args like~ ("*/DEV/tcp/*", "*Zsh/net/*", "x?z")',
    'process where process.args like ("*/dev/tcp/*", "-c")',
    'process where process.args : ("*ΣIGMA*", "*İx*", "kelvin*")',
    'process where process.args regex ".*[0-9]{1,3}\\\\.[0-9]{1,3}:[0-9]+.*"',
    'process where process.args regex~ ".*ab[0-9]+.*"',
    'process where process.args like~ ("*", "a*")',
    'process where process.parent.args like~ "*sap.com*/irj/*"',
]
PIECES = ["/dev/tcp/", "/DEV/TCP/", "zsh/net/", "ZSH/NET/", "x", "z", "y", "-c"]
PIECES += ["\u03c3igma", "ΣIGMA"]
PIECES += ["ςigma", "İx", "i̇x", "KELVIN", "Kelvin", "1.2:3", "12.34:5", "ab12", "AB3", "sap.com"]
PIECES += ["/irj/", "a", "\0", "Σ", " ", ""]


@contextmanager
def _without_needles() -> Iterator[None]:
    plain = evaluate._needle_search
    evaluate._needle_search = lambda cmp: None
    try:
        yield
    finally:
        evaluate._needle_search = plain


def _both(text: str) -> tuple[Callable[[Any], bool], Callable[[Any], bool]]:
    with _without_needles():
        reference = compile_query(text).matches
    return compile_query(text).matches, reference


COMPILED = [_both(q) for q in QUERIES]
_element = st.lists(st.sampled_from(PIECES), max_size=4).map("".join)


@settings(max_examples=1500, deadline=None)
@given(
    st.lists(
        st.one_of(_element, _element, st.none(), st.integers(0, 3), st.lists(_element, max_size=2)),
        max_size=5,
    ),
    st.booleans(),
)
@example(["Σ", "x"], False)
@example(["aΣ", "\0z"], False)
@example(["1.2:3"], True)
def test_the_needle_search_never_changes_the_answer(values: list[Any], parent: bool) -> None:
    process: dict[str, Any] = {"args": values}
    if parent:
        process = {"parent": {"args": values}}
    doc = {"event": {"category": ["process"]}, "process": process}
    for fast, reference in COMPILED:
        assert fast(doc) == reference(doc), doc


@settings(max_examples=500, deadline=None)
@given(st.lists(st.text(max_size=6), max_size=5))
def test_the_lower_case_of_elements_joined_by_nul_is_theirs_joined(values: list[str]) -> None:
    assert "\0".join(values).lower() == "\0".join(v.lower() for v in values)


@pytest.mark.parametrize("char", ["Σ", "İ", "ẞ", "K", "ǅ", "\u0345"])
def test_no_character_lowers_by_its_neighbours_across_nul(char: str) -> None:
    for left in ("", "A", "a\u0301", "Σ"):
        for right in ("", "B", "\u0301b", "Σ"):
            values = [left + char, char + right, char]
            assert "\0".join(values).lower() == "\0".join(v.lower() for v in values)


def test_a_list_without_the_needles_is_not_matched_element_by_element(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tried: list[str] = []
    plain = evaluate.wildcard_matcher

    def counted(pattern: str) -> Callable[[str], bool]:
        match = plain(pattern)

        def test(text: str) -> bool:
            tried.append(text)
            return match(text)

        return test

    monkeypatch.setattr(evaluate, "wildcard_matcher", counted)
    query = compile_query('process where process.args like~ ("*/dev/tcp/*", "*/dev/udp/*")')
    args = ["bash", "-c", "echo hello > /tmp/out.txt"]
    assert not query.matches({"event": {"category": ["process"]}, "process": {"args": args}})
    assert tried == []
    args = ["bash", "-c", "exec 3<>/DEV/TCP/10.0.0.1/80"]
    assert query.matches({"event": {"category": ["process"]}, "process": {"args": args}})
    assert tried
