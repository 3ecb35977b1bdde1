"""Load fixtures/scenarios.toml: the recorded scenarios and their hand-stated expectations.

The manifest is the oracle for golden tests. Expected argv entries are strings, or
tables that expand to bytes TOML cannot hold or to long runs:

* ``{hex = "fffe"}``: one argument from raw bytes (decoded with ``surrogateescape``,
  the way kexecwatch represents non-UTF-8 arguments);
* ``{repeat = "0123456789abcdef", count = 768}``: one argument, a string repeated;
* ``{prefix = "a", first = 1, last = 2999}``: several arguments ``a1`` ... ``a2999``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CombinedStream",
    "ExpectedAlert",
    "ExpectedDetection",
    "ExpectedRuleAlert",
    "Manifest",
    "Scenario",
    "expand_args",
    "load_manifest",
]

MANIFEST = Path(__file__).resolve().parent.parent / "fixtures" / "scenarios.toml"


@dataclass(frozen=True, slots=True)
class ExpectedAlert:
    """One alert of the upstream v7 rule: the kexec process's argv and parent name."""

    args: tuple[str, ...]
    parent_name: str | None


@dataclass(frozen=True, slots=True)
class ExpectedDetection:
    """One proposed kexecwatch extended detection.

    ``args`` is the argv of the exec it fires on (absent for syscall and gap
    detections), ``syscall`` the kexec syscall name, ``cause`` the gap kind.
    """

    name: str
    args: tuple[str, ...] | None = None
    syscall: str | None = None
    cause: str | None = None


@dataclass(frozen=True, slots=True)
class ExpectedRuleAlert:
    """One alert of a rule from a detection-rules checkout: its rule_id and the argv.

    For a sequence rule ``args`` is the argv of the event that completed it and
    ``sequence`` the argv of every event of the sequence, in order. ``formats`` names
    the recordings (raw, enriched) that give the alert, ``events_as`` the profiles
    (``--events-as``) under which they give it.
    """

    rule: str
    args: tuple[str, ...]
    sequence: tuple[tuple[str, ...], ...] = ()
    formats: tuple[str, ...] = ("raw", "enriched")
    events_as: tuple[str, ...] = ("auditbeat",)


@dataclass(frozen=True, slots=True)
class Scenario:
    """One recorded scenario: its setup files, commands and expectations.

    ``audit_rules`` are audit rule lines loaded with the shipped ones while recording it
    (restricted to the lab user like them), for system calls the shipped rules omit.
    """

    name: str
    issue: int
    description: str
    files: tuple[tuple[str, str], ...]
    commands: tuple[str, ...]
    upstream: tuple[ExpectedAlert, ...]
    extended: tuple[ExpectedDetection, ...]
    notes: str
    noise: bool
    true_copies: tuple[str, ...] = ()
    writable: tuple[str, ...] = ()
    elastic: tuple[ExpectedRuleAlert, ...] = ()
    audit_rules: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CombinedStream:
    """Several scenarios recorded one after another into a single log."""

    name: str
    members: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Manifest:
    """The whole manifest."""

    lab_dir: str
    noise_before: tuple[str, ...]
    noise_after: tuple[str, ...]
    common_files: tuple[tuple[str, str], ...]
    true_copies: tuple[str, ...]
    symlinks: tuple[tuple[str, str], ...]
    scenarios: tuple[Scenario, ...]
    combined: tuple[CombinedStream, ...]

    def scenario(self, name: str) -> Scenario:
        """The scenario called ``name`` (KeyError when there is none)."""
        for sc in self.scenarios:
            if sc.name == name:
                return sc
        raise KeyError(name)

    @property
    def fixture_names(self) -> tuple[str, ...]:
        """Every log recorded per format: the scenarios, then the combined streams."""
        return tuple(sc.name for sc in self.scenarios) + tuple(c.name for c in self.combined)


def expand_args(items: list[Any]) -> tuple[str, ...]:
    """Expand a manifest argv list (see the module docstring) into strings."""
    out: list[str] = []
    for item in items:
        if isinstance(item, str):
            out.append(item)
        elif "hex" in item:
            out.append(bytes.fromhex(item["hex"]).decode("utf-8", "surrogateescape"))
        elif "repeat" in item:
            out.append(item["repeat"] * int(item["count"]))
        elif "prefix" in item:
            first, last = int(item["first"]), int(item["last"])
            out.extend(f"{item['prefix']}{i}" for i in range(first, last + 1))
        else:
            raise ValueError(f"unknown argv item {item!r}")
    return tuple(out)


def _files(table: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(table.items()))


def _rule_alert(raw: dict[str, Any]) -> ExpectedRuleAlert:
    return ExpectedRuleAlert(
        raw["rule"],
        expand_args(raw["args"]),
        tuple(expand_args(step) for step in raw.get("sequence", [])),
        tuple(raw.get("formats", ("raw", "enriched"))),
        tuple(raw.get("events_as", ("auditbeat",))),
    )


def _scenario(raw: dict[str, Any]) -> Scenario:
    return Scenario(
        name=raw["name"],
        issue=int(raw["issue"]),
        description=raw["description"].strip(),
        files=_files(raw.get("files", {})),
        commands=tuple(raw["commands"]),
        upstream=tuple(
            ExpectedAlert(expand_args(a["args"]), a.get("parent_name"))
            for a in raw.get("upstream", [])
        ),
        extended=tuple(
            ExpectedDetection(
                name=d["name"],
                args=expand_args(d["args"]) if "args" in d else None,
                syscall=d.get("syscall"),
                cause=d.get("cause"),
            )
            for d in raw.get("extended", [])
        ),
        notes=raw.get("notes", "").strip(),
        noise=bool(raw.get("noise", True)),
        true_copies=tuple(raw.get("true_copies", [])),
        writable=tuple(raw.get("writable", [])),
        elastic=tuple(_rule_alert(a) for a in raw.get("elastic", [])),
        audit_rules=tuple(raw.get("audit_rules", [])),
    )


def load_manifest(path: Path = MANIFEST) -> Manifest:
    """Parse the manifest; raises ``KeyError``/``ValueError`` on a malformed one."""
    raw = tomllib.loads(path.read_text())
    scenarios = tuple(_scenario(s) for s in raw["scenario"])
    names = [s.name for s in scenarios]
    if len(set(names)) != len(names):
        raise ValueError("duplicate scenario names in the manifest")
    combined = tuple(
        CombinedStream(c["name"], tuple(c["members"])) for c in raw.get("combined", [])
    )
    for stream in combined:
        unknown = set(stream.members) - set(names)
        if unknown:
            raise ValueError(f"{stream.name}: unknown members {sorted(unknown)}")
    return Manifest(
        lab_dir=raw["lab"]["dir"],
        noise_before=tuple(raw["noise"]["before"]),
        noise_after=tuple(raw["noise"]["after"]),
        common_files=_files(raw["lab"].get("files", {})),
        true_copies=tuple(raw["lab"].get("true_copies", [])),
        symlinks=_files(raw["lab"].get("symlinks", {})),
        scenarios=scenarios,
        combined=combined,
    )
