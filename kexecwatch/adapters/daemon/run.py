"""``kexecwatch run``: follow the audit log and alert, as a service.

Rule 1: alerts are handed to the outputs (and journalled) before the checkpoint that
covers them is written; a crash in between replays the records, and the journal's alert
ids suppress the repeat. That checkpoint follows at once, or, within a second of the
last one, a second after it (a burst of alerts costs one checkpoint a second).

Rule 2: the core never reads the clock. When the log goes quiet, the
:class:`~kexecwatch.adapters.session.Session` passes the wall-clock idle time to the
detector (README, "Time policy").

Theory of operation: :class:`Daemon` wires follower → session → hub → checkpoint in one
thread. Each follower :class:`~kexecwatch.adapters.daemon.follower.Switched` starts a new
detector *source* (a :class:`_Source`, named by its path) whose file identity is
remembered, so the detector's ``resume_position`` (the first line of the oldest event in
flight) maps back to a file position for the checkpoint. Signals only set flags and wake
the loop.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

from kexecwatch import __version__
from kexecwatch.adapters.daemon.checkpoint import (
    Checkpoint,
    CheckpointStore,
    ensure_state_dir,
    read_boot_id,
)
from kexecwatch.adapters.daemon.config import (
    TLS_KEYS,
    Config,
    add_run_arguments,
    apply_overrides,
    load_config,
)
from kexecwatch.adapters.daemon.coreglue import OutputLog, load_daemon_rules
from kexecwatch.adapters.daemon.daemonlog import kv, setup_logging
from kexecwatch.adapters.daemon.fanout import SinkHub
from kexecwatch.adapters.daemon.follower import Follower, FollowerOutput, Gap, Lines, Switched
from kexecwatch.adapters.daemon.journal import Journal
from kexecwatch.adapters.daemon.logfiles import FileIdentity, Position
from kexecwatch.adapters.daemon.notify import Notifier
from kexecwatch.adapters.daemon.sinks import SinkRecord, make_sink, parse_output_spec
from kexecwatch.adapters.daemon.statefiles import (
    UnsafeFile,
    check_output_file,
    lock_dir,
    resolve_log_symlink,
)
from kexecwatch.adapters.session import Session, notice, where_fields
from kexecwatch.core import DetectorOptions, Output
from kexecwatch.errors import ConfigError, KexecwatchError
from kexecwatch.hostid import machine_id
from kexecwatch.testhooks import fault_marker

__all__ = ["Daemon", "add_run_arguments", "main", "run_command"]

log = logging.getLogger(__name__)

#: ``run``'s exit codes. A runtime failure is 3, not 1: across kexecwatch, 1 means "alerts
#: found" and never an error.
EXIT_OK, EXIT_USAGE, EXIT_FAILURE = 0, 2, 3
RECENT_IDS = 4096
#: Seconds between two checkpoints that follow alerts: each snapshots the process table
#: and fsyncs, and the journal already keeps every hand-off through ``kill -9``.
ALERT_CHECKPOINT_GAP = 1.0
PAUSE_ENV = "KEXECWATCH_TEST_PAUSE_AFTER_HANDOFF"  # seconds; crash tests only


@dataclass(eq=False, slots=True)
class _Source:
    """One file of the followed stream, as the detector's source: named by its path,
    told apart by identity (one path is several files over rotations)."""

    identity: FileIdentity
    path: str
    mtime_ns: int | None = None

    def __str__(self) -> str:
        return self.path


class _RecentIds:
    """Bounded set of emitted alert ids, oldest evicted first."""

    def __init__(self, ids: Sequence[str] = ()) -> None:
        self._order: deque[str] = deque(maxlen=RECENT_IDS)
        self._set: set[str] = set()
        for i in ids:
            self.add(i)

    def __contains__(self, alert_id: object) -> bool:
        return alert_id in self._set

    def add(self, alert_id: str) -> None:
        if alert_id in self._set:
            return
        if len(self._order) == self._order.maxlen:
            self._set.discard(self._order[0])
        self._order.append(alert_id)
        self._set.add(alert_id)

    def ids(self) -> tuple[str, ...]:
        return tuple(self._order)


class Daemon:
    """One run of the service. Build, then call :meth:`run`.

    Args:
        cfg: the resolved configuration.
        reload: called on SIGHUP to get a fresh configuration (may raise ConfigError).
    """

    def __init__(self, cfg: Config, reload: Any = None) -> None:
        self.cfg = cfg
        self._reload = reload
        self.host = cfg.host_name or socket.gethostname()
        self.stop = False
        self.stop_signal: str | None = None
        self._resume: Position | None = None
        self.hup = False
        self.counters = {"dropped": 0, "duplicates": 0, "gaps": 0, "checkpoints": 0, "reads": 0}
        self.notifier = Notifier()
        ensure_state_dir(cfg.state_dir)
        self._lock_fd = lock_dir(cfg.state_dir)  # one daemon per state directory
        self.log_path = self._trusted_paths()
        self.host_id = cfg.host_id or machine_id()
        self.boot_id = read_boot_id()  # fixed for the life of the process: read once
        rules = load_daemon_rules(cfg)  # RuleError: fatal
        self.session = Session(
            rules,
            host_name=self.host,
            options=DetectorOptions(
                window_ms=cfg.event_window_ms, fault_on=fault_marker(), events_as=cfg.events_as
            ),
            host_id=self.host_id,
            live=True,
            report=lambda error: log.warning("procfs_unavailable", extra=kv(error=error)),
        )
        self.detector = self.session.detector
        self.session.seed()
        self.outputs = OutputLog(self.detector)
        self.store = CheckpointStore(cfg.state_dir, self.host)
        try:
            self.journal = Journal(cfg.state_dir)
        except UnsafeFile as exc:
            raise ConfigError(f"journal {exc}; refusing to start") from exc
        sinks = [make_sink(s, host_name=self.host, tls=cfg.tls()) for s in cfg.outputs]
        self.hub = SinkHub(sinks, self.journal)
        self.sources: list[_Source] = []  # oldest first; the last one is being read
        self.recent = _RecentIds()
        self.follower = self._restore()
        self._last_checkpoint = time.monotonic()
        self._dirty = False
        self._alerted = False  # alerts handed off since the last checkpoint
        self._pause = float(os.environ.get(PAUSE_ENV, "0") or 0)

    # -- start-up ----------------------------------------------------------------------
    def _trusted_paths(self) -> str:
        """Refuse output files others control; the audit log's path, symlinks resolved."""
        for spec in self.cfg.outputs:
            out = parse_output_spec(spec)
            if out.kind == "json":
                try:
                    check_output_file(out.path)
                except UnsafeFile as exc:
                    raise ConfigError(f"output {exc}; refusing to write there") from exc
        path = resolve_log_symlink(self.cfg.log)
        if path != self.cfg.log:
            log.info("log_symlink", extra=kv(path=self.cfg.log, target=path))
        return path

    def _restore(self) -> Follower:
        res = self.store.load()
        if res.problem:
            log.warning(
                "checkpoint_rejected",
                extra=kv(reason=res.problem, moved_to=res.moved_to, action="start_fresh"),
            )
        cp = res.checkpoint
        replay = self.journal.read()
        undelivered = dict(cp.undelivered) if cp else {}
        known = set(cp.recent_alert_ids) if cp else set()
        self.recent = _RecentIds(cp.recent_alert_ids if cp else ())
        for alert_id, rec in replay.emitted.items():
            if alert_id in known:
                continue
            self.recent.add(alert_id)
            for spec in self.hub.specs:
                if (spec, alert_id) not in replay.delivered:
                    undelivered.setdefault(spec, []).append(rec.to_dict())
        requeued = 0
        for spec, recs in undelivered.items():
            left = [
                SinkRecord.from_dict(r)
                for r in recs
                if (spec, r.get("id", "")) not in replay.delivered
            ]
            requeued += self.hub.requeue(spec, left)
        if cp is not None and cp.detector_state is not None:
            try:
                self.detector.restore(cp.detector_state)
            except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
                log.warning("detector_state_rejected", extra=kv(reason=str(exc)))
        if cp is not None and cp.boot_id and cp.boot_id != self.boot_id:
            log.info("boot_changed", extra=kv(note="resuming_log_position"))
        self._resume = cp.position if cp else None
        log.info(
            "restored",
            extra=kv(
                checkpoint="yes" if cp else "no",
                recent_alerts=len(self.recent.ids()),
                requeued=requeued,
            ),
        )
        return Follower(
            self.log_path,
            resume=cp.position if cp else None,
            resume_mtime_ns=cp.file_mtime_ns if cp else None,
            poll_interval=self.cfg.poll_interval,
        )

    # -- main loop -----------------------------------------------------------------------
    def run(self) -> int:
        """Run until SIGTERM/SIGINT. Returns the exit code."""
        self._install_signals()
        self._log_start()
        self.follower.start()
        # Elastic Defend's already_running events of the start-up /proc scan (defend only).
        self._handle(self.session.take_seeded())
        self.checkpoint()  # folds the journal into a fresh checkpoint
        self.notifier.ready(f"following {self.cfg.log}")
        last_status = time.monotonic()
        failed = True  # until the loop ends on a signal
        try:
            while not self.stop:
                items = self.follower.read()
                got_lines = any(isinstance(i, Lines) for i in items)
                self.counters["reads"] += got_lines
                for item in items:
                    self._on_follower(item)
                now = time.monotonic()
                if not got_lines:
                    mid_line = self.follower.holds_partial_line
                    self._handle(self.session.idle(now, mid_line=mid_line))
                since = now - self._last_checkpoint
                if (self._alerted and since >= ALERT_CHECKPOINT_GAP) or (
                    self._dirty and since >= self.cfg.checkpoint_interval
                ):
                    self.checkpoint()
                if now - last_status >= self.cfg.status_interval:
                    self._status()
                    last_status = now
                self.notifier.maybe_ping()
                if self.hup:
                    self._on_hup()
                if not self.follower.more_to_read and not self.stop:
                    self.follower.wait(max(0.01, self._next_due(last_status) - now))
            failed = False
        finally:
            self.notifier.stopping()
            self.hub.close(timeout=2.0)
            self._handle(self.detector.report_suppressed())  # before the checkpoint saves the count
            # After a failure the detector may have read lines it did not handle: the
            # last checkpoint stays (it covers only handed-off alerts), so a restart
            # reads them again; the journal keeps their alerts from repeating.
            saved = False if failed else self.checkpoint()
            self._status()
            self._log_shutdown(saved)
            self.follower.close()
            self.journal.close()
            os.close(self._lock_fd)
        return EXIT_OK

    def _next_due(self, last_status: float) -> float:
        """When the loop has work without new input: the idle expiry, a checkpoint, the
        status line, the watchdog ping (a wait never outlasts it; safety polls aside, an
        idle daemon sleeps until then)."""
        dues = [last_status + self.cfg.status_interval]
        if self.session.expire_due is not None:
            dues.append(self.session.expire_due)
        if self._alerted:  # the alerts' deferred checkpoint
            dues.append(self._last_checkpoint + ALERT_CHECKPOINT_GAP)
        if self._dirty:
            dues.append(self._last_checkpoint + self.cfg.checkpoint_interval)
        if self.notifier.next_ping is not None:
            dues.append(self.notifier.next_ping)
        return min(dues)

    def _log_start(self) -> None:
        resume = self._resume
        if resume is None:
            where: dict[str, Any] = {
                "resume": "none",
                "note": f"no checkpoint: reading {self.cfg.log} from its start",
            }
        else:
            where = {
                "resume": "checkpoint",
                **where_fields(resume.path, resume.identity, resume.offset),
            }
        log.info(
            "start",
            extra=kv(
                version=__version__,
                pid=os.getpid(),
                log=self.cfg.log,
                state_dir=self.cfg.state_dir,
                **where,
                rules=len(self.detector.rules),
                outputs=",".join(self.hub.specs),
                scanner=self.detector.scanner_name.partition(" ")[0],
            ),
        )

    def _log_shutdown(self, checkpointed: bool) -> None:
        pos = self.follower.position
        log.info(
            "shutdown",
            extra=kv(
                signal=self.stop_signal,
                reason="signal" if self.stop_signal else "error",
                **(where_fields(pos.path, pos.identity, pos.offset) if pos else {"offset": 0}),
                alerts=self.detector.stats.alerts,
                delivered=sum(w.delivered for w in self.hub.workers),
                undelivered=self.hub.backlog(),
                checkpoint="saved" if checkpointed else "failed",
            ),
        )

    def _on_follower(self, item: FollowerOutput) -> None:
        source = None
        if isinstance(item, Lines):
            self.sources[-1].identity = item.position.identity  # a short fingerprint may grow
            self._dirty = True
        elif isinstance(item, Switched):
            if self.sources and item.left_mtime_ns is not None:
                self.sources[-1].mtime_ns = item.left_mtime_ns
            source = _Source(item.identity, item.path)
            self.sources.append(source)
        self._handle(self.session.follow(item, time.monotonic(), source))
        said = notice(item)
        if said is not None:
            if said.event == "dropped_tail":
                self.counters["dropped"] += 1
            log.log(said.level, said.event, extra=kv(**said.fields))
        if isinstance(item, Gap):
            self.counters["gaps"] += 1

    def _handle(self, outputs: list[Output]) -> None:
        self.session.deliver(outputs, self.outputs)
        records = self.outputs.take()
        if not records:
            return
        for rec in records:
            self._emit(rec)
        if self._pause:
            log.warning("test_pause", extra=kv(seconds=self._pause))
            time.sleep(self._pause)
        self._alerted = True
        if time.monotonic() - self._last_checkpoint >= ALERT_CHECKPOINT_GAP:
            self.checkpoint()  # after the hand-off, never before

    def _emit(self, rec: SinkRecord) -> None:
        if rec.alert_id in self.recent:
            self.counters["duplicates"] += 1
            log.info("alert_suppressed_duplicate", extra=kv(alert_id=rec.alert_id))
            return
        self.recent.add(rec.alert_id)
        self.hub.emit(rec)

    # -- checkpoint ------------------------------------------------------------------------
    def _resume_position(self) -> tuple[Position | None, int | None]:
        source, offset = self.detector.resume_position
        if not isinstance(source, _Source) or source not in self.sources:
            return self.follower.position, self.follower.current_mtime_ns()
        del self.sources[: self.sources.index(source)]  # nothing before it is needed again
        current = source is self.sources[-1]
        mtime = self.follower.current_mtime_ns() if current else source.mtime_ns
        return Position(source.identity, offset, source.path), mtime

    def checkpoint(self) -> bool:
        """Write a checkpoint now (after every hand-off it covers). False if it failed."""
        with self.hub.lock:
            position, mtime = self._resume_position()
            cp = Checkpoint(
                position=position,
                file_mtime_ns=mtime,
                detector_state=self.detector.to_state(table_text=True),
                recent_alert_ids=self.recent.ids(),
                undelivered=self.hub.undelivered(),
                host_name=self.host,
                boot_id=self.boot_id,
                saved_at_ms=int(time.time() * 1000),
            )
            ok = self.store.save(cp)
            if ok:
                self.journal.sync_and_reset()
        self._last_checkpoint = time.monotonic()
        if ok:
            self._dirty = self._alerted = False
            self.counters["checkpoints"] += 1
        return ok

    # -- signals, status -------------------------------------------------------------------
    def _install_signals(self) -> None:
        def on_stop(signum: int, frame: FrameType | None) -> None:
            self.stop = True
            self.stop_signal = signal.Signals(signum).name
            self.follower.wake()

        def on_hup(signum: int, frame: FrameType | None) -> None:
            self.hup = True
            self.follower.wake()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_hup)
        if _EARLY_STOP:  # asked to stop while starting: start, checkpoint, stop cleanly
            on_stop(_EARLY_STOP[0], None)

    def _on_hup(self) -> None:
        self.hup = False
        self.hub.reopen()
        if self._reload is None:
            return
        try:
            new: Config = self._reload()
        except KexecwatchError as exc:
            log.error("reload_failed", extra=kv(reason=str(exc), kept="old_config"))
            return
        for key in ("log", "state_dir", "outputs", "host_name", "host_id", "events_as", *TLS_KEYS):
            if getattr(new, key) != getattr(self.cfg, key):
                log.warning("reload_needs_restart", extra=kv(key=key.replace("_", "-")))
        try:
            self.detector.replace_rules(load_daemon_rules(new))
        except KexecwatchError as exc:
            log.error("rules_reload_failed", extra=kv(reason=str(exc), kept="old_rules"))
        self.follower.poll_interval = new.poll_interval
        self.cfg = Config(
            **{
                **{f: getattr(self.cfg, f) for f in Config.__slots__},
                "rules": new.rules,
                "builtin_rules": new.builtin_rules,
                "ruleset": new.ruleset,
                "rule_cache": new.rule_cache,
                "rule_cache_dir": new.rule_cache_dir,
                "poll_interval": new.poll_interval,
                "checkpoint_interval": new.checkpoint_interval,
                "status_interval": new.status_interval,
            }
        )
        log.info("reloaded", extra=kv(rules=len(self.detector.rules)))

    def _status(self) -> None:
        self._handle(self.detector.report_suppressed())  # logged now, not when the window closes
        pos = self.follower.position
        lag_bytes = self.follower.lag_bytes()
        last_ms = self.detector.last_record_ms
        lag_s = max(0.0, time.time() - last_ms / 1000) if lag_bytes else 0.0
        st = self.detector.stats.as_dict()
        log.info(
            "status",
            extra=kv(
                lines=st.get("lines", 0),
                parse_errors=st.get("parse_issues", 0),
                event_errors=st.get("event_errors", 0),
                events=st.get("events", 0),
                alerts=st.get("alerts", 0),
                lost=st.get("lost_events", 0),
                offset=pos.offset if pos else 0,
                records=st.get("records", 0),
                suppressed=st.get("suppressed", 0),
                sequences_dropped=st.get("sequences_dropped", 0),
                lag_bytes=lag_bytes,
                lag_seconds=round(lag_s, 1),
                backlog=self.hub.backlog(),
                output_dropped=self.hub.dropped(),
                **self.counters,
            ),
        )
        self.notifier.status(f"alerts={st.get('alerts', 0)} lag_bytes={lag_bytes}")


# -- command line ---------------------------------------------------------------------------
def _resolve(args: argparse.Namespace) -> Config:
    overrides = {
        k: getattr(args, k, None)
        for k in (
            "log",
            "state_dir",
            "outputs",
            "rules",
            "builtin_rules",
            "host_name",
            "host_id",
            "events_as",
            "ruleset",
            "rule_cache",
            "rule_cache_dir",
            "event_window_ms",
            "log_level",
            "log_format",
            *TLS_KEYS,
        )
    }
    return apply_overrides(load_config(args.config), overrides)


#: A SIGTERM or SIGINT that arrives while the daemon loads its configuration, rules and
#: state (a service manager stopping it right after starting it): remembered, and honoured
#: once the daemon's own handlers are in place, so the stop is clean instead of a death
#: by signal with no checkpoint.
_EARLY_STOP: list[int] = []


def _note_early_stops() -> None:
    def remember(signum: int, frame: FrameType | None) -> None:
        _EARLY_STOP.append(signum)

    signal.signal(signal.SIGTERM, remember)
    signal.signal(signal.SIGINT, remember)


def run_command(args: argparse.Namespace) -> int:
    """Entry point for ``kexecwatch run``. Returns 0, 2 (usage) or 3 (runtime failure)."""
    _note_early_stops()
    try:
        cfg = _resolve(args)
        setup_logging(cfg.log_level, cfg.log_format)
        daemon = Daemon(cfg, reload=lambda: _resolve(args))
    except KexecwatchError as exc:
        sys.stderr.write(f"kexecwatch: error: {exc}\n")
        return EXIT_USAGE
    except OSError as exc:
        sys.stderr.write(f"kexecwatch: error: {exc}\n")
        return EXIT_FAILURE
    try:
        return daemon.run()
    except Exception:
        log.exception("fatal")
        return EXIT_FAILURE


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m kexecwatch.adapters.daemon.run``: the run command on its own."""
    parser = argparse.ArgumentParser(prog="kexecwatch run")
    add_run_arguments(parser)
    return run_command(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
