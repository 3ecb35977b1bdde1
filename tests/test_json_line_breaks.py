"""JSON output stays one document per line for readers that split on Unicode line breaks.

``str.splitlines`` (and many JSON-lines readers) also break lines at U+0085 (NEL),
U+2028 (LINE SEPARATOR) and U+2029 (PARAGRAPH SEPARATOR), which ``json.dumps`` keeps
raw with ``ensure_ascii=False``. Every JSON writer must escape them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from io import StringIO
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from kexecwatch.adapters.live.render import render_dashboard
from kexecwatch.adapters.live.state import AlertRow, DashboardState, ProcessSummary
from kexecwatch.core.detect.alerts import to_json_line
from kexecwatch.core.text import jsontext
from tests.builders import exec_lines, join

BREAKS = "a\u0085b\u2028c\u2029d"


def kexec_log_with_breaks() -> bytes:
    """One kexec run whose third argument holds the three line breaks (hex, as auditd writes)."""
    lines = exec_lines(1, args=("kexec", "-l", "PLACEHOLDER"))
    hexed = BREAKS.encode().hex().upper().encode()
    return join([line.replace(b'a2="PLACEHOLDER"', b"a2=" + hexed) for line in lines])


def test_a_json_line_escapes_unicode_line_breaks() -> None:
    line = to_json_line({"arg": BREAKS, "plain": "é"}).decode()
    assert line.count("\n") == 1 and len(line.splitlines()) == 1
    assert r"a\u0085b\u2028c\u2029d" in line
    assert "é" in line  # other non-ASCII text stays readable
    assert json.loads(line)["arg"] == BREAKS


def replay_stdout(tmp_path: Path, *flags: str) -> str:
    log = tmp_path / "breaks.log"
    log.write_bytes(kexec_log_with_breaks())
    result = subprocess.run(
        [sys.executable, "-m", "kexecwatch", "replay", "--ruleset", "upstream", *flags, str(log)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr.decode()
    return result.stdout.decode()


def test_replay_alerts_stay_one_document_per_line(tmp_path: Path) -> None:
    out = replay_stdout(tmp_path)
    [line] = out.splitlines()
    assert json.loads(line)["process"]["args"] == ["kexec", "-l", BREAKS]


def test_replay_events_stay_one_document_per_line(tmp_path: Path) -> None:
    out = replay_stdout(tmp_path, "--events")
    docs = [json.loads(line) for line in out.splitlines()]
    assert [d["process"]["args"] for d in docs] == [["kexec", "-l", BREAKS]]


def test_live_view_json_keeps_an_argument_on_one_line() -> None:
    who = ProcessSummary(1_700_000_000_000, "web1", "root", 7, ("bash", "kexec"), "kexec")
    row = AlertRow("rule", "medium", who, {"process": {"args": ["kexec", BREAKS]}})
    state = DashboardState(source="replay", path="x.log", alert_rows=[row], detail=0)
    console = Console(width=120, height=30, file=StringIO(), color_system=None)
    console.print(render_dashboard(state, 120, 30))
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    assert r'"a\u0085b\u2028c\u2029d"' in shown


json_values = st.recursive(
    st.none() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=30) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=60,
)


@given(json_values, st.integers(min_value=0, max_value=400))
def test_dumps_within_fits_or_says_it_cannot(value: object, max_bytes: int) -> None:
    whole = jsontext.dumps(value)
    out = jsontext.dumps_within(value, max_bytes)
    if len(jsontext.encode(whole)) <= max_bytes:
        assert out == whole
    elif out is not None:
        assert len(jsontext.encode(out)) <= max_bytes
        cut = json.loads(out)
        assert type(cut) is type(value)
        if isinstance(value, dict):
            assert set(cut) == set(value)  # keys are never dropped


def test_dumps_within_cuts_the_longest_value_first() -> None:
    doc = {"id": "r:-:1700000000.000:42", "args": ["kexec", "x" * 5000], "n": 3}
    out = jsontext.dumps_within(doc, 300)
    assert out is not None
    cut = json.loads(out)
    assert cut["id"] == doc["id"] and cut["n"] == 3 and cut["args"][0] == "kexec"
    assert cut["args"][1].startswith("xxx") and cut["args"][1].endswith(" bytes)")
    assert jsontext.dumps_within(doc, 10) is None  # not even the keys fit


def test_check_rule_json_escapes_line_breaks_in_what_it_quotes(tmp_path: Path) -> None:
    rule = tmp_path / f"kexec{BREAKS}.toml"
    rule.write_text("not a rule\n")
    result = subprocess.run(
        [sys.executable, "-m", "kexecwatch", "check-rule", "--format", "json", str(rule)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr.decode()
    out = result.stdout.decode()
    assert not set("\u0085\u2028\u2029") & set(out)
    assert json.loads(out)["files"][0]["path"] == str(rule)
