"""The ``kexecwatch`` program starts up with the garbage collector paused.

Start-up builds tens of thousands of long-lived objects and next to no garbage; the
collector's passes over them were 3% of a replay's fixed cost. The entry point
(kexecwatch.program, which pyproject installs as the program) pauses it; the command line
enables it again when start-up ends.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

from tests.builders import exec_lines, join, user_line

_PROBE = (
    "import gc, json, sys\n"
    "starts = []\n"
    "def count(phase, info):\n"
    "    if phase == 'start':\n"
    "        starts.append(info['generation'])\n"
    "gc.callbacks.append(count)\n"
    "seen = {}\n"
    "real_freeze = gc.freeze\n"
    "def freeze():\n"
    "    seen['freeze'] = {'collections': list(starts), 'enabled': gc.isenabled(),\n"
    "                      'garbage': gc.collect()}\n"
    "    real_freeze()\n"
    "gc.freeze = freeze\n"
    "out = sys.argv.pop(1)\n"
    "from kexecwatch.program import main\n"
    "starts.clear()  # only what main does counts\n"
    "code = main()\n"
    "seen.update(enabled=gc.isenabled(), frozen=gc.get_freeze_count(), code=code)\n"
    "with open(out, 'w') as f:\n"
    "    json.dump(seen, f)\n"
)


def probe(tmp_path: Path, *args: str) -> dict[str, Any]:
    """Run the program's entry point with ``args``: what the collector did."""
    out = tmp_path / "seen.json"
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, str(out), *args],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert out.exists(), result.stderr.decode()
    seen: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return seen


def test_a_replay_starts_up_without_collector_passes_then_collects_and_freezes(
    tmp_path: Path,
) -> None:
    log = tmp_path / "user.log"
    log.write_bytes(join([user_line(1)]))
    seen = probe(tmp_path, "replay", "--quiet", str(log))
    assert seen["code"] == 0
    # No pass at all before the freeze (there were about 40), the collector still paused
    # then; what start-up left for a pass to free is small (the replaced slot classes).
    assert seen["freeze"]["collections"] == []
    assert seen["freeze"]["enabled"] is False
    assert seen["freeze"]["garbage"] < 2_000
    assert seen["enabled"] is True  # and enabled again after it
    assert seen["frozen"] > 10_000


def test_an_alerting_replay_and_other_commands_end_with_the_collector_enabled(
    tmp_path: Path,
) -> None:
    log = tmp_path / "kexec.log"
    log.write_bytes(join(exec_lines(1, pid=11, ppid=10, args=("kexec", "-l", "vmlinuz"))))
    seen = probe(tmp_path, "replay", "--quiet", str(log))
    assert (seen["code"], seen["enabled"]) == (1, True)
    seen = probe(tmp_path, "audit-rules")
    assert (seen["code"], seen["enabled"]) == (0, True)
    assert "freeze" not in seen  # only replay freezes


def test_the_installed_program_and_python_m_use_that_entry_point() -> None:
    root = Path(__file__).resolve().parent.parent
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["scripts"] == {"kexecwatch": "kexecwatch.program:main"}
    assert "from kexecwatch.program import main" in (
        root / "kexecwatch" / "__main__.py"
    ).read_text(encoding="utf-8")
