"""The rule index and the prefilter's name test: the same alerts as trying every rule.

Differential tests: documents (from recorded fixtures, a generated benchmark log, and
documents built from the rules' own literals with random case) are tried by every rule
and by the index's candidates only; the matches must be identical. End to end, replays
with the index and the name test switched off must give byte-identical output.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from bench.generate import generate
from kexecwatch.core.detector import DetectorOptions
from kexecwatch.core.interest import EVERYTHING
from kexecwatch.core.rule import compile_query
from kexecwatch.core.ruleindex import RuleIndex, alternatives, name_filter, requirements
from kexecwatch.replay import replay
from kexecwatch.rules import load_builtin_rules, load_rules
from kexecwatch.sources import expand_paths
from tests.test_rule_source import SNAPSHOT, needs_snapshot

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = sorted((ROOT / "fixtures" / "audit").glob("*/*.log"))


class _Query:
    def __init__(self, text: str) -> None:
        self.query = compile_query(text)
        self.text = text

    def matches(self, doc: dict[str, Any]) -> bool:
        return self.query.matches(doc)


HANDWRITTEN = [
    'process where process.name == "nc"',
    'process where process.name : ("NC", "ncat") and process.args == "-e"',
    'process where process.name in~ ("Python3") or process.parent.name == "sshd"',
    'process where process.executable : "/tmp/*" and process.name != "x"',
    'process where process.args like~ "*/DEV/TCP/*"',
    'process where process.command_line regex~ ".*base64 -d.*"',
    'process where (process.name == "a" and process.args == "b") or process.parent.args : "c*"',
    'process where not process.name == "bash"',
    'process where event.action == "kexec_load"',
    'process where event.type == "start" and process.name : "kex?c"',
    'process where length(process.args) > 3 and process.name == "sh"',
    'process where process.args : "a\\\\*b"',
]


def _literals(rules: Sequence[object]) -> dict[str, list[str]]:
    """Every literal value each field is compared with, by field."""
    found: dict[str, set[str]] = {}
    for rule in rules:
        condition = getattr(getattr(rule, "query", None), "condition", None)
        for disjunction in alternatives(condition) if condition is not None else []:
            for req in disjunction:
                values = found.setdefault(req.field, set())
                values |= req.exact | req.folded
                for cmp in req.patterns:
                    values |= {str(v).replace("*", "x").replace("?", "y") for v in cmp.values}
    return {k: sorted(v) for k, v in found.items()}


def _random_case(rng: random.Random, text: str) -> str:
    return "".join(c.upper() if rng.random() < 0.3 else c for c in text)


def synthetic_documents(rules: Sequence[object], count: int, seed: int) -> Iterator[dict[str, Any]]:
    """Documents whose fields hold the rules' own literals, some in another case."""
    rng = random.Random(seed)
    literals = _literals(rules)
    fields = sorted(literals)
    actions = ["executed", "kexec_load", "exec"]
    for _ in range(count):
        doc: dict[str, Any] = {
            "event": {
                "category": ["process"],
                "type": [rng.choice(["start", "info"])],
                "action": rng.choice(actions),
                "outcome": "success",
            },
            "host": {"os": {"type": "linux"}},
        }
        for name in rng.sample(fields, k=min(len(fields), rng.randint(1, 6))):
            value = rng.choice(literals[name])
            if rng.random() < 0.3:
                value = _random_case(rng, value)
            target = doc
            *parents, leaf = name.split(".")
            for key in parents:
                nxt = target.get(key)
                if not isinstance(nxt, dict):
                    nxt = target[key] = {}
                target = nxt
            target[leaf] = [value, "other"] if leaf in ("args", "category", "type") else value
        yield doc


def assert_same_matches(rules: Sequence[Any], documents: Iterator[dict[str, Any]]) -> int:
    index = RuleIndex(rules)
    matched = 0
    for doc in documents:
        every = [r for r in rules if r.matches(doc)]
        tried = [r for r in index.candidates(doc) if r.matches(doc)]
        assert tried == every, doc
        matched += bool(every)
        test = None
        for rule in every:  # the prefilter's name test must pass every match
            test = name_filter(rule)
            process = doc.get("process", {})
            name, exe = process.get("name", ""), process.get("executable", "")
            if test is not None:
                assert test(
                    name if isinstance(name, str) else "", exe if isinstance(exe, str) else ""
                )
    return matched


def test_requirements_of_handwritten_queries() -> None:
    req = requirements(compile_query(HANDWRITTEN[1]).condition)
    assert req["process.name"].folded == {"nc", "ncat"}
    assert req["process.args"].exact == {"-e"}
    [either] = alternatives(compile_query(HANDWRITTEN[2]).condition)
    assert {r.field for r in either} == {"process.name", "process.parent.name"}
    assert requirements(compile_query(HANDWRITTEN[7]).condition) == {}
    assert requirements(compile_query(HANDWRITTEN[10]).condition)["process.name"].exact == {"sh"}


def test_index_matches_every_rule_on_handwritten_queries() -> None:
    rules = [_Query(q) for q in HANDWRITTEN]
    index = RuleIndex(rules)
    # Filed: literal names (exact, any case, or-ed with a parent's name) and patterns on
    # names and executables. Tried on every document: the negation, an action every exec
    # has, and patterns on arguments and command lines (testing them costs a rule's try).
    always = [q for q in HANDWRITTEN if q in {r.text for r in index.candidates({})}]
    assert always == [HANDWRITTEN[i] for i in (4, 5, 6, 7, 8, 11)]
    assert assert_same_matches(rules, synthetic_documents(rules, 3000, seed=1)) > 100


def _events(paths: Sequence[Path]) -> Iterator[dict[str, Any]]:
    out = io.StringIO()
    replay(
        expand_paths([str(p) for p in paths]),
        load_builtin_rules(),
        host_name="lab",
        options=DetectorOptions(window_ms=5000, emit_events=True),
        out_format="json",
        stdout=out,
        stderr=io.StringIO(),
    )
    for line in out.getvalue().splitlines():
        yield json.loads(line)


@needs_snapshot
def test_index_matches_every_rule_on_the_snapshot(tmp_path: Path) -> None:
    rules = load_rules([str(SNAPSHOT / "rules")])
    log = tmp_path / "bench.log"
    generate(log, 3_000_000, seed=7)
    documents = [*_events(FIXTURES), *_events([log])]
    assert len(documents) > 3000
    assert assert_same_matches(rules, iter(documents)) > 50
    assert assert_same_matches(rules, synthetic_documents(rules, 4000, seed=2)) > 300


def _replay_output(paths: Sequence[Path], rules: Sequence[Any], events_as: str) -> str:
    out = io.StringIO()
    replay(
        expand_paths([str(p) for p in paths]),
        rules,
        host_name="lab",
        options=DetectorOptions(window_ms=5000, events_as=events_as),
        out_format="json",
        stdout=out,
        stderr=io.StringIO(),
    )
    return out.getvalue()


@needs_snapshot
@pytest.mark.parametrize("events_as", ["auditbeat", "defend"])
def test_replay_with_the_index_gives_the_alerts_of_every_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, events_as: str
) -> None:
    log = tmp_path / "bench.log"
    generate(log, 3_000_000, seed=11)
    paths = [*FIXTURES, log]
    indexed = _replay_output(paths, load_rules([str(SNAPSHOT / "rules")]), events_as)
    # Every event parsed in full and tried by every rule: no prefilter, no index.
    monkeypatch.setattr(RuleIndex, "candidates", lambda self, doc: list(self.rules))
    monkeypatch.setattr("kexecwatch.core.detector._interests_of", lambda rule: [EVERYTHING])
    every = _replay_output(paths, load_rules([str(SNAPSHOT / "rules")]), events_as)
    assert indexed == every
    assert indexed.count("\n") > 100
