"""The syntax tree's nodes behave as the frozen dataclasses they replace.

They are written out (:class:`kexecwatch.core.detect.rule.ast._Node`) because
``@dataclass`` compiles every class's methods from source at import, which was about 8%
of a replay's start-up. Each node is compared here with a real
``@dataclass(frozen=True, slots=True)`` of the same name and fields.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
from typing import Any

import pytest

from kexecwatch.core.detect.rule import ast

NODES = [
    cls
    for name in ast.__all__
    if isinstance(cls := getattr(ast, name), type) and issubclass(cls, ast._Node)
]


def twin(cls: type) -> Any:
    """A frozen dataclass with ``cls``'s name and fields, made the dataclass way."""
    made = dataclasses.make_dataclass(cls.__name__, cls._fields, frozen=True, slots=True)
    made.__qualname__ = cls.__qualname__
    return made


def values(cls: type, salt: int) -> list[Any]:
    return [(f"{name}-{salt}", salt, salt == 1) for name in cls._fields]


def test_every_node_of_the_tree_is_one() -> None:
    assert len(NODES) == 17
    assert not any(dataclasses.is_dataclass(cls) for cls in NODES)  # no source compiled


@pytest.mark.parametrize("cls", NODES, ids=lambda c: c.__name__)
def test_a_node_is_the_frozen_dataclass_it_replaces(cls: type) -> None:
    made = twin(cls)
    node, again, other = cls(*values(cls, 1)), cls(*values(cls, 1)), cls(*values(cls, 2))
    reference = made(*values(cls, 1))
    assert repr(node) == repr(reference)
    assert node == again and hash(node) == hash(again) == hash(reference)
    assert node != other and (node == other) is False and (node != again) is False
    assert node != reference  # another class, as for dataclasses
    assert node.__eq__(object()) is NotImplemented
    for name in cls._fields:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(node, name, 0)
        with pytest.raises(dataclasses.FrozenInstanceError):
            delattr(node, name)
    with pytest.raises(AttributeError):
        node.__dict__  # noqa: B018 - slots: no per-node dictionary
    for copied in (copy.copy(node), copy.deepcopy(node), pickle.loads(pickle.dumps(node))):
        assert type(copied) is cls and copied == node and repr(copied) == repr(node)


def test_keyword_arguments_name_the_fields() -> None:
    field = ast.Field(path=("process", "name"), optional=False, pos=3)
    assert field == ast.Field(("process", "name"), False, 3)
    assert field.name == "process.name"
    with pytest.raises(TypeError):
        ast.Field(("a",), False)  # type: ignore[call-arg]
