"""Check documents against the Elastic Common Schema (../shared/reference/ecs/ecs_flat.yml).

Every leaf of a document must be an ECS field with a value of its ECS type, or sit in a
namespace that says whose it is (``kexecwatch.*``, Auditbeat's ``auditd.*``). A list is
accepted only where ECS normalises the field to an array; a list of objects (such as
``auditd.paths``) is only allowed inside those namespaces.

ecs_flat.yml is read with a line scanner rather than a YAML library: the file is
machine-generated, each field a top-level key with its ``type:`` and ``normalize:``
indented two spaces, which is all the check needs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

ECS_FLAT = (
    Path(__file__).resolve().parent.parent.parent / "shared" / "reference" / "ecs" / "ecs_flat.yml"
)
OWN_NAMESPACES = ("kexecwatch", "auditd")

_STRING_TYPES = {"keyword", "constant_keyword", "wildcard", "text", "match_only_text", "ip"}
_INT_TYPES = {"long", "integer", "short", "byte", "unsigned_long"}
_FLOAT_TYPES = {"float", "double", "half_float", "scaled_float"}
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")


@dataclass(frozen=True)
class EcsField:
    """One ECS field's type and whether ECS normalises it to an array."""

    type: str
    array: bool


@cache
def ecs_fields(path: Path = ECS_FLAT) -> dict[str, EcsField]:
    """Every field of ecs_flat.yml by its dotted name."""
    fields: dict[str, EcsField] = {}
    name = ""
    kind = ""
    array = False
    in_normalize = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line[0].isspace():
            if name:
                fields[name] = EcsField(kind, array)
            name, kind, array, in_normalize = line.rstrip(":").strip("'"), "", False, False
        elif line.startswith("  type: "):
            kind = line.split(": ", 1)[1].strip()
        elif line.startswith("  normalize:"):
            in_normalize = line.strip() == "normalize:"
        elif in_normalize and line.startswith("  - "):
            array = array or line.strip() == "- array"
        elif line.startswith("  ") and not line.startswith("   "):
            in_normalize = False
    if name:
        fields[name] = EcsField(kind, array)
    return fields


def _leaves(doc: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _leaves(value, f"{name}.")
        else:
            yield name, value


def _type_ok(kind: str, value: Any) -> bool:
    if kind in _STRING_TYPES:
        return isinstance(value, str)
    if kind in _INT_TYPES:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind in _FLOAT_TYPES:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "date":
        return isinstance(value, str) and _RFC3339.fullmatch(value) is not None
    if kind == "boolean":
        return isinstance(value, bool)
    if kind in ("object", "flattened", "nested"):
        return isinstance(value, Mapping)
    return False


def problems(doc: Mapping[str, Any]) -> list[str]:
    """What in ``doc`` is outside ECS or of the wrong type; empty when it conforms."""
    ecs = ecs_fields()
    out: list[str] = []
    for name, value in _leaves(doc):
        if name.split(".", 1)[0] in OWN_NAMESPACES:
            continue
        field = ecs.get(name)
        if field is None:
            out.append(f"{name}: not an ECS field (value {value!r})")
            continue
        values = value if isinstance(value, list) else [value]
        if isinstance(value, list) and not field.array:
            out.append(f"{name}: a list where ECS expects one {field.type}")
        for item in values:
            if not _type_ok(field.type, item):
                out.append(f"{name}: {item!r} is not an ECS {field.type}")
    return out
