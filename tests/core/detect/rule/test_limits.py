"""Issue 16 §3: rule nesting and numbers have limits, reported as ``file:line:col`` errors.

Before: 250 levels of parentheses or of ``not`` raised RecursionError, and a 5,000-digit
number ValueError (a traceback and exit 1 in check-rule, a dead daemon after SIGHUP).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kexecwatch.core.detect.rule import compile_query
from kexecwatch.core.detect.rule.parser import MAX_NESTING
from kexecwatch.errors import RuleError
from tests.test_check_rule import check, rule_file

DOC = {"event": {"category": ["process"]}, "process": {"name": "kexec", "pid": 7}}


def _error(text: str) -> str:
    with pytest.raises(RuleError) as info:
        compile_query(text, source="r.toml", line_offset=9)
    return str(info.value)


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 300, 5_000])
def test_deep_parentheses_are_an_error_at_the_first_too_deep(depth: int) -> None:
    text = "process where " + "(" * depth + 'process.name == "kexec"' + ")" * depth
    message = _error(text)
    column = len("process where ") + MAX_NESTING + 1
    assert message.startswith(f"r.toml:10:{column}: ")
    assert f"nested more than {MAX_NESTING} levels deep" in message


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 1_200])
def test_deep_not_is_an_error(depth: int) -> None:
    message = _error("process where " + "not " * depth + 'process.name == "x"')
    column = len("process where ") + 4 * MAX_NESTING + 1
    assert message.startswith(f"r.toml:10:{column}: ")
    assert f"nested more than {MAX_NESTING} levels deep" in message


def test_nesting_up_to_the_limit_works() -> None:
    half = MAX_NESTING // 2
    text = "process where " + "(not " * half + 'process.name == "x"' + ")" * half
    assert compile_query(text).matches(DOC) is (half % 2 == 1)


@pytest.mark.parametrize(
    "number",
    ["9" * 5_000, "9223372036854775808", "1e999", "-" + "1" * 400 + ".5"],
)
def test_numbers_beyond_a_double_or_a_long_are_an_error(number: str) -> None:
    message = _error(f"process where process.pid < {number}")
    assert message.startswith("r.toml:10:")
    assert "out of range" in message


@pytest.mark.parametrize("number", ["9223372036854775807", "-9223372036854775808", "1.5e308"])
def test_numbers_within_range_are_kept(number: str) -> None:
    assert compile_query(f"process where process.pid < {number}").matches(DOC) is (
        float(number) > 7
    )


def test_check_rule_names_file_line_col_and_exits_2(tmp_path: Path) -> None:
    deep = "(" * 300 + 'process.name == "kexec"' + ")" * 300
    path = rule_file(tmp_path, "deep.toml", ('process.name == "kexec"', deep))
    code, out = check(str(path))
    assert code == 2
    assert f"deep.toml:50:{len(' and ') + MAX_NESTING + 1}" in out
    assert "Traceback" not in out


def test_a_deeply_nested_regex_is_an_error() -> None:
    message = _error('process where process.name regex "' + "(" * 5_000 + "a" + ")" * 5_000 + '"')
    assert message.startswith("r.toml:10:34: unsupported regular expression: groups nested too")


@pytest.mark.parametrize("repeat", ["{" + "9" * 5_000 + "}", "{1," + "9" * 5_000 + "}"])
def test_a_huge_regex_repeat_count_is_an_error(repeat: str) -> None:
    message = _error(f'process where process.name regex "a{repeat}"')
    assert message.startswith(
        "r.toml:10:34: unsupported regular expression: repeat count too large"
    )
