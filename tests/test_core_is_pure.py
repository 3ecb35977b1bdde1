"""The core takes bytes and time and returns values: no I/O module may be imported, and
nothing of the shells around it (adapters, the command line, the native binding, rule files
on disk): of kexecwatch, the core imports only itself and :mod:`kexecwatch.errors`."""

import ast
from pathlib import Path

from tests.imports import imports_in

FORBIDDEN = {
    "os",
    "io",
    "pathlib",
    "time",
    "logging",
    "threading",
    "socket",
    "subprocess",
    "watchdog",
    "rich",
    "sys",
    "shutil",
    "tempfile",
    "signal",
    "select",
    "asyncio",
    "multiprocessing",
    "gzip",
    "random",
}
#: What the core may import of kexecwatch: itself and the one exception hierarchy.
ALLOWED_OWN = ("kexecwatch.core", "kexecwatch.errors")
CORE = Path(__file__).resolve().parent.parent / "kexecwatch" / "core"


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") in ("open", "__import__"):
            roots.add(node.func.id)  # type: ignore[attr-defined]
    return roots


def own_imports(path: Path, root: Path = CORE.parent.parent) -> set[str]:
    """The kexecwatch modules ``path`` (under ``root``) imports, anywhere in the file;
    relative imports resolved. ``from kexecwatch import X`` counts as ``kexecwatch``."""
    return {m for m in imports_in(path, root) if m == "kexecwatch" or m.startswith("kexecwatch.")}


def is_allowed_own(module: str) -> bool:
    return any(module == ok or module.startswith(ok + ".") for ok in ALLOWED_OWN)


def test_core_imports_nothing_of_the_shells() -> None:
    offenders = {
        str(f.relative_to(CORE)): sorted(m for m in own_imports(f) if not is_allowed_own(m))
        for f in sorted(CORE.rglob("*.py"))
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_shell_check_would_catch_an_offender(tmp_path: Path) -> None:
    probe = tmp_path / "kexecwatch" / "core" / "stage" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text(
        "from kexecwatch.cli import main\n"
        "from kexecwatch.core.audit.record import parse_record\n"
        "from kexecwatch.errors import InputError\n"
        "from . import sibling\n"
        "def later():\n"
        "    import kexecwatch.adapters.daemon.procfs\n"
        "    from ...native import binding\n"
        "    from kexecwatch import options\n"
    )
    found = own_imports(probe, root=tmp_path)
    assert sorted(m for m in found if not is_allowed_own(m)) == [
        "kexecwatch",
        "kexecwatch.adapters.daemon.procfs",
        "kexecwatch.cli",
        "kexecwatch.native",
    ]
    assert {"kexecwatch.core.stage", "kexecwatch.core.audit.record", "kexecwatch.errors"} <= found


def test_core_modules_import_no_io() -> None:
    files = sorted(CORE.rglob("*.py"))
    assert len(files) >= 8
    offenders = {
        str(f.relative_to(CORE)): sorted(imported_roots(f) & (FORBIDDEN | {"open", "__import__"}))
        for f in files
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_scan_would_catch_an_offender(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom time import monotonic\nopen('x')\n")
    assert imported_roots(bad) >= {"os", "time", "open"}
