"""Issue 16 §3: rule patterns run on attacker-controlled text, so they match in linear time.

The slow cases run in a child process under a timeout and an address-space limit, so a
regression fails instead of hanging; absolute figures are in ``bench/hostile.py``.
The matchers are also held to Python's ``re`` (over the reference translations) on small
inputs, where backtracking is harmless.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from kexecwatch.core.detect.rule import automaton, compile_query
from kexecwatch.core.detect.rule.automaton import MAX_DFA_STATES
from kexecwatch.core.detect.rule.patterns import (
    MAX_STATES,
    PatternError,
    any_of,
    lucene_to_python,
    regex_matcher,
    wildcard_matcher,
    wildcard_to_python,
)
from kexecwatch.errors import RuleError


def _in_child(code: str, timeout: float = 20) -> str:
    """Run ``code`` in a fresh interpreter (1 GiB, ``timeout`` s); its stdout."""
    prelude = "import resource; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
    done = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return done.stdout.decode()


@pytest.mark.parametrize(
    ("query", "value", "expected"),
    [
        ('process.args regex "(a+)+b"', '"a" * 30', False),
        ('process.args regex "(a+)+b"', '"a" * 300_000 + "b"', True),
        ('process.args regex~ "(A|a)*(a|A)*c"', '"a" * 300_000', False),
        ('process.args like "*a*a*a*a*b"', '"a" * 500', False),
        ('process.args like "*a*a*a*a*b"', '"a" * 500_000 + "b"', True),
        ('process.command_line : "*x*y*z"', '"x" * 504_000', False),
        ('process.command_line like~ "*X*?Y*z"', '"x" * 252_000 + "y" * 252_000', False),
    ],
)
def test_hostile_values_match_in_linear_time(query: str, value: str, expected: bool) -> None:
    out = _in_child(
        f"""
        from kexecwatch.core.detect.rule import compile_query
        q = compile_query('process where ' + {query!r})
        v = {value}
        print(q.matches({{"event": {{"category": ["process"]}},
                         "process": {{"args": [v], "command_line": v}}}}))
        """
    )
    assert out.strip() == str(expected)


def test_a_regex_too_large_for_linear_matching_is_refused() -> None:
    with pytest.raises(RuleError) as info:
        compile_query('process where process.name regex "(a{100}){100}"')
    message = str(info.value)
    assert "<query>:1:34:" in message
    assert f"more than {MAX_STATES} states" in message


def test_a_small_repeat_is_accepted() -> None:
    query = compile_query('process where process.name regex "k[a-z]{2,5}c"')
    assert query.matches({"event": {"category": ["process"]}, "process": {"name": "kexec"}})


LUCENE_ALPHABET = ["a", "b", ".", "*", "+", "?", "|", "(", ")", "[ab]", "[^a]", "{2}", "{1,2}"]
LUCENE_ALPHABET += ["{0,}", "\\d", "\\W", '"a."', "[a-c]", "\\.", "ab", "[-b]", "[\\s]"]


def _check_regex(pattern: str, text: str, nocase: bool) -> None:
    try:
        translated = lucene_to_python(pattern)
        reference = re.compile(translated, re.DOTALL | (re.IGNORECASE if nocase else 0))
    except (PatternError, re.error):
        event("pattern outside the subset")
        return
    expected = reference.fullmatch(text) is not None
    event("matched" if expected else "not matched")
    assert regex_matcher(pattern, nocase=nocase)(text) == expected


@settings(max_examples=1500, deadline=None)
@given(
    st.lists(st.sampled_from(LUCENE_ALPHABET), max_size=7).map("".join),
    st.text(alphabet="ab1. \nA", max_size=8),
    st.booleans(),
)
@example("(a|ab)(c|bcd)(d*)", "abcd", False)
@example("a**", "aaa", False)
@example("(a*)*b", "aaab", False)
@example("a{0}", "", False)
@example("[a-c]{2,}|.", "cab", False)
@example("[^a]", "A", True)
def test_regex_matcher_agrees_with_python_re(pattern: str, text: str, nocase: bool) -> None:
    _check_regex(pattern, text, nocase)


@settings(max_examples=700, deadline=None)
@given(st.lists(st.sampled_from(LUCENE_ALPHABET), max_size=7).map("".join), st.data())
def test_regex_matcher_matches_what_python_re_generates(pattern: str, data: st.DataObject) -> None:
    try:
        reference = re.compile(lucene_to_python(pattern), re.DOTALL)
    except (PatternError, re.error):
        return
    text = data.draw(st.from_regex(reference, fullmatch=True).filter(lambda t: len(t) < 30))
    _check_regex(pattern, text, False)
    _check_regex(pattern, text.swapcase(), True)


@settings(max_examples=1500, deadline=None)
@given(
    st.lists(st.text(alphabet="ab*?.\\", max_size=4), min_size=1, max_size=3),
    st.text(alphabet="ab.\\\n", max_size=10),
)
@example(["*a*a*b"], "aab")
@example(["a*?"], "a")
@example(["*?*"], "")
@example(["", "b*"], "")
def test_wildcard_matcher_agrees_with_python_re(patterns: list[str], text: str) -> None:
    reference = re.compile("|".join(f"(?:{wildcard_to_python(p)})" for p in patterns), re.DOTALL)
    assert any_of([wildcard_matcher(p) for p in patterns])(text) == (
        reference.fullmatch(text) is not None
    )


def test_a_regex_whose_dfa_explodes_is_refused_quickly() -> None:
    # [ab]*a[ab]{20} needs 2**21 DFA states: Lucene refuses it too.
    with pytest.raises(RuleError) as info:
        compile_query('process where process.name regex "[ab]*a[ab]{20}"')
    assert f"more than {MAX_DFA_STATES} states once determinized" in str(info.value)
    out = _in_child(
        """
        import time
        from kexecwatch.core.detect.rule.patterns import PatternError, regex_matcher
        started = time.perf_counter()
        try:
            regex_matcher("(a|b|c|d|e|f|g|h)*[a-h]{3000}")
        except PatternError as exc:
            print(exc)
        print(time.perf_counter() - started < 5)
        """
    )
    assert out.splitlines() == [
        "too large to match in linear time: its DFA takes more than 1000000 steps to build",
        "True",
    ]


@pytest.mark.parametrize(
    ("pattern", "text"),
    [
        ("[a-c]*k", "ab\u212a"),
        ("[^k]x", "\u212ax"),
        ("(k|\u212a)+", "kK\u212a"),
        ("[a-z]+", "x\u212a"),
        # The Kelvin sign is both 'k' and in the range: a DFA state no class showed.
        ("k[0-9]|[\u2000-\u3000]x", "\u212ax"),
        ("k[0-9]|[\u2000-\u3000]x", "\u212a1"),
        ("k[0-9]|[\u2000-\u3000]x", "\u212a\u212a"),
    ],
)
def test_case_pairs_first_met_in_a_text_match_as_re_does(
    pattern: str, text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = re.fullmatch(lucene_to_python(pattern), text, re.DOTALL | re.IGNORECASE)
    assert regex_matcher(pattern, nocase=True)(text) == (expected is not None)
    # And once more with no room left in the DFA: the rest of the text runs on the NFA.
    match = regex_matcher(pattern, nocase=True)
    monkeypatch.setattr(automaton, "MAX_DFA_STATES", 0)
    assert match(text) == (expected is not None)
