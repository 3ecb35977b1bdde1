"""kexecwatch's own detections: what the upstream EQL rule cannot see.

Each detection is Python (``matches(document)`` and ``reason(document)``),
and each rule that runs one is a TOML file in ``kexecwatch/rules/`` with the
usual metadata (id, name, description, severity, risk score, MITRE mapping,
version) and::

    type = "kexecwatch"
    language = "kexecwatch"
    detection = "kexec-args-evasion"   # a key of DETECTIONS

:func:`load_native_rule` reads such a file into a :class:`NativeRule`, which
the detector runs like an EQL :class:`~kexecwatch.core.detect.rule.Rule`. A
detection's ``applies_to`` says which documents it reads: ``process`` or
``telemetry``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from kexecwatch.core.detect.detections.args_evasion import ArgsEvasion, ParentMasquerade
from kexecwatch.core.detect.detections.disguised import DisguisedBinary
from kexecwatch.core.detect.detections.kexec_syscall import KexecSyscall
from kexecwatch.core.detect.detections.telemetry_gap import TelemetryGap
from kexecwatch.core.detect.rule.ruleset import (
    RuleMetadata,
    Threat,
    check_rule_keys,
    parse_toml,
    read_rule_metadata,
)
from kexecwatch.core.scan.prefilter import Prefilter
from kexecwatch.core.text.frozen import set_field
from kexecwatch.errors import RuleError, SourceLocation

__all__ = ["DETECTIONS", "Detection", "NativeRule", "load_native_rule", "load_parsed_native_rule"]


class Detection(Protocol):
    """A Python detection: which documents it reads, a predicate and a reason."""

    @property
    def applies_to(self) -> str: ...
    def prefilters(self) -> list[Prefilter]: ...
    def matches(self, document: dict[str, Any]) -> bool: ...
    def reason(self, document: dict[str, Any]) -> str: ...


#: Detection names (``rule.detection``) and their implementations.
DETECTIONS: dict[str, Callable[[], Detection]] = {
    "kexec-syscall": KexecSyscall,
    "kexec-args-evasion": ArgsEvasion,
    "kexec-parent-masquerade": ParentMasquerade,
    "kexec-disguised-binary": DisguisedBinary,
    "audit-telemetry-gap": TelemetryGap,
}


class NativeRule(RuleMetadata):
    """A kexecwatch rule: the shared rule metadata and a Python detection.

    Each loaded rule has its own detection instance, so detections that learn
    (known kexec inodes, rule-removal bursts) keep per-detector state.
    """

    __slots__ = ("detection_name", "detection", "source")  # noqa: RUF023 - the fields, in order

    detection_name: str
    detection: Detection
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
        detection_name: str,
        detection: Detection,
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
        set_field(self, "detection_name", detection_name)
        set_field(self, "detection", detection)
        set_field(self, "source", source)

    @property
    def applies_to(self) -> str:
        """``process`` or ``telemetry``: the documents the detection reads."""
        return self.detection.applies_to

    def prefilters(self) -> list[Prefilter]:
        """The process events the detection may need in full (see
        :mod:`kexecwatch.core.scan.prefilter`); telemetry reaches it regardless."""
        return self.detection.prefilters()

    def matches(self, document: dict[str, Any]) -> bool:
        """Whether the detection matches one ECS document."""
        return self.detection.matches(document)

    def reason(self, document: dict[str, Any]) -> str:
        """The detection's one-line reason for a match."""
        return self.detection.reason(document)


def load_native_rule(text: str, source: str) -> NativeRule:
    """Load one kexecwatch rule file.

    Raises:
        RuleError: for TOML errors, missing or ill-typed keys, or a
            ``rule.detection`` that names no known detection.
    """
    return load_parsed_native_rule(parse_toml(text, source), text, source)


def load_parsed_native_rule(data: dict[str, Any], text: str, source: str) -> NativeRule:
    """:func:`load_native_rule` for a file already parsed with ``parse_toml``.

    Raises:
        RuleError: as :func:`load_native_rule`, but for TOML errors.
    """
    common = read_rule_metadata(data, source, kind="kexecwatch")
    name = data["rule"].get("detection")
    factory = DETECTIONS.get(name) if isinstance(name, str) else None
    if factory is None:
        known = ", ".join(sorted(DETECTIONS))
        raise RuleError(
            f"rule.detection must be one of {known}, found {name!r}",
            where=SourceLocation(source),
        )
    check_rule_keys(data, text, source, kind="kexecwatch")
    return NativeRule(**common, detection_name=name, detection=factory(), source=source)
