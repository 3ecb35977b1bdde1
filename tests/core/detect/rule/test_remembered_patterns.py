"""Pattern leaves remember their verdict per text (issue 15: many rules, the same names,
paths and arguments event after event), and a remembered verdict is always the verdict:
held equal to Python's ``re`` over the reference translations, with the memory forgotten
at any moment."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kexecwatch.core.detect.rule import compile_query, evaluate
from kexecwatch.core.detect.rule.patterns import lucene_to_python, wildcard_to_python


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The texts every wildcard matcher compiled from now on is called with."""
    seen: list[str] = []
    plain = evaluate.wildcard_matcher

    def counted(pattern: str) -> Callable[[str], bool]:
        match = plain(pattern)

        def test(text: str) -> bool:
            seen.append(text)
            return match(text)

        return test

    monkeypatch.setattr(evaluate, "wildcard_matcher", counted)
    return seen


def test_a_text_seen_again_is_not_matched_again(calls: list[str]) -> None:
    query = compile_query('process where process.args like~ ("*foo*", "*bar?")')
    docs = [
        {"event": {"category": ["process"]}, "process": {"args": args}}
        for args in (["-x", "Foo"], ["BARS", "-x"], ["-x"])
    ]
    assert [query.matches(d) for d in docs] == [True, True, False]
    first = list(calls)
    assert sorted(set(first)) == ["-x", "bars", "foo"]  # matched lower-cased
    assert [query.matches(d) for d in docs] == [True, True, False]
    assert calls == first  # every element's verdict was remembered


def test_long_texts_are_matched_every_time(calls: list[str]) -> None:
    query = compile_query('process where process.command_line like "*a*"')
    long = "b" * evaluate._MAX_VERDICT_TEXT + "a"  # 64 Ki characters
    doc = {"event": {"category": ["process"]}, "process": {"command_line": long}}
    assert query.matches(doc) and query.matches(doc)
    assert calls == [long, long]


@pytest.mark.parametrize(("entries", "chars"), [(8, 1 << 20), (1 << 20, 64)])
def test_the_memory_is_bounded(monkeypatch: pytest.MonkeyPatch, entries: int, chars: int) -> None:
    """At most ``_MAX_VERDICTS`` verdicts, on texts of at most ``_MAX_VERDICT_CHARS``
    characters together."""
    monkeypatch.setattr(evaluate, "_MAX_VERDICTS", entries)
    monkeypatch.setattr(evaluate, "_MAX_VERDICT_CHARS", chars)
    monkeypatch.setattr(evaluate, "_verdicts", {})
    monkeypatch.setattr(evaluate, "_verdict_chars", [0])
    query = compile_query('process where process.name : "x*"')
    for i in range(50):
        doc = {"event": {"category": ["process"]}, "process": {"name": f"X{i:010d}"}}
        assert query.matches(doc)
        assert 1 <= len(evaluate._verdicts) <= min(entries, chars // 11)
        assert sum(len(text) for _, text in evaluate._verdicts) == evaluate._verdict_chars[0]
        assert evaluate._verdict_chars[0] <= chars


_OPS = ["like", "like~", ":", "regex", "regex~"]
_TEXTS = st.text(alphabet="aAbB.*?/", max_size=6)


def _oracle(op: str, patterns: list[str], value: str) -> bool:
    nocase = op in ("like~", ":", "regex~")
    for pattern in patterns:
        if op.startswith("regex"):
            flags = re.DOTALL | (re.IGNORECASE if nocase else 0)
            if re.fullmatch(lucene_to_python(pattern), value, flags):
                return True
        elif re.fullmatch(
            wildcard_to_python(pattern.lower() if nocase else pattern),
            value.lower() if nocase else value,
            re.DOTALL,
        ):
            return True
    return False


@settings(max_examples=300, deadline=None)
@given(
    op=st.sampled_from(_OPS),
    patterns=st.lists(st.text(alphabet="aAb*?.", min_size=1, max_size=4), min_size=1, max_size=3),
    stream=st.lists(st.lists(_TEXTS, max_size=3), min_size=1, max_size=12),
    forget=st.sets(st.integers(0, 11)),
)
def test_remembered_verdicts_equal_the_reference(
    op: str, patterns: list[str], stream: list[list[str]], forget: set[int]
) -> None:
    """A stream of documents (texts recur), the memory forgotten at random points: every
    verdict is ``re``'s on the reference translation."""
    if op.startswith("regex"):
        patterns = [p.replace("*", "a*").replace("?", "b?") for p in patterns]
    quoted = ", ".join('"' + p + '"' for p in patterns)
    query = compile_query(f"process where process.args {op} ({quoted})")
    for i, args in enumerate(stream * 2):
        if i in forget:
            evaluate._verdicts.clear()
        doc = {"event": {"category": ["process"]}, "process": {"args": args}}
        expected = any(_oracle(op, patterns, a) for a in args)
        assert query.matches(doc) is expected, (op, patterns, args)


def test_a_regex_whose_literal_text_is_missing_is_not_walked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    walked: list[str] = []
    plain = evaluate.regex_matcher

    def counted(pattern: str, *, nocase: bool = False) -> Callable[[str], bool]:
        match = plain(pattern, nocase=nocase)

        def test(text: str) -> bool:
            walked.append(text)
            return match(text)

        return test

    monkeypatch.setattr(evaluate, "regex_matcher", counted)
    query = compile_query(
        'process where process.command_line regex ".*[0-9]{1,3}\\\\.[0-9]{1,3}:[0-9]{1,5}.*"'
    )
    long = "x" * 1000

    def doc(line: str) -> dict[str, object]:
        return {"event": {"category": ["process"]}, "process": {"command_line": line}}

    assert not query.matches(doc(long + " 10.0.0.1"))  # no ":"
    assert not query.matches(doc(long + " host:22"))  # no "."
    assert walked == []
    assert query.matches(doc(long + " 10.1:22"))
    # "." and ":" but neither digit.digit nor digit:digit (the needle sets of the regex)
    assert not query.matches(doc(long + " a.b:c"))
    assert walked == [long + " 10.1:22"]
    assert not query.matches(doc(long + " 1.2 3:4"))  # every needle, not in a row
    assert walked == [long + " 10.1:22", long + " 1.2 3:4"]
