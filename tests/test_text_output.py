"""Text output shortens long command lines visibly; JSON keeps every byte."""

from __future__ import annotations

import json
from pathlib import Path

from tests.builders import exec_lines, join
from tests.test_cli import kexecwatch

LONG = "x" * 9000


def test_text_line_of_an_18_kb_command_is_short_and_says_how_much_is_left_out(
    tmp_path: Path,
) -> None:
    log = tmp_path / "long.log"
    log.write_bytes(join(exec_lines(1, args=("kexec", "-l", LONG, "--append", LONG))))
    text = kexecwatch("replay", "--format", "text", str(log))
    assert text.returncode == 1, text.stderr
    [line] = text.stdout.decode().splitlines()
    assert len(line.encode()) < 2000
    assert "…(+" in line and " bytes)" in line
    doc = json.loads(kexecwatch("replay", str(log)).stdout)
    assert doc["process"]["args"] == ["kexec", "-l", LONG, "--append", LONG]
