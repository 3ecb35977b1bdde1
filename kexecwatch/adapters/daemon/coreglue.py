"""The daemon's rules and its words for detector outputs.

Loading the configured rules (with the daemon log as the report), turning detector
outputs into :class:`~kexecwatch.adapters.daemon.sinks.SinkRecord` values and log lines.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from kexecwatch.adapters.daemon.config import Config
from kexecwatch.adapters.daemon.daemonlog import kv
from kexecwatch.adapters.daemon.sinks import SinkRecord
from kexecwatch.adapters.session import Diagnostic
from kexecwatch.core import (
    Alert,
    DetectionRule,
    Detector,
    EventError,
    EventsLost,
    ParseIssue,
    ProcessEvent,
    TimeJump,
    Verdict,
    to_json_line,
    to_text_line,
)
from kexecwatch.rules import load_rules
from kexecwatch.rules.cache import RuleCache, default_cache_dir

__all__ = ["OutputLog", "load_daemon_rules"]

log = logging.getLogger(__name__)

_PARSE_LOG_EVERY = 1000  # log the first parse issues, then one in this many


def _report_rules(line: str) -> None:
    """What a rule directory skipped or could not load: the daemon log."""
    log.warning("rules_loaded", extra=kv(note=line))


def _report_cache(line: str) -> None:
    """A rule cache the daemon ignores (damaged, or not its own): the daemon log."""
    log.warning("rule_cache_ignored", extra=kv(note=line))


def load_daemon_rules(cfg: Config) -> Sequence[DetectionRule]:
    """The configured rules; what a rule directory skips goes to the daemon log.

    The rule cache is used as configured; a cache the service cannot write (a
    read-only home under the hardened unit) is skipped without a word.

    Raises:
        RuleError: when a rule cannot be loaded (at start: fatal; on reload: the old
            rules stay).
    """
    directory = (cfg.rule_cache_dir or default_cache_dir()) if cfg.rule_cache else None
    cache = RuleCache(directory, warn=_report_cache, quiet_unwritable=True)
    return load_rules(
        cfg.rules,
        builtin=cfg.builtin_rules,
        ruleset=cfg.ruleset,
        report=_report_rules,
        cache=cache,
    )


class OutputLog:
    """The daemon's :class:`~kexecwatch.adapters.session.OutputSink`: alerts become sink
    records (collected until :meth:`take`), everything else a log line."""

    def __init__(self, detector: Detector) -> None:
        self.detector = detector
        self._records: list[SinkRecord] = []
        self._parse_issues = 0

    def take(self) -> list[SinkRecord]:
        """The sink records of the alerts delivered since the last call."""
        records, self._records = self._records, []
        return records

    def alert(self, alert: Alert, document: dict[str, Any]) -> None:
        """An alert: a sink record, handed to the outputs by the daemon."""
        json_line = to_json_line(document).decode("utf-8").rstrip("\n")
        self._records.append(SinkRecord(alert.id, json_line, to_text_line(document)))

    def process(self, event: ProcessEvent, document: dict[str, Any]) -> None:
        """Process events are not asked for under ``run``."""

    def verdict(self, verdict: Verdict, document: dict[str, Any]) -> None:
        """Verdicts are not asked for under ``run``."""

    def diagnostic(self, item: Diagnostic, text: str) -> None:
        """A log line: ``event=parse_issue`` (the first ten, then one in 1,000),
        ``event_error``, ``time_jump``, ``events_lost`` or ``alerts_suppressed``."""
        if isinstance(item, EventError):
            total = self.detector.stats.event_errors
            log.error("event_error", extra=kv(**_at(item), total=total))
        elif isinstance(item, TimeJump):
            log.warning("time_jump", extra=kv(**_at(item)))
        elif isinstance(item, ParseIssue):
            self._parse_issues += 1
            if self._parse_issues <= 10 or self._parse_issues % _PARSE_LOG_EVERY == 0:
                log.warning("parse_issue", extra=kv(**_at(item), total=self._parse_issues))
        elif isinstance(item, EventsLost):
            fields = {"first_serial": item.first_serial, "last_serial": item.last_serial}
            log.warning("events_lost", extra=kv(node=item.node or "-", **fields, detail=text))
        else:
            log.warning("alerts_suppressed", extra=kv(detail=text))


def _at(out: ParseIssue | TimeJump) -> dict[str, Any]:
    """``file``, ``line`` and ``reason`` of a diagnostic, for its log line."""
    return {"file": str(out.source), "line": out.line_no, "reason": out.reason}
