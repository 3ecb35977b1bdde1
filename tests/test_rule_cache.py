"""The rule cache (kexecwatch/rules/cache.py): each rule file's parsed TOML, kept as JSON.

Driven as real processes on recorded fixtures: cold, warm and with ``--no-rule-cache``
the output is byte for byte the same; a cache that is damaged, foreign, not the user's
own or cannot be written is ignored with one warning line and never changes an exit
code; where there is no place for a cache it is skipped without a word. The cache files
here are written by hand only to damage them.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from kexecwatch.core import QuerySource, parse_statement, parse_toml
from kexecwatch.rules.cache import RuleCache
from tests.test_cli import kexecwatch
from tests.test_rule_source import LOG, SNAPSHOT, checkout, needs_snapshot

ROOT = Path(__file__).resolve().parent.parent
LAB_LOG = ROOT / "fixtures" / "audit" / "raw" / "elastic-linux-rules.log"
V7_NAME = "Kernel Load or Unload via Kexec Detected"


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ``$XDG_CACHE_HOME`` for the processes this test starts."""
    home = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    return home


def cache_file(home: Path) -> Path:
    return home / "kexecwatch" / "rules.json"


def outcome(done: subprocess.CompletedProcess[bytes]) -> tuple[int, bytes, bytes]:
    return done.returncode, done.stdout, done.stderr


def warned(err: bytes, expected_err: bytes) -> str:
    """The one warning line of ``err``; the other lines must be ``expected_err``'s."""
    lines = err.decode().splitlines()
    warnings = [line for line in lines if line.startswith("kexecwatch: warning: rule cache ")]
    assert len(warnings) == 1, lines
    assert [line for line in lines if line not in warnings] == expected_err.decode().splitlines()
    return warnings[0]


def replay(rules: Path, *extra: str, log: Path = LOG) -> subprocess.CompletedProcess[bytes]:
    return kexecwatch(
        "replay", "--no-builtin-rules", "--rule", str(rules), "--quiet", *extra, str(log)
    )


def test_replay_is_the_same_cold_warm_and_without_the_cache(
    tmp_path: Path, cache_home: Path
) -> None:
    rules = checkout(tmp_path / "checkout")
    without = outcome(replay(rules, "--no-rule-cache"))
    assert not cache_file(cache_home).exists()  # --no-rule-cache writes nothing
    cold = outcome(replay(rules))
    entries = json.loads(cache_file(cache_home).read_text())["entries"]
    assert len(entries) == 7  # every TOML file that parses, skipped kinds included
    warm = outcome(replay(rules))
    assert without[0] == 1 and b"Kernel Load" in without[1]
    assert cold == without
    assert warm == without
    assert cache_file(cache_home).stat().st_mode & 0o777 == 0o600
    assert cache_file(cache_home).parent.stat().st_mode & 0o777 == 0o700


def test_a_warm_run_takes_the_parsed_files_from_the_cache(tmp_path: Path, cache_home: Path) -> None:
    rules = checkout(tmp_path / "checkout")
    replay(rules)
    path = cache_file(cache_home)
    doc = json.loads(path.read_text())
    doc["entries"] = {
        k: v.replace(V7_NAME, "Renamed in the cache") for k, v in doc["entries"].items()
    }
    path.write_text(json.dumps(doc))
    names = {json.loads(line)["rule"]["name"] for line in replay(rules).stdout.splitlines()}
    assert "Renamed in the cache" in names
    fresh = replay(rules, "--no-rule-cache").stdout.splitlines()
    assert V7_NAME in {json.loads(line)["rule"]["name"] for line in fresh}


@needs_snapshot
def test_rules_check_of_the_snapshot_is_the_same_cold_warm_and_without(cache_home: Path) -> None:
    def check(*extra: str) -> tuple[int, bytes, bytes]:
        return outcome(kexecwatch("rules", "check", *extra, str(SNAPSHOT), "--format", "json"))

    without = check("--no-rule-cache")
    assert without[0] == 0 and without[2] == b""
    assert check() == without  # cold
    assert cache_file(cache_home).exists()
    assert check() == without  # warm


@needs_snapshot
def test_the_snapshots_alerts_on_the_lab_recording_are_the_same_cold_warm_and_without(
    cache_home: Path,
) -> None:
    rules = SNAPSHOT / "rules"
    without = outcome(replay(rules, "--no-rule-cache", log=LAB_LOG))
    assert without[0] == 1 and len(without[1].splitlines()) >= 69
    assert outcome(replay(rules, log=LAB_LOG)) == without  # cold
    assert outcome(replay(rules, log=LAB_LOG)) == without  # warm


DAMAGED = {
    "truncated": None,  # the first half of a real cache
    "not-json": b"\x00\x01 not json",
    "foreign": b'{"format": "somebody-elses", "entries": {}}',
    "entry-not-an-object": None,
    "nested-too-deep": b"[" * 200_000,
    "entry-nested-too-deep": None,
}


def warm(tmp_path: Path, cache_home: Path) -> tuple[Path, tuple[int, bytes, bytes], Path]:
    """A checkout, its replay's outcome without the cache, and its cache file, written."""
    rules = checkout(tmp_path / "checkout")
    expected = outcome(replay(rules, "--no-rule-cache"))
    replay(rules)
    return rules, expected, cache_file(cache_home)


@pytest.mark.parametrize("damage", sorted(DAMAGED))
def test_a_damaged_cache_is_one_warning_then_rewritten(
    tmp_path: Path, cache_home: Path, damage: str
) -> None:
    rules, expected, path = warm(tmp_path, cache_home)
    raw = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage.startswith("entry-"):
        doc = json.loads(raw)
        bad = "[1, 2]" if damage == "entry-not-an-object" else "[" * 200_000
        doc["entries"] = {k: bad for k in doc["entries"]}
        path.write_text(json.dumps(doc))
    else:
        path.write_bytes(DAMAGED[damage] or b"")
    code, out, err = outcome(replay(rules))
    assert (code, out) == expected[:2]
    assert warned(err, expected[2]).startswith(f"kexecwatch: warning: rule cache {path}: damaged")
    assert outcome(replay(rules)) == expected  # rewritten whole: no warning any more
    assert json.loads(path.read_text())["format"] == "kexecwatch-rule-cache"


@pytest.mark.parametrize("kind", ["symlink", "writable-by-others", "other-owner", "directory"])
def test_a_cache_that_is_not_the_users_own_is_one_warning_and_left_alone(
    tmp_path: Path, cache_home: Path, kind: str
) -> None:
    rules, expected, path = warm(tmp_path, cache_home)
    planted = tmp_path / "planted.json"
    planted.write_text(path.read_text().replace(V7_NAME, "Planted"))
    if kind == "symlink":
        path.unlink()
        path.symlink_to(planted)
    elif kind == "writable-by-others":
        planted.replace(path)
        path.chmod(0o666)
    elif kind == "other-owner":
        if os.geteuid() != 0:
            pytest.skip("giving the cache to another user needs root")
        planted.replace(path)
        os.chown(path, 65534, 65534)
    else:
        path.unlink()
        path.mkdir()
    before = path.read_bytes() if path.is_file() else None
    code, out, err = outcome(replay(rules))
    assert (code, out) == expected[:2]  # nothing "Planted" was believed
    assert warned(err, expected[2]).startswith(f"kexecwatch: warning: rule cache {path}: ")
    if before is not None:
        assert path.read_bytes() == before  # not rewritten either
    if kind == "symlink":
        assert path.is_symlink()


def test_no_place_for_a_cache_is_skipped_without_a_word(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = checkout(tmp_path / "checkout")
    expected = outcome(replay(rules, "--no-rule-cache"))
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker / "below"))  # cannot be created
    assert outcome(replay(rules)) == expected
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.delenv("HOME", raising=False)  # nowhere at all
    assert outcome(replay(rules)) == expected


def test_a_cache_directory_that_cannot_be_written_is_one_warning(
    tmp_path: Path, cache_home: Path
) -> None:
    rules = checkout(tmp_path / "checkout")
    expected = outcome(replay(rules, "--no-rule-cache"))
    cache_home.mkdir()
    # A directory no process can create files in, even as root.
    (cache_home / "kexecwatch").symlink_to("/proc/self/fd")
    code, out, err = outcome(replay(rules))
    assert (code, out) == expected[:2]
    warning = warned(err, expected[2])
    assert warning.startswith(f"kexecwatch: warning: rule cache {cache_file(cache_home)}: ")
    assert "cannot be written" in warning


def test_the_daemons_cache_is_silent_where_it_cannot_write() -> None:
    warnings: list[str] = []
    for quiet in (True, False):
        cache = RuleCache("/proc/self/fd", warn=warnings.append, quiet_unwritable=quiet)
        cache.parse_toml('[rule]\nname = "x"\n', "x.toml")
        cache.save()
        assert len(warnings) == (0 if quiet else 1)


def test_toml_dates_are_parsed_every_time_not_cached(tmp_path: Path) -> None:
    text = '[metadata]\ncreation_date = 2020-01-02\n[rule]\nname = "dated"\n'
    cache = RuleCache(str(tmp_path))
    assert cache.parse_toml(text, "d.toml") == parse_toml(text, "d.toml")
    cache.save()
    assert not (tmp_path / "rules.json").exists()  # nothing to keep
    assert RuleCache(str(tmp_path)).parse_toml(text, "d.toml") == parse_toml(text, "d.toml")


def test_a_file_that_does_not_parse_is_never_cached(tmp_path: Path) -> None:
    from kexecwatch.errors import RuleError

    cache = RuleCache(str(tmp_path))
    for _ in range(2):
        with pytest.raises(RuleError, match=r"x\.toml"):
            cache.parse_toml("[rule\n", "x.toml")
    cache.save()
    assert not (tmp_path / "rules.json").exists()


QUERY = 'process where process.name == "kexec" and process.args : ("-l", "-e")'


def test_a_warm_load_parses_no_query(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import kexecwatch.core as core

    cold = RuleCache(str(tmp_path))
    tree = cold.parse_statement(QuerySource(QUERY))
    assert tree == parse_statement(QuerySource(QUERY)) and cold.misses == 1
    cold.save()

    def no_parsing(src: QuerySource) -> None:
        raise AssertionError(f"parsed {src.text!r} again")

    monkeypatch.setattr(core, "parse_statement", no_parsing)
    warm = RuleCache(str(tmp_path))
    again = warm.parse_statement(QuerySource(QUERY))
    assert (again, repr(again)) == (tree, repr(tree))
    assert (warm.hits, warm.misses) == (1, 0)


def test_a_changed_parser_never_gets_an_old_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kexecwatch.rules import cache as cache_module

    cold = RuleCache(str(tmp_path))
    cold.parse_statement(QuerySource(QUERY))
    cold.save()
    monkeypatch.setattr(cache_module, "parser_fingerprint", lambda: b"another parser")
    other = RuleCache(str(tmp_path))
    other.parse_statement(QuerySource(QUERY))
    assert (other.hits, other.misses) == (0, 1)


def test_the_parser_fingerprint_follows_every_source_file_of_the_parser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from kexecwatch.core import astjson
    from kexecwatch.rules.cache import parser_fingerprint

    here = Path(astjson.__file__).parent
    copy = tmp_path / "rule"
    shutil.copytree(here, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = parser_fingerprint()
    monkeypatch.setattr(astjson, "__file__", str(copy / "astjson.py"))
    assert parser_fingerprint() == before
    seen = {before}
    for name in ("parser.py", "lexer.py", "ast.py", "functions.py", "astjson.py"):
        with (copy / name).open("a") as source:
            source.write("# changed\n")
        seen.add(parser_fingerprint())
    assert len(seen) == 6 and None not in seen
    (copy / "parser.py").chmod(0)
    if os.geteuid() != 0:  # root reads it anyway
        assert parser_fingerprint() is None


def test_a_query_that_does_not_parse_is_never_cached(tmp_path: Path) -> None:
    from kexecwatch.errors import RuleError

    cache = RuleCache(str(tmp_path))
    for _ in range(2):
        with pytest.raises(RuleError, match="expected"):
            cache.parse_statement(QuerySource("process where ("))
    cache.save()
    assert not (tmp_path / "rules.json").exists()


def test_a_warm_run_takes_the_parsed_queries_from_the_cache(
    tmp_path: Path, cache_home: Path
) -> None:
    rules = checkout(tmp_path / "checkout")
    replay(rules)
    path = cache_file(cache_home)
    doc = json.loads(path.read_text())
    assert doc["version"] == 2 and doc["queries"]
    doc["queries"] = {k: v.replace('"kexec"', '"not-kexec"') for k, v in doc["queries"].items()}
    path.write_text(json.dumps(doc))
    warm = {json.loads(line)["rule"]["name"] for line in replay(rules).stdout.splitlines()}
    fresh = replay(rules, "--no-rule-cache").stdout.splitlines()
    assert V7_NAME in {json.loads(line)["rule"]["name"] for line in fresh}
    assert V7_NAME not in warm


def test_a_damaged_query_entry_is_one_warning_then_rewritten(
    tmp_path: Path, cache_home: Path
) -> None:
    rules, expected, path = warm(tmp_path, cache_home)
    doc = json.loads(path.read_text())
    doc["queries"] = {k: '["Query", "process", ["Nope"]]' for k in doc["queries"]}
    path.write_text(json.dumps(doc))
    code, out, err = outcome(replay(rules))
    assert (code, out) == expected[:2]
    assert "damaged (a query is not a syntax tree)" in warned(err, expected[2])
    assert outcome(replay(rules)) == expected
    assert "Nope" not in path.read_text()


def test_an_older_format_cache_is_replaced_without_a_word(tmp_path: Path, cache_home: Path) -> None:
    rules = checkout(tmp_path / "checkout")
    expected = outcome(replay(rules, "--no-rule-cache"))
    path = cache_file(cache_home)
    path.parent.mkdir(parents=True, mode=0o700)
    old = {"format": "kexecwatch-rule-cache", "version": 1, "entries": {"k": "{}"}}
    path.write_text(json.dumps(old))
    path.chmod(0o600)
    assert outcome(replay(rules)) == expected
    doc = json.loads(path.read_text())
    assert doc["version"] == 2 and "k" not in doc["entries"] and doc["queries"]


# -- compiled forms: built lazily when the cache knows a query compiles ----------------

BAD_REGEX = 'process where process.name regex "a{5,2}"'


def snapshot_queries() -> list[QuerySource]:
    """Every EQL query of the snapshot's rule files (as the rule loader reads them)."""
    queries = []
    for path in sorted((SNAPSHOT / "rules").rglob("*.toml")):
        rule = parse_toml(path.read_text(), str(path)).get("rule", {})
        if rule.get("language") == "eql" and isinstance(rule.get("query"), str):
            queries.append(QuerySource(rule["query"], str(path)))
    return queries


def built(compiled: object) -> bool:
    """Whether a compiled query's (or every stage's) predicates are built."""
    from kexecwatch.core import CompiledSequence

    if isinstance(compiled, CompiledSequence):
        return all(built(stage.query) for stage in compiled.all_stages())
    return bool(getattr(compiled, "conjuncts", ()))


def test_a_warm_load_builds_no_predicate_until_a_document_needs_it(tmp_path: Path) -> None:
    cold = RuleCache(str(tmp_path))
    eager = cold.compile_statement(QuerySource(QUERY))
    assert built(eager)  # a query not known to compile is compiled, and checked, now
    cold.save()
    warm = RuleCache(str(tmp_path))
    lazy = warm.compile_statement(QuerySource(QUERY))
    assert not built(lazy) and lazy.fields == eager.fields
    kexec = {"event": {"category": ["process"]}, "process": {"name": "kexec", "args": ["-e"]}}
    other = {"event": {"category": ["process"]}, "process": {"name": "bash"}}
    assert lazy.explain(other) == eager.explain(other) is not None
    assert built(lazy)
    assert [lazy.matches(d) for d in (kexec, other)] == [True, False]
    assert lazy.explain(kexec) is None


def test_a_query_that_does_not_compile_is_never_marked_as_compiling(tmp_path: Path) -> None:
    from kexecwatch.errors import RuleError

    for _ in range(2):
        cache = RuleCache(str(tmp_path))
        with pytest.raises(RuleError, match="unsupported regular expression"):
            cache.compile_statement(QuerySource(BAD_REGEX))
        cache.compile_statement(QuerySource(QUERY))
        cache.save()
    assert len(json.loads((tmp_path / "rules.json").read_text())["compiled"]) == 1


def test_a_changed_compiler_never_compiles_lazily_on_an_old_word(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kexecwatch.rules import cache as cache_module

    cold = RuleCache(str(tmp_path))
    cold.compile_statement(QuerySource(QUERY))
    cold.save()
    monkeypatch.setattr(cache_module, "parser_fingerprint", lambda: b"another compiler")
    other = RuleCache(str(tmp_path))
    assert built(other.compile_statement(QuerySource(QUERY)))
    assert (other.hits, other.misses) == (0, 1)


def test_the_fingerprint_covers_every_module_the_compiler_is_made_of() -> None:
    """Every kexecwatch module that parsing, compiling or the tree codec import, however
    indirectly, is in the fingerprint, so editing one can never leave a stale tree or a
    stale word that a query compiles."""
    import ast as pyast

    from kexecwatch.rules.cache import fingerprint_files

    def source_of(module: str) -> Path | None:
        base = ROOT / module.replace(".", "/")
        for path in (base.with_suffix(".py"), base / "__init__.py"):
            if path.is_file():
                return path
        return None

    covered = {Path(p).resolve() for p in fingerprint_files()}
    todo = [
        "kexecwatch.core.detect.rule.query",
        "kexecwatch.core.detect.rule.parser",
        "kexecwatch.core.detect.rule.astjson",
    ]
    seen: set[str] = set()
    while todo:
        module = todo.pop()
        path = source_of(module)
        if module in seen or path is None:
            continue
        seen.add(module)
        assert path.resolve() in covered, f"{module} is not in the fingerprint"
        for node in pyast.walk(pyast.parse(path.read_text())):
            if isinstance(node, pyast.ImportFrom) and (node.module or "").startswith("kexecwatch"):
                # "from P import m" reads module P.m when there is one, else P itself.
                base = node.module or ""
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    todo.append(sub if source_of(sub) else base)
    assert "kexecwatch.errors" in seen and len(seen) >= 12


@needs_snapshot
def test_lazily_built_snapshot_rules_judge_every_document_as_eager_ones(
    tmp_path: Path,
) -> None:
    """Every snapshot query, compiled lazily from a warm cache, matches and explains the
    lab recording's events exactly as when compiled at once."""
    from kexecwatch.core import CompiledSequence
    from kexecwatch.errors import RuleError

    done = kexecwatch("replay", "--events", "--format", "json", "--no-rule-cache", str(LAB_LOG))
    documents = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(documents) > 50
    cold = RuleCache(str(tmp_path))
    queries = snapshot_queries()
    eager = []
    for src in queries:
        try:
            eager.append(cold.compile_statement(src))
        except RuleError:  # a rule kexecwatch cannot load: nothing to compare
            eager.append(None)
    cold.save()
    warm = RuleCache(str(tmp_path))
    compared = 0
    for src, first in zip(queries, eager, strict=True):
        if first is None:
            continue
        lazy = warm.compile_statement(src)
        assert not built(lazy), src.source
        pairs = (
            list(zip(first.all_stages(), lazy.all_stages(), strict=True))
            if isinstance(first, CompiledSequence)
            else [(first, lazy)]
        )
        for a, b in pairs:
            qa = getattr(a, "query", a)
            qb = getattr(b, "query", b)
            for doc in documents:
                assert qb.matches(doc) == qa.matches(doc), src.source
                assert qb.explain(doc) == qa.explain(doc), src.source
        compared += 1
    assert compared >= 300
