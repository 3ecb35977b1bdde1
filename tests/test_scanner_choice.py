"""KEXECWATCH_SCANNER: which scanner runs, in the command line and in this test run."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from kexecwatch import cli
from kexecwatch.core.detect.detector import Detector
from kexecwatch.core.doctor.hostfacts import Facts
from kexecwatch.core.doctor.posture import assess
from kexecwatch.core.scan.nativescan import default_native
from kexecwatch.errors import ConfigError
from kexecwatch.native import NativeUnavailable, choice
from kexecwatch.native.choice import ScannerChoice, choose, install


def kexecwatch(*args: str, scanner: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KEXECWATCH_SCANNER"}
    if scanner is not None:
        env["KEXECWATCH_SCANNER"] = scanner
    return subprocess.run(
        [sys.executable, "-m", "kexecwatch", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_every_detector_of_the_test_run_uses_the_chosen_scanner() -> None:
    """conftest installs KEXECWATCH_SCANNER's choice, so the whole suite runs one scanner."""
    wanted = os.environ.get("KEXECWATCH_SCANNER", "")
    name = Detector([], host_name="h").scanner_name
    if wanted == "python":
        assert name == "python"
    elif wanted == "native":
        assert name.startswith("native ")
    else:
        assert name == (
            "python" if default_native() is None else f"native {default_native().version}"
        )  # type: ignore[union-attr]


def test_version_names_the_scanner() -> None:
    forced = kexecwatch("--version", scanner="python")
    assert forced.returncode == 0
    assert forced.stdout == "kexecwatch 0.1.0 (scanner: python: KEXECWATCH_SCANNER=python)\n"
    default = kexecwatch("--version", scanner=None)
    assert default.returncode == 0
    assert default.stdout == f"kexecwatch 0.1.0 (scanner: {choose({}).describe()})\n"


def test_an_unknown_scanner_is_one_line_and_exit_2() -> None:
    done = kexecwatch("replay", "-", scanner="rust")
    assert done.returncode == 2
    assert (
        done.stderr
        == "kexecwatch: error: KEXECWATCH_SCANNER must be python or native, not 'rust'\n"
    )


def test_forced_native_without_the_library_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def missing() -> None:
        raise NativeUnavailable("native library /x/libkexecwatch_native.so not found")

    monkeypatch.setattr(choice, "load", missing)
    monkeypatch.setenv("KEXECWATCH_SCANNER", "native")
    before = default_native()
    try:
        assert cli.main(["replay", "-"]) == 2
    finally:
        from kexecwatch.core.scan.nativescan import set_default_native

        set_default_native(before)
    err = capsys.readouterr().err
    assert err == (
        "kexecwatch: error: KEXECWATCH_SCANNER=native but the native scanner cannot load: "
        "native library /x/libkexecwatch_native.so not found\n"
    )
    with pytest.raises(ConfigError):
        choose({"KEXECWATCH_SCANNER": "native"})
    # Unset: the Python scanner, with the reason.
    assert choose({}) == ScannerChoice(None, "native library /x/libkexecwatch_native.so not found")


def test_install_sets_every_new_detectors_scanner() -> None:
    before = default_native()
    try:
        install({"KEXECWATCH_SCANNER": "python"})
        assert Detector([], host_name="h").scanner_name == "python"
        assert default_native() is None
    finally:
        from kexecwatch.core.scan.nativescan import set_default_native

        set_default_native(before)


def test_doctor_has_a_scanner_line() -> None:
    report = assess(Facts(status=None, scanner="python: KEXECWATCH_SCANNER=python"))
    check = next(c for c in report.checks if c.id == "scanner")
    assert check.status.value == "PASS"
    assert check.summary == (
        "python (same detections, slower on large logs): KEXECWATCH_SCANNER=python"
    )
    native = assess(Facts(status=None, scanner="native 0.1.0"))
    assert next(c for c in native.checks if c.id == "scanner").summary.startswith("native 0.1.0")
    done = kexecwatch("doctor", "--format", "json", scanner="python")
    assert '"id": "scanner"' in done.stdout
    assert "KEXECWATCH_SCANNER=python" in done.stdout
