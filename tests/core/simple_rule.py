"""A plain-Python rule with the detector's rule protocol, for core tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SimpleRule:
    predicate: Callable[[dict[str, Any]], bool]
    rule_id: str = "test-rule"
    name: str = "Test rule"
    version: int = 1
    description: str = "a rule for tests"
    severity: str = "medium"
    risk_score: int = 47
    license: str = "test"
    author: tuple[str, ...] = ("tests",)
    references: tuple[str, ...] = ()
    threat: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    max_signals: int = 100
    interval_ms: int = 300_000

    def threat_documents(self) -> list[dict[str, Any]]:
        return [dict(t) for t in self.threat]

    def matches(self, document: dict[str, Any]) -> bool:
        return self.predicate(document)


def kexec_like(doc: dict[str, Any]) -> bool:
    p = doc["process"]
    return p.get("name") == "kexec" and doc["event"]["type"] == ["start"]
