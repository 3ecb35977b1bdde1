"""The example rules in examples/rules: valid, and firing on the recordings they are for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_cli import kexecwatch

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples" / "rules").glob("*.toml"))
OUTSIDE = ROOT / "examples" / "rules" / "kexec_outside_system_directories.toml"
LOGS = ROOT / "fixtures" / "audit" / "enriched"


def test_there_are_examples() -> None:
    assert OUTSIDE in EXAMPLES


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_is_valid_without_warnings(path: Path) -> None:
    done = kexecwatch("check-rule", "--strict", str(path))
    assert done.returncode == 0, done.stdout.decode()
    assert b"warning" not in done.stdout


@pytest.mark.parametrize(
    ("log", "expected"),
    [
        ("evasion-unpackaged-path.log", [("/srv/kxlab/bin/kexec", "kexec")]),
        ("v7-case-sensitive.log", [("/srv/kxlab/KEXEC", "KEXEC")]),
        ("all-scenarios.log", [("/srv/kxlab/KEXEC", "KEXEC")]),
        ("v7-exec-long.log", []),  # the packaged /usr/sbin/kexec
        ("kdump-flows.log", []),
    ],
)
def test_kexec_outside_system_directories_fires_on_the_recording(
    log: str, expected: list[tuple[str, str]]
) -> None:
    done = kexecwatch("replay", "--no-builtin-rules", "--rule", str(OUTSIDE), str(LOGS / log))
    alerts = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == (1 if expected else 0), done.stderr.decode()
    assert [(a["process"]["executable"], a["process"]["name"]) for a in alerts] == expected
    for alert in alerts:
        assert alert["rule"]["name"] == "Kexec Run From Outside the System Directories"
