"""Which scanner runs: ``KEXECWATCH_SCANNER=python|native``, or the native one when it loads.

A shell: it reads the environment and loads the library. :func:`install` is called once
at start by the command line (every subcommand, and each ``--per-host`` worker process)
and by ``tests/conftest.py``: it makes the chosen library the process-wide default of
every :class:`~kexecwatch.core.detect.detector.Detector`
(:func:`~kexecwatch.core.scan.nativescan.set_default_native`).

- unset or empty: native when the library loads, else Python (the reason is kept for
  ``--version`` and ``doctor``);
- ``native``: native, or :class:`~kexecwatch.errors.ConfigError` (one line, exit 2) with
  the reason it cannot load;
- ``python``: Python.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kexecwatch.errors import ConfigError

if TYPE_CHECKING:
    from kexecwatch.core import NativeLib

__all__ = ["ENV", "ScannerChoice", "choose", "install", "installed", "scanner_text"]

#: The environment variable that forces a scanner.
ENV = "KEXECWATCH_SCANNER"


@dataclass(frozen=True)
class ScannerChoice:
    """The scanner chosen: the loaded library, or ``None`` and why not."""

    lib: NativeLib | None
    reason: str = ""

    def describe(self) -> str:
        """``native 0.1.0``, or ``python: <why>`` (as ``--version`` and ``doctor`` say)."""
        if self.lib is not None:
            return f"native {self.lib.version}"
        return f"python: {self.reason}"


def choose(env: Mapping[str, str] | None = None) -> ScannerChoice:
    """The scanner ``env`` (default: the process environment) asks for.

    Raises:
        ConfigError: an unknown value, or ``native`` when the library cannot be loaded.
    """
    environ = os.environ if env is None else env
    value = environ.get(ENV, "").strip()
    if value == "python":
        return ScannerChoice(None, f"{ENV}=python")
    if value not in ("", "native"):
        raise ConfigError(f"{ENV} must be python or native, not {value[:40]!r}")
    from kexecwatch.native.binding import NativeUnavailable

    try:
        lib = load()
    except NativeUnavailable as exc:
        if value == "native":
            raise ConfigError(f"{ENV}=native but the native scanner cannot load: {exc}") from exc
        return ScannerChoice(None, str(exc))
    return ScannerChoice(lib)


def load() -> NativeLib:
    """The native library (:func:`kexecwatch.native.binding.load`): the binding, and
    ctypes with it, load only when the native scanner may be used.

    Raises:
        NativeUnavailable: with the one-line reason.
    """
    from kexecwatch.native.binding import load as load_library

    return load_library()


_INSTALLED: list[ScannerChoice] = []


def install(env: Mapping[str, str] | None = None) -> ScannerChoice:
    """Choose (see :func:`choose`) and make it every new detector's default."""
    from kexecwatch.core import set_default_native

    choice = choose(env)
    set_default_native(choice.lib)
    _INSTALLED[:] = [choice]
    return choice


def installed() -> ScannerChoice | None:
    """The choice :func:`install` made last in this process, if any."""
    return _INSTALLED[0] if _INSTALLED else None


def scanner_text(choice: ScannerChoice | None = None) -> str:
    """Which scanner runs, as ``--version`` and ``doctor`` say it: ``native 0.1.0`` or
    ``python: <why>`` (``choice``: by default the one installed, else the one the
    environment asks for)."""
    if choice is None:
        choice = installed()
    if choice is None:
        try:
            choice = choose()
        except ConfigError as exc:
            return f"none: {exc}"
    return choice.describe()
