"""``bench/manyrules_floor.py`` (issue 15): the events it says were shown to the rules
are those a rule's prefilter takes, with each scanner, and a folder of which no rule
loads stops it with one line, never a table of zeros."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from kexecwatch.rules import load_rules

ROOT = Path(__file__).resolve().parent.parent
LOG = ROOT / "fixtures" / "audit" / "raw" / "all-scenarios.log"
RULE = (ROOT / "examples" / "rules" / "kexec_outside_system_directories.toml").read_text()


def run(rules: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / "manyrules_floor.py"), "--rules-dir", str(rules)]
        + ["--log", str(LOG), "--rounds", "1"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )


def test_the_events_shown_are_those_the_rule_takes(tmp_path: Path) -> None:
    # Every exec named ls, whatever else: the prefilter takes exactly the ls execs.
    ls_rule = RULE.replace(
        RULE[RULE.index("query = '''") : RULE.rindex("'''") + 3],
        "query = '''\nprocess where event.type == \"start\" and process.name == \"ls\"\n'''",
    )
    (tmp_path / "ls.toml").write_text(ls_rule)
    assert len(list(load_rules([str(tmp_path)], builtin=False))) == 1
    lines = LOG.read_text().splitlines()
    execs = sum(
        1
        for ln in lines
        if ln.startswith("type=SYSCALL") and " syscall=59 " in ln and ' comm="ls" ' in ln
    )
    assert execs > 0
    done = run(tmp_path)
    assert done.returncode == 0, done.stderr
    rows = [ln.split() for ln in done.stdout.splitlines() if re.match(r"(python|native) ", ln)]
    assert rows and rows[0][0] == "python"
    for row in rows:
        assert row[6].replace(",", "") == str(execs), row
        assert row[-1].endswith("x")


def test_a_rule_set_that_does_not_load_is_one_error(tmp_path: Path) -> None:
    (tmp_path / "broken.toml").write_text("[rule]\nname = 'half a rule'\n")
    done = run(tmp_path)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1] == (
        f"manyrules_floor.py: no rule of {tmp_path} loads"
    )
    assert "shown" not in done.stdout
