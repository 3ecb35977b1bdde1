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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bench.generate import Generator, _enc, _Proc, generate
from kexecwatch.adapters.replay import replay
from kexecwatch.adapters.sources import expand_paths
from kexecwatch.core.detect.detector import Detector, DetectorOptions
from kexecwatch.core.detect.rule import compile_query
from kexecwatch.core.detect.rule.lexer import QuerySource
from kexecwatch.core.detect.rule.needles import regex_needles
from kexecwatch.core.detect.rule.query import compile_statement
from kexecwatch.core.detect.ruleindex import (
    RuleIndex,
    alternatives,
    args_test,
    can_match,
    name_filter,
    prefilters_of,
    requirements,
)
from kexecwatch.core.process.docfields import process_fields
from kexecwatch.core.scan.argtest import (
    MAX_KEY_LINE,
    Facts,
    Known,
    known_of,
    reads_command_lines,
    reads_of,
)
from kexecwatch.core.scan.prefilter import EVERYTHING
from kexecwatch.rules import load_builtin_rules, load_rules
from tests.core.simple_rule import SimpleRule
from tests.test_rule_source import SNAPSHOT, needs_snapshot

ROOT = Path(__file__).resolve().parents[3]
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


def _conditions(rules: Sequence[object]) -> Iterator[Any]:
    """The condition of each rule, and of each stage of its sequence."""
    for rule in rules:
        query = getattr(rule, "query", None)
        stages = getattr(query, "all_stages", None)
        queries = [stage.query for stage in stages()] if callable(stages) else [query]
        for q in queries:
            yield getattr(q, "condition", None)


def _literals(rules: Sequence[object]) -> dict[str, list[str]]:
    """Every literal value each field is compared with, by field."""
    found: dict[str, set[str]] = {}
    for condition in _conditions(rules):
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
    tests = {
        id(rule): [i.args for i in prefilters_of(rule) if i.args is not None] for rule in rules
    }
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
            # ... and so must its argument test (a sequence: one of its stages'), on
            # what a process document can hold (the test reads fields no process
            # document holds as never there).
            if tests[id(rule)] and isinstance(process, dict) and rule.matches(_real(doc)):
                facts = _doc_facts(process)
                assert any(t.accepts(facts) for t in tests[id(rule)]), (rule, doc)
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
    monkeypatch.setattr(
        "kexecwatch.core.detect.detector._prefilters_of", lambda rule, *_: [EVERYTHING]
    )
    every = _replay_output(paths, load_rules([str(SNAPSHOT / "rules")]), events_as)
    assert indexed == every
    assert indexed.count("\n") > 100


# -- the argument test of the prefilter ------------------------------------------------


def _facts(name: str, exe: str, line: str | None, parent: tuple[str, str, str] | None) -> Facts:
    return Facts((name, exe, line), lambda: parent)


def _test_of(query: str) -> Any:
    return args_test(_Query(query))


def test_argument_needles_of_handwritten_queries() -> None:
    history = _test_of('process where process.args : "history" and process.args : "-c"')
    assert history.accepts(_facts("bash", "/bin/bash", "bash -c HISTORY", None))
    assert not history.accepts(_facts("bash", "/bin/bash", "bash -c ls", None))
    assert history.accepts(_facts("bash", "/bin/bash", None, None))  # arguments not known
    either = _test_of(
        'process where process.name == "swapon" or process.command_line like "*vm.swappiness*"'
    )
    assert either.accepts(_facts("swapon", "/sbin/swapon", "swapon -a", None))
    assert either.accepts(_facts("sysctl", "/sbin/sysctl", "sysctl vm.swappiness=1", None))
    assert not either.accepts(_facts("sysctl", "/sbin/sysctl", "sysctl VM.SWAPPINESS=1", None))
    assert either.given("swapon", "/sbin/swapon") is True
    parent = _test_of('process where process.parent.command_line : "*runner*entrypoint.sh"')
    assert parent.accepts(
        _facts("sh", "/bin/sh", "sh", ("bash", "/bin/bash", "RUNNER/ENTRYPOINT.SH"))
    )
    assert not parent.accepts(_facts("sh", "/bin/sh", "sh", ("bash", "/bin/bash", "bash x")))
    assert not parent.accepts(_facts("sh", "/bin/sh", "sh", None))  # no parent in the table
    assert parent.accepts(Facts(("sh", "/bin/sh", "sh")))  # nothing known of the parent
    regex = _test_of('process where process.command_line regex~ ".*[0-9]{1,3}\\\\.[0-9]:X+.*"')
    assert regex.accepts(_facts("ssh", "/usr/bin/ssh", "ssh -L 10.1:x 2", None))
    assert not regex.accepts(_facts("ssh", "/usr/bin/ssh", "ssh -L 10.1 :x", None))
    assert _test_of('process where not process.args : "x"') is None
    assert _test_of('process where process.args regex "(a|b)+"') is None


def test_a_rule_on_the_parent_alone_tests_the_parent() -> None:
    """A rule that requires only its parent's name (``process.parent.name == "proot"``)
    gets a test on it: before, the test was dropped for want of needles, and every exec
    was parsed in full for such a rule (8 of the snapshot's rules, 98% of the execs)."""
    proot = _test_of('process where event.type == "start" and process.parent.name == "proot"')
    assert proot is not None
    assert proot.reads_parent
    assert proot.accepts(_facts("sh", "/bin/sh", "sh", ("proot", "/usr/bin/proot", "proot")))
    assert not proot.accepts(_facts("sh", "/bin/sh", "sh", ("bash", "/bin/bash", "bash")))
    assert not proot.accepts(_facts("sh", "/bin/sh", "sh", None))  # no parent in the table
    assert proot.accepts(Facts(("sh", "/bin/sh", "sh")))  # nothing known of the parent
    either = _test_of(
        'process where process.executable like "/tmp/*" or process.parent.executable like "/tmp/*"'
    )
    assert either.given("x", "/tmp/x") is True
    assert not either.accepts(_facts("ls", "/bin/ls", "ls", ("sh", "/bin/sh", "sh")))
    assert either.accepts(_facts("ls", "/bin/ls", "ls", ("x", "/tmp/x", "x")))
    [prefilter] = prefilters_of(_Query('process where process.parent.name == "proot"'))
    assert prefilter.args is not None and not prefilter.is_static
    # The process's own name alone stays a static test of the prefilter (name_filter).
    assert _test_of('process where process.name : "proot"') is None


def _ids(uid: int, euid: int, gid: int = 0, egid: int = 0) -> bytes:
    return (
        f"auid=1000 uid={uid} gid={gid} euid={euid} suid={euid} fsuid={euid} egid={egid} "
        f"sgid={egid} fsgid={egid} tty=pts0 ses=3"
    ).encode()


def test_a_rule_on_the_ids_tests_the_ids() -> None:
    """A rule on the process's own ids (a setuid root exec) tests them: before, every
    exec of a common name (``cat``, ``sh``) was parsed in full for such a rule."""
    suid = _test_of(
        'process where process.name in ("cat", "sh") and '
        '((process.user.id == "0" and process.real_user.id != "0") or '
        '(process.group.id == "0" and process.real_group.id != "0"))'
    )
    assert suid is not None

    def facts(extra: bytes | None) -> Facts:
        return Facts(("cat", "/bin/cat", "cat x"), lambda: None, extra)

    assert suid.accepts(facts(_ids(uid=1000, euid=0, gid=1000, egid=1000)))
    assert suid.accepts(facts(_ids(uid=1000, euid=1000, gid=1000, egid=0)))
    assert not suid.accepts(facts(_ids(uid=0, euid=0)))  # root all along
    assert not suid.accepts(facts(_ids(uid=1000, euid=1000, gid=1000, egid=1000)))
    assert suid.accepts(facts(None))  # ids not known
    assert suid.accepts(facts(b"auid=1 tty=pts0 ses=3"))  # these ids not stated
    user = _test_of('process where user.id != "0" and user.effective.id == "0"')
    assert user.accepts(facts(_ids(uid=1000, euid=0)))
    assert not user.accepts(facts(_ids(uid=0, euid=0)))
    assert not user.accepts(facts(_ids(uid=1000, euid=1000)))


def test_answers_are_remembered_by_what_the_tests_read() -> None:
    """A test on the ids alone is remembered per ids: the parent is not looked up for
    it (before, every exec's parent was read from the table and its arguments decoded,
    for a key the test never needed); a test on the parent's name is remembered per
    parent name and executable."""
    asked: list[int] = []

    def parent() -> Known:
        asked.append(1)
        return ("bash", "/bin/bash", "bash -c x")

    ids = _ids(uid=0, euid=0)
    facts = Facts(("cat", "/bin/cat", "cat x"), parent, ids, "/tmp", capabilities=False)
    root = _test_of('process where process.name == "cat" and user.id == "0"')
    assert facts.key(reads_of(root.given("cat", "/bin/cat"))) == (None, None, ids, None)
    assert not asked
    by_parent = _test_of('process where process.parent.name == "bash"')
    assert facts.key(reads_of(by_parent.given("cat", "/bin/cat"))) == (
        ("bash", "/bin/bash"),
        None,
        None,
        None,
    )
    assert asked == [1]


def test_a_test_on_the_parents_arguments_is_remembered_per_parent_command_line() -> None:
    """A test that reads the parent's command line but not the process's own (Azure Run
    Command Script Child Process: a shell parent with a needle in its arguments) has its
    answer remembered per parent name, executable and command line, as a shell's repeat
    for each of its children (before, it was asked again for every exec). A command
    line longer than MAX_KEY_LINE is no key: such answers are not remembered."""
    test = _test_of(
        'process where process.parent.name == "bash" and process.parent.args : "run-command"'
    )
    left = test.given("cat", "/bin/cat")
    assert not reads_command_lines(left, own=True)
    assert reads_command_lines(left)
    reads = reads_of(left)
    parent = ("bash", "/bin/bash", "bash /var/lib/run-command/x.sh")
    facts = Facts(("cat", "/bin/cat", "cat x"), lambda: parent)
    assert facts.key(reads) == (parent, None, None, None)
    long_line = ("bash", "/bin/bash", "bash " + "x" * MAX_KEY_LINE)
    assert Facts(("cat", "/bin/cat", "cat x"), lambda: long_line).key(reads) is None
    assert Facts(("cat", "/bin/cat", "cat x"), lambda: None).key(reads) == (None, None, None, None)


def test_a_rule_on_capabilities_tests_for_a_record_stating_them() -> None:
    """A positive comparison on ``process.thread.capabilities.*`` holds only on an event
    with a ``BPRM_FCAPS`` or ``CAPSET`` record (nowhere else does the trail state the
    sets): before, a rule such as "CAP_SETUID exec by a non-root user" had every exec of
    every non-root user parsed in full."""
    caps = _test_of(
        'process where (process.thread.capabilities.effective : "CAP_SET?ID" or '
        'process.thread.capabilities.permitted : "CAP_SET?ID") and user.id != "0"'
    )
    assert caps is not None

    def facts(capabilities: bool | None, uid: int = 1000) -> Facts:
        return Facts(
            ("cat", "/bin/cat", "cat x"),
            lambda: None,
            _ids(uid=uid, euid=uid),
            capabilities=capabilities,
        )

    assert caps.accepts(facts(True))
    assert not caps.accepts(facts(False))  # no record states them: the fields are absent
    assert caps.accepts(facts(None))  # not known
    assert not caps.accepts(facts(True, uid=0))
    negated = _test_of(
        'process where process.name == "cat" and '
        'not process.thread.capabilities.effective : "CAP_SYS_ADMIN"'
    )
    assert negated is None or negated.accepts(facts(False))


def test_a_rule_on_the_working_directory_tests_it() -> None:
    """``process.working_directory`` (the CWD record) is tested before the full parse:
    before, a rule such as "hidden files created in /tmp" by ``cp`` or ``cat`` had every
    exec of those names parsed in full."""
    hidden = _test_of(
        'process where process.working_directory in ("/tmp", "/dev/shm") and '
        'process.name in ("cp", "cat")'
    )
    assert hidden is not None

    def facts(cwd: str | bool | None) -> Facts:
        return Facts(("cp", "/bin/cp", "cp a b"), lambda: None, None, cwd)

    assert hidden.accepts(facts("/tmp"))
    assert not hidden.accepts(facts("/home/u"))
    assert not hidden.accepts(facts(None))  # no CWD record: no working directory
    assert hidden.accepts(facts(True))  # not known
    like = _test_of('process where ?process.working_directory : "*react-dom*"')
    assert like.accepts(facts("/srv/node_modules/REACT-DOM/x"))
    assert not like.accepts(facts("/srv/app"))


def test_wildcard_needles_require_every_literal_piece() -> None:
    """A wildcard's element holds every literal piece of it: before, only the longest
    was looked for, and every ``cat /proc/cpuinfo`` was parsed in full for the
    snapshot's ``/proc/*/maps`` and ``/proc/*/mem`` rules."""
    maps = _test_of('process where process.name == "cat" and process.args like "/proc/*/maps"')
    assert not maps.accepts(_facts("cat", "/usr/bin/cat", "cat /proc/cpuinfo", None))
    assert maps.accepts(_facts("cat", "/usr/bin/cat", "cat /proc/1/maps", None))
    assert maps.accepts(_facts("cat", "/usr/bin/cat", None, None))  # arguments not known
    mem = _test_of('process where process.command_line like~ ("/PROC/*/mem", "*?shadow*")')
    assert not mem.accepts(_facts("cat", "/usr/bin/cat", "cat /proc/cpuinfo", None))
    assert mem.accepts(_facts("cat", "/usr/bin/cat", "cat /Proc/7/MEM", None))
    assert mem.accepts(_facts("cat", "/usr/bin/cat", "cat /etc/shadow", None))
    anything = _test_of('process where process.args like ("*", "/tmp/*")')
    assert anything is None or anything.accepts(_facts("x", "/x", "x y", None))


def test_needles_of_regular_expressions() -> None:
    assert regex_needles("a?+bc", nocase=False) == [frozenset({"bc"})]
    assert regex_needles("ab|c", nocase=False) == []
    assert regex_needles("[^]]x(y|z)+\\d{1,2}w", nocase=False)[0] == {"x"}
    assert regex_needles(".*Base64 -D.*", nocase=True) == [frozenset({"base64 -d"})]
    assert regex_needles("x{0,3}y", nocase=False) == [frozenset({"y"})]


def _statement(text: str) -> Any:
    class Rule:
        query = compile_statement(QuerySource(text, "<test>"))

    return Rule()


def test_rules_that_can_never_match_need_nothing() -> None:
    never = [
        'any where url.original like~ "*select*"',
        'any where event.category == "network" and process.name == "nc"',
        'process where event.action == "bound-socket"',
    ]
    for query in never:
        assert not can_match(_Query(query)), query
        assert prefilters_of(_Query(query)) == [], query
    assert can_match(_Query('any where event.action == "exec" and process.name == "nc"'))
    first_never = _statement(
        'sequence with maxspan=1m [any where data_stream.dataset == "endpoint.alerts"] '
        "![process where true]"
    )
    assert prefilters_of(first_never) == []
    # A stage only file events match: the sequence can never complete on process events.
    file_stage = _statement(
        'sequence with maxspan=1m [file where file.path == "/etc/passwd"] '
        '[process where process.name == "su"]'
    )
    assert prefilters_of(file_stage) == []
    # Each stage's own needs, not only what all stages share.
    staged = _statement(
        'sequence by process.pid with maxspan=1m [process where process.name == "unshare"] '
        '[process where process.name == "su"]'
    )
    assert [i.comms for i in prefilters_of(staged)] == [{b"unshare"}, {b"su"}]


def test_a_query_of_the_other_vocabulary_needs_nothing_in_this_one() -> None:
    """Documents of one event vocabulary (``--events-as``) never hold the other's
    ``event.action`` values: a rule or a sequence stage requiring them needs no event
    there. Before, the prefilter read both vocabularies always, and a sequence written
    for Elastic Defend (``event.action == "exec" and user.id == "0"``) had every root
    exec parsed in full among Auditbeat's documents."""
    defend = _Query('process where event.action == "exec" and user.id == "0"')
    assert prefilters_of(defend, "auditbeat") == []
    assert not can_match(defend, "auditbeat")
    assert can_match(defend, "defend")
    assert len(prefilters_of(defend, "defend")) == 1
    assert len(prefilters_of(defend)) == 1  # either vocabulary: as before
    beat = _Query('process where event.action == "executed" and process.args == "-e"')
    assert prefilters_of(beat, "defend") == []
    assert len(prefilters_of(beat, "auditbeat")) == 1
    sequence = _statement(
        'sequence with maxspan=1m [process where process.name == "gdb"] '
        '[process where event.action == "exec" and user.id == "0"]'
    )
    assert prefilters_of(sequence, "auditbeat") == []
    assert len(prefilters_of(sequence, "defend")) == 2
    # An alternative only the other vocabulary can take drops out of the argument test.
    either = _Query(
        'process where (event.action == "exec" and user.id == "0") or process.args == "-e"'
    )
    ids = b"auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=1"
    root = Facts(("id", "/usr/bin/id", "id -u"), lambda: None, ids)
    [beat_test] = [i.args for i in prefilters_of(either, "auditbeat")]
    [any_test] = [i.args for i in prefilters_of(either)]
    assert beat_test is not None and any_test is not None
    assert any_test.accepts(root)
    assert not beat_test.accepts(root)
    assert beat_test.accepts(Facts(("id", "/usr/bin/id", "id -e"), lambda: None, ids))


@dataclass(frozen=True)
class _QueryRule(SimpleRule):
    query: Any = None


def test_a_rule_of_the_other_vocabulary_is_shown_no_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replayed with Auditbeat's vocabulary (the default), a rule that requires Elastic
    Defend's ``exec`` action is shown no event, and raises no alert either way."""
    log = tmp_path / "bench.log"
    generate(log, 300_000, seed=5)
    query = compile_query('process where event.action == "exec" and user.id == "0"')
    rules = [_QueryRule(query.matches, query=query)]
    shown: list[Any] = []
    match = Detector._match

    def counted(self: Detector, process: Any, explain: bool, out: list[Any]) -> None:
        shown.append(process)
        match(self, process, explain, out)

    monkeypatch.setattr(Detector, "_match", counted)
    assert _replay_output([log], rules, "auditbeat") == ""
    assert shown == []
    assert _replay_output([log], rules, "defend").count("\n") > 10  # root execs: alerts
    assert len(shown) > 10


def _case(rng: random.Random, text: str) -> str:
    return _random_case(rng, text) if rng.random() < 0.4 else text


def literal_log(path: Path, rules: Sequence[object], events: int, seed: int) -> None:
    """Execs made of the rules' own literals, as the kernel writes them: names, and
    arguments in another case at times, with spaces (hex-encoded), or long enough to
    be split over EXECVE records; parents that ran such arguments too; root's and a
    user's, set-user-ID root programs, and working directories the rules name."""
    rng = random.Random(seed)
    gen = Generator(seed=seed)
    literals = _literals(rules)
    names = sorted({*literals.get("process.name", []), "bash", "sh", "python3", "node"})
    words = sorted(
        {
            v
            for name in ("process.args", "process.command_line", "process.parent.args")
            for v in literals.get(name, [])
        }
    )
    cwds = sorted({*literals.get("process.working_directory", []), "/tmp", "/"})
    users = [
        _Proc(1000, "bash", "/usr/bin/bash", ("bash",), 1000, 3, "pts0", 1),
        _Proc(1001, "bash", "/usr/bin/bash", ("bash",), 0, 4, "pts1", 1),
    ]
    parent = users[0]
    lines: list[str] = []
    for _ in range(events):
        if rng.random() < 0.05:
            parent = rng.choice(users)
        comm = rng.choice(names)
        argv = [comm, *(_case(rng, rng.choice(words)) for _ in range(rng.randint(0, 3)))]
        if rng.random() < 0.2 and len(argv) > 2:
            argv[1:3] = [f"{argv[1]} {argv[2]}"]  # a space: written in hex
        if rng.random() < 0.05:
            argv.append("-D" + "y" * 9000 + rng.choice(words))  # split over records
        setuid = "setuid" if rng.random() < 0.2 else ""
        event, child = gen.exec_event(
            parent, comm[:15], "/usr/bin/" + comm, tuple(argv), privilege=setuid
        )
        if rng.random() < 0.5:
            cwd = "cwd=" + _enc(_case(rng, rng.choice(cwds)).encode())
            event = [
                line.split("cwd=")[0] + cwd if line.startswith("type=CWD") else line
                for line in event
            ]
        lines += event
        parent = child if rng.random() < 0.5 else parent
    path.write_text("".join(line + "\n" for line in lines))


@needs_snapshot
@pytest.mark.parametrize("events_as", ["auditbeat", "defend"])
def test_replay_of_the_rules_own_arguments_gives_the_alerts_of_every_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, events_as: str
) -> None:
    rules = load_rules([str(SNAPSHOT / "rules")])
    log = tmp_path / "literals.log"
    literal_log(log, rules, 3000, seed=5)
    indexed = _replay_output([log], rules, events_as)
    monkeypatch.setattr(RuleIndex, "candidates", lambda self, doc: list(self.rules))
    monkeypatch.setattr(
        "kexecwatch.core.detect.detector._prefilters_of", lambda rule, *_: [EVERYTHING]
    )
    every = _replay_output([log], load_rules([str(SNAPSHOT / "rules")]), events_as)
    assert indexed == every
    # The log reaches the argument tests: many rules fire, on many events.
    alerts = [json.loads(line) for line in indexed.splitlines()]
    assert len({a["rule"]["id"] for a in alerts}) >= 15
    assert len(alerts) > 100, len(alerts)


def _real(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``doc`` without the fields process documents never hold."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        name = prefix + key
        if isinstance(value, dict):
            out[key] = _real(value, name + ".")
        elif name in process_fields():
            out[key] = value
    return out


def _doc_facts(process: dict[str, Any]) -> Facts:
    def known(p: dict[str, Any]) -> tuple[str, str, str | None]:
        args = p.get("args")
        line = p.get("command_line")
        if isinstance(args, list):
            line = " ".join(str(a) for a in args) + (f" {line}" if isinstance(line, str) else "")
        name, exe = p.get("name", ""), p.get("executable", "")
        return (
            name if isinstance(name, str) else "",
            exe if isinstance(exe, str) else "",
            line if isinstance(line, str) else "",
        )

    parent = process.get("parent")
    return Facts(known(process), lambda: known(parent) if isinstance(parent, dict) else None)


def test_known_of_decodes_as_the_document() -> None:
    assert known_of(b"sh", None, (b"sh", b"-c", b"\xff")) == ("sh", "", "sh -c \udcff")


def test_defend_exec_action_means_an_exec() -> None:
    """``event.action == "exec"`` (``--events-as defend``) needs the execs: before, the
    prefilter read it as a system call named ``exec`` and let no event through."""
    [prefilter] = prefilters_of(
        _Query('process where event.action == "exec" and process.name == "nc"')
    )
    assert prefilter.syscalls == {"execve", "execveat"}
