"""Event time: no single record's time, and no clock step, may blind detection (issue 16 §1).

Every case derives a hostile log from a real recording and asserts that ``replay`` gives
the FULL alert set of the unperturbed recording (for clock steps: the same alerts, only
dated differently), with exit code 1 (alerts) and no traceback.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from tests.timeshift import (
    OUTLIERS,
    RECORDINGS,
    SHORT_STEPS_BACK,
    STEPS,
    alert_set,
    insert_outlier,
    step_clock,
    timeless,
)

RULESETS = ("upstream", "all")


def replay(log: Path, ruleset: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "kexecwatch",
            "replay",
            "--ruleset",
            ruleset,
            "--host-name",
            "h",
            str(log),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )


@cache
def baseline(kind: str, ruleset: str) -> tuple[str, ...]:
    result = replay(RECORDINGS[kind], ruleset)
    assert result.returncode == 1, result.stderr.decode()[-2000:]
    return tuple(alert_set(result.stdout))


def test_the_baseline_has_the_alerts_the_issue_counts() -> None:
    assert len(baseline("raw", "upstream")) == 18
    assert len(baseline("enriched", "upstream")) == 18


def _check(tmp_path: Path, kind: str, ruleset: str, data: bytes, *, dated: bool) -> str:
    log = tmp_path / "perturbed.log"
    log.write_bytes(data)
    result = replay(log, ruleset)
    err = result.stderr.decode()
    assert "Traceback" not in err, err[-3000:]
    assert result.returncode == 1, err[-3000:]
    got = alert_set(result.stdout)
    want = list(baseline(kind, ruleset))
    if dated:
        assert timeless(got) == timeless(want)
    else:
        assert got == want
    return err


@pytest.mark.parametrize("ruleset", RULESETS)
@pytest.mark.parametrize("kind", sorted(RECORDINGS))
@pytest.mark.parametrize("shift", OUTLIERS, ids=str)
def test_one_record_dated_off_changes_no_alert(
    tmp_path: Path, kind: str, ruleset: str, shift: int | str
) -> None:
    data = insert_outlier(RECORDINGS[kind].read_bytes(), shift)
    _check(tmp_path, kind, ruleset, data, dated=False)


@pytest.mark.parametrize("kind", sorted(RECORDINGS))
@pytest.mark.parametrize("shift", [6, 86_400, -60, "year-10000"], ids=str)
def test_an_outlier_inside_a_kexec_event_changes_no_alert(
    tmp_path: Path, kind: str, shift: int | str
) -> None:
    data = insert_outlier(RECORDINGS[kind].read_bytes(), shift, mid_event=True)
    _check(tmp_path, kind, "all", data, dated=False)


@pytest.mark.parametrize("ruleset", RULESETS)
@pytest.mark.parametrize("kind", sorted(RECORDINGS))
@pytest.mark.parametrize("step", STEPS, ids=str)
def test_a_clock_step_changes_no_alert(tmp_path: Path, kind: str, ruleset: str, step: int) -> None:
    data = step_clock(RECORDINGS[kind].read_bytes(), step)
    _check(tmp_path, kind, ruleset, data, dated=True)


def _alert_ids(docs: list[str]) -> list[str]:
    return timeless([json.dumps({"id": json.loads(d)["event"]["id"]}) for d in docs])


@pytest.mark.parametrize("kind", sorted(RECORDINGS))
@pytest.mark.parametrize("step", SHORT_STEPS_BACK, ids=str)
def test_a_short_step_back_keeps_every_alert(tmp_path: Path, kind: str, step: int) -> None:
    # Within the window a step back looks like events completing out of order: every
    # event is still whole and alerts, but a parent may go unnamed (README).
    log = tmp_path / "perturbed.log"
    log.write_bytes(step_clock(RECORDINGS[kind].read_bytes(), step))
    result = replay(log, "all")
    assert result.returncode == 1 and b"Traceback" not in result.stderr
    got = alert_set(result.stdout)
    assert _alert_ids(got) == _alert_ids(list(baseline(kind, "all")))
    assert all(json.loads(d)["process"].get("args") for d in got if "process" in json.loads(d))


def test_outliers_are_reported_as_parse_issues(tmp_path: Path) -> None:
    ahead = _check(
        tmp_path,
        "raw",
        "upstream",
        insert_outlier(RECORDINGS["raw"].read_bytes(), 60),
        dated=False,
    )
    assert re.search(r":122: time: record dated 60\.\d{3} s ahead of the stream", ahead)
    back = _check(
        tmp_path, "raw", "upstream", step_clock(RECORDINGS["raw"].read_bytes(), -60), dated=True
    )
    assert re.search(r"time: record time steps back 59\.\d{3} s", back)
    huge = _check(
        tmp_path,
        "raw",
        "upstream",
        insert_outlier(RECORDINGS["raw"].read_bytes(), "year-10000"),
        dated=False,
    )
    assert "beyond year 9999" in huge


@pytest.mark.parametrize("kind", sorted(RECORDINGS))
def test_a_kexec_run_dated_beyond_year_9999_still_alerts(tmp_path: Path, kind: str) -> None:
    # Every record of the first kexec run (and of a configuration change, which the
    # telemetry rules read) dated in year 10000: reported, alerted, no traceback.
    data = RECORDINGS[kind].read_bytes()
    lines = data.split(b"\n")
    kexec = next(ln for ln in lines if b"type=SYSCALL" in ln and b'comm="kexec"' in ln)
    config = next(ln for ln in lines if b"type=CONFIG_CHANGE" in ln and b"add_rule" in ln)
    for line in (kexec, config):
        stamp = re.search(rb"msg=audit\((\d+)\.", line)
        assert stamp is not None
        data = data.replace(b"audit(" + stamp.group(1) + b".", b"audit(253402300800.")
    log = tmp_path / "year-10000.log"
    log.write_bytes(data)
    result = replay(log, "all")
    err = result.stderr.decode()
    assert "Traceback" not in err and result.returncode == 1, err[-3000:]
    docs = [json.loads(d) for d in alert_set(result.stdout)]
    assert len(docs) == len(baseline(kind, "all"))
    far = [d for d in docs if d["@timestamp"] == "9999-12-31T23:59:59.999Z"]
    assert far, "the year-10000 alerts are dated at the end of year 9999"
    assert all("253402300800." in d["event"]["id"] for d in far)
    assert "beyond year 9999" in err
