"""The recorded fixtures are complete, small, and free of this machine's paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.scenarios import load_manifest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
AUDIT = FIXTURES / "audit"
FORMATS = ("raw", "enriched")
MACHINE_PATHS = (b"/work/", b"/root/")


def _recorded() -> list[Path]:
    return sorted(p for fmt in FORMATS for p in (AUDIT / fmt).glob("*.log"))


def _malformed() -> list[Path]:
    return sorted(AUDIT.glob("malformed-*.log"))


def test_every_manifest_entry_has_both_formats_and_nothing_else() -> None:
    names = load_manifest().fixture_names
    for fmt in FORMATS:
        on_disk = sorted(p.stem for p in (AUDIT / fmt).glob("*.log"))
        assert on_disk == sorted(names), fmt


@pytest.mark.parametrize("path", _recorded() + _malformed(), ids=lambda p: p.name)
def test_no_machine_paths(path: Path) -> None:
    data = path.read_bytes()
    for machine in MACHINE_PATHS:
        assert machine not in data
        # Untrusted fields (proctitle, cwd, args with spaces...) are hex-encoded.
        assert machine.hex().upper().encode() not in data


@pytest.mark.parametrize("path", _recorded(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_recorded_logs_are_whole_lines_in_their_format(path: Path) -> None:
    data = path.read_bytes()
    assert data.endswith(b"\n")
    assert b"\0" not in data
    lines = data.splitlines()
    assert lines[0].split(b" msg=")[0].endswith(b"type=DAEMON_START")
    if path.parent.name == "enriched":
        assert all(line.startswith(b"node=kxlab-node type=") for line in lines)
        assert b"\x1d" in data
    else:
        assert all(line.startswith(b"type=") for line in lines)
        assert b"\x1d" not in data


def test_malformed_fixtures_say_what_was_edited() -> None:
    malformed = _malformed()
    assert len(malformed) >= 3
    for path in malformed:
        assert path.read_bytes().startswith(b"# "), path.name


def test_only_malformed_fixtures_lack_a_final_newline() -> None:
    for path in AUDIT.rglob("*.log"):
        if not path.name.startswith("malformed-"):
            assert path.read_bytes().endswith(b"\n"), path


def test_fixtures_stay_small() -> None:
    # Golden files are derived output (tests/test_golden.py), with their own budget.
    golden = FIXTURES / "golden"
    files = [p for p in FIXTURES.rglob("*") if p.is_file()]
    total = sum(p.stat().st_size for p in files if golden not in p.parents)
    assert total < 3_500_000
    # 6.5 MB since the elastic-process-syscalls real recording (a new recorded scenario,
    # not bloat) brought the goldens past 6 MB.
    assert sum(p.stat().st_size for p in files if golden in p.parents) < 6_500_000
