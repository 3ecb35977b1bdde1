"""Rule sources: a rule file, or a directory of them such as a detection-rules checkout.

Theory of operation: ``--rule PATH`` (and the configuration's ``rules``) name files or
directories. A file is loaded strictly: any problem is an error, since the user named
that rule. A directory is walked recursively (sorted, symbolic links to directories not
followed) for ``*.toml`` files, and each file is *classified* before it is loaded:

* not a rule (no ``[rule]`` table, such as detection-rules' hunting queries): ignored,
  counted;
* a rule kexecwatch does not run: KQL (``language = "kuery"``), ES|QL, other kinds
  (machine learning, Lucene), rules whose ``OS:`` tags name other systems but not Linux,
  and deprecated rules (``maturity = "deprecated"``): skipped, counted by kind;
* otherwise loaded; a rule that does not load (an EQL feature kexecwatch lacks, a
  broken file) is reported and left out, and the other rules still run.

Versions: detection-rules keeps rule versions out of the rule files, in
``detection_rules/etc/version.lock.json``. The lock file is found by walking up from
the rule's directory; a rule without its own ``version`` key gets the lock file's
``version`` for its ``rule_id`` (the current stack's; the ``previous`` and
``stack_emit`` entries for other stack versions are not used), else 1.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kexecwatch.adapters.sources import NO_SUCH_FILE, read_regular_file
from kexecwatch.core import NativeRule, Rule, load_native_rule, load_parsed_rule, parse_toml
from kexecwatch.errors import InputError, RuleError, SourceLocation

if TYPE_CHECKING:
    from kexecwatch.core import QueryCompiler
    from kexecwatch.rules.cache import RuleCache

__all__ = [
    "LOCK_FILE",
    "SKIP_KINDS",
    "LoadedSource",
    "VersionLock",
    "classify_rule",
    "load_rule_source",
    "read_rule_file",
    "rule_files",
]

#: Where detection-rules keeps the versions, relative to the checkout's root.
LOCK_FILE = Path("detection_rules", "etc", "version.lock.json")

#: Why a file of a directory is not loaded, and how the counts name it.
SKIP_KINDS: Mapping[str, str] = {
    "kql": "KQL",
    "esql": "ES|QL",
    "other": "other rule kinds (machine learning, Lucene, ...)",
    "not-linux": "not for Linux",
    "deprecated": "deprecated",
    "not-a-rule": "not rules",
}

_SKIPPED_LANGUAGES = {"kuery": "kql", "esql": "esql"}
_LOADED_LANGUAGES = ("eql", "kexecwatch")

DetectionRule = Rule | NativeRule


def classify_rule(data: Mapping[str, Any]) -> str | None:
    """The :data:`SKIP_KINDS` key of a parsed TOML file in a directory, or ``None`` to load it.

    Malformed values (a ``tags`` that is not a list) leave the file to the loader, which
    names the problem.
    """
    rule = data.get("rule")
    if not isinstance(rule, Mapping):
        return "not-a-rule"
    tags = rule.get("tags")
    if isinstance(tags, list):
        systems = {
            t[3:].strip().lower() for t in tags if isinstance(t, str) and t.startswith("OS:")
        }
        if systems and "linux" not in systems:
            return "not-linux"
    meta = data.get("metadata")
    if isinstance(meta, Mapping) and meta.get("maturity") == "deprecated":
        return "deprecated"
    language = rule.get("language")
    if language in _SKIPPED_LANGUAGES:
        return _SKIPPED_LANGUAGES[language]
    kind = language if language is not None else rule.get("type")
    if isinstance(kind, str) and kind not in _LOADED_LANGUAGES:
        return "other"  # lucene, or a machine learning job (no language at all)
    return None


_RULE_FILE_WORDING = {
    NO_SUCH_FILE: "no such rule file",
    "is a directory": "is a directory, not a rule file",
}


def read_rule_file(path: str) -> str:
    """The text of the rule file ``path``: a regular file of UTF-8 text.

    Raises:
        RuleError: one line saying why the file cannot be read (without the path).
    """
    try:
        data = read_regular_file(path)
    except InputError as exc:
        raise RuleError(_RULE_FILE_WORDING.get(exc.message, exc.message)) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RuleError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def rule_files(directory: str, on_error: Callable[[RuleError], None]) -> list[str]:
    """Every ``*.toml`` file under ``directory``, sorted by path, walking subdirectories.

    A subdirectory that cannot be listed is reported to ``on_error`` and left out.
    """

    def failed(exc: OSError) -> None:
        where = SourceLocation(str(exc.filename or directory))
        on_error(RuleError(f"cannot list the directory: {exc.strerror or exc}", where=where))

    found: list[str] = []
    for root, dirs, files in os.walk(directory, onerror=failed):
        dirs.sort()
        found += [os.path.join(root, f) for f in files if f.endswith(".toml")]
    return sorted(found)


@dataclass(slots=True)
class VersionLock:
    """The ``version.lock.json`` files met so far, and their versions by ``rule_id``."""

    _found: dict[Path, Path | None] = field(default_factory=dict)
    #: :meth:`path_for`'s answers by the rule's directory as given (a checkout's rules
    #: lie in a few directories; building the paths of each rule's parents costs more).
    _by_dir: dict[str, Path | None] = field(default_factory=dict)
    _read: dict[Path, Mapping[str, int]] = field(default_factory=dict)
    #: Lock files that could not be read: the rules then keep version 1.
    problems: list[RuleError] = field(default_factory=list)

    def path_for(self, rule_path: str) -> Path | None:
        """The lock file of the checkout holding ``rule_path``, if any."""
        directory = os.path.dirname(rule_path)
        if directory in self._by_dir:
            return self._by_dir[directory]
        found = self._by_dir[directory] = self._lock_for(rule_path)
        return found

    def _lock_for(self, rule_path: str) -> Path | None:
        start = Path(os.path.abspath(rule_path)).parent
        for directory in (start, *start.parents):
            if directory in self._found:
                return self._found[directory]
            candidate = directory / LOCK_FILE
            if candidate.is_file():
                self._found[start] = candidate
                return candidate
        self._found[start] = None
        return None

    def versions(self, lock: Path) -> Mapping[str, int]:
        """``rule_id -> version`` of one lock file; empty when it is broken (the problem
        is then in :attr:`problems`, once)."""
        if lock not in self._read:
            self._read[lock] = {}
            try:
                self._read[lock] = _read_lock(lock)
            except RuleError as exc:
                self.problems.append(exc)
        return self._read[lock]

    def version_of(self, rule_path: str, data: Mapping[str, Any]) -> int:
        """The lock file's version of the parsed rule ``data``, else 1."""
        lock = self.path_for(rule_path)
        rule = data.get("rule")
        rule_id = rule.get("rule_id") if isinstance(rule, Mapping) else None
        if lock is None or not isinstance(rule_id, str):
            return 1
        return self.versions(lock).get(rule_id, 1)


def _read_lock(lock: Path) -> dict[str, int]:
    where = SourceLocation(str(lock))
    try:
        doc = json.loads(read_regular_file(str(lock)))
    except InputError as exc:
        raise RuleError(f"cannot read the version lock: {exc.message}", where=where) from None
    except ValueError as exc:
        raise RuleError(f"the version lock is not JSON: {exc}", where=where) from None
    if not isinstance(doc, dict):
        raise RuleError("the version lock is not a JSON object", where=where)
    return {
        rule_id: entry["version"]
        for rule_id, entry in doc.items()
        if isinstance(entry, dict)
        and isinstance(entry.get("version"), int)
        and not isinstance(entry["version"], bool)
        and entry["version"] > 0
    }


@dataclass(slots=True)
class LoadedSource:
    """What one ``--rule PATH`` gave.

    Attributes:
        path: the path as given.
        directory: whether it is a directory (problems are then reported, not raised).
        rules: the rules loaded, in file order.
        skipped: ``SKIP_KINDS`` key -> files of that kind left out.
        failed: the problems of rule files that did not load (each names its file).
        warnings: other problems: a version lock that cannot be read.
        lock: the lock file the versions came from, if any.
    """

    path: str
    directory: bool
    rules: list[DetectionRule] = field(default_factory=list)
    skipped: dict[str, list[str]] = field(default_factory=dict)
    failed: list[RuleError] = field(default_factory=list)
    warnings: list[RuleError] = field(default_factory=list)
    lock: Path | None = None

    def summary(self) -> str:
        """One line: how many rules loaded, were skipped (by kind) and failed."""
        parts = [f"{self.path}: {len(self.rules)} rules loaded"]
        if self.lock is not None:
            parts[0] += f" (versions from {self.lock})"
        counts = [
            (len(self.skipped[k]), word) for k, word in SKIP_KINDS.items() if k in self.skipped
        ]
        if counts:
            skipped = ", ".join(f"{n} {word}" for n, word in counts)
            parts.append(f"skipped {skipped}")
        if self.failed:
            parts.append(
                f"{len(self.failed)} did not load (see kexecwatch rules check {self.path})"
            )
        return "; ".join(parts)


def load_rule_source(
    path: str, lock: VersionLock | None = None, cache: RuleCache | None = None
) -> LoadedSource:
    """Load the rule file or directory ``path`` (its files' TOML from ``cache`` when
    given: :mod:`kexecwatch.rules.cache`).

    Raises:
        RuleError: ``path`` is missing or unreadable, a rule *file* does not load, or a
            directory holds no rule at all (a run without them is surely a mistake).
    """
    lock = lock or VersionLock()
    parse = parse_toml if cache is None else cache.parse_toml
    compile_query = None if cache is None else cache.compile_statement
    if not os.path.isdir(path):
        try:
            text = read_rule_file(path)
        except RuleError as exc:
            if exc.message == "no such rule file":
                raise RuleError(f"{path}: no such rule file or directory") from None
            raise RuleError(f"{path}: {exc.message}") from None
        loaded = LoadedSource(path, directory=False, lock=lock.path_for(path))
        seen = len(lock.problems)
        loaded.rules.append(_load_one(path, text, parse(text, path), lock, compile_query))
        loaded.warnings += lock.problems[seen:]
        return loaded
    loaded = LoadedSource(path, directory=True)
    seen = len(lock.problems)
    for file in rule_files(path, loaded.failed.append):
        try:
            text = read_rule_file(file)
            data = parse(text, file)
            kind = classify_rule(data)
            if kind is not None:
                loaded.skipped.setdefault(kind, []).append(file)
                continue
            loaded.lock = loaded.lock or lock.path_for(file)
            loaded.rules.append(_load_one(file, text, data, lock, compile_query))
        except RuleError as exc:
            loaded.failed.append(
                exc if exc.where else RuleError(exc.message, where=SourceLocation(file))
            )
    loaded.warnings += lock.problems[seen:]
    if not loaded.rules and not loaded.failed and not loaded.warnings:
        raise RuleError(
            f"{path}: no rule kexecwatch can run in this directory ({loaded.summary()})"
        )
    return loaded


def _load_one(
    path: str,
    text: str,
    data: Mapping[str, Any],
    lock: VersionLock,
    compile_query: QueryCompiler | None,
) -> DetectionRule:
    rule = data.get("rule")
    if isinstance(rule, Mapping) and rule.get("language") == "kexecwatch":
        return load_native_rule(text, path)
    version = lock.version_of(path, data)
    return load_parsed_rule(dict(data), text, path, default_version=version, compile=compile_query)
