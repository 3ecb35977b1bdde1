"""``kexecwatch live`` argument errors: exit 2 and one line naming the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from kexecwatch.adapters.live.view import parse_speed
from kexecwatch.cli import main
from kexecwatch.errors import InputError
from tests.adapters.live.live_logs import scenario_log


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "a.log"
    path.write_bytes(scenario_log())
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--replay", "{log}", "--speed", "0"], "--speed '0': expected a positive number or max"),
        (["--replay", "{log}", "--speed", "fast"], "expected a positive number or max"),
        (["--speed", "2", "{log}"], "--speed only applies to --replay"),
        (["{log}", "--replay", "{log}"], "either PATH to follow or --replay"),
        (["--replay", "-"], "--replay cannot read standard input"),
        (["--replay", "{missing}"], "no such file or directory"),
        (["{missing}"], "no such file (is auditd running?"),
        (["--replay", "{log}", "--rule", "{missing}"], "no such rule file"),
        # all arguments are right, but pytest's stdin is not a terminal
        (["--replay", "{log}", "--speed", "max"], "live needs a terminal"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    args: list[str], message: str, log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["live", *(a.format(log=log, missing=tmp_path / "missing.log") for a in args)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


def test_parse_speed() -> None:
    assert parse_speed("max") is None
    assert parse_speed("MAX") is None
    assert parse_speed("2.5") == 2.5
    for bad in ("-1", "0", "inf", "nan", ""):
        with pytest.raises(InputError):
            parse_speed(bad)
