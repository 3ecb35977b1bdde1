"""A parsed EQL statement as JSON data and back: the rule cache's form of a query.

The rebuilt tree must be the parser's tree exactly: compared with ``==`` and with
``repr`` (which tells ``1``, ``1.0`` and ``True`` apart, as ``==`` does not).
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from pathlib import Path

import pytest

from kexecwatch.core.detect.rule import ast, astjson
from kexecwatch.core.detect.rule.lexer import QuerySource
from kexecwatch.core.detect.rule.parser import parse_statement
from kexecwatch.errors import RuleError
from kexecwatch.rules import BUILTIN_RULE_FILES
from tests.test_rule_source import SNAPSHOT, needs_snapshot

RULES_DIR = Path(__file__).resolve().parents[4] / "kexecwatch" / "rules"

# Every node kind, every field kind, scalars JSON could confuse (1, 1.0, true, null).
QUERIES = [
    'process where process.name == "kexec" and process.args : ("-l", "--load")',
    'process where ?process.parent.name in~ ("Bash", "sh") or not process.pid > 1',
    "process where process.pid in (1, 1.0, true, -2, 2.5e3) or process.pid == null",
    'process where length(process.name) >= 3 and process.name like~ "a*" '
    'and process.executable regex~ "/(usr/)?bin/[a-z]+"',
    "process where startsWith~(process.name, process.parent.name) and true and not false",
    'process where cidrMatch(source.ip, "10.0.0.0/8", "192.168.0.0/16")',
    "process where process.pid + 2 * -process.ppid % 3 - 1 / 2 != 7",
    'process where concat(process.name, "x") == "kexecx" and -length(process.name) < 0',
    'any where string(process.pid) : "1*" or number("12") == 12',
    "sequence by host.id, process.entity_id with maxspan=30s "
    '[process where event.type == "start"] by process.pid '
    '![process where process.name == "x"] by process.pid '
    "[process where true] by process.pid with runs=3 "
    'until [process where event.type == "end"] by process.pid',
    'sequence [process where true] [file where file.name : "a"]',
    'sample by host.id [process where process.name == "a"] by process.pid '
    '[process where process.name == "b"] by process.ppid',
    'process where process.command_line : "*\\"quoted\\"*" and process.name == "ü\\u{e9}"',
]


def round_trip(statement: ast.Statement) -> ast.Statement:
    return astjson.from_data(json.loads(json.dumps(astjson.to_data(statement))))


def assert_round_trips(text: str) -> None:
    tree = parse_statement(QuerySource(text))
    back = round_trip(tree)
    assert back == tree
    assert repr(back) == repr(tree)


@pytest.mark.parametrize("text", QUERIES)
def test_every_kind_of_node_round_trips_exactly(text: str) -> None:
    assert_round_trips(text)


def test_the_builtin_rules_round_trip_exactly() -> None:
    queries = [
        tomllib.loads((RULES_DIR / name).read_text())["rule"].get("query")
        for name in BUILTIN_RULE_FILES
    ]
    assert any(queries)
    for query in filter(None, queries):
        assert_round_trips(query)


@needs_snapshot
def test_every_query_of_the_snapshot_that_parses_round_trips_exactly() -> None:
    parsed = 0
    for path in sorted(SNAPSHOT.rglob("*.toml")):
        rule = tomllib.loads(path.read_text()).get("rule", {})
        if rule.get("language") != "eql":
            continue
        try:
            tree = parse_statement(QuerySource(rule["query"]))
        except RuleError:  # a query kexecwatch refuses is never cached
            continue
        back = round_trip(tree)
        assert back == tree and repr(back) == repr(tree), path
        parsed += 1
    assert parsed >= 340


def test_the_codec_knows_every_field_of_every_node() -> None:
    nodes = {
        name: cls
        for name in ast.__all__
        if dataclasses.is_dataclass(cls := getattr(ast, name)) and isinstance(cls, type)
    }
    assert set(astjson._FIELDS) == set(nodes)
    for name, cls in nodes.items():
        assert [f for f, _ in astjson._FIELDS[name]] == [f.name for f in dataclasses.fields(cls)]


GOOD = astjson.to_data(parse_statement(QuerySource('process where process.name in ("a", 1)')))


@pytest.mark.parametrize(
    "damaged",
    [
        None,
        "Query",
        [],
        ["Query"],
        ["Query", "process"],
        ["Query", "process", ["Nope", 1]],
        ["Field", ["a"], False, 0],  # a node, but not a statement
        ["Query", 7, GOOD[2]],
        ["Query", "process", ["Comparison", "===", *GOOD[2][2:]]],
        ["Query", "process", ["Comparison", GOOD[2][1], GOOD[2][2], [["x"]], [0, 0], 0]],
        ["Query", "process", ["Comparison", GOOD[2][1], GOOD[2][2], GOOD[2][3], [0, True], 0]],
        ["Query", "process", ["Comparison", *GOOD[2][1:], 9]],
        ["Query", "process", ["BoolConst", 1, 0]],
        ["Query", "process", ["And", "not a list", 0]],
        ["SequenceQuery", [], "30s", [], None, 0],
    ],
)
def test_damaged_data_is_a_value_error_not_a_tree(damaged: object) -> None:
    with pytest.raises(ValueError, match=r"not|with"):
        astjson.from_data(damaged)
