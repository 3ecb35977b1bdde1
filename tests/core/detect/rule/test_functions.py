"""Every EQL function Elasticsearch documents, its ~ form, arithmetic, and the null and
type rules (before this work, every function but length() was refused)."""

from __future__ import annotations

from typing import Any

import pytest

from kexecwatch.core.detect.rule import compile_query
from kexecwatch.errors import RuleError

DOC: dict[str, Any] = {
    "event": {"category": ["process"]},
    "process": {
        "name": "Bash",
        "executable": "/usr/bin/bash",
        "command_line": "/usr/bin/bash -c id",
        "args": ["bash", "-c", "id"],
        "args_count": 3,
        "pid": 42,
        "title": "",
        "parent": {"name": "ba", "args_count": 2, "pid": 7},
    },
    "source": {"ip": "10.1.2.3"},
    "destination": {"ip": "2001:db8::1"},
    "host": {"ip": "10.1.2.9"},
    "flag": True,
}


def holds(condition: str, doc: dict[str, Any] = DOC) -> bool:
    return compile_query(f"process where {condition}").matches(doc)


@pytest.mark.parametrize(
    "condition",
    [
        # add, subtract, multiply, divide, modulo and the operators
        "add(process.args_count, 5) == 8",
        "add(process.args_count, 0.5) == 3.5",
        "add(process.args_count, process.parent.args_count) == 5",
        "subtract(process.args_count, 5) == -2",
        "multiply(process.args_count, 2) == 6",
        "divide(7, 2) == 3",  # integers truncate
        "divide(-7, 2) == -3",  # toward zero, as Java's long division
        "divide(7.0, 2) == 3.5",
        "modulo(7, 3) == 1",
        "modulo(-7, 3) == -1",  # sign of the dividend
        "process.args_count + 1 == 4",
        "process.args_count - process.parent.args_count == 1",
        "process.args_count * 2 + 1 == 7",  # * binds tighter than +
        "1 + process.args_count * 2 == 7",
        "process.args_count % 2 == 1",
        "process.pid / 5 == 8",
        "-process.args_count == -3",
        # between
        'between(process.command_line, "bash ", " id") == "-c"',
        'between(process.command_line, "BASH ", " id") == ""',
        'between~(process.command_line, "BASH ", " ID") == "-c"',
        'between(process.executable, "/", "/") == "usr"',
        'between(process.executable, "/", "/", true) == "usr/bin"',
        'between(process.executable, "nowhere", "/") == ""',
        # cidrMatch
        'cidrMatch(source.ip, "10.0.0.0/8")',
        'cidrMatch(source.ip, "192.168.0.0/16", "10.1.2.3")',
        'not cidrMatch(source.ip, "192.168.0.0/16")',
        'cidrmatch(destination.ip, "2001:db8::/32")',
        'not cidrMatch(destination.ip, "10.0.0.0/8")',
        # concat
        'concat(process.name, "-", process.args_count) == "Bash-3"',
        'concat(process.name) == "Bash"',
        'concat("a", true) == "atrue"',
        # endsWith, startsWith, stringContains (fields as either argument)
        'endsWith(process.executable, "/bash")',
        'not endsWith(process.executable, "/BASH")',
        'endsWith~(process.executable, "/BASH")',
        'startsWith(process.name, "Ba")',
        'not startsWith(process.name, "ba")',
        'startsWith~(process.name, "ba")',
        "startsWith~(process.name, process.parent.name)",
        "not startsWith(process.name, process.parent.name)",
        "startsWith(process.command_line, process.executable)",
        "stringContains(process.command_line, process.executable)",
        'stringContains(process.command_line, "-c")',
        'not stringContains(process.command_line, "-C")',
        'stringContains~(process.command_line, "-C")',
        "startswith~(string(host.ip), string(source.ip)) == false",
        # indexOf
        'indexOf(process.command_line, "bash") == 9',
        'indexOf(process.command_line, "/", 1) == 4',
        'indexOf(process.command_line, "BASH") == null',
        'indexOf~(process.command_line, "BASH") == 9',
        'indexOf(process.command_line, "u", -5) == 1',  # negative start counts as 0
        'indexOf(process.command_line, "zz") == null',
        # length
        "length(process.name) == 4",
        "length(string(process.pid)) == 2",
        # number
        'number("42") == 42',
        'number("2.5") == 2.5',
        'number("0x1F", 16) == 31',
        'number("ff", 16) == 255',
        'number("nope") == null',
        "number(string(process.pid)) == 42",
        # string
        'string(process.pid) == "42"',
        'string(flag) == "true"',
        'string(process.name) : "bash"',
        # substring
        'substring(process.executable, 0, 4) == "/usr"',
        'substring(process.executable, -4) == "bash"',
        'substring(process.executable, 5, -5) == "bin"',
        'substring(process.name, 10) == ""',
        # any element of an array argument
        'startsWith(process.args, "-")',
        "length(process.args) == 2",
        # names are case-insensitive, as in Elasticsearch
        'STRINGCONTAINS(process.name, "as")',
    ],
)
def test_function_holds(condition: str) -> None:
    assert holds(condition), condition


@pytest.mark.parametrize(
    "condition",
    [
        # a function of null is null, and null satisfies no condition...
        'startsWith(process.missing, "a")',
        'endsWith(process.missing, "a")',
        'stringContains(process.missing, "a")',
        'cidrMatch(process.missing, "10.0.0.0/8")',
        'between(process.missing, "a", "b") == ""',
        'concat(process.name, process.missing) == "Bash"',
        "add(process.missing, 1) > 0",
        "process.missing + 1 > 0",
        "length(string(process.missing)) >= 0",
        'substring(process.missing, 0) == ""',
        "startsWith(process.name, process.missing)",
        "add(null, 4) == 4",
        # ...not even != (a script's "null != x" is null, not true)
        "add(process.missing, 1) != 3",
        'string(process.missing) != "x"',
        # dividing by zero is null
        "divide(process.pid, 0) == 0",
        "modulo(process.pid, 0) == 0",
        # a field of the wrong kind for the function gives null
        'startsWith(process.pid, "4")',
        "add(process.name, 1) == 1",
        'cidrMatch(process.name, "10.0.0.0/8")',
        # values of different kinds are never equal
        'string(process.pid) == "042"',
        "process.args_count + 0.5 == 3",
    ],
)
def test_function_is_false(condition: str) -> None:
    assert not holds(condition), condition


def test_not_of_a_null_function_is_true_as_in_elasticsearch() -> None:
    # A condition is two-valued: 'not' negates the false that null gave.
    assert holds('not startsWith(process.missing, "a")')
    assert holds('not cidrMatch(process.missing, "10.0.0.0/8")')


def test_computed_null_tests() -> None:
    assert holds("add(process.missing, 1) == null")
    assert not holds("add(process.args_count, 1) == null")
    assert holds("add(process.args_count, 1) != null")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("startsWith(process.name, 1)", "startsWith(): argument 2 must be a string, not a number"),
        ('add(process.pid, "1") == 2', "add(): argument 2 must be a number, not a string"),
        ("add(process.pid) == 2", "add() takes 2 arguments, not 1"),
        ('indexOf(process.name, "a", 1, 2) == 1', "indexOf() takes 2 to 3 arguments, not 4"),
        ('concat() == ""', "concat() takes at least 1 arguments, not 0"),
        ('cidrMatch(source.ip, "10.0.0.0/33")', "'10.0.0.0/33' is not an IP address or CIDR"),
        ("cidrMatch(source.ip, process.name)", "the networks must be string constants"),
        ('concat~(process.name) == "a"', "concat has no case-insensitive '~' form"),
        ('startsWith(process.name, "a") == 1', "startsWith() returns a boolean"),
        ('length(process.name) == "a"', "length() returns a number"),
        ('add(process.pid, 1) == "a"', "add() returns a number"),
        ("string(process.pid)", "string() does not return a boolean"),
        ("process.name + 1 == 2", None),
        ('"a" + 1 == 2', "'+' needs numbers on both sides"),
        ("process.name~ == 1", "'~' only follows in, like, regex or a function name"),
        ('wildcard(process.name, "a")', "unknown function 'wildcard'"),
    ],
)
def test_type_and_arity_errors(query: str, message: str | None) -> None:
    if message is None:  # a field's kind is only known at run time: allowed
        compile_query(f"process where {query}")
        return
    with pytest.raises(RuleError) as info:
        compile_query(f"process where {query}")
    assert message in info.value.message


def test_pattern_operators_on_computed_values() -> None:
    assert holds('string(process.pid) : "4*"')
    assert holds('concat(process.name, "x") like~ "BASHX"')
    assert not holds('concat(process.name, "x") like "bashx"')
    assert holds('concat(process.name, "x") regex "B[a-z]+x"')
    assert holds('string(process.pid) in ("41", "42")')
    assert holds('concat(process.name, "") in~ ("BASH")')
    assert holds('string(process.pid) > "4"')


def test_regex_on_computed_values_stays_linear() -> None:
    # The same automaton as for fields: a backtracking pattern costs nothing.
    doc = {"event": {"category": ["process"]}, "process": {"name": "a" * 5000}}
    assert not holds('concat(process.name, "") regex "(a+)+b"', doc)


def test_functions_never_raise_on_odd_documents() -> None:
    query = compile_query(
        'process where startsWith(process.name, "a") or add(process.pid, 1) > 1 or '
        'cidrMatch(source.ip, "10.0.0.0/8") or substring(process.name, 1) == "x" or '
        'number(process.name) == 1 or between(process.name, "a", "b") == "c"'
    )
    for value in (None, [], [None], {"x": 1}, [[1, "a"]], True, 1.5, "", "x" * 10, -(2**70)):
        doc = {
            "event": {"category": ["process"]},
            "process": {"name": value, "pid": value},
            "source": {"ip": value},
        }
        query.matches(doc)  # must not raise


def test_number_of_a_huge_digit_string_is_null_not_slow() -> None:
    doc = {"event": {"category": ["process"]}, "process": {"name": "9" * 100_000}}
    assert holds("number(process.name) == null", doc)
    assert holds('indexOf(process.name, "8") == null', doc)
