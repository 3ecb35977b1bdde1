"""Issue 16 §3: rule patterns run on attacker-controlled text, so they match in linear time.

The slow cases run in a child process under a timeout and an address-space limit, so a
regression fails instead of hanging; absolute figures are in ``bench/hostile.py``.
The matchers are also held to Python's ``re`` (over the reference translations) on small
inputs, where backtracking is mostly harmless: ``re`` runs in a child that is given up on
when it backtracks for too long (see :class:`_Reference`).
"""

from __future__ import annotations

import json
import re
import select
import subprocess
import sys
import textwrap
from collections.abc import Iterator

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


class _Reference:
    """Python's ``re`` as the reference, in a child process that can be given up on.

    ``re`` backtracks, and a few patterns the generator writes (an unbounded repeat of a
    group that repeats, such as ``((.*){1,2}){1,2}*``) take it longer than any test can
    wait, even on eight characters: the reason the rule language does not use ``re``.
    Such an example gets no reference answer (the child is killed and started again);
    the matcher under test must still answer it. The child reads requests until its
    stdin closes and has a CPU-time limit, so a killed test run leaves nothing behind.
    """

    SERVER = textwrap.dedent(
        """
        import json, re, resource, sys
        resource.setrlimit(resource.RLIMIT_CPU, (20, 20))
        for line in sys.stdin:
            pattern, flags, text = json.loads(line)
            found = re.compile(pattern, flags).fullmatch(text) is not None
            sys.stdout.write(json.dumps(found) + "\\n")
            sys.stdout.flush()
        """
    )

    def __init__(self, timeout: float = 5.0) -> None:
        self.timeout = timeout
        self.child: subprocess.Popen[str] | None = None

    def fullmatch(self, pattern: str, flags: int, text: str) -> bool | None:
        """Whether ``re`` fully matches ``text``; ``None`` when it takes too long."""
        if self.child is None:
            self.child = subprocess.Popen(
                [sys.executable, "-c", self.SERVER],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        child = self.child
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(json.dumps([pattern, flags, text]) + "\n")
        child.stdin.flush()
        ready, _, _ = select.select([child.stdout], [], [], self.timeout)
        if not ready:
            child.kill()
            child.wait()
            child.stdin.close()
            child.stdout.close()
            self.child = None
            return None
        answer = json.loads(child.stdout.readline())
        assert isinstance(answer, bool)
        return answer

    def close(self) -> None:
        """End the child: it exits when its stdin closes."""
        if self.child is not None:
            assert self.child.stdin is not None and self.child.stdout is not None
            self.child.stdin.close()
            self.child.wait()
            self.child.stdout.close()
            self.child = None


_REFERENCE = _Reference()


@pytest.fixture(scope="module", autouse=True)
def _end_the_reference() -> Iterator[None]:
    yield
    _REFERENCE.close()


def _check_regex(pattern: str, text: str, nocase: bool) -> None:
    flags = re.DOTALL | (re.IGNORECASE if nocase else 0)
    try:
        translated = lucene_to_python(pattern)
        re.compile(translated, flags)
    except (PatternError, re.error):
        event("pattern outside the subset")
        return
    answer = regex_matcher(pattern, nocase=nocase)(text)
    expected = _REFERENCE.fullmatch(translated, flags, text)
    if expected is None:
        event("re backtracks too long: the matcher answered alone")
        assert isinstance(answer, bool)
        return
    event("matched" if expected else "not matched")
    assert answer == expected


def test_the_reference_gives_up_on_what_re_cannot_match_in_time() -> None:
    # Found by hypothesis in a CI run: re never finished this fullmatch, which hung the
    # whole suite; the linear matcher answers at once.
    pattern = '.*{1,2}{1,2}*"a."'
    translated = lucene_to_python(pattern)
    reference = _Reference(timeout=1.0)
    assert reference.fullmatch(translated, re.DOTALL | re.IGNORECASE, "A. ..\na1") is None
    assert reference.child is None
    assert reference.fullmatch("a.", 0, "ab") is True  # a new child after the killed one
    reference.close()
    assert regex_matcher(pattern, nocase=True)("A. ..\na1") is False
    assert _REFERENCE.fullmatch("a.", 0, "ab") is True


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
@example('.*{1,2}{1,2}*"a."', "A. ..\na1", True)
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
