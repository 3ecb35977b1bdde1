"""Every written-out value class behaves as the frozen dataclass it replaces.

:class:`kexecwatch.core.text.frozen.Frozen` exists because ``@dataclass`` compiles each class's
methods from source at import, a fixed cost of every command's start-up. Each of its
subclasses is compared here with a real ``@dataclass(frozen=True, slots=True)`` made from
its declared fields and its ``__init__``'s defaults: the ``__init__`` signature,
``repr``, equality, hash, no ordering, ``__match_args__``, assignment refused, no
per-instance dictionary, copy and pickle. A field declared but not written into
``__init__`` or ``__slots__`` (or the reverse) fails here.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import inspect
import pickle
import pkgutil
from typing import Any

import pytest

import kexecwatch
from kexecwatch.core.text.frozen import Frozen


def _every_module() -> None:
    for info in pkgutil.walk_packages(kexecwatch.__path__, "kexecwatch."):
        if not info.name.endswith(("__main__", "libkexecwatch_native")):  # runs / not Python
            importlib.import_module(info.name)


def _subclasses(cls: type) -> list[type]:
    found: list[type] = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


_every_module()
CLASSES = sorted(
    {c for c in _subclasses(Frozen) if c.__dict__.get("__slots__")},
    key=lambda c: f"{c.__module__}.{c.__qualname__}",
)

#: The classes written out so far (module, qualified name): a class added or dropped
#: shows here.
WRITTEN_OUT = {
    ("kexecwatch.adapters.replay", "ReplayResult"),
    ("kexecwatch.adapters.session", "Notice"),
    ("kexecwatch.core.detect.alerts", "Alert"),
    ("kexecwatch.core.detect.alerts", "AlertsSuppressed"),
    ("kexecwatch.core.detect.detections.kexec_cmdline", "KexecCommand"),
    ("kexecwatch.core.detect.detections.kexec_cmdline", "KexecOption"),
    ("kexecwatch.core.detect.detector", "Verdict"),
    ("kexecwatch.core.detect.detections", "NativeRule"),
    ("kexecwatch.core.detect.rule.functions", "Signature"),
    ("kexecwatch.core.detect.rule.lexer", "QuerySource"),
    ("kexecwatch.core.detect.rule.ruleset", "Rule"),
    ("kexecwatch.core.detect.rule.ruleset", "RuleCheck"),
    ("kexecwatch.core.detect.rule.ruleset", "RuleMetadata"),
    ("kexecwatch.core.detect.rule.ruleset", "Technique"),
    ("kexecwatch.core.detect.rule.ruleset", "Threat"),
    ("kexecwatch.core.detect.rule.ruleset", "ThreatRef"),
    ("kexecwatch.core.detect.telemetry", "TelemetryEvent"),
}


def test_the_written_out_classes_are_these() -> None:
    from kexecwatch.core.detect.rule import ast

    found = {(c.__module__, c.__qualname__) for c in CLASSES}
    assert found - {(ast.__name__, name) for name in ast.__all__} == WRITTEN_OUT
    assert not any(dataclasses.is_dataclass(c) for c in CLASSES)  # no source compiled


def twin(cls: type) -> Any:
    """A frozen, slotted dataclass with ``cls``'s name, fields and defaults."""
    params = list(inspect.signature(cls).parameters.values())
    spec: list[Any] = [
        (p.name, Any) if p.default is p.empty else (p.name, Any, p.default) for p in params
    ]
    made = dataclasses.make_dataclass(cls.__name__, spec, frozen=True, slots=True)
    made.__qualname__ = cls.__qualname__
    return made


def values(cls: type, salt: int) -> dict[str, Any]:
    return {name: (f"{name}-{salt}", salt) for name in cls._fields}  # type: ignore[attr-defined]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_a_written_out_class_is_the_frozen_dataclass_it_replaces(cls: type) -> None:
    fields: tuple[str, ...] = cls._fields  # type: ignore[attr-defined]
    own = cls.__dict__["__slots__"]
    assert tuple(inspect.get_annotations(cls)) == own  # declared = stored
    assert fields[len(fields) - len(own) :] == own
    params = inspect.signature(cls).parameters.values()
    assert [p.name for p in params] == list(fields)
    assert {p.kind for p in params} == {inspect.Parameter.POSITIONAL_OR_KEYWORD}
    made = twin(cls)  # refuses a field without a default after one with a default
    assert cls.__match_args__ == made.__match_args__ == fields

    one, two = values(cls, 1), values(cls, 2)
    value, again, other, reference = cls(**one), cls(*one.values()), cls(**two), made(**one)
    assert [getattr(value, name) for name in fields] == list(one.values())
    assert repr(value) == repr(reference)
    assert value == again and hash(value) == hash(again) == hash(reference)
    assert value != other and (value == other) is False and (value != again) is False
    assert value != reference  # another class, as for dataclasses
    assert value.__eq__(object()) is NotImplemented
    with pytest.raises(TypeError):
        value < other  # type: ignore[operator]  # noqa: B015 - no ordering, as order=False
    for name in fields:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, name, 0)
        with pytest.raises(dataclasses.FrozenInstanceError):
            delattr(value, name)
    with pytest.raises(AttributeError):
        value.__dict__  # noqa: B018 - slots: no per-instance dictionary
    for copied in (copy.copy(value), copy.deepcopy(value), pickle.loads(pickle.dumps(value))):
        assert type(copied) is cls and copied == value and repr(copied) == repr(value)

    required = [one[p.name] for p in params if p.default is p.empty]
    assert repr(cls(*required)) == repr(made(*required))  # the same defaults
