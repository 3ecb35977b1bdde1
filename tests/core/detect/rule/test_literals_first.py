"""A case-sensitive ``regex`` leaf tests the literal text every match holds before it
walks its automaton (issue 15: many rules). A set of several needles (``[0-9]\\.[0-9]``
gives ``0.0`` .. ``9.9``) is one ``re`` search for any of them; the answer is always the
automaton's."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import example, given, settings
from hypothesis import strategies as st

from kexecwatch.core.detect.rule import evaluate
from kexecwatch.core.detect.rule.patterns import PatternError, regex_matcher

_TUNNEL = (
    ".*[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}:[0-9]{1,5}:"
    "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}:[0-9]{1,5}.*"
)
_ALPHABET = ["a", "b", ".", ".*", "+", "?", "[0-9]", "\\d", "{1,3}", "{2}", ":", "\\.", "[ab]"]
_ALPHABET += ["(", ")", "|", "ab:"]


def _counted(pattern: str) -> tuple[Callable[[str], bool], list[str]]:
    walked: list[str] = []
    plain = regex_matcher(pattern, nocase=False)

    def matcher(text: str) -> bool:
        walked.append(text)
        return plain(text)

    return evaluate._literals_first(pattern, matcher), walked


def test_a_text_without_any_needle_of_a_set_is_not_walked() -> None:
    # A Java class path holds "." and ":" (what the needle sets of the tunnelling rule's
    # regex all share) but no digit, dot, digit: the automaton is not walked over it.
    test, walked = _counted(_TUNNEL)
    classpath = "java -cp " + ":".join(f"/opt/app/lib/util-{i}.jar" for i in range(200))
    assert test(classpath) is False
    assert walked == []
    assert test("ssh -L 10.0.0.1:8080:192.168.1.2:80 host") is True
    assert test("ssh -L 10.0.0.1:8080:192.168.1.2: host") is False
    assert len(walked) == 2


@settings(max_examples=1500, deadline=None)
@given(
    st.lists(st.sampled_from(_ALPHABET), max_size=8).map("".join),
    st.text(alphabet="ab01.:9 ", max_size=24),
)
@example(_TUNNEL, "x 1.2.3.4:5:6.7.8.9:10 y")
@example("[0-9]\\.[0-9]ab:", "1.2ab:")
def test_the_needles_never_change_the_answer(pattern: str, text: str) -> None:
    try:
        plain = regex_matcher(pattern, nocase=False)
    except PatternError:
        return
    assert evaluate._literals_first(pattern, plain)(text) == plain(text)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(_ALPHABET), max_size=8).map("".join), st.data())
def test_a_text_the_regex_matches_passes_the_needles(pattern: str, data: st.DataObject) -> None:
    import re

    from kexecwatch.core.detect.rule.patterns import lucene_to_python

    try:
        plain = regex_matcher(pattern, nocase=False)
        reference = re.compile(lucene_to_python(pattern), re.DOTALL)
    except (PatternError, re.error):
        return
    text = data.draw(st.from_regex(reference, fullmatch=True).filter(lambda t: len(t) < 40))
    assert plain(text) is True
    assert evaluate._literals_first(pattern, plain)(text) is True
