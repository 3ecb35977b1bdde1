"""Frozen, slotted value classes written out instead of made by ``@dataclass``.

``@dataclass`` compiles each class's methods from generated source when its module is
imported, and every command pays for that at start-up (about 4 M instructions a class;
a quiet replay of an empty file is mostly start-up). A class that derives from
:class:`Frozen` writes its ``__init__`` out and names its fields once, in ``__slots__``;
:class:`Frozen` gives it what ``@dataclass(frozen=True, slots=True)`` would: equality and
hash by type and fields, the same ``repr``, ``__match_args__``, assignment and deletion
refused with :class:`dataclasses.FrozenInstanceError`, copy and pickle. A subclass's fields
follow its base's, as a dataclass's do. ``tests/core/test_frozen.py`` holds every such class
to a real frozen dataclass of the same fields and defaults.

Only the plain form is supported: no ``field(...)`` options, no ``__post_init__``.
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from typing import Any

__all__ = ["Frozen"]

#: Sets a field of a frozen instance (its own ``__setattr__`` refuses).
set_field = object.__setattr__


class Frozen:
    """What ``@dataclass(frozen=True, slots=True)`` gives, for the fields in ``__slots__``."""

    __slots__ = ()
    #: The fields, in order: the bases' fields, then the class's own ``__slots__``.
    _fields: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        inherited = tuple(name for base in cls.__bases__ for name in getattr(base, "_fields", ()))
        cls._fields = inherited + tuple(cls.__dict__.get("__slots__", ()))
        type.__setattr__(cls, "__match_args__", cls._fields)  # as a dataclass sets it

    def _values(self) -> tuple[Any, ...]:
        return tuple([getattr(self, name) for name in self._fields])

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self._values() == other._values()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{self.__class__.__qualname__}({shown})"

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __getstate__(self) -> tuple[Any, ...]:
        return self._values()

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        for name, value in zip(self._fields, state, strict=True):
            set_field(self, name, value)
