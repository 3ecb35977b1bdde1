"""The native library for tests: loaded, or a visible skip (a failure when it is forced).

Tests that compare the native path with the Python one skip only when the library
cannot be loaded AND ``KEXECWATCH_SCANNER`` is not ``native``; with it set to
``native`` a missing library fails them.
"""

from __future__ import annotations

import os

import pytest

from kexecwatch.native import NativeLib, NativeUnavailable, load


def native_lib() -> NativeLib:
    """The loaded library, or skip (fail when ``KEXECWATCH_SCANNER=native``)."""
    try:
        return load()
    except NativeUnavailable as exc:
        if os.environ.get("KEXECWATCH_SCANNER") == "native":
            pytest.fail(f"KEXECWATCH_SCANNER=native but the native library is unavailable: {exc}")
        pytest.skip(f"native library unavailable: {exc}")
