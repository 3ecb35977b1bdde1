"""The daemon's log formatter: hostile values stay on one parseable line."""

from __future__ import annotations

import json
import logging
import sys

from kexecwatch.adapters.daemon.daemonlog import LogFormatter, kv
from tests.daemon.test_daemon_logs import parse_logfmt

HOSTILE = 'a "b"\nc\\d\x1b[2J\u2028\udcff=é'


def record(message: str, extra: dict[str, object] | None = None) -> logging.LogRecord:
    rec = logging.LogRecord("kexecwatch.t", logging.WARNING, __file__, 1, message, None, None)
    for key, value in (extra or {}).items():
        setattr(rec, key, value)
    return rec


def test_hostile_values_round_trip_in_logfmt_and_json() -> None:
    rec = record("output_failed", kv(error=HOSTILE, retry_in=0.5, ok=True, gone=None, n=3))
    line = LogFormatter("logfmt").format(rec)
    assert line.isprintable() and "\n" not in line
    fields = parse_logfmt(line)
    assert fields["level"] == "warning" and fields["event"] == "output_failed"
    assert fields["error"] == HOSTILE
    assert (fields["retry_in"], fields["ok"], fields["n"]) == ("0.5", "true", "3")
    assert "gone" not in fields
    doc = json.loads(LogFormatter("json").format(rec))
    assert doc["error"] == HOSTILE and doc["retry_in"] == 0.5 and doc["event"] == "output_failed"


def test_a_message_without_fields_is_kept_if_logfmt_else_quoted() -> None:
    fmt = LogFormatter("logfmt")
    assert fmt.format(record("event=x a=1")).endswith(" event=x a=1")
    fields = parse_logfmt(fmt.format(record("position={'identity': 1} and more")))
    assert fields["msg"] == "position={'identity': 1} and more"


def test_an_exception_is_one_line() -> None:
    try:
        raise OSError("disk on fire")
    except OSError:
        rec = record("fatal")
        rec.exc_info = sys.exc_info()
    fields = parse_logfmt(LogFormatter("logfmt").format(rec))
    assert fields["error"] == "OSError: disk on fire"
    assert "Traceback" in fields["traceback"]
