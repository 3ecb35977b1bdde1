"""Daemon configuration: dataclass defaults, then the TOML file, then command-line flags.

Keys are kebab-case in TOML (``state-dir``) and snake_case in Python (``state_dir``). An
unknown key or a value of the wrong type is a :class:`~kexecwatch.errors.ConfigError`
naming the dotted key and the file.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kexecwatch.adapters.daemon.sinks import TlsSettings, parse_output_spec
from kexecwatch.adapters.sources import NO_SUCH_FILE, read_regular_file
from kexecwatch.core import EVENTS_AS
from kexecwatch.errors import ConfigError, InputError, SourceLocation
from kexecwatch.hostid import check_host_id

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "TLS_KEYS",
    "Config",
    "add_run_arguments",
    "apply_overrides",
    "bounded_number",
    "load_config",
]

DEFAULT_CONFIG_PATH = "/etc/kexecwatch/kexecwatch.toml"
#: The settings of ``syslog+tls://`` outputs (fields of :class:`Config`).
TLS_KEYS = ("tls_ca", "tls_cert", "tls_key", "tls_server_name")


@dataclass(frozen=True, slots=True)
class Config:
    """Every setting of ``kexecwatch run``, with its default.

    Attributes:
        log: the audit log to follow.
        state_dir: where the checkpoint and alert journal live (created 0700).
        outputs: output specs (see :mod:`kexecwatch.adapters.daemon.sinks`).
        rules: extra rule files or directories of them (read recursively), loaded after
            the built-in rules.
        builtin_rules: whether the built-in rules run (false: only ``rules``).
        ruleset: the built-in rules: ``all``, ``upstream`` or ``kexecwatch``.
        rule_cache: whether the rule files' parsed TOML is kept between starts and
            reloads (:mod:`kexecwatch.rules.cache`).
        rule_cache_dir: the rule cache's directory; empty: ``$XDG_CACHE_HOME/kexecwatch``
            (else ``$HOME/.cache/kexecwatch``).
        host_name: host name for alerts and syslog; empty means the system's.
        host_id: ``host.id`` for records without ``node=``; empty means the machine id.
        events_as: the event vocabulary of process documents (``auditbeat``, ``defend``).
        poll_interval: seconds between safety polls of the log.
        checkpoint_interval: seconds between checkpoints when nothing was alerted.
        event_window_ms: an event with no new record for this long is completed.
        status_interval: seconds between status lines on stderr.
        log_level: debug, info, warning or error.
        log_format: ``logfmt`` (one ``key=value`` line per entry) or ``json``.
        tls_ca: CA file that verifies a ``syslog+tls://`` collector (empty: system's).
        tls_cert: client certificate for mutual TLS (empty: none).
        tls_key: the client certificate's key, when not in ``tls_cert``.
        tls_server_name: the name the collector's certificate must carry (empty: HOST).
    """

    log: str = "/var/log/audit/audit.log"
    state_dir: str = "/var/lib/kexecwatch"
    outputs: tuple[str, ...] = ("stdout",)
    rules: tuple[str, ...] = ()
    builtin_rules: bool = True
    ruleset: str = "all"
    rule_cache: bool = True
    rule_cache_dir: str = ""
    host_name: str = ""
    host_id: str = ""
    events_as: str = "auditbeat"
    poll_interval: float = 1.0
    checkpoint_interval: float = 5.0
    event_window_ms: int = 1000
    status_interval: float = 60.0
    log_level: str = "info"
    log_format: str = "logfmt"
    tls_ca: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    tls_server_name: str = ""

    def tls(self) -> TlsSettings:
        """The ``tls-*`` settings for ``syslog+tls://`` outputs."""
        return TlsSettings(self.tls_ca, self.tls_cert, self.tls_key, self.tls_server_name)


_LEVELS = ("debug", "info", "warning", "error")
# Every number's sensible range, inclusive: NaN, infinities and absurd sizes are refused
# here rather than becoming a busy loop or an overflow deep in the daemon.
_RANGES: dict[str, tuple[float, float]] = {
    "poll_interval": (0.01, 3600.0),
    "checkpoint_interval": (0.01, 86400.0),
    "status_interval": (0.1, 86400.0),
    "event_window_ms": (1, 3_600_000),
}
_RULESETS = ("all", "upstream", "kexecwatch")
_LOG_FORMATS = ("logfmt", "json")
_DEFAULTS = Config()


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _range_error(low: float, high: float) -> str:
    return f"must be a number from {_num(low)} to {_num(high)}"


def bounded_number(low: float, high: float) -> Callable[[str], float]:
    """An argparse ``type``: a number from ``low`` to ``high``; NaN and infinities refused."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not low <= value <= high:  # False for NaN as well
            raise argparse.ArgumentTypeError(_range_error(low, high))
        return value

    return parse


def _kebab(name: str) -> str:
    return name.replace("_", "-")


def _convert(key: str, value: Any, default: Any, where: SourceLocation) -> Any:
    """Check ``value`` against the type of ``default``; returns the converted value."""
    if isinstance(default, tuple):
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ConfigError(f"{key}: expected a list of strings", where=where)
    if isinstance(default, bool) and isinstance(value, bool):
        return value
    if isinstance(default, bool) or isinstance(value, bool):
        raise ConfigError(f"{key}: expected {type(default).__name__}", where=where)
    if isinstance(default, float) and isinstance(value, int | float):
        return float(value)
    if isinstance(value, type(default)):
        return value
    raise ConfigError(
        f"{key}: expected {type(default).__name__}, got {type(value).__name__}", where=where
    )


def _validate(cfg: Config, where: SourceLocation | None) -> Config:
    transports: set[str] = set()
    for spec in cfg.outputs:
        try:
            transports.add(parse_output_spec(spec).transport)
        except ConfigError as exc:
            raise ConfigError(f"outputs: {exc.message}", where=where) from exc
    tls_set = [_kebab(k) for k in TLS_KEYS if getattr(cfg, k)]
    if tls_set and "tls" not in transports:
        # Refused rather than ignored: it would suggest a clear-text output is protected.
        raise ConfigError(f"{tls_set[0]} is set but no syslog+tls:// output uses it", where=where)
    if cfg.tls_key and not cfg.tls_cert:
        raise ConfigError("tls-key needs tls-cert (the certificate it belongs to)", where=where)
    for name, (low, high) in _RANGES.items():
        if not low <= getattr(cfg, name) <= high:  # False for NaN as well
            raise ConfigError(f"{_kebab(name)}: {_range_error(low, high)}", where=where)
    if cfg.ruleset not in _RULESETS:
        raise ConfigError(f"ruleset: expected one of {', '.join(_RULESETS)}", where=where)
    if cfg.log_level not in _LEVELS:
        raise ConfigError(f"log-level: expected one of {', '.join(_LEVELS)}", where=where)
    if cfg.log_format not in _LOG_FORMATS:
        raise ConfigError(f"log-format: expected one of {', '.join(_LOG_FORMATS)}", where=where)
    if cfg.events_as not in EVENTS_AS:
        raise ConfigError(f"events-as: expected one of {', '.join(EVENTS_AS)}", where=where)
    if cfg.host_id:
        try:
            check_host_id(cfg.host_id, "host-id")
        except InputError as exc:
            raise ConfigError(exc.message, where=where) from None
    if not cfg.outputs:
        raise ConfigError("outputs: at least one output is needed", where=where)
    return cfg


def load_config(path: str | None) -> Config:
    """Defaults overlaid with the TOML file.

    Args:
        path: an explicit ``--config`` (must exist), or ``None`` for
            :data:`DEFAULT_CONFIG_PATH` (used only if present).

    Raises:
        ConfigError: unreadable file, bad TOML, unknown key, wrong type, bad value.
    """
    file = path or DEFAULT_CONFIG_PATH
    where = SourceLocation(file)
    try:
        data = tomllib.loads(read_regular_file(file).decode("utf-8"))
    except InputError as exc:
        if exc.message == NO_SUCH_FILE:
            if path is None:
                return Config()
            raise ConfigError("configuration file not found", where=where) from None
        raise ConfigError(f"cannot read configuration: {exc.message}", where=where) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"invalid TOML: not UTF-8 text (at byte {exc.start})", where=where
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", where=where) from exc
    return _validate(_overlay(Config(), data, where), where)


def _overlay(base: Config, data: Mapping[str, Any], where: SourceLocation) -> Config:
    fields = {_kebab(f.name): f.name for f in dataclasses.fields(Config)}
    changes: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            raise ConfigError(f"unknown key {key!r}", where=where)
        name = fields[key]
        changes[name] = _convert(key, value, getattr(base, name), where)
    return dataclasses.replace(base, **changes)


def apply_overrides(cfg: Config, overrides: Mapping[str, Any]) -> Config:
    """Overlay command-line values (``None`` means "not given") and validate again.

    Raises:
        ConfigError: a bad output spec or value given on the command line.
    """
    changes: dict[str, Any] = {
        k: (tuple(v) if isinstance(v, list) else v)
        for k, v in overrides.items()
        if v is not None and v != []
    }
    return _validate(dataclasses.replace(cfg, **changes), None)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``kexecwatch run`` to ``parser``.

    Each one overrides the configuration file; the defaults shown are the built-in ones
    (:class:`Config`), which apply when neither the file nor the option sets a value.
    """
    d = _DEFAULTS
    parser.add_argument(
        "--config",
        metavar="FILE",
        help=f"configuration file (default {DEFAULT_CONFIG_PATH}, used if present)",
    )
    parser.add_argument(
        "--log",
        metavar="PATH",
        help=f"audit log to follow (default {d.log}); with no checkpoint in the state "
        "directory it is read from its start",
    )
    parser.add_argument(
        "--state-dir",
        metavar="DIR",
        help=f"checkpoint and alert journal directory (default {d.state_dir})",
    )
    parser.add_argument(
        "--output",
        metavar="SPEC",
        action="append",
        dest="outputs",
        help="stdout, stdout:text, json:PATH, syslog, syslog://HOST:PORT, "
        "syslog+tcp://HOST:PORT or syslog+tls://HOST:PORT (repeatable; replaces the "
        "config's; default "
        f"{', '.join(d.outputs)})",
    )
    parser.add_argument(
        "--rule",
        metavar="PATH",
        action="append",
        dest="rules",
        help="extra rule file, or directory of rule files read recursively (repeatable; "
        "replaces the config's)",
    )
    parser.add_argument(
        "--no-builtin-rules",
        action="store_false",
        dest="builtin_rules",
        default=None,
        help="run only the rules given with --rule (or the config's rules)",
    )
    parser.add_argument(
        "--ruleset",
        choices=_RULESETS,
        help="built-in rules: all (default), upstream (Elastic's v7 alone) "
        "or kexecwatch (its own rules alone)",
    )
    from kexecwatch.options import add_rule_cache_option

    add_rule_cache_option(parser, config=True)
    parser.add_argument(
        "--rule-cache-dir",
        metavar="DIR",
        help="directory of the rule cache (default $XDG_CACHE_HOME/kexecwatch, else "
        "~/.cache/kexecwatch)",
    )
    parser.add_argument(
        "--host-name",
        metavar="NAME",
        help="host.name for records without node= and the syslog HOSTNAME (default: this "
        "host's name)",
    )
    parser.add_argument(
        "--host-id",
        metavar="ID",
        help="host.id for records without node= (default: /etc/machine-id)",
    )
    from kexecwatch.options import add_events_as_option

    add_events_as_option(parser, config=True)
    parser.add_argument(
        "--tls-ca",
        metavar="FILE",
        help="PEM CA certificates that verify a syslog+tls:// collector (default: the "
        "system's trust store)",
    )
    parser.add_argument(
        "--tls-cert",
        metavar="FILE",
        help="PEM client certificate for mutual TLS (may also hold its key)",
    )
    parser.add_argument(
        "--tls-key", metavar="FILE", help="PEM private key of --tls-cert, if a separate file"
    )
    parser.add_argument(
        "--tls-server-name",
        metavar="NAME",
        help="name the collector's certificate must carry (default: the output's HOST)",
    )
    from kexecwatch.options import add_event_window_option

    add_event_window_option(
        parser,
        d.event_window_ms,
        "following a live log, an event is completed this long after its last record, so "
        "that its alert is not held up; replay and live use 5000",
        config=True,
    )
    parser.add_argument(
        "--log-level",
        choices=_LEVELS,
        help=f"least severe log entry written to stderr (default {d.log_level})",
    )
    parser.add_argument(
        "--log-format",
        choices=_LOG_FORMATS,
        help=f"the daemon's own log lines on stderr: logfmt (key=value) or json, one object "
        f"per line (default {d.log_format})",
    )
