"""The core's stages import one way: each only the stages before it, as the README's
"Architecture" draws them. The doctor's logic stands apart from the pipeline."""

from __future__ import annotations

from pathlib import Path

from tests.test_core_is_pure import CORE, own_imports

#: The pipeline's stages, first to last; a stage may import itself and those before it.
PIPELINE = ("text", "audit", "process", "scan", "detect")
#: Stages outside the pipeline, and the stages each may import.
APART = {"doctor": ("doctor",)}


def stage_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[:2] == ["kexecwatch", "core"] else None


def allowed(stage: str) -> tuple[str, ...]:
    if stage in APART:
        return APART[stage]
    return PIPELINE[: PIPELINE.index(stage) + 1]


def wrong_way(files: list[Path], root: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in files:
        parts = path.relative_to(root).with_suffix("").parts
        here = stage_of(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
        if here is None:  # kexecwatch/core/__init__.py: the front door names every stage
            continue
        bad = sorted(
            m for m in own_imports(path, root) if (s := stage_of(m)) and s not in allowed(here)
        )
        if bad:
            found[path.relative_to(root).as_posix()] = bad
    return found


def test_every_core_package_is_a_known_stage() -> None:
    packages = {p.name for p in CORE.iterdir() if (p / "__init__.py").exists()}
    assert packages == set(PIPELINE) | set(APART)


def test_stages_import_only_the_stages_before_them() -> None:
    assert wrong_way(sorted(CORE.rglob("*.py")), CORE.parent.parent) == {}


def test_the_check_sees_an_import_the_wrong_way(tmp_path: Path) -> None:
    probe = tmp_path / "kexecwatch" / "core" / "audit" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text(
        "from kexecwatch.core.text.textsafe import escape_text\n"
        "def later():\n"
        "    from kexecwatch.core.detect.ruleindex import name_filter\n"
        "    from ..doctor import posture\n"
    )
    assert wrong_way([probe], tmp_path) == {
        "kexecwatch/core/audit/probe.py": [
            "kexecwatch.core.detect.ruleindex",
            "kexecwatch.core.doctor",
        ]
    }
