"""One detection session for ``run``, ``live`` and ``replay``: source in, session, sinks out.

Theory of operation: a :class:`Session` owns the
:class:`~kexecwatch.core.detect.detector.Detector`, the live ``/proc`` lookup (when following
the running system's log) and the idle clock. A shell hands it bytes (:meth:`Session.feed`)
or the follower's outputs (:meth:`Session.follow`) and passes what comes back to
:meth:`Session.deliver`, which turns each detector output into its document or its words
once and hands it to the shell's :class:`OutputSink`; :func:`notice` puts each follower
output into words once, for the daemon's log and the live view's status line alike.

Rule 1: idle means expire, once per quiet spell: when the log has been quiet for one
event window of the shell's clock, and the follower is not in the middle of a line (the
writer is then mid-record, not idle), the events still waiting are aged by that quiet
time (:meth:`~kexecwatch.core.detect.detector.Detector.expire_idle`; README, "Time policy").
Rule 2: the session reads no clock; the shells pass their monotonic time in.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from kexecwatch.core import (
    Alert,
    AlertsSuppressed,
    DetectionRule,
    Detector,
    DetectorOptions,
    EventLines,
    EventsLost,
    Frozen,
    LiveProcess,
    Output,
    ParseIssue,
    ProcessEvent,
    TimeJump,
    Verdict,
    set_field,
)

if TYPE_CHECKING:
    # Only following needs these: replay does not pay for importing them.
    from kexecwatch.adapters.daemon.follower import FollowerOutput
    from kexecwatch.adapters.daemon.logfiles import FileIdentity
    from kexecwatch.adapters.daemon.procfs import ProcFs, ProcInfo

__all__ = ["Diagnostic", "Notice", "OutputSink", "Session", "notice", "where_fields"]

#: The detector outputs that are not documents: said in one line each.
Diagnostic = ParseIssue | TimeJump | EventsLost | AlertsSuppressed


class OutputSink(Protocol):
    """Where a shell puts detector outputs (see :meth:`Session.deliver`)."""

    def alert(self, alert: Alert, document: dict[str, Any]) -> None:
        """An alert and its ECS document."""

    def process(self, event: ProcessEvent, document: dict[str, Any]) -> None:
        """A process event (``--events``, the live view) and its document."""

    def diagnostic(self, item: Diagnostic, text: str) -> None:
        """A diagnostic and its one terminal-safe line."""

    def verdict(self, verdict: Verdict, document: dict[str, Any]) -> None:
        """What the rules made of a process event (only when the detector was asked)."""


class Session:
    """The detector, the ``/proc`` lookup and the idle clock of one run of a command.

    Args:
        rules: the rules to run.
        host_name: ``host.name`` for records without ``node=``.
        options: the detector's tuning.
        host_id: ``host.id`` for records without ``node=``.
        live: look unknown parents up in ``/proc`` (following this host's own log).
        report: told, in one line, when ``live`` is asked for and ``/proc`` cannot be read.
    """

    def __init__(
        self,
        rules: Sequence[DetectionRule],
        *,
        host_name: str,
        options: DetectorOptions,
        host_id: str | None = None,
        live: bool = False,
        report: Callable[[str], None] | None = None,
    ) -> None:
        self._procfs: ProcFs | None = None
        if live:
            from kexecwatch.adapters.daemon.procfs import ProcFs

            try:
                self._procfs = ProcFs()
            except OSError as exc:
                if report is not None:
                    report(str(exc))
        self.detector = Detector(
            rules,
            host_name=host_name,
            options=options,
            lookup=self._lookup if self._procfs is not None else None,
            host_id=host_id,
        )
        self._window_s = options.window_ms / 1000
        self._seeded: list[Output] = []
        self._last_data = 0.0
        #: When the log will have been quiet for a window (shell clock), if it has data.
        self.expire_due: float | None = None

    # -- /proc ----------------------------------------------------------------------
    def _lookup(self, pid: int) -> LiveProcess | None:
        info = self._procfs.lookup(pid) if self._procfs is not None else None
        return None if info is None else _live(info)

    def seed(self) -> int:
        """Teach the process table every process running now; return how many.

        With Elastic Defend's vocabulary, each also becomes an ``already_running`` event
        shown to the rules; their outputs wait in :meth:`take_seeded`.
        """
        if self._procfs is None:
            return 0
        procs = [_live(info) for info in self._procfs.all()]
        for live in procs:
            self.detector.table.add_live(live)
        now_ms = int(time.time() * 1000)
        for live in procs:  # every parent is known by now
            self._seeded.extend(self.detector.running(live, now_ms))
        return len(procs)

    def take_seeded(self) -> list[Output]:
        """The outputs of :meth:`seed`'s ``already_running`` events (once)."""
        seeded, self._seeded = self._seeded, []
        return seeded

    # -- input ----------------------------------------------------------------------
    def feed(self, data: bytes, now: float | None = None, *, framed: bool = False) -> list[Output]:
        """Feed a chunk of log; ``now`` (the shell's monotonic clock) starts the idle
        clock again (``None``: recorded input, never idle). ``framed``: as
        :meth:`~kexecwatch.core.detect.detector.Detector.feed`."""
        out = self.detector.feed(data, framed=framed)
        if now is not None:
            self._last_data = now
            self.expire_due = now + self._window_s
        return out

    def follow(
        self, item: FollowerOutput, now: float, source: Hashable | None = None
    ) -> list[Output]:
        """What the detector makes of one follower output: lines are fed, a file switch
        starts ``source`` (by default the file's path) as the detector's source, and a
        checkpointed file lost to rotation is a telemetry event for the rules."""
        from kexecwatch.adapters.daemon.follower import Gap, Lines, Switched

        if isinstance(item, Lines):
            return self.feed(item.data, now)
        if isinstance(item, Switched):
            return self.detector.switch_source(item.path if source is None else source, item.offset)
        if isinstance(item, Gap):
            lost = item.lost
            facts = (
                ("path", lost.path),
                ("offset", str(lost.offset)),
                ("file", str(lost.identity)),
                ("resumed_from", item.resumed_from),
            )
            return self.detector.report_lost_log(facts)
        return []

    def deliver(self, outputs: list[Output], sink: OutputSink) -> None:
        """Hand each output to ``sink``: documents built, diagnostics worded, once."""
        for item in outputs:
            if isinstance(item, Alert):
                sink.alert(item, item.to_document())
            elif isinstance(item, ProcessEvent):
                sink.process(item, item.to_document())
            elif isinstance(item, Verdict):
                sink.verdict(item, item.event.to_document())
            elif isinstance(item, EventLines):
                # Only a detector with DetectorOptions.event_lines makes them, for a
                # sink that writes them itself (replay's --events --format json).
                raise TypeError("EventLines need a sink that writes lines")
            else:
                sink.diagnostic(item, self.detector.describe(item))

    def idle(self, now: float, *, mid_line: bool = False) -> list[Output]:
        """Idle means expire (see the module docstring); call whenever no data came.

        Args:
            now: the shell's monotonic clock.
            mid_line: the follower holds a partial line: the writer is mid-record.
        """
        due = self.expire_due
        if due is None or now < due or not self.detector.last_record_ms:
            return []
        if mid_line:
            self.expire_due = now + self._window_s
            return []
        self.expire_due = None
        # The quiet time ages what waits; no record's time is trusted for it.
        return self.detector.expire_idle(int((now - self._last_data) * 1000))


def _live(info: ProcInfo) -> LiveProcess:
    return LiveProcess(
        info.pid,
        info.ppid,
        info.comm,
        info.exe,
        info.argv,
        info.start_ms,
        info.extra,
        sid=info.sid,
        pgid=info.pgid,
    )


class Notice(Frozen):
    """A follower output in words: a log event name and level, its fields, and one line
    for a screen (``text`` is ``None`` when there is nothing to tell one)."""

    __slots__ = ("event", "level", "fields", "text")  # noqa: RUF023 - the fields, in order

    event: str
    level: int
    fields: dict[str, Any]
    text: str | None

    def __init__(self, event: str, level: int, fields: dict[str, Any], text: str | None) -> None:
        set_field(self, "event", event)
        set_field(self, "level", level)
        set_field(self, "fields", fields)
        set_field(self, "text", text)


def where_fields(path: str, identity: FileIdentity, offset: int) -> dict[str, Any]:
    """A place in a log file as flat log fields."""
    return {"path": path, "file_dev": identity.dev, "file_ino": identity.ino, "offset": offset}


def notice(item: FollowerOutput) -> Notice | None:
    """What the operator hears of a follower output (``None`` for lines)."""
    # Only the service and the live view follow files: replay loads neither these nor
    # logging (its levels are the notices' levels).
    import logging

    from kexecwatch.adapters.daemon.follower import DroppedTail, Gap, Switched, Unreadable

    if isinstance(item, Switched):
        text = None if item.reason == "opened" else f"{item.reason}: now reading {item.path}"
        fields = {"reason": item.reason, **where_fields(item.path, item.identity, item.offset)}
        return Notice("file_switch", logging.INFO, fields, text)
    if isinstance(item, Gap):
        lost = item.lost
        fields = {
            **where_fields(lost.path, lost.identity, lost.offset),
            "resumed_from": item.resumed_from,
            "detail": item.describe(),
        }
        return Notice("telemetry_gap", logging.ERROR, fields, item.describe())
    if isinstance(item, DroppedTail):
        fields = {
            "path": item.path,
            "offset": item.offset,
            "bytes": item.length,
            "reason": item.reason,
        }
        text = f"{item.length} bytes dropped in {item.path}: {item.reason}"
        return Notice("dropped_tail", logging.WARNING, fields, text)
    if isinstance(item, Unreadable):
        fields = {"path": item.path, "error": item.error, "retry_in": item.retry_in}
        return Notice(
            "log_unreadable",
            logging.WARNING,
            fields,
            f"cannot read {item.path}: {item.error}; retrying",
        )
    return None
