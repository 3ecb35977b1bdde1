"""The one exception hierarchy of kexecwatch.

Every error kexecwatch raises on purpose is a :class:`KexecwatchError`. Any
other exception escaping the core is a bug, and the property tests say so.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ConfigError", "InputError", "KexecwatchError", "RuleError", "SourceLocation"]


@dataclass(frozen=True, slots=True)
class SourceLocation:
    """Where something went wrong: a path, and optionally a 1-based line and column."""

    path: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        parts = [self.path]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)


class KexecwatchError(Exception):
    """Base class: a problem the user can fix, with an optional location.

    Args:
        message: one line that names the problem.
        where: where the problem is, rendered as ``path:line:col: message``.
        detail: further lines shown after the message (for example a caret line).
    """

    def __init__(
        self, message: str, *, where: SourceLocation | None = None, detail: str = ""
    ) -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        self.detail = detail

    def __str__(self) -> str:
        head = f"{self.where}: {self.message}" if self.where else self.message
        return f"{head}\n{self.detail}" if self.detail else head


class RuleError(KexecwatchError):
    """A rule file or query that cannot be loaded or compiled."""


class ConfigError(KexecwatchError):
    """A configuration file or option that is wrong."""


class InputError(KexecwatchError):
    """An input that cannot be read: a missing file, a bad date, a bad path."""
