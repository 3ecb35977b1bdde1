"""`pip install` builds the native scanner library with cargo, or says once that it cannot.

Each test installs a copy of the project's build inputs into a fresh virtual environment,
once with cargo and once with cargo hidden: not on PATH, and Debian's /usr/bin/cargo (the
build's fallback) covered by /dev/null in a private mount namespace, which needs root.
Both orders run on the same tree and the same venv, so a library left by the first build
(in build/, or in the source tree for an editable install) must not reach the second.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LIBRARY = "libkexecwatch_native.so"
FALLBACK_CARGO = Path("/usr/bin/cargo")
NO_CARGO = "kexecwatch: no cargo (not on PATH, not /usr/bin/cargo)"
BUILD_INPUTS = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "LICENSES")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("cargo") is None and not FALLBACK_CARGO.exists(), reason="needs cargo"
    ),
    pytest.mark.skipif(
        FALLBACK_CARGO.exists() and os.geteuid() != 0,
        reason="hiding /usr/bin/cargo takes a mount namespace: needs root",
    ),
]


@pytest.fixture(scope="module")
def cargo_target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cargo target directory for the module: the crate compiles once."""
    return tmp_path_factory.mktemp("cargo-target")


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A copy of what a build reads (no built library, no build/, no cargo target)."""
    tree = tmp_path / "src"
    tree.mkdir()
    for name in BUILD_INPUTS:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, tree / name)
        else:
            shutil.copy2(path, tree / name)
    skip = shutil.ignore_patterns("__pycache__", "*.so", "target", "*.egg-info")
    shutil.copytree(REPO / "kexecwatch", tree / "kexecwatch", ignore=skip)
    shutil.copytree(REPO / "native", tree / "native", ignore=skip)
    return tree


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True)
    return tmp_path / "venv"


def pip_install(venv: Path, *args: str, cargo: bool, target: Path) -> str:
    """Run `pip install -v ARGS` (verbose: pip shows a build's output only then) without a
    controlling terminal, so the build's message goes to the output; return that output."""
    env = {k: v for k, v in os.environ.items() if k != "KEXECWATCH_CARGO"}
    env["CARGO_TARGET_DIR"] = str(target)
    env.setdefault("CARGO_BUILD_JOBS", "1")
    argv = [str(venv / "bin" / "python"), "-m", "pip", "install", "-v", *args]
    if not cargo:
        # /usr/bin stays on PATH (everything else is there): its cargo is hidden below.
        dirs = env.get("PATH", "").split(os.pathsep)
        keep = [d for d in dirs if d == "/usr/bin" or not Path(d, "cargo").exists()]
        env["PATH"] = os.pathsep.join(keep)
        if FALLBACK_CARGO.exists():
            hide = f"mount --bind /dev/null {FALLBACK_CARGO} && exec \"$@\""
            argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", hide, "sh"]
            argv += [str(venv / "bin" / "python"), "-m", "pip", "install", "-v", *args]
    done = subprocess.run(
        argv,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        start_new_session=True,  # no controlling terminal: the message is in the output
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return done.stdout + done.stderr


def installed(venv: Path, code: str) -> str:
    """What the venv's Python prints for CODE, run with the default scanner choice."""
    env = {k: v for k, v in os.environ.items() if k != "KEXECWATCH_SCANNER"}
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd="/",
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def version(venv: Path) -> str:
    """`kexecwatch --version` of the venv, with the default scanner choice."""
    env = {k: v for k, v in os.environ.items() if k != "KEXECWATCH_SCANNER"}
    done = subprocess.run(
        [str(venv / "bin" / "kexecwatch"), "--version"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd="/",
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def package_dir(venv: Path) -> Path:
    return Path(installed(venv, "import kexecwatch; print(kexecwatch.__file__)")).parent


def wheel_metadata(venv: Path) -> str:
    code = "import importlib.metadata as m; print(m.distribution('kexecwatch').read_text('WHEEL'))"
    return installed(venv, code)


def loads(library: Path, venv: Path) -> bool:
    """The venv's kexecwatch loads the library through its binding (ABI version checked)."""
    code = (
        "from pathlib import Path; from kexecwatch.native.binding import load; "
        f"print(load(Path({str(library)!r})).version)"
    )
    return installed(venv, code) != ""


def test_pip_install_builds_the_library_with_cargo_and_not_without(
    source: Path, venv: Path, cargo_target: Path
) -> None:
    out = pip_install(venv, str(source), cargo=True, target=cargo_target)
    assert NO_CARGO not in out
    library = package_dir(venv) / "native" / LIBRARY
    assert library.is_file()
    assert loads(library, venv)
    assert "(scanner: native " in version(venv)
    wheel = wheel_metadata(venv)
    assert "Root-Is-Purelib: false" in wheel
    assert "Tag: py3-none-linux_x86_64" in wheel

    out = pip_install(
        venv, "--force-reinstall", "--no-deps", str(source), cargo=False, target=cargo_target
    )
    assert out.count(NO_CARGO) == 1
    assert not (package_dir(venv) / "native" / LIBRARY).exists()
    assert "(scanner: python: " in version(venv)
    wheel = wheel_metadata(venv)
    assert "Root-Is-Purelib: true" in wheel
    assert "Tag: py3-none-any" in wheel


def test_editable_install_builds_in_the_tree_and_removes_it_without_cargo(
    source: Path, venv: Path, cargo_target: Path
) -> None:
    in_tree = source / "kexecwatch" / "native" / LIBRARY
    out = pip_install(venv, "-e", str(source), cargo=True, target=cargo_target)
    assert NO_CARGO not in out
    assert package_dir(venv) == source / "kexecwatch"
    assert in_tree.is_file()
    assert loads(in_tree, venv)
    assert "(scanner: native " in version(venv)

    out = pip_install(venv, "-e", str(source), cargo=False, target=cargo_target)
    assert out.count(NO_CARGO) == 1
    assert package_dir(venv) == source / "kexecwatch"
    assert not in_tree.exists()
    assert "(scanner: python: " in version(venv)
