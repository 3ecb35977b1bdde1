"""Rule errors: exact locations and the source-line-plus-caret rendering."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from kexecwatch.core.detect.rule import compile_query, load_rule
from kexecwatch.errors import RuleError, SourceLocation

KEXEC_TOML = (
    Path(__file__).resolve().parents[4]
    / "kexecwatch/rules/privilege_escalation_load_and_unload_of_kernel_via_kexec.toml"
).read_text(encoding="utf-8")


def _error(text: str, **kwargs: object) -> RuleError:
    with pytest.raises(RuleError) as info:
        compile_query(text, **kwargs)  # type: ignore[arg-type]
    return info.value


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            'process where process.name = "kexec"',
            "<query>:1:28: '=' is not supported; use '==' or ':'\n"
            'process where process.name = "kexec"\n'
            "                           ^",
        ),
        (
            "process where process.name == 'kexec'",
            "<query>:1:31: single-quoted strings are not supported; use double quotes\n"
            "process where process.name == 'kexec'\n"
            "                              ^",
        ),
        (
            'process where process.name == "kexec',
            "<query>:1:31: unterminated string\n"
            'process where process.name == "kexec\n'
            "                              ^",
        ),
        (
            'process where wildcard(process.name, "k")',
            "<query>:1:15: unknown function 'wildcard'; supported: add, between, cidrMatch, "
            "concat, divide, endsWith, indexOf, length, modulo, multiply, number, startsWith, "
            "string, stringContains, substring, subtract\n"
            'process where wildcard(process.name, "k")\n'
            "              ^",
        ),
        (
            "process where process.name ==",
            "<query>:1:30: expected a string, number, true, false or null, found end of query\n"
            "process where process.name ==\n"
            "                             ^",
        ),
        (
            'process where process.name regex "a~b"',
            "<query>:1:34: unsupported regular expression: "
            "the Lucene complement operator '~' is not supported\n"
            'process where process.name regex "a~b"\n'
            "                                 ^",
        ),
        (
            "process where process.name == process.parent.name",
            "<query>:1:31: comparing a field to another field is not supported; "
            "the right-hand side must be a constant\n"
            "process where process.name == process.parent.name\n"
            "                              ^",
        ),
        (
            'process where process.name == "\\q"',
            '<query>:1:32: unknown escape sequence \\q; use a raw """string"""\n'
            'process where process.name == "\\q"\n'
            "                               ^",
        ),
        (
            "join [process where true] [process where true]",
            "<query>:1:1: join queries are not supported; "
            "only single-event queries, sequence and sample\n"
            "join [process where true] [process where true]\n"
            "^",
        ),
        (
            "process where process.name : 1",
            "<query>:1:30: ':' compares strings only\n"
            "process where process.name : 1\n"
            "                             ^",
        ),
        (
            "process where process.name == 1 | head 1",
            "<query>:1:33: pipes ('|') are not supported\n"
            "process where process.name == 1 | head 1\n"
            "                                ^",
        ),
    ],
)
def test_caret_rendering(query: str, expected: str) -> None:
    assert str(_error(query)) == expected


def test_line_and_column_on_a_later_line_with_offset() -> None:
    query = 'process where process.name == "kexec"\n  and process.args in ("-l" "-u")'
    err = _error(query, source="rules/x.eql", line_offset=10)
    assert err.where == SourceLocation("rules/x.eql", 12, 29)
    assert err.detail == '  and process.args in ("-l" "-u")\n                            ^'
    assert err.message == "expected ',' or ')' in the list, found a string"


def test_caret_copies_tabs() -> None:
    err = _error('process where\tprocess.name = "x"')
    assert err.detail == 'process where\tprocess.name = "x"\n             \t             ^'


def test_unterminated_block_comment() -> None:
    err = _error("process where /* never closed")
    assert err.where == SourceLocation("<query>", 1, 15)


def test_toml_query_error_points_into_the_file() -> None:
    text = KEXEC_TOML.replace('host.os.type == "linux"', 'host.os.type = "linux"')
    with pytest.raises(RuleError) as info:
        load_rule(text, "kexec.toml")
    lines = text.splitlines()
    line = next(i for i, s in enumerate(lines, 1) if 'host.os.type = "linux"' in s)
    assert info.value.where == SourceLocation("kexec.toml", line, 28)
    assert info.value.detail.splitlines() == [lines[line - 1], " " * 27 + "^"]


def test_toml_query_on_the_key_line_keeps_the_file_column() -> None:
    text = 'query = """process where x = 1"""'
    rule_text = KEXEC_TOML.split("query = '''")[0] + text + "\n"
    with pytest.raises(RuleError) as info:
        load_rule(rule_text, "r.toml")
    line = rule_text.count("\n")
    assert info.value.where == SourceLocation("r.toml", line, 28)
    assert info.value.detail == text + "\n" + " " * 27 + "^"


def test_toml_query_with_escapes_reports_position_within_the_query() -> None:
    text = KEXEC_TOML.split("query = '''")[0] + 'query = "process where x == \\"a\\" and y = 1"\n'
    with pytest.raises(RuleError) as info:
        load_rule(text, "r.toml")
    assert info.value.where == SourceLocation("r.toml", 1, 30)
    assert info.value.message.endswith("(line and column within rule.query)")


def test_bad_toml_reports_line_and_column() -> None:
    with pytest.raises(RuleError) as info:
        load_rule('[rule]\nname = "x"\nrisk_score = \n', "bad.toml")
    assert (
        str(info.value)
        == "bad.toml:3:14: invalid TOML: Invalid value\nrisk_score = \n             ^"
    )


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ('name = "Kernel Load or Unload via Kexec Detected"\n', ""),
            "missing required key rule.name",
        ),
        (
            ("risk_score = 47", 'risk_score = "47"'),
            "rule.risk_score must be of type integer, found str",
        ),
        (
            ("risk_score = 47", "risk_score = true"),
            "rule.risk_score must be of type integer, found bool",
        ),
        (("risk_score = 47", "risk_score = 470"), "rule.risk_score must be between 0 and 100"),
        (('language = "eql"', 'language = "kuery"'), "rule.language must be 'eql'"),
        (
            ('severity = "medium"', 'severity = "urgent"'),
            "rule.severity must be one of low, medium, high, critical",
        ),
        (
            ('author = ["Elastic"]', 'author = ["Elastic", 1]'),
            "rule.author[1] must be of type string, found int",
        ),
        (('maturity = "production"\n', ""), "missing required key metadata.maturity"),
        (('id = "TA0004"\n', ""), "missing required key rule.threat[0].tactic.id"),
        (
            ('id = "T1547.006"\n', ""),
            "missing required key rule.threat[1].technique[0].subtechnique[0].id",
        ),
        (("version = 7", "version = 0"), "rule.version and rule.max_signals must be positive"),
    ],
)
def test_bad_rule_keys_are_named(edit: tuple[str, str], message: str) -> None:
    old, new = edit
    assert old in KEXEC_TOML
    with pytest.raises(RuleError) as info:
        load_rule(KEXEC_TOML.replace(old, new, 1), "kexec.toml")
    assert str(info.value) == f"kexec.toml: {message}"


def test_missing_query_and_tables() -> None:
    with pytest.raises(RuleError) as info:
        load_rule('[rule]\nname = "x"\n', "r.toml")
    # Every missing key at once, not one per run.
    assert info.value.message == (
        "missing required keys metadata, rule.author, rule.description, rule.language, "
        "rule.risk_score, rule.rule_id, rule.severity, rule.type, rule.query"
    )
    text = KEXEC_TOML.split("query = '''")[0]
    with pytest.raises(RuleError, match=r"missing required key rule\.query"):
        load_rule(text, "r.toml")


def test_a_table_of_the_wrong_type_is_not_called_missing() -> None:
    from kexecwatch.core.detect.rule.lint import key_problems
    from kexecwatch.core.detect.rule.ruleset import check_rule

    head = "metadata = 1\n"
    text = head + KEXEC_TOML[KEXEC_TOML.index("[rule]") :]
    assert key_problems(tomllib.loads(text), text, "r", "eql") == []
    (error,) = check_rule(text, "r.toml").errors
    assert error.message == "metadata must be of type table, found int"
