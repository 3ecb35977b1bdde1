"""``kexecwatch.core``: the public names of every stage, each loaded when first used."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import kexecwatch.core as core

FACADE = Path(core.__file__)


def type_checking_names() -> dict[str, str]:
    """Name -> defining module, as the ``if TYPE_CHECKING:`` block states it for mypy."""
    tree = ast.parse(FACADE.read_text(encoding="utf-8"))
    block = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
    )
    found: dict[str, str] = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names:
            assert alias.asname == alias.name, "re-exported as itself, for mypy"
            found[alias.name] = node.module
    return found


def test_mypy_and_the_runtime_see_the_same_names() -> None:
    runtime = {
        name: "kexecwatch.core." + (home.rpartition(".")[0] if name in core._MODULES else home)
        for name, home in core._HOME.items()
    }
    assert type_checking_names() == runtime


def test_every_public_name_is_the_defining_modules_own() -> None:
    for name, home in core._HOME.items():
        module = importlib.import_module(f"kexecwatch.core.{home}")
        expected = module if name in core._MODULES else getattr(module, name)
        assert getattr(core, name) is expected, name


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        core.no_such_name  # noqa: B018


def loaded_after(code: str) -> set[str]:
    listing = "print(' '.join(m for m in sys.modules if m.startswith('kexecwatch')))"
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\n{listing}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return set(out.split())


def test_a_name_loads_its_own_stage_only() -> None:
    assert loaded_after("import kexecwatch.core") == {"kexecwatch", "kexecwatch.core"}
    doctor = loaded_after("from kexecwatch.core import assess")
    assert "kexecwatch.core.doctor.posture" in doctor
    assert not any(m.startswith("kexecwatch.core.detect") for m in doctor)
    assert "kexecwatch.core.detect.detector" in loaded_after("from kexecwatch.core import Detector")


#: Deep imports a shell may keep, each with its reason.
DEEP_ALLOWED = {
    # ``text`` (bytes to str, losslessly) cannot be a public name: ``kexecwatch.core.text``
    # is the text stage's package.
    ("kexecwatch/adapters/live/state.py", "kexecwatch.core.process.events", "text"),
}


def deep_imports(root: Path) -> set[tuple[str, str, str]]:
    """``(file, module, name)`` for every import of a core module other than
    ``kexecwatch.core`` itself, in the files of ``root/kexecwatch`` outside the core."""
    found: set[tuple[str, str, str]] = set()
    for path in sorted((root / "kexecwatch").rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith("kexecwatch/core/"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "kexecwatch.core."
            ):
                found.update((rel, node.module or "", a.name) for a in node.names)
            elif isinstance(node, ast.Import):
                found.update(
                    (rel, a.name, "") for a in node.names if a.name.startswith("kexecwatch.core.")
                )
    return found


def test_the_shells_import_the_core_through_its_front_door() -> None:
    root = FACADE.parent.parent.parent
    assert deep_imports(root) - DEEP_ALLOWED == set()


def test_the_front_door_check_sees_a_deep_import(tmp_path: Path) -> None:
    shell = tmp_path / "kexecwatch" / "adapters" / "probe.py"
    shell.parent.mkdir(parents=True)
    shell.write_text(
        "from kexecwatch.core import Detector\n"
        "def later():\n"
        "    from kexecwatch.core.detect.detector import Stats\n"
        "    import kexecwatch.core.audit.record\n"
    )
    (tmp_path / "kexecwatch" / "core").mkdir()
    (tmp_path / "kexecwatch" / "core" / "inside.py").write_text(
        "from kexecwatch.core.audit.record import parse_record\n"
    )
    assert deep_imports(tmp_path) == {
        ("kexecwatch/adapters/probe.py", "kexecwatch.core.detect.detector", "Stats"),
        ("kexecwatch/adapters/probe.py", "kexecwatch.core.audit.record", ""),
    }
