"""Configuration: defaults, TOML overlay, strict keys and types, CLI overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from kexecwatch.adapters.config import Config, apply_overrides, load_config
from kexecwatch.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


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
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert str(info.value).startswith(path)


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
