"""``kexecwatch rules check PATH...``: rule by rule, what kexecwatch can do with a rule set.

For every rule file under the paths (files, or directories read as ``--rule DIR`` reads
them): whether it is for Linux and in a language kexecwatch runs, whether it loads, and
whether it can fire on kexecwatch's process events, with the exact reasons when not
(:mod:`kexecwatch.core.detect.rule.coverage`). Then the counts. This report is how coverage of a
detection-rules checkout is measured.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from kexecwatch.core import Blocker, coverage, escape_text, jsontext, load_parsed_rule, parse_toml
from kexecwatch.errors import RuleError
from kexecwatch.rules.source import (
    SKIP_KINDS,
    VersionLock,
    classify_rule,
    read_rule_file,
    rule_files,
)

if TYPE_CHECKING:
    from kexecwatch.rules.cache import RuleCache

__all__ = ["CheckedRule", "Report", "check_paths", "write_json", "write_text"]

_LANGUAGES = {"eql": "EQL", "kuery": "KQL", "esql": "ES|QL"}
_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.DOTALL)


@dataclass(slots=True)
class CheckedRule:
    """The verdict on one rule file.

    Attributes:
        path: the file.
        status: ``fires`` (loads and can fire), ``never`` (loads, cannot fire),
            ``error`` (does not load) or ``skipped`` (see ``skipped``).
        language: ``EQL``, ``KQL``, ``ES|QL`` or ``other``.
        shape: for EQL, ``single`` (one event), ``sequence`` or ``sample``.
        platform: ``linux`` (an ``OS: Linux`` tag), ``any`` (no ``OS:`` tag: loaded by
            ``--rule DIR`` too) or ``other`` (``OS:`` tags without Linux: skipped).
        skipped: the :data:`~kexecwatch.rules.source.SKIP_KINDS` key, when skipped.
        error: why it does not load, one line.
        blockers: why it cannot fire.
    """

    path: str
    status: str
    rule_id: str = ""
    name: str = ""
    version: int | None = None
    language: str = "other"
    shape: str = ""
    platform: str = "linux"
    skipped: str = ""
    error: str = ""
    blockers: tuple[Blocker, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "path": self.path,
            "status": self.status,
            "id": self.rule_id,
            "name": self.name,
            "version": self.version,
            "language": self.language,
            "shape": self.shape or None,
            "platform": self.platform,
            "skipped": self.skipped or None,
            "error": self.error or None,
            "blockers": [
                {"kind": b.kind, "field": b.field, "message": b.message} for b in self.blockers
            ],
        }


@dataclass(slots=True)
class Report:
    """Every checked rule, and the counts derived from them."""

    rules: list[CheckedRule] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def counts(self, platform: str = "linux") -> dict[str, Any]:
        """The figures for the rules of one ``platform`` (see :class:`CheckedRule`): by
        language and shape, how many load and can fire, and what keeps the others from
        firing (``alone``: rules with that one reason only)."""
        mine = [r for r in self.rules if r.platform == platform]
        eql = [r for r in mine if r.language == "EQL"]
        loaded = [r for r in eql if r.status in ("fires", "never")]
        never = [r for r in loaded if r.status == "never"]
        blocked: Counter[str] = Counter()
        alone: Counter[str] = Counter()
        for rule in never:
            keys = sorted({b.key for b in rule.blockers})
            blocked.update(keys)
            if len(keys) == 1:
                alone[keys[0]] += 1
        errors = Counter(r.error for r in eql if r.status == "error")
        return {
            "rules": len(mine),
            "languages": {
                k: n
                for k in ("EQL", "KQL", "ES|QL", "other")
                if (n := sum(r.language == k for r in mine))
            },
            "eql_shapes": {
                k: n
                for k in ("single", "sequence", "sample")
                if (n := sum(r.shape == k for r in eql))
            },
            "loaded": len(loaded),
            "not_loaded": dict(errors.most_common()),
            "can_fire": len(loaded) - len(never),
            "cannot_fire": dict(blocked.most_common()),
            "cannot_fire_alone": {k: alone[k] for k, _ in blocked.most_common()},
        }

    def skipped(self) -> dict[str, int]:
        """Files not checked further, by :data:`SKIP_KINDS` key."""
        found = Counter(r.skipped for r in self.rules if r.status == "skipped")
        return {k: found[k] for k in SKIP_KINDS if found[k]}


def check_paths(
    paths: Sequence[str], events_as: str = "auditbeat", cache: RuleCache | None = None
) -> Report:
    """Check every rule file under ``paths``, for documents in the event vocabulary
    ``events_as`` (``--events-as``), with the files' parsed TOML from ``cache`` if given
    (:mod:`kexecwatch.rules.cache`; written back at the end).

    Raises:
        RuleError: a path is missing or unreadable, or holds no ``*.toml`` file at all.
    """
    report = Report()
    lock = VersionLock()
    parse = parse_toml if cache is None else cache.parse_toml
    for path in paths:
        if os.path.isdir(path):
            files = rule_files(path, lambda exc: report.problems.append(str(exc)))
            if not files:
                raise RuleError(f"{path}: no rule files (*.toml) in this directory")
        elif os.path.exists(path):
            files = [path]
        else:
            raise RuleError(f"{path}: no such rule file or directory")
        report.rules += [_check_file(file, lock, events_as, parse, cache) for file in files]
    report.problems += [str(p).split("\n", 1)[0] for p in lock.problems]
    if cache is not None:
        cache.save()
    return report


def _check_file(
    path: str,
    lock: VersionLock,
    events_as: str,
    parse: Callable[[str, str], dict[str, Any]],
    cache: RuleCache | None,
) -> CheckedRule:
    try:
        text = read_rule_file(path)
        data = parse(text, path)
    except RuleError as exc:
        return CheckedRule(path, "error", error=_one_line(exc))
    checked = _describe(path, data)
    if checked.status == "skipped":
        return checked
    try:
        version = lock.version_of(path, data)
        compile_query = None if cache is None else cache.compile_statement
        rule = load_parsed_rule(data, text, path, default_version=version, compile=compile_query)
    except RuleError as exc:
        checked.status, checked.error = "error", _one_line(exc)
        return checked
    verdict = coverage(rule.query, events_as)
    checked.version = rule.version
    checked.status = "fires" if verdict.can_fire else "never"
    checked.blockers = verdict.blockers
    return checked


def _describe(path: str, data: Mapping[str, Any]) -> CheckedRule:
    """Language, shape and platform from the parsed file; ``skipped`` when not run."""
    rule = data.get("rule")
    if not isinstance(rule, Mapping):
        return CheckedRule(path, "skipped", platform="", skipped="not-a-rule")
    checked = CheckedRule(
        path,
        "unchecked",
        rule_id=str(rule.get("rule_id", "")),
        name=str(rule.get("name", "")),
        language=_LANGUAGES.get(str(rule.get("language")), "other"),
    )
    query = rule.get("query")
    if checked.language == "EQL" and isinstance(query, str):
        first = _COMMENT.sub(" ", query).split(None, 1)
        word = first[0].lower() if first else ""
        checked.shape = word if word in ("sequence", "sample") else "single"
    kind = classify_rule(data)
    tags = rule.get("tags")
    systems = (
        [t for t in tags if isinstance(t, str) and t.startswith("OS:")]
        if isinstance(tags, list)
        else []
    )
    checked.platform = "other" if kind == "not-linux" else "linux" if systems else "any"
    if kind is not None:
        checked.status, checked.skipped = "skipped", kind
    return checked


def _one_line(exc: RuleError) -> str:
    """The problem without its location (the report names the file) nor its caret."""
    return exc.message


_STATUS_TEXT = {"fires": "can fire", "never": "never fires", "error": "does not load"}


def write_text(out: TextIO, report: Report) -> None:
    """One line per rule, then the counts."""
    for problem in report.problems:
        out.write(escape_text(f"problem: {problem}") + "\n")
    for r in report.rules:
        if r.status == "skipped":
            line = f"{r.path}: skipped: {SKIP_KINDS[r.skipped]}"
        else:
            line = f"{r.path}: {_STATUS_TEXT[r.status]}: {r.name!r}"
            if r.error:
                line += f": {r.error}"
            if r.blockers:
                line += ": " + "; ".join(b.message for b in r.blockers)
        out.write(escape_text(line) + "\n")
    out.write(f"\n{len(report.rules)} rule files\n")
    for platform, title in _PLATFORMS.items():
        c = report.counts(platform)
        if c["rules"]:
            _write_counts(out, title, c)
    skipped = report.skipped()
    if skipped:
        out.write(f"not run: {', '.join(f'{n} {SKIP_KINDS[k]}' for k, n in skipped.items())}\n")


_PLATFORMS = {
    "linux": "Linux rules (tagged OS: Linux)",
    "any": "rules without an OS: tag",
}


def _write_counts(out: TextIO, title: str, c: Mapping[str, Any]) -> None:
    langs = ", ".join(f"{n} {k}" for k, n in c["languages"].items())
    shapes = c["eql_shapes"]
    out.write(f"{c['rules']} {title}: {langs}\n")
    eql = c["languages"].get("EQL", 0)
    if not eql:
        return
    out.write(
        f"  EQL: {shapes.get('single', 0)} single-event, {shapes.get('sequence', 0)} "
        f"sequences, {shapes.get('sample', 0)} samples\n"
        f"  load: {c['loaded']} of {eql}\n"
    )
    for message, n in c["not_loaded"].items():
        out.write(escape_text(f"    {n} do not: {message}") + "\n")
    out.write(f"  can fire on kexecwatch's events: {c['can_fire']} of {c['loaded']}\n")
    for key, n in c["cannot_fire"].items():
        out.write(f"    {n} cannot: {key} ({c['cannot_fire_alone'][key]} for that alone)\n")


def write_json(out: TextIO, report: Report) -> None:
    """One document: the counts and every rule."""
    doc = {
        "format": 1,
        "counts": {p: report.counts(p) for p in _PLATFORMS},
        "skipped": report.skipped(),
        "problems": report.problems,
        "rules": [r.to_dict() for r in report.rules],
    }
    out.write(jsontext.dumps(doc, indent=2, sort_keys=False) + "\n")
