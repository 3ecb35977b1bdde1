"""Loading the library: a clear one-line reason whenever it cannot be used."""

from __future__ import annotations

from pathlib import Path

import pytest

from kexecwatch.native import ABI_VERSION, NativeLib, NativeUnavailable, library_path, load


def test_the_library_is_looked_for_beside_the_binding() -> None:
    assert library_path().parent == Path(__file__).resolve().parents[2] / "kexecwatch" / "native"
    assert library_path().name == "libkexecwatch_native.so"


def test_a_missing_library_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(NativeUnavailable, match="not found") as caught:
        load(tmp_path / "libkexecwatch_native.so")
    assert "\n" not in str(caught.value)


def test_a_file_that_is_no_library_is_unavailable(tmp_path: Path) -> None:
    fake = tmp_path / "libkexecwatch_native.so"
    fake.write_bytes(b"not an ELF file\n")
    with pytest.raises(NativeUnavailable, match="cannot be loaded") as caught:
        load(fake)
    assert "\n" not in str(caught.value)


def test_the_built_library_loads_with_its_version(native_lib: NativeLib) -> None:
    assert native_lib.version == "0.1.0"
    assert load() is native_lib
    assert ABI_VERSION == 10
