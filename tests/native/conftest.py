"""The native library for the binding's tests: skipped, with the reason, when it is not
built, unless ``KEXECWATCH_SCANNER=native`` demands it (then the tests fail)."""

from __future__ import annotations

import os

import pytest

from kexecwatch.native import NativeLib, NativeUnavailable, load


@pytest.fixture(scope="session")
def native_lib() -> NativeLib:
    try:
        return load()
    except NativeUnavailable as exc:
        if os.environ.get("KEXECWATCH_SCANNER") == "native":
            pytest.fail(f"KEXECWATCH_SCANNER=native, but {exc}")
        pytest.skip(
            f"{exc} (build: cargo build --release --manifest-path native/Cargo.toml "
            "&& cp native/target/release/libkexecwatch_native.so kexecwatch/native/)"
        )
