"""The build step pyproject.toml cannot state: the native scanner library.

pyproject.toml holds the metadata; this file only adds one command to ``build``. When cargo
is found (``$KEXECWATCH_CARGO``, else ``cargo`` on PATH, else ``/usr/bin/cargo``), it compiles
the Rust crate in ``native/`` and puts ``libkexecwatch_native.so`` inside the package, at
``kexecwatch/native/``; the wheel is then specific to the platform. Without cargo the
package is pure Python (the Python scanner) and the build says so in one line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from setuptools import Command, Distribution, setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.build import build
from setuptools.errors import ExecError, PlatformError

HERE = Path(__file__).resolve().parent
CRATE = HERE / "native"
LIBRARY = "libkexecwatch_native.so"
PACKAGE_DIR = Path("kexecwatch", "native")  # where the library goes, inside the package
FALLBACK_CARGO = Path("/usr/bin/cargo")  # Debian's, for a PATH without it (sudo, services)


def find_cargo(environ: Mapping[str, str] = os.environ) -> str | None:
    """The cargo to build with, or None. ``KEXECWATCH_CARGO`` names one (a missing one is an
    error: it was asked for); else ``cargo`` on PATH, else ``/usr/bin/cargo``."""
    chosen = environ.get("KEXECWATCH_CARGO")
    if chosen:
        found = shutil.which(chosen, path=environ.get("PATH"))
        if found is None:
            raise PlatformError(f"KEXECWATCH_CARGO={chosen}: no such executable")
        return found
    found = shutil.which("cargo", path=environ.get("PATH"))
    if found is None and FALLBACK_CARGO.is_file() and os.access(FALLBACK_CARGO, os.X_OK):
        found = str(FALLBACK_CARGO)
    return found


def will_build_native() -> bool:
    """Whether this build puts the native library in the package."""
    return find_cargo() is not None


class BuildNative(Command):
    """Compile native/ with cargo and copy the library into the built package."""

    description = "build the native scanner library with cargo (skipped without cargo)"
    user_options: list[tuple[str, str | None, str]] = []  # noqa: RUF012 (distutils API)

    def initialize_options(self) -> None:
        self.build_lib: str | None = None
        self.editable_mode = False  # set by setuptools for `pip install -e`
        self.outputs: list[str] = []

    def finalize_options(self) -> None:
        self.set_undefined_options("build", ("build_lib", "build_lib"))

    def run(self) -> None:
        # An editable install imports the package from the source tree: the library goes
        # there. Any copy left by an earlier build is removed first, so a build without
        # cargo never ships a stale library.
        base = HERE if self.editable_mode else Path(str(self.build_lib))
        target = base / PACKAGE_DIR / LIBRARY
        target.unlink(missing_ok=True)
        cargo = find_cargo()
        if cargo is None:
            say(
                "kexecwatch: no cargo (not on PATH, not /usr/bin/cargo): this build has the "
                "pure-Python scanner only; install cargo (Debian: apt-get install cargo) and "
                "reinstall for the native one"
            )
            return
        target_dir = Path(os.environ.get("CARGO_TARGET_DIR") or CRATE / "target")
        argv = [cargo, "build", "--release", "--manifest-path", str(CRATE / "Cargo.toml")]
        argv += ["--target-dir", str(target_dir)]
        print(f"kexecwatch: building the native scanner: {' '.join(argv)}", file=sys.stderr)
        done = subprocess.run(argv, check=False)
        if done.returncode != 0:
            raise ExecError(f"kexecwatch: cargo build failed (exit {done.returncode})")
        target.parent.mkdir(parents=True, exist_ok=True)
        # Contents only: the library needs no exec bit, and a fresh file gets a plain mode.
        shutil.copyfile(target_dir / "release" / LIBRARY, target)
        self.outputs = [str(target)]

    def get_outputs(self) -> list[str]:
        return self.outputs

    def get_output_mapping(self) -> dict[str, str]:
        return {}


def say(line: str) -> None:
    """One line for the person installing. pip shows a build's output only with -v, so the
    line goes to the terminal when there is one, and to stderr (build logs) otherwise."""
    if not sys.stderr.isatty():
        try:
            with open("/dev/tty", "w", encoding="utf-8") as tty:
                tty.write(line + "\n")
        except OSError:
            pass  # no controlling terminal: CI, a service, a test
        else:
            return
    print(line, file=sys.stderr)


class NativeDistribution(Distribution):
    """With the library inside, the package is for this platform (so it installs to
    platlib and the wheel gets a platform tag)."""

    def has_ext_modules(self) -> bool:
        return will_build_native()


class PlatformWheel(bdist_wheel):
    """The library is loaded with ctypes and does not depend on the Python version: the
    wheel with it is tagged for any Python 3 on this platform."""

    def get_tag(self) -> tuple[str, str, str]:
        tag = super().get_tag()
        return tag if self.root_is_pure else ("py3", "none", tag[2])


class BuildWithNative(build):
    sub_commands = [*build.sub_commands, ("build_native", None)]  # noqa: RUF012


if __name__ == "__main__":
    setup(
        distclass=NativeDistribution,
        cmdclass={
            "build": BuildWithNative,
            "build_native": BuildNative,
            "bdist_wheel": PlatformWheel,
        },
    )
