"""The daemon's one contact surface with the pure core.

Everything the daemon needs from :mod:`kexecwatch.core` goes through :class:`CoreLink`:
building the detector with a live ``/proc`` lookup, seeding the process table, turning
core outputs into :class:`~kexecwatch.adapters.sinks.SinkRecord` values and log lines,
and swapping rules on reload. The telemetry-gap alert is built here too.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Hashable, Sequence
from typing import Any

from kexecwatch.adapters.config import Config
from kexecwatch.adapters.daemonlog import kv
from kexecwatch.adapters.follower import Gap
from kexecwatch.adapters.procfs import ProcFs
from kexecwatch.adapters.sinks import SinkRecord
from kexecwatch.core import jsontext
from kexecwatch.core.alerts import Alert, AlertsSuppressed, to_json_line, to_text_line
from kexecwatch.core.assembler import EventsLost
from kexecwatch.core.detector import Detector, DetectorOptions, EventError
from kexecwatch.core.proctable import LiveProcess
from kexecwatch.core.record import ParseIssue, TimeJump
from kexecwatch.rules import load_rules
from kexecwatch.testhooks import fault_marker

__all__ = ["CoreLink", "gap_record"]

log = logging.getLogger(__name__)

SEVERITY_ERR = 3
_PARSE_LOG_EVERY = 1000  # log the first parse issues, then one in this many
_MAX_NAMED_SOURCES = 64


def _report_rules(line: str) -> None:
    """What a rule directory skipped or could not load: the daemon log."""
    log.warning("rules_loaded", extra=kv(note=line))


class CoreLink:
    """The detector plus the daemon's view of it."""

    def __init__(self, cfg: Config, host_name: str, host_id: str | None = None) -> None:
        self.host_name = host_name
        rules = load_rules(
            cfg.rules, builtin=cfg.builtin_rules, ruleset=cfg.ruleset, report=_report_rules
        )
        try:
            self._procfs: ProcFs | None = ProcFs()
        except OSError as exc:
            log.warning("procfs_unavailable", extra=kv(error=str(exc)))
            self._procfs = None
        self.detector = Detector(
            rules,
            host_name=host_name,
            options=DetectorOptions(
                window_ms=cfg.event_window_ms, fault_on=fault_marker(), events_as=cfg.events_as
            ),
            lookup=self._lookup if self._procfs else None,
            host_id=host_id,
        )
        self._parse_issues = 0
        self._paths: dict[Hashable, str] = {}
        self.seeded = self._seed()

    def _lookup(self, pid: int) -> LiveProcess | None:
        info = self._procfs.lookup(pid) if self._procfs else None
        if info is None:
            return None
        return LiveProcess(
            info.pid, info.ppid, info.comm, info.exe, info.argv, info.start_ms, info.extra
        )

    def _seed(self) -> int:
        if self._procfs is None:
            return 0
        procs = self._procfs.all()
        for p in procs:
            self.detector.table.add_live(
                LiveProcess(p.pid, p.ppid, p.comm, p.exe, p.argv, p.start_ms, p.extra)
            )
        return len(procs)

    @property
    def rule_count(self) -> int:
        """How many rules are active."""
        return len(self.detector.rules)

    def reload_rules(
        self, paths: Sequence[str], ruleset: str = "all", builtin: bool = True
    ) -> None:
        """Swap in freshly loaded rules; on RuleError the old set stays."""
        self.detector.replace_rules(
            load_rules(paths, builtin=builtin, ruleset=ruleset, report=_report_rules)
        )

    # Thin pass-throughs, so the daemon never touches the core directly.
    def feed(self, data: bytes) -> list[Any]:
        """Feed complete lines."""
        return self.detector.feed(data)

    def switch_source(self, source: Hashable, offset: int) -> list[Any]:
        """Continue with another file."""
        return self.detector.switch_source(source, offset)

    def expire_idle(self, idle_ms: int) -> list[Any]:
        """Complete events that waited longer than the window, the log quiet for ``idle_ms``."""
        return self.detector.expire_idle(idle_ms)

    def resume_position(self) -> tuple[Hashable, int]:
        """Where re-reading must start to rebuild the events in flight."""
        return self.detector.resume_position

    def to_state(self) -> dict[str, Any]:
        """Detector snapshot for the checkpoint."""
        return self.detector.to_state()

    def restore(self, state: dict[str, Any]) -> None:
        """Load a detector snapshot (``ValueError`` if foreign)."""
        self.detector.restore(state)

    def report_suppressed(self) -> list[Any]:
        """Alerts held back by rule limits since the last call, in windows still open."""
        return self.detector.report_suppressed()

    def stats(self) -> dict[str, int]:
        """Detector counters."""
        return self.detector.stats.as_dict()

    def name_source(self, source: Hashable, path: str) -> None:
        """Remember which file the detector's ``source`` is, for ``file:line`` in logs."""
        self._paths[source] = path
        while len(self._paths) > _MAX_NAMED_SOURCES:
            del self._paths[next(iter(self._paths))]

    def _at(self, out: ParseIssue | TimeJump) -> dict[str, Any]:
        """``file``, ``line`` and ``reason`` of a diagnostic, for its log line."""
        return {
            "file": self._paths.get(out.source, str(out.source)),
            "line": out.line_no,
            "reason": out.reason,
        }

    def alerts_and_report(self, outputs: list[Any]) -> list[SinkRecord]:
        """Alerts as sink records; everything else is logged here."""
        records: list[SinkRecord] = []
        for out in outputs:
            if isinstance(out, Alert):
                doc = out.to_document()
                json_line = to_json_line(doc).decode("utf-8").rstrip("\n")
                records.append(SinkRecord(out.id, json_line, to_text_line(doc)))
            elif isinstance(out, EventError):
                log.error(
                    "event_error",
                    extra=kv(**self._at(out), total=self.detector.stats.event_errors),
                )
            elif isinstance(out, TimeJump):
                log.warning(
                    "time_jump",
                    extra=kv(**self._at(out)),
                )
            elif isinstance(out, ParseIssue):
                self._parse_issues += 1
                if self._parse_issues <= 10 or self._parse_issues % _PARSE_LOG_EVERY == 0:
                    log.warning(
                        "parse_issue",
                        extra=kv(**self._at(out), total=self._parse_issues),
                    )
            elif isinstance(out, EventsLost):
                log.warning(
                    "events_lost",
                    extra=kv(
                        node=out.node or "-",
                        first_serial=out.first_serial,
                        last_serial=out.last_serial,
                    ),
                )
            elif isinstance(out, AlertsSuppressed):
                log.warning("alerts_suppressed", extra=kv(detail=out.describe()))
        return records


def gap_record(gap: Gap, host_name: str) -> SinkRecord:
    """The telemetry-gap alert: same outputs as detections, its own id and document."""
    lost = gap.lost
    alert_id = (
        f"telemetry-gap:{host_name}:{lost.identity.dev}:{lost.identity.ino}:"
        f"{lost.identity.fingerprint[:16]}:{lost.offset}"
    )
    now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    message = gap.describe()
    doc = {
        "@timestamp": now,
        "event": {
            "kind": "alert",
            "category": ["host"],
            "type": ["info"],
            "action": "telemetry-gap",
            "dataset": "kexecwatch.gap",
            "id": alert_id,
        },
        "host": {"name": host_name},
        "message": message,
        "rule": {"name": "kexecwatch telemetry gap", "ruleset": "kexecwatch"},
        "kexecwatch": {
            "rule": {"severity": "high"},
            "gap": {
                "path": lost.path,
                "offset": lost.offset,
                "file": str(lost.identity),
                "resumed_from": gap.resumed_from,
            },
        },
    }
    text = "".join(c if c.isprintable() else "?" for c in f"{now} TELEMETRY GAP {message}")
    return SinkRecord(
        alert_id,
        jsontext.dumps(doc),
        text,
        msgid="gap",
        severity=SEVERITY_ERR,
    )
