"""The native bulk path: a ctypes binding of the Rust library built from ``native/``.

A shell, not core: it loads a file. The detector receives a session through the
Protocols of core (like the ``/proc`` lookup); see :mod:`kexecwatch.native.binding`
for the API and the README ("Native scanner") for what the library does.
"""

from kexecwatch.native.binding import (
    ABI_VERSION,
    STOP_END,
    STOP_HANDBACK,
    STOP_LIVE,
    STOP_VERDICT,
    NativeError,
    NativeLib,
    NativeSession,
    NativeUnavailable,
    QuietState,
    RawEntry,
    ScanResult,
    library_path,
    load,
)

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
