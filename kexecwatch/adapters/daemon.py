"""``kexecwatch run``: follow the audit log and alert, as a service.

Rule 1: alerts are handed to the outputs (and journalled) before the checkpoint that
covers them is written; a crash in between replays the records, and the journal's alert
ids suppress the repeat.

Rule 2: the core never reads the clock. When the log goes quiet, this shell passes the
wall-clock idle time to ``expire_idle`` (README, "Time policy").

Theory of operation: :class:`Daemon` wires follower → detector → hub → checkpoint in one
thread. Each follower :class:`~kexecwatch.adapters.follower.Switched` starts a new
detector *source* (a small integer) whose file identity is remembered, so the detector's
``resume_position`` (the first line of the oldest event in flight) maps back to a file
position for the checkpoint. Signals only set flags and wake the loop.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

from kexecwatch.adapters.checkpoint import (
    Checkpoint,
    CheckpointStore,
    ensure_state_dir,
    read_boot_id,
)
from kexecwatch.adapters.config import Config, add_run_arguments, apply_overrides, load_config
from kexecwatch.adapters.coreglue import CoreLink, gap_record
from kexecwatch.adapters.follower import (
    DroppedTail,
    Follower,
    FollowerOutput,
    Gap,
    Lines,
    Switched,
    Unreadable,
)
from kexecwatch.adapters.hub import Journal, SinkHub
from kexecwatch.adapters.logfiles import FileIdentity, Position
from kexecwatch.adapters.notify import Notifier
from kexecwatch.adapters.sinks import SinkRecord, make_sink
from kexecwatch.errors import KexecwatchError

__all__ = ["Daemon", "add_run_arguments", "main", "run_command"]

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
RECENT_IDS = 4096
_TIME = re.compile(rb"msg=audit\((\d+)\.(\d{3}):")
PAUSE_ENV = "KEXECWATCH_TEST_PAUSE_AFTER_HANDOFF"  # seconds; crash tests only


@dataclass(slots=True)
class _Source:
    identity: FileIdentity
    path: str
    mtime_ns: int | None = None


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
        self.hup = False
        self.counters = {"dropped": 0, "duplicates": 0, "gaps": 0, "checkpoints": 0}
        self.notifier = Notifier()
        ensure_state_dir(cfg.state_dir)
        self.core = CoreLink(cfg, self.host)  # loads rules: RuleError here is fatal
        self.store = CheckpointStore(cfg.state_dir, self.host)
        self.journal = Journal(cfg.state_dir)
        self.hub = SinkHub([make_sink(s, host_name=self.host) for s in cfg.outputs], self.journal)
        self.sources: dict[int, _Source] = {}
        self.source_no = 0
        self.recent = _RecentIds()
        self.follower = self._restore()
        self._last_record_ms = 0
        self._last_data = time.monotonic()
        self._expire_due: float | None = None
        self._last_checkpoint = time.monotonic()
        self._dirty = False
        self._pause = float(os.environ.get(PAUSE_ENV, "0") or 0)

    # -- start-up ----------------------------------------------------------------------
    def _restore(self) -> Follower:
        res = self.store.load()
        if res.problem:
            log.warning(
                "event=checkpoint_rejected reason=%r moved_to=%s action=start_fresh",
                res.problem,
                res.moved_to,
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
                self.core.restore(cp.detector_state)
            except ValueError as exc:
                log.warning("event=detector_state_rejected reason=%r", str(exc))
        if cp is not None and cp.boot_id and cp.boot_id != read_boot_id():
            log.info("event=boot_changed note=resuming_log_position")
        log.info(
            "event=restored checkpoint=%s position=%s recent_alerts=%d requeued=%d",
            "yes" if cp else "no",
            cp.position.to_dict() if cp and cp.position else "-",
            len(self.recent.ids()),
            requeued,
        )
        return Follower(
            self.cfg.log,
            resume=cp.position if cp else None,
            resume_mtime_ns=cp.file_mtime_ns if cp else None,
            poll_interval=self.cfg.poll_interval,
        )

    # -- main loop -----------------------------------------------------------------------
    def run(self) -> int:
        """Run until SIGTERM/SIGINT. Returns the exit code."""
        self._install_signals()
        self.follower.start()
        self.checkpoint()  # folds the journal into a fresh checkpoint
        self.notifier.ready(f"following {self.cfg.log}")
        last_status = time.monotonic()
        try:
            while not self.stop:
                items = self.follower.read()
                got_lines = any(isinstance(i, Lines) for i in items)
                for item in items:
                    self._on_follower(item)
                now = time.monotonic()
                if not got_lines:
                    self._maybe_expire(now)
                if self._dirty and now - self._last_checkpoint >= self.cfg.checkpoint_interval:
                    self.checkpoint()
                if now - last_status >= self.cfg.status_interval:
                    self._status()
                    last_status = now
                self.notifier.maybe_ping()
                if self.hup:
                    self._on_hup()
                if not got_lines and not self.stop:
                    due = self._expire_due
                    self.follower.wait(None if due is None else max(0.01, due - now))
        finally:
            self.notifier.stopping()
            self.hub.close(timeout=2.0)
            self.checkpoint()
            self._status()
            self.follower.close()
            self.journal.close()
        return EXIT_OK

    def _on_follower(self, item: FollowerOutput) -> None:
        if isinstance(item, Lines):
            src = self.sources[self.source_no]
            src.identity = item.position.identity  # a short fingerprint may have grown
            self._dirty = True
            self._handle(self.core.feed(item.data))
            stamps = _TIME.findall(item.data, max(0, len(item.data) - 4096))
            if stamps:
                sec, ms = stamps[-1]
                self._last_record_ms = int(sec) * 1000 + int(ms)
            self._last_data = time.monotonic()
            self._expire_due = self._last_data + self.cfg.event_window_ms / 1000
        elif isinstance(item, Switched):
            if self.source_no in self.sources and item.left_mtime_ns is not None:
                self.sources[self.source_no].mtime_ns = item.left_mtime_ns
            self.source_no += 1
            self.sources[self.source_no] = _Source(item.identity, item.path)
            self._handle(self.core.switch_source(self.source_no, item.offset))
            log.info(
                "event=file_switch reason=%s path=%s file=%s offset=%d",
                item.reason,
                item.path,
                item.identity,
                item.offset,
            )
        elif isinstance(item, Gap):
            self.counters["gaps"] += 1
            log.error("event=telemetry_gap %s", item.describe())
            self._emit(gap_record(item, self.host))
        elif isinstance(item, DroppedTail):
            self.counters["dropped"] += 1
            log.warning(
                "event=dropped_tail path=%s offset=%d bytes=%d reason=%r",
                item.path,
                item.offset,
                item.length,
                item.reason,
            )
        elif isinstance(item, Unreadable):
            log.warning(
                "event=log_unreadable path=%s error=%r retry_in=%.1f",
                item.path,
                item.error,
                item.retry_in,
            )

    def _handle(self, outputs: list[Any]) -> None:
        records = self.core.alerts_and_report(outputs)
        if not records:
            return
        for rec in records:
            self._emit(rec)
        if self._pause:
            log.warning("event=test_pause seconds=%.1f", self._pause)
            time.sleep(self._pause)
        self.checkpoint()  # after the hand-off, never before

    def _emit(self, rec: SinkRecord) -> None:
        if rec.alert_id in self.recent:
            self.counters["duplicates"] += 1
            log.info("event=alert_suppressed_duplicate alert_id=%s", rec.alert_id)
            return
        self.recent.add(rec.alert_id)
        self.hub.emit(rec)

    def _maybe_expire(self, now: float) -> None:
        if self._expire_due is None or now < self._expire_due or not self._last_record_ms:
            return
        if self.follower.holds_partial_line:
            # The writer is mid-record: the event is still being written, not idle.
            self._expire_due = now + self.cfg.event_window_ms / 1000
            return
        idle_ms = int((now - self._last_data) * 1000)
        self._expire_due = None
        # The wall-clock quiet ages what waits; no record's time is trusted for it.
        self._handle(self.core.expire_idle(idle_ms))

    # -- checkpoint ------------------------------------------------------------------------
    def _resume_position(self) -> tuple[Position | None, int | None]:
        source, offset = self.core.resume_position()
        src = self.sources.get(source) if isinstance(source, int) else None
        if src is None or not isinstance(source, int):
            return self.follower.position, self.follower.current_mtime_ns()
        for old in [k for k in self.sources if k < source]:
            del self.sources[old]
        mtime = src.mtime_ns if source != self.source_no else self.follower.current_mtime_ns()
        return Position(src.identity, offset, src.path), mtime

    def checkpoint(self) -> bool:
        """Write a checkpoint now (after every hand-off it covers). False if it failed."""
        with self.hub.lock:
            position, mtime = self._resume_position()
            cp = Checkpoint(
                position=position,
                file_mtime_ns=mtime,
                detector_state=self.core.to_state(),
                recent_alert_ids=self.recent.ids(),
                undelivered=self.hub.undelivered(),
                host_name=self.host,
                boot_id=read_boot_id(),
                saved_at_ms=int(time.time() * 1000),
            )
            ok = self.store.save(cp)
            if ok:
                self.journal.sync_and_reset()
        self._last_checkpoint = time.monotonic()
        if ok:
            self._dirty = False
            self.counters["checkpoints"] += 1
        return ok

    # -- signals, status -------------------------------------------------------------------
    def _install_signals(self) -> None:
        def on_stop(signum: int, frame: FrameType | None) -> None:
            self.stop = True
            self.follower.wake()

        def on_hup(signum: int, frame: FrameType | None) -> None:
            self.hup = True
            self.follower.wake()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_hup)

    def _on_hup(self) -> None:
        self.hup = False
        self.hub.reopen()
        if self._reload is None:
            return
        try:
            new: Config = self._reload()
        except KexecwatchError as exc:
            log.error("event=reload_failed reason=%r kept=old_config", str(exc))
            return
        for key in ("log", "state_dir", "outputs", "host_name"):
            if getattr(new, key) != getattr(self.cfg, key):
                log.warning("event=reload_needs_restart key=%s", key.replace("_", "-"))
        try:
            self.core.reload_rules(new.rules, new.ruleset)
        except KexecwatchError as exc:
            log.error("event=rules_reload_failed reason=%r kept=old_rules", str(exc))
        self.follower.poll_interval = new.poll_interval
        self.cfg = Config(
            **{
                **{f: getattr(self.cfg, f) for f in Config.__slots__},
                "rules": new.rules,
                "ruleset": new.ruleset,
                "poll_interval": new.poll_interval,
                "checkpoint_interval": new.checkpoint_interval,
                "status_interval": new.status_interval,
            }
        )
        log.info("event=reloaded rules=%d", self.core.rule_count)

    def _status(self) -> None:
        pos = self.follower.position
        lag_bytes = self.follower.lag_bytes()
        lag_s = max(0.0, time.time() - self._last_record_ms / 1000) if lag_bytes else 0.0
        st = self.core.stats()
        line = (
            f"lines={st.get('lines', 0)} parse_errors={st.get('parse_issues', 0)} "
            f"events={st.get('events', 0)} alerts={st.get('alerts', 0)} "
            f"lost={st.get('lost_events', 0)} offset={pos.offset if pos else 0} "
            f"records={st.get('records', 0)} suppressed={st.get('suppressed', 0)} "
            f"lag_bytes={lag_bytes} lag_seconds={lag_s:.1f} "
            f"backlog={self.hub.backlog()} "
            + " ".join(f"{k}={v}" for k, v in self.counters.items())
        )
        log.info("event=status %s", line)
        self.notifier.status(f"alerts={st.get('alerts', 0)} lag_bytes={lag_bytes}")


# -- command line ---------------------------------------------------------------------------
def _resolve(args: argparse.Namespace) -> Config:
    overrides = {
        k: getattr(args, k, None)
        for k in ("log", "state_dir", "outputs", "rules", "host_name", "ruleset")
    }
    return apply_overrides(load_config(args.config), overrides)


def _setup_logging(level: str) -> None:
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            logging.Formatter("ts=%(asctime)s level=%(levelname)s logger=%(name)s %(message)s")
        )
        root.addHandler(handler)
    root.setLevel(level.upper())


def run_command(args: argparse.Namespace) -> int:
    """Entry point for ``kexecwatch run``. Returns 0, 1 (runtime failure) or 2 (usage)."""
    try:
        cfg = _resolve(args)
        _setup_logging(cfg.log_level)
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
        log.exception("event=fatal")
        return EXIT_FAILURE


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m kexecwatch.adapters.daemon``: the run command on its own."""
    parser = argparse.ArgumentParser(prog="kexecwatch run")
    add_run_arguments(parser)
    return run_command(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
