"""Configuration: defaults, TOML overlay, strict keys and types, CLI overrides."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kexecwatch.adapters.daemon.config import Config, apply_overrides, load_config
from kexecwatch.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]


def test_shipped_config_matches_the_defaults() -> None:
    assert load_config(str(REPO / "etc" / "kexecwatch.toml")) == Config()


def test_shipped_config_names_every_key() -> None:
    text = (REPO / "etc" / "kexecwatch.toml").read_text()
    for name in Config.__slots__:
        assert f"\n{name.replace('_', '-')} = " in text


def write(tmp_path: Path, text: str) -> str:
    p = tmp_path / "k.toml"
    p.write_text(text)
    return str(p)


def test_file_overrides_defaults(tmp_path: Path) -> None:
    cfg = load_config(
        write(tmp_path, 'log = "/l"\noutputs = ["stdout:text", "json:/o"]\npoll-interval = 2\n')
    )
    assert cfg.log == "/l"
    assert cfg.outputs == ("stdout:text", "json:/o")
    assert cfg.poll_interval == 2.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lgo = 1\n", "unknown key 'lgo'"),
        ('poll-interval = "1"\n', "poll-interval: expected float"),
        ('outputs = "stdout"\n', "outputs: expected a list"),
        ("event-window-ms = 1.5\n", "event-window-ms: expected int"),
        ("event-window-ms = true\n", "event-window-ms"),
        ('outputs = ["nope"]\n', "bad output 'nope'"),
        ("log = \n", "invalid TOML"),
        ('log-level = "loud"\n', "log-level"),
        ("poll-interval = nan\n", "poll-interval: must be a number from 0.01 to 3600"),
        ("poll-interval = 1e308\n", "poll-interval: must be a number from 0.01 to 3600"),
        ("poll-interval = 0.001\n", "poll-interval"),
        ("checkpoint-interval = inf\n", "checkpoint-interval: must be a number from"),
        ("checkpoint-interval = 0\n", "checkpoint-interval"),
        ("status-interval = -inf\n", "status-interval: must be a number from"),
        ("status-interval = 1e9\n", "status-interval"),
        ("event-window-ms = 0\n", "event-window-ms: must be a number from 1 to 3600000"),
        ('tls-ca = "/ca.pem"\n', "tls-ca is set but no syslog\\+tls:// output uses it"),
        (
            'outputs = ["syslog+tcp://h:1"]\ntls-server-name = "h"\n',
            "tls-server-name is set but no syslog\\+tls:// output uses it",
        ),
        (
            'outputs = ["syslog+tls://h:1"]\ntls-key = "/k.pem"\n',
            "tls-key needs tls-cert",
        ),
        ("event-window-ms = 99999999999999\n", "event-window-ms: must be a number from 1 to"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert str(info.value).startswith(path)
    assert "\n" not in str(info.value)


def test_explicit_missing_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(str(tmp_path / "absent.toml"))


def test_cli_overrides_replace_file_values(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, 'outputs = ["stdout"]\nlog = "/a"\n'))
    cfg = apply_overrides(cfg, {"outputs": ["json:/x"], "log": None, "rules": []})
    assert cfg.outputs == ("json:/x",)
    assert cfg.log == "/a"
    with pytest.raises(ConfigError, match="syslog://host"):
        apply_overrides(cfg, {"outputs": ["syslog://host"]})


@pytest.mark.parametrize(
    "text",
    [
        "poll-interval = 0.01\n",
        "poll-interval = 3600\n",
        "checkpoint-interval = 86400\n",
        "status-interval = 0.1\n",
        "event-window-ms = 1\n",
        "event-window-ms = 3600000\n",
    ],
)
def test_numbers_at_the_edges_of_their_range_are_accepted(tmp_path: Path, text: str) -> None:
    load_config(write(tmp_path, text))


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "1e308"])
def test_doctor_max_checkpoint_age_out_of_range_exits_2(value: str) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "kexecwatch", "doctor", "--max-checkpoint-age", value],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 2
    assert r.stdout == ""  # refused before any check ran
    (line,) = r.stderr.strip().splitlines()
    assert "--max-checkpoint-age" in line and "from 0 to" in line


def test_run_with_an_unreadable_tls_ca_is_a_one_line_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "kexecwatch", "run", "--log", str(tmp_path / "audit.log"),
         "--state-dir", str(tmp_path / "state"), "--output", "syslog+tls://127.0.0.1:6514",
         "--tls-ca", str(tmp_path / "missing.pem")],
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert f"tls-ca {tmp_path / 'missing.pem'}: No such file or directory" in proc.stderr
