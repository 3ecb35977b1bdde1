"""The daemon's own logs: one logfmt line, or one JSON object, per log call.

A call names an event and gives flat fields through :func:`kv`::

    log.info("file_switch", extra=kv(reason="rotated", path=path, offset=12))

is written, with ``--log-format logfmt`` (the default), as::

    ts=2026-12-06T03:19:30.464Z level=info logger=kexecwatch.adapters.daemon.run
        event=file_switch reason=rotated path=/var/log/audit/audit.log offset=12

(one line, cut here to fit)
and with ``--log-format json`` as ``{"ts": …, "level": "info", "logger": …, "event":
"file_switch", "reason": "rotated", …}``. Times are RFC 3339 UTC with milliseconds. A
value holding anything but printable ASCII without spaces, ``"``, ``=`` or ``\\`` is
quoted with JSON's escapes, so a line never breaks, and nothing in a value can steer a
terminal. A field whose value is ``None`` is left out. A message logged without
:func:`kv` (a library's, say) is kept when it already is logfmt, else becomes ``msg="…"``.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from kexecwatch.core import escape_json_text

__all__ = ["LOG_FORMATS", "LogFormatter", "kv", "setup_logging"]

LOG_FORMATS = ("logfmt", "json")
_FIELDS = "kexecwatch_fields"
_BARE = re.compile(r"[!#-<>-\[\]-~]+")  # printable ASCII but space, '"', '=' and '\'
_PAIR = re.compile(r'([A-Za-z_][A-Za-z0-9_.]*)=("(?:[^"\\]|\\.)*"|[!#-<>-\[\]-~]+)(?: |$)')


def kv(**fields: Any) -> dict[str, Any]:
    """``extra=`` for a log call: the event's fields, in the order given."""
    return {_FIELDS: fields}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".")
    return str(value)


def _quote(value: str) -> str:
    if _BARE.fullmatch(value):
        return value
    return escape_json_text(json.dumps(value, ensure_ascii=False))


def _unquote(raw: str) -> str:
    """A logfmt value as a string: a quoted one with its escapes read (JSON's, mostly)."""
    if not raw.startswith('"'):
        return raw
    try:
        return str(json.loads(raw))
    except ValueError:
        return raw[1:-1]


def _plain_pairs(message: str) -> list[tuple[str, str]] | None:
    """``message`` as (key, raw value) pairs if it is already logfmt, else ``None``."""
    pairs: list[tuple[str, str]] = []
    at = 0
    while at < len(message):
        m = _PAIR.match(message, at)
        if m is None:
            return None
        pairs.append((m.group(1), m.group(2)))
        at = m.end()
    return pairs or None


class LogFormatter(logging.Formatter):
    """Formats records as logfmt (``fmt="logfmt"``) or as one JSON object (``"json"``)."""

    def __init__(self, fmt: str = "logfmt") -> None:
        super().__init__()
        if fmt not in LOG_FORMATS:
            raise ValueError(f"unknown log format {fmt!r}")
        self.json = fmt == "json"

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC)
        head: dict[str, Any] = {
            "ts": stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        message = record.getMessage()
        fields: Mapping[str, Any] | None = getattr(record, _FIELDS, None)
        raw: list[tuple[str, str]] | None = None
        if fields is not None:
            body = {"event": message, **{k: v for k, v in fields.items() if v is not None}}
        else:
            raw = _plain_pairs(message)
            body = {} if raw is not None else {"msg": message}
        if record.exc_info:
            exc = record.exc_info[1]
            body["error"] = f"{type(exc).__name__}: {exc}"
            body["traceback"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        if self.json:
            if raw is not None:
                body = {k: _unquote(v) for k, v in raw} | body
            doc = {**head, **{k: v for k, v in body.items() if k not in head}}
            return escape_json_text(json.dumps(doc, ensure_ascii=False, default=str))
        parts = [f"{k}={_quote(_text(v))}" for k, v in head.items()]
        parts += [f"{k}={v}" for k, v in raw or ()]
        parts += [f"{k}={_quote(_text(v))}" for k, v in body.items()]
        return " ".join(parts)


def setup_logging(level: str, fmt: str = "logfmt") -> None:
    """Send every log record, at ``level`` and above, to stderr in format ``fmt``."""
    root = logging.getLogger()
    for handler in root.handlers:
        if getattr(handler, _FIELDS, False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    setattr(handler, _FIELDS, True)  # ours: replaced, not doubled, by another call
    handler.setFormatter(LogFormatter(fmt))
    root.addHandler(handler)
    root.setLevel(level.upper())
