"""A parse issue in the daemon's log names its file, as time jumps and event errors do.

Under ``run`` the followed log rotates, so ``line=`` alone does not say which file holds
the line (issue 16: what cannot be used is reported with its ``file:line``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.builders import exec_lines, join
from tests.daemon.harness import Daemon

pytestmark = pytest.mark.slow


def test_a_parse_issue_log_line_names_the_file(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    lines = exec_lines(1)
    lines[1] += b' a99999999="x"'  # an argument field beyond argc: a parse issue
    log.write_bytes(join([b"not an audit record", *lines]))
    log.chmod(0o600)
    d = Daemon(tmp_path, log)
    d.wait_alerts(1)
    d.stop()
    issues = [x for x in d.stderr().splitlines() if "event=parse_issue" in x]
    assert len(issues) == 2, issues
    assert f"file={log} line=1 " in issues[0], issues[0]
    assert f"file={log} line=3 " in issues[1], issues[1]
