"""The shortcuts that make loading many rules cheaper give what the plain ways gave.

* Finding ``rule.query`` in a rule file (``ruleset._query_keys`` and ``_last_table``):
  the matches of the two multi-line patterns the loader used to try at every place.
* :class:`~kexecwatch.core.scan.argtest.NeedleGate`: gates of equal needles share their
  searches (built once), and answer as gates built on their own.
* ``prefilters_of``: the name and argument tests of one reduction of the query, as
  ``can_match`` and ``args_test`` each make.
"""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from kexecwatch.core import prefilters_of
from kexecwatch.core.detect.rule import ruleset
from kexecwatch.core.detect.ruleindex import args_test, can_match
from kexecwatch.core.scan import argtest
from kexecwatch.core.scan.argtest import Facts, NeedleGate
from kexecwatch.rules.source import load_rule_source
from tests.test_rule_source import SNAPSHOT, needs_snapshot

# The patterns the loader tried at every place of a rule file.
_QUERY_KEY = re.compile(r"^[ \t]*query[ \t]*=[ \t]*(\"\"\"|'''|\"|')", re.MULTILINE)
_TABLE = re.compile(r"^[ \t]*\[+[ \t]*([^\]]+?)[ \t]*\]", re.MULTILINE)

# Pieces of rule files, the tricky ones often: keys after text, headers over lines.
_PIECES = st.sampled_from(
    ["query", "query =", " ", "\t", "=", '"', "'", '"""', "'''", "\n", "[", "]", "[[", "]]"]
    + ["rule", "[rule]", "metadata", "x", "\r", "q", "note = ", "\n[rule]\n", "é"]
)
_TEXTS = st.lists(_PIECES, max_size=40).map("".join)


@given(_TEXTS)
def test_query_keys_are_the_matches_of_the_multiline_pattern(text: str) -> None:
    expected = [(m.start(), m.end(), m.group(1)) for m in _QUERY_KEY.finditer(text)]
    assert list(ruleset._query_keys(text)) == expected


@given(_TEXTS, st.integers(min_value=0, max_value=200))
def test_last_table_is_the_last_match_of_the_multiline_pattern(text: str, end: int) -> None:
    end = min(end, len(text))
    tables = list(_TABLE.finditer(text, 0, end))
    assert ruleset._last_table(text, end) == (tables[-1].group(1) if tables else None)


def test_a_header_running_over_lines_hides_the_headers_inside_it() -> None:
    text = "[note\n[rule]\n]\nquery = 'x'\n"
    assert ruleset._last_table(text, text.index("query")) == "note\n[rule"


@needs_snapshot
def test_every_snapshot_query_is_located_as_before() -> None:
    def located(text: str) -> tuple[int, int] | None:
        for m in _QUERY_KEY.finditer(text):
            tables = list(_TABLE.finditer(text, 0, m.start()))
            if tables and tables[-1].group(1) == "rule":
                return m.start(), m.end()
        return None

    files = sorted((SNAPSHOT / "rules").rglob("*.toml"))
    assert len(files) > 300
    for path in files:
        text = path.read_text(encoding="utf-8")
        found = next(
            (
                (line, start)
                for line, start, _ in ruleset._query_keys(text)
                if ruleset._last_table(text, line) == "rule"
            ),
            None,
        )
        assert found == located(text), path


def test_gates_of_equal_needles_share_their_searches() -> None:
    needles = [(f"-{i}x", i % 2 == 0) for i in range(20)] + [("a b", False)]
    first = NeedleGate(needles)
    second = NeedleGate(reversed(needles))
    assert first._line is second._line
    assert first._raw_exact is second._raw_exact
    assert first._raw_folded is second._raw_folded
    other = NeedleGate(needles[1:])
    assert other._line is not first._line


def test_a_shared_gate_answers_as_a_gate_built_alone() -> None:
    needles = [(f"--opt{i}", i % 3 == 0) for i in range(12)]
    shared = NeedleGate(needles)
    argtest._GATE_PARTS.clear()
    alone = NeedleGate(needles)
    assert alone._line is not shared._line
    for line in ("ls -l", "tool --opt4 x", "TOOL --OPT3", "x --opt1", "--OPT1", "--opt11"):
        words = line.split(" ")
        raw = f"argc={len(words)} " + " ".join(f'a{i}="{w}"' for i, w in enumerate(words))
        facts = Facts(("tool", "/usr/bin/tool", line), None, b"", raw_args=raw.encode())
        assert shared.shut(facts) == alone.shut(facts), line
        assert shared.shut_line(facts) == alone.shut_line(facts), line
        assert shared.shut_raw(raw.encode()) == alone.shut_raw(raw.encode()), line


@needs_snapshot
def test_prefilters_of_tests_as_can_match_and_args_test_say() -> None:
    loaded = load_rule_source(str(SNAPSHOT / "rules" / "linux"))
    assert len(loaded.rules) > 200
    for rule in loaded.rules:
        stages = getattr(getattr(rule, "query", None), "all_stages", None)
        if callable(stages):
            continue
        found = prefilters_of(rule)
        if not can_match(rule):
            assert found == [], rule.name
            continue
        expected = args_test(rule)
        for prefilter in found:
            assert (prefilter.args is None) == (expected is None), rule.name
            if expected is not None:
                assert prefilter.args is not None
                assert repr(prefilter.args.root) == repr(expected.root), rule.name


def test_a_gates_patterns_are_made_when_first_searched_with() -> None:
    needles = [(f"--flag{i}", False) for i in range(8)]
    gate = NeedleGate(needles)
    single = gate._raw_exact[0] if gate._raw_exact is not None else None
    assert isinstance(single, argtest._Later)
    assert single._make is not None  # not made yet
    quoted = b'argc=2 a0="tool" a1="--flag3"'
    assert not gate.shut_raw(quoted)
    assert single._make is None
    assert gate.shut_raw(b'argc=2 a0="tool" a1="--other"')
    assert [gate.shut_line(Facts(("t", "/t", line))) for line in ("t --flag7", "t x")] == [
        False,
        True,
    ]
