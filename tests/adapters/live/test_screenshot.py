"""docs/live.svg is what tools/make_screenshot.py makes from the bundled fixture."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
TOOL = ROOT / "tools" / "make_screenshot.py"
PICTURE = ROOT / "docs" / "live.svg"


def test_the_readme_picture_is_current(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_screenshot", TOOL)
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    if not all((ROOT / p).exists() for p in tool.DEFAULT_FIXTURES):
        pytest.skip(f"bundled fixtures not present: {tool.DEFAULT_FIXTURES}")
    out = tmp_path / "live.svg"
    assert tool.main(["--out", str(out)]) == 0
    svg = out.read_text(encoding="utf-8")
    assert "\x1b" not in svg
    assert "kdumpctl" in svg and "Kernel&#160;Load" in svg
    assert svg == PICTURE.read_text(encoding="utf-8"), (
        "docs/live.svg is stale: run .venv/bin/python tools/make_screenshot.py"
    )
