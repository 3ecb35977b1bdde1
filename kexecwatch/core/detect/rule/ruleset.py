"""Load a rule file in Elastic's detection-rules TOML format into a :class:`Rule`.

The file has a ``[metadata]`` table (creation_date, updated_date, maturity, optional
integration) and a ``[rule]`` table (author, description, name, rule_id, risk_score,
severity, type = "eql", language = "eql", query, and optional license, from, index,
tags, references, timestamp_override, version, max_signals, interval), plus
``[[rule.threat]]`` entries for MITRE ATT&CK. detection-rules keeps versions in a lock
file; kexecwatch reads ``version`` from ``[rule]``, else the lock file's entry that the
caller passes (:func:`load_parsed_rule`), else 1. Other detection-rules keys
(``setup``, ``note``, ...) are accepted and ignored; a key detection-rules does not define
either (a typo such as ``severty``) is an error (:mod:`kexecwatch.core.detect.rule.lint`).

:func:`check_rule` is ``check-rule``'s view: every problem of a file at once, errors and
warnings (fields and categories kexecwatch never produces), instead of the first error.

Errors name the dotted key (``rule.risk_score``); query errors name the line and column
in the TOML file when the query is a TOML string without escapes (the usual case).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from kexecwatch.core.detect.rule.ast import Statement
from kexecwatch.core.detect.rule.evaluate import CompiledQuery, Document
from kexecwatch.core.detect.rule.lexer import QuerySource
from kexecwatch.core.detect.rule.lint import field_problems, key_problems
from kexecwatch.core.detect.rule.parser import parse_statement
from kexecwatch.core.detect.rule.query import compile_statement
from kexecwatch.core.detect.rule.sequence import CompiledSequence
from kexecwatch.core.text.frozen import Frozen, set_field
from kexecwatch.errors import RuleError, SourceLocation

if TYPE_CHECKING:
    import tomllib

__all__ = [
    "Rule",
    "RuleCheck",
    "RuleMetadata",
    "Technique",
    "Threat",
    "ThreatRef",
    "check_rule",
    "check_rule_keys",
    "duration_ms",
    "load_parsed_rule",
    "load_rule",
    "parse_toml",
    "read_rule_metadata",
]

_T = TypeVar("_T")
#: Parses and compiles a rule's query (:func:`~.query.compile_statement`, or the rule
#: cache's own).
QueryCompiler = Callable[[QuerySource], "CompiledQuery | CompiledSequence"]
_SEVERITIES = ("low", "medium", "high", "critical")


class ThreatRef(Frozen):
    """A MITRE ATT&CK tactic or sub-technique: ``TA0004`` / ``Privilege Escalation`` / URL."""

    __slots__ = ("id", "name", "reference")

    id: str
    name: str
    reference: str

    def __init__(self, id: str, name: str, reference: str) -> None:
        set_field(self, "id", id)
        set_field(self, "name", name)
        set_field(self, "reference", reference)

    def to_dict(self) -> dict[str, Any]:
        """The detection-rules shape, for JSON."""
        return {"id": self.id, "name": self.name, "reference": self.reference}


class Technique(Frozen):
    """A MITRE ATT&CK technique and its sub-techniques."""

    __slots__ = ("id", "name", "reference", "subtechniques")

    id: str
    name: str
    reference: str
    subtechniques: tuple[ThreatRef, ...]

    def __init__(
        self,
        id: str,
        name: str,
        reference: str,
        subtechniques: tuple[ThreatRef, ...] = (),
    ) -> None:
        set_field(self, "id", id)
        set_field(self, "name", name)
        set_field(self, "reference", reference)
        set_field(self, "subtechniques", subtechniques)

    def to_dict(self) -> dict[str, Any]:
        """The detection-rules shape, for JSON."""
        out = {"id": self.id, "name": self.name, "reference": self.reference}
        if self.subtechniques:
            return {**out, "subtechnique": [s.to_dict() for s in self.subtechniques]}
        return out


class Threat(Frozen):
    """One ``[[rule.threat]]`` entry: a framework, a tactic and its techniques."""

    __slots__ = ("framework", "tactic", "techniques")

    framework: str
    tactic: ThreatRef
    techniques: tuple[Technique, ...]

    def __init__(
        self,
        framework: str,
        tactic: ThreatRef,
        techniques: tuple[Technique, ...] = (),
    ) -> None:
        set_field(self, "framework", framework)
        set_field(self, "tactic", tactic)
        set_field(self, "techniques", techniques)

    def to_dict(self) -> dict[str, Any]:
        """The detection-rules shape, for JSON."""
        return {
            "framework": self.framework,
            "tactic": self.tactic.to_dict(),
            "technique": [t.to_dict() for t in self.techniques],
        }


class RuleMetadata(Frozen):
    """What every rule kind has: detection-rules metadata and the MITRE mapping.

    ``from_`` is the rule's ``from`` key (a look-back such as ``now-9m``).
    """

    __slots__ = (  # noqa: RUF023 - the fields, in order
        "rule_id",
        "name",
        "description",
        "version",
        "severity",
        "risk_score",
        "author",
        "license",
        "from_",
        "interval",
        "max_signals",
        "index",
        "tags",
        "references",
        "timestamp_override",
        "threat",
        "creation_date",
        "updated_date",
        "maturity",
        "integration",
    )

    rule_id: str
    name: str
    description: str
    version: int
    severity: str
    risk_score: int
    author: tuple[str, ...]
    license: str
    from_: str
    interval: str
    max_signals: int
    index: tuple[str, ...]
    tags: tuple[str, ...]
    references: tuple[str, ...]
    timestamp_override: str | None
    threat: tuple[Threat, ...]
    creation_date: str
    updated_date: str
    maturity: str
    integration: tuple[str, ...]

    def __init__(  # noqa: PLR0917 - a dataclass's positional fields
        self,
        rule_id: str,
        name: str,
        description: str,
        version: int,
        severity: str,
        risk_score: int,
        author: tuple[str, ...],
        license: str,
        from_: str,
        interval: str,
        max_signals: int,
        index: tuple[str, ...],
        tags: tuple[str, ...],
        references: tuple[str, ...],
        timestamp_override: str | None,
        threat: tuple[Threat, ...],
        creation_date: str,
        updated_date: str,
        maturity: str,
        integration: tuple[str, ...],
    ) -> None:
        set_field(self, "rule_id", rule_id)
        set_field(self, "name", name)
        set_field(self, "description", description)
        set_field(self, "version", version)
        set_field(self, "severity", severity)
        set_field(self, "risk_score", risk_score)
        set_field(self, "author", author)
        set_field(self, "license", license)
        set_field(self, "from_", from_)
        set_field(self, "interval", interval)
        set_field(self, "max_signals", max_signals)
        set_field(self, "index", index)
        set_field(self, "tags", tags)
        set_field(self, "references", references)
        set_field(self, "timestamp_override", timestamp_override)
        set_field(self, "threat", threat)
        set_field(self, "creation_date", creation_date)
        set_field(self, "updated_date", updated_date)
        set_field(self, "maturity", maturity)
        set_field(self, "integration", integration)

    @property
    def interval_ms(self) -> int:
        """The rule's ``interval`` (``5m``) in milliseconds: its alert-limit window."""
        return duration_ms(self.interval)

    def threat_documents(self) -> list[dict[str, Any]]:
        """The MITRE mapping as JSON-ready dicts, as alerts carry it."""
        return [t.to_dict() for t in self.threat]


class Rule(RuleMetadata):
    """A loaded EQL detection rule: its metadata, threat mapping and compiled query
    (a :class:`CompiledSequence` for a ``sequence`` or ``sample``, whose matches the
    detector's sequence engine finds; its :meth:`matches` is always false)."""

    __slots__ = ("query", "source")

    query: CompiledQuery | CompiledSequence
    source: str

    def __init__(  # noqa: PLR0917 - a dataclass's positional fields
        self,
        rule_id: str,
        name: str,
        description: str,
        version: int,
        severity: str,
        risk_score: int,
        author: tuple[str, ...],
        license: str,
        from_: str,
        interval: str,
        max_signals: int,
        index: tuple[str, ...],
        tags: tuple[str, ...],
        references: tuple[str, ...],
        timestamp_override: str | None,
        threat: tuple[Threat, ...],
        creation_date: str,
        updated_date: str,
        maturity: str,
        integration: tuple[str, ...],
        query: CompiledQuery | CompiledSequence,
        source: str,
    ) -> None:
        RuleMetadata.__init__(
            self,
            rule_id,
            name,
            description,
            version,
            severity,
            risk_score,
            author,
            license,
            from_,
            interval,
            max_signals,
            index,
            tags,
            references,
            timestamp_override,
            threat,
            creation_date,
            updated_date,
            maturity,
            integration,
        )
        set_field(self, "query", query)
        set_field(self, "source", source)

    def matches(self, document: Document) -> bool:
        """Whether the rule's query matches one ECS document."""
        return self.query.matches(document)

    def reason(self, document: Document) -> str:
        """A generic one-line reason for a match: the required values the document holds.

        For the kexec rule: ``process.name kexec with process.args -l (EQL rule
        v7)``. Values come from :meth:`CompiledQuery.required_values`;
        ``event.*`` and ``host.*`` are left out as they say nothing here.
        """
        parts: list[str] = []
        for name, wanted in self.query.required_values().items():
            if name.startswith(("event.", "host.")):
                continue
            value: Any = document
            for key in name.split("."):
                value = value.get(key) if isinstance(value, dict) else None
            values = value if isinstance(value, list) else [value]
            hits = [str(v) for v in values if v in wanted]
            if hits:
                parts.append(f"{name} {' '.join(dict.fromkeys(hits))}")
        what = " with ".join(_shorten_part(p) for p in parts) or "the query"
        return f"{what} (EQL rule v{self.version})"


def _shorten_part(part: str) -> str:
    return part if len(part) <= 80 else part[:79] + "…"


_DURATION_UNITS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def duration_ms(text: str) -> int:
    """``30s``, ``5m``, ``1h`` or ``1d`` in milliseconds.

    Raises:
        ValueError: for anything else.
    """
    number, unit = text[:-1], text[-1:]
    if not number.isdigit() or unit not in _DURATION_UNITS:
        raise ValueError(f"bad duration {text!r}: expected a number and one of s, m, h, d")
    return int(number) * _DURATION_UNITS[unit]


def load_rule(text: str, source: str) -> Rule:
    """Load one detection-rules TOML rule.

    Args:
        text: the TOML file's contents.
        source: the file name, for error locations.

    Raises:
        RuleError: for TOML syntax errors (with line and column), missing or ill-typed
            keys (naming the dotted key), or a query that does not compile.
    """
    return load_parsed_rule(parse_toml(text, source), text, source)


def load_parsed_rule(
    data: dict[str, Any],
    text: str,
    source: str,
    *,
    default_version: int = 1,
    parse: Callable[[QuerySource], Statement] | None = None,
    compile: QueryCompiler | None = None,
) -> Rule:
    """:func:`load_rule` for a file already parsed with :func:`parse_toml`.

    Args:
        default_version: the version when ``rule.version`` is absent (a checkout's
            ``version.lock.json`` entry for the rule).
        parse: what parses the query (the rule cache's, which keeps parsed queries:
            :mod:`kexecwatch.core.detect.rule.astjson`); ``None``: the parser.
        compile: what parses and compiles the query, in place of ``parse`` and
            :func:`~kexecwatch.core.detect.rule.query.compile_statement` (the rule
            cache's, which compiles lazily what it knows compiles); ``None``: those.

    Raises:
        RuleError: as :func:`load_rule`.
    """
    check_rule_keys(data, text, source, kind="eql")
    common = read_rule_metadata(data, source, kind="eql", default_version=default_version)
    query = _Reader(source).req(data["rule"], "rule.query", str)
    compiler = compile or partial(compile_statement, parse=parse or parse_statement)
    compiled, _ = _compile_in_file(query, text, source, compiler)
    return Rule(**common, query=compiled, source=source)


def check_rule_keys(data: dict[str, Any], text: str, source: str, *, kind: str) -> None:
    """Raise the first key problem of a parsed rule file (unknown or missing keys).

    Its message says how many more there are; ``check-rule`` shows them all.

    Raises:
        RuleError: for an unknown key, or naming every missing required key.
    """
    problems = key_problems(data, text, source, kind)
    if problems:
        first = problems[0]
        more = len(problems) - 1
        if more:
            first = RuleError(
                f"{first.message} (and {more} more: run kexecwatch check-rule {source})",
                where=first.where,
                detail=first.detail,
            )
        raise first


class RuleCheck(Frozen):
    """Everything ``check-rule`` found in one rule file.

    Attributes:
        source: the file name.
        rule: the loaded rule, or ``None`` when an error kept it from loading.
        errors: problems that make the file unusable (``replay --rule`` refuses it).
        warnings: problems that make the rule useless (a field kexecwatch never sets).
    """

    __slots__ = ("source", "rule", "errors", "warnings")  # noqa: RUF023 - the fields, in order

    source: str
    rule: Rule | None
    errors: tuple[RuleError, ...]
    warnings: tuple[RuleError, ...]

    def __init__(
        self,
        source: str,
        rule: Rule | None,
        errors: tuple[RuleError, ...],
        warnings: tuple[RuleError, ...],
    ) -> None:
        set_field(self, "source", source)
        set_field(self, "rule", rule)
        set_field(self, "errors", errors)
        set_field(self, "warnings", warnings)


def check_rule(text: str, source: str) -> RuleCheck:
    """Check one detection-rules TOML rule and report every problem found, never raising.

    A TOML syntax error stops the check there. Otherwise every unknown key and all
    missing keys are reported together, then the first type error of the metadata and
    the query's first error; a query that compiles is checked for fields and a category
    kexecwatch never produces (warnings), even when the metadata has errors.
    """
    try:
        data = parse_toml(text, source)
    except RuleError as exc:
        return RuleCheck(source, None, (exc,), ())
    errors = key_problems(data, text, source, "eql")
    common: dict[str, Any] | None = None
    try:
        common = read_rule_metadata(data, source, kind="eql")
    except RuleError as exc:
        if not _already_missing(exc, errors):
            errors.append(exc)
    table = data.get("rule")
    query = table.get("query") if isinstance(table, dict) else None
    compiled: CompiledQuery | CompiledSequence | None = None
    warnings: tuple[RuleError, ...] = ()
    if query is not None and not isinstance(query, str):
        errors.append(_Reader(source).error("rule.query must be of type string"))
    elif query is not None:
        try:
            compiled, src = _compile_in_file(query, text, source)
        except RuleError as exc:
            errors.append(exc)
        else:
            warnings = tuple(field_problems(compiled, src))
    rule = None
    if common is not None and compiled is not None and not errors:
        rule = Rule(**common, query=compiled, source=source)
    return RuleCheck(source, rule, tuple(errors), warnings)


def _already_missing(exc: RuleError, errors: list[RuleError]) -> bool:
    """Whether ``exc`` says a key is missing that a message in ``errors`` already names."""

    def missing(message: str) -> list[str]:
        _, _, keys = message.partition(" ")[2].partition(" ")[2].partition(" ")
        return keys.split(", ") if message.startswith("missing required key") else []

    return bool(set(missing(exc.message)) & {k for e in errors for k in missing(e.message)})


def parse_toml(text: str, source: str) -> dict[str, Any]:
    """TOML text to a dict; syntax errors become :class:`RuleError` with a caret."""
    import tomllib  # here: the built-in rules load without it (kexecwatch/rules/builtin.json)

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _toml_error(exc, text, source) from None


def read_rule_metadata(
    data: dict[str, Any], source: str, *, kind: str, default_version: int = 1
) -> dict[str, Any]:
    """Check and read the metadata every rule kind shares.

    Args:
        data: the parsed TOML file.
        source: the file name, for error locations.
        kind: the required ``rule.type`` and ``rule.language`` (``eql``, or
            ``kexecwatch`` for kexecwatch's own detections).
        default_version: ``rule.version`` when the file has none.

    Returns:
        The :class:`RuleMetadata` fields, by name.

    Raises:
        RuleError: naming the dotted key of a missing or ill-typed value.
    """
    get = _Reader(source)
    meta = get.table(data, "metadata")
    rule = get.table(data, "rule")
    for key in ("type", "language"):
        if get.req(rule, f"rule.{key}", str) != kind:
            raise get.error(f"rule.{key} must be {kind!r}")
    severity = get.req(rule, "rule.severity", str)
    if severity not in _SEVERITIES:
        raise get.error(f"rule.severity must be one of {', '.join(_SEVERITIES)}")
    risk = get.req(rule, "rule.risk_score", int)
    if not 0 <= risk <= 100:
        raise get.error("rule.risk_score must be between 0 and 100")
    version = get.opt(rule, "rule.version", int, default_version)
    max_signals = get.opt(rule, "rule.max_signals", int, 100)
    if version < 1 or max_signals < 1:
        raise get.error("rule.version and rule.max_signals must be positive")
    integration = meta.get("integration", ())
    return {
        "rule_id": get.req(rule, "rule.rule_id", str),
        "name": get.req(rule, "rule.name", str),
        "description": get.req(rule, "rule.description", str),
        "version": version,
        "severity": severity,
        "risk_score": risk,
        "author": get.strings(rule, "rule.author", required=True),
        "license": get.opt(rule, "rule.license", str, ""),
        "from_": get.opt(rule, "rule.from", str, "now-6m"),
        "interval": get.duration(rule, "rule.interval", "5m"),
        "max_signals": max_signals,
        "index": get.strings(rule, "rule.index"),
        "tags": get.strings(rule, "rule.tags"),
        "references": get.strings(rule, "rule.references"),
        "timestamp_override": get.opt(rule, "rule.timestamp_override", str, None),
        "threat": tuple(
            get.threat(t, f"rule.threat[{i}]")
            for i, t in enumerate(get.opt(rule, "rule.threat", list, []))
        ),
        "creation_date": get.req(meta, "metadata.creation_date", str),
        "updated_date": get.req(meta, "metadata.updated_date", str),
        "maturity": get.req(meta, "metadata.maturity", str),
        "integration": (integration,)
        if isinstance(integration, str)
        else get.strings(meta, "metadata.integration"),
    }


class _Reader:
    """Typed access to TOML tables; every failure names the dotted key."""

    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, message: str) -> RuleError:
        return RuleError(message, where=SourceLocation(self.source))

    def req(self, table: dict[str, Any], key: str, kind: type[_T]) -> _T:
        leaf = key.rsplit(".", 1)[-1]
        if leaf not in table:
            raise self.error(f"missing required key {key}")
        return self.typed(table[leaf], key, kind)

    def opt(self, table: dict[str, Any], key: str, kind: type[_T], default: Any) -> Any:
        leaf = key.rsplit(".", 1)[-1]
        return self.typed(table[leaf], key, kind) if leaf in table else default

    def duration(self, table: dict[str, Any], key: str, default: str) -> str:
        value = self.opt(table, key, str, default)
        try:
            duration_ms(value)
        except ValueError as exc:
            raise self.error(f"{key}: {exc}") from None
        return str(value)

    def typed(self, value: Any, key: str, kind: type[_T]) -> _T:
        # bool is an int in Python but not in TOML: "risk_score = true" is wrong.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            found = type(value).__name__
            raise self.error(f"{key} must be of type {_TOML_NAMES[kind]}, found {found}")
        return value

    def table(self, data: dict[str, Any], key: str) -> dict[str, Any]:
        return self.req(data, key, dict)

    def strings(
        self, table: dict[str, Any], key: str, *, required: bool = False
    ) -> tuple[str, ...]:
        values = self.req(table, key, list) if required else self.opt(table, key, list, [])
        if not all(type(item) is str for item in values):  # else nothing to name
            for i, item in enumerate(values):
                self.typed(item, f"{key}[{i}]", str)
        if required and not values:
            raise self.error(f"{key} must not be empty")
        return tuple(values)

    def ref(self, table: Any, key: str) -> ThreatRef:
        table = self.typed(table, key, dict)
        found = (table.get("id"), table.get("name"), table.get("reference"))
        if type(found[0]) is str and type(found[1]) is str and type(found[2]) is str:
            return ThreatRef(*found)  # what the checks below give (and no key names made)
        return ThreatRef(*(self.req(table, f"{key}.{k}", str) for k in ("id", "name", "reference")))

    def threat(self, table: Any, key: str) -> Threat:
        table = self.typed(table, key, dict)
        techniques = []
        for i, tech in enumerate(self.opt(table, f"{key}.technique", list, [])):
            name = f"{key}.technique[{i}]"
            base = self.ref(tech, name)
            subs = self.opt(tech, f"{name}.subtechnique", list, [])
            techniques.append(
                Technique(
                    base.id,
                    base.name,
                    base.reference,
                    tuple(self.ref(s, f"{name}.subtechnique[{j}]") for j, s in enumerate(subs)),
                )
            )
        return Threat(
            self.req(table, f"{key}.framework", str),
            self.ref(self.req(table, f"{key}.tactic", dict), f"{key}.tactic"),
            tuple(techniques),
        )


_TOML_NAMES: dict[type, str] = {str: "string", int: "integer", list: "array", dict: "table"}
_TOML_POS = re.compile(r"\(at line (\d+), column (\d+)\)")
#: A ``query`` key and its string's opening quotes: a key where only blanks precede it
#: on its line (:func:`_query_keys`).
_QUERY_KEY = re.compile(r"query[ \t]*=[ \t]*(\"\"\"|'''|\"|')")
#: A table header at the start of a line (:func:`_last_table`); its name may run over
#: lines, up to the next ``]``.
_TABLE = re.compile(r"[ \t]*\[+[ \t]*([^\]]+?)[ \t]*\]")
#: Where a line may start a table header (the newline before it).
_TABLE_LINE = re.compile(r"\n[ \t]*\[")


def _toml_error(exc: tomllib.TOMLDecodeError, text: str, source: str) -> RuleError:
    message = str(exc)
    m = _TOML_POS.search(message)
    if m is None:
        return RuleError(f"invalid TOML: {message}", where=SourceLocation(source))
    line, col = int(m.group(1)), int(m.group(2))
    message = message[: m.start()].strip()
    lines = text.splitlines()
    detail = ""
    if 1 <= line <= len(lines):
        shown = lines[line - 1]
        prefix = "".join(c if c == "\t" else " " for c in shown[: col - 1])
        detail = f"{shown}\n{prefix}^"
    return RuleError(
        f"invalid TOML: {message}", where=SourceLocation(source, line, col), detail=detail
    )


def _compile_in_file(
    query: str,
    text: str,
    source: str,
    compile: QueryCompiler = compile_statement,
) -> tuple[CompiledQuery | CompiledSequence, QuerySource]:
    """Compile the query so that errors point into the TOML file, when that is possible."""
    src = _locate_query(query, text, source)
    if src is not None:
        return compile(src), src
    src = QuerySource(query, source)
    try:
        return compile(src), src
    except RuleError as exc:
        # Escapes in the TOML string change offsets: say the position is in the query.
        raise RuleError(
            f"{exc.message} (line and column within rule.query)", where=exc.where, detail=exc.detail
        ) from None


def _locate_query(query: str, text: str, source: str) -> QuerySource | None:
    """Where ``rule.query`` starts in the file, if its raw text equals its value."""
    for key_line, key_end, delim in _query_keys(text):
        if _last_table(text, key_line) != "rule":
            continue
        start = key_end
        if len(delim) == 3 and text.startswith("\n", start):
            start += 1
        end = text.find(delim, start)
        if end == -1 or text[start:end] != query:
            return None
        line_start = text.rfind("\n", 0, start) + 1
        line_end = text.find("\n", start)
        first_line = text[line_start : line_end if line_end != -1 else len(text)]
        return QuerySource(
            query, source, text.count("\n", 0, start), start - line_start, first_line
        )
    return None


def _query_keys(text: str) -> Iterator[tuple[int, int, str]]:
    """Each ``query`` key at the start of a line of ``text`` (after blanks), in order:
    where its line starts, where its string starts (after the opening quotes), and
    those quotes.

    These are the matches of ``^[ \\t]*query[ \\t]*=[ \\t]*(quotes)`` (multi-line), found
    by looking for the key itself, several times faster than trying that pattern at
    every place (a rule file's investigation guide is most of its text). A match lies
    within one line, and only a line's first ``query`` can have only blanks before it,
    so both find the same keys.
    """
    for m in _QUERY_KEY.finditer(text):
        line = text.rfind("\n", 0, m.start()) + 1
        if not text[line : m.start()].strip(" \t"):
            yield line, m.end(), m.group(1)


def _last_table(text: str, end: int) -> str | None:
    """The name of the last table header in ``text[:end]`` (``None``: there is none).

    The last match of ``^[ \\t]*\\[+[ \\t]*([^\\]]+?)[ \\t]*\\]`` (multi-line) in
    ``text[:end]``: tried only where a line begins with ``[`` after blanks, and, as a
    search does, not inside the previous match (a name may run over lines).
    """
    found: str | None = None
    resume = 0
    m = _TABLE.match(text, 0, end)
    if m is not None:
        found, resume = m.group(1), m.end()
    for line in _TABLE_LINE.finditer(text, 0, end):
        start = line.start() + 1
        if start < resume:
            continue
        m = _TABLE.match(text, start, end)
        if m is not None:
            found, resume = m.group(1), m.end()
    return found
