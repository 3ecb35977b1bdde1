"""The core takes bytes and time and returns values: no I/O module may be imported."""

import ast
from pathlib import Path

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
