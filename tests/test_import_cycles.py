"""No import cycles anywhere in the package: imports flow one way, from the command line
down to the core (an import inside a function counts too: it is a dependency all the same).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

from tests.imports import imports_in, module_name

PACKAGE = Path(__file__).resolve().parent.parent / "kexecwatch"


def package_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Each module of the package -> the package's modules it imports."""
    root = package.parent
    files = {module_name(p, root): p for p in sorted(package.rglob("*.py"))}
    return {
        name: {m for m in imports_in(path, root, files) if m in files and m != name}
        for name, path in files.items()
    }


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan), and every
    module that imports itself, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> Iterator[None]:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                yield from visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for start in sorted(graph):
        if start not in index:
            list(visit(start))
    return sorted(found)


def test_the_package_has_no_import_cycle() -> None:
    graph = package_graph()
    assert len(graph) > 50  # the walk found the package
    assert cycles(graph) == []


def test_the_check_finds_a_cycle_and_relative_imports(tmp_path: Path) -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert cycles(graph) == [["a", "b", "c"], ["e"]]
    pkg = tmp_path / "kexecwatch" / "sub"
    pkg.mkdir(parents=True)
    (tmp_path / "kexecwatch" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "one.py").write_text("def f():\n    from . import two\n    from ..sub.two import x\n")
    (pkg / "two.py").write_text("from kexecwatch.sub import one\nx = 1\n")
    graph = package_graph(tmp_path / "kexecwatch")
    assert graph["kexecwatch.sub.one"] == {"kexecwatch.sub.two"}
    assert cycles(graph) == [["kexecwatch.sub.one", "kexecwatch.sub.two"]]
