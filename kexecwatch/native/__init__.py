"""The native bulk path: a ctypes binding of the Rust library built from ``native/``.

A shell, not core: it loads a file. The detector receives a session through the
Protocols of core (like the ``/proc`` lookup); see :mod:`kexecwatch.native.binding`
for the API and the README ("Native scanner") for what the library does.

The names below come from :mod:`kexecwatch.native.binding` when first used, so that
importing :mod:`kexecwatch.native.choice` with ``KEXECWATCH_SCANNER=python`` loads
neither the binding nor ctypes.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names as mypy sees them; __getattr__ gives them at run time
    from kexecwatch.native.binding import ABI_VERSION as ABI_VERSION
    from kexecwatch.native.binding import STOP_END as STOP_END
    from kexecwatch.native.binding import STOP_HANDBACK as STOP_HANDBACK
    from kexecwatch.native.binding import STOP_LIVE as STOP_LIVE
    from kexecwatch.native.binding import STOP_VERDICT as STOP_VERDICT
    from kexecwatch.native.binding import NativeError as NativeError
    from kexecwatch.native.binding import NativeLib as NativeLib
    from kexecwatch.native.binding import NativeSession as NativeSession
    from kexecwatch.native.binding import NativeUnavailable as NativeUnavailable
    from kexecwatch.native.binding import QuietState as QuietState
    from kexecwatch.native.binding import RawEntry as RawEntry
    from kexecwatch.native.binding import ScanResult as ScanResult
    from kexecwatch.native.binding import library_path as library_path
    from kexecwatch.native.binding import load as load

__all__ = [
    "ABI_VERSION",
    "STOP_END",
    "STOP_HANDBACK",
    "STOP_LIVE",
    "STOP_VERDICT",
    "NativeError",
    "NativeLib",
    "NativeSession",
    "NativeUnavailable",
    "QuietState",
    "RawEntry",
    "ScanResult",
    "library_path",
    "load",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        value = getattr(import_module("kexecwatch.native.binding"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
