"""Fan alerts out to every output without letting one slow output block anything.

Rule 1: :meth:`SinkHub.emit` never blocks on an output. Each output has its own bounded
queue and thread; a failing output retries the same record with exponential backoff and
reports it. A full queue refuses the new record (the older ones stay queued, in order),
counts it, logs it and journals it as dropped, so a restart does not revive it. A
record the output can never deliver (:class:`~kexecwatch.adapters.daemon.sinks.Undeliverable`)
is dropped, counted and logged the same way, and the next one goes on at once.

Rule 2: every hand-off and every delivery is written to the journal
(:mod:`kexecwatch.adapters.daemon.journal`), so that a restart neither repeats nor
loses an alert.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict, deque
from collections.abc import Iterable

from kexecwatch.adapters.daemon.daemonlog import kv
from kexecwatch.adapters.daemon.journal import Journal
from kexecwatch.adapters.daemon.sinks import JsonFileSink, Sink, SinkRecord, Undeliverable

__all__ = ["SinkHub"]

log = logging.getLogger(__name__)


class _Worker:
    """One output's queue and delivery thread."""

    def __init__(self, sink: Sink, hub: SinkHub, capacity: int) -> None:
        self.sink = sink
        self.hub = hub
        self.capacity = capacity
        self.queue: deque[SinkRecord] = deque()
        self.pending: OrderedDict[str, SinkRecord] = OrderedDict()
        self.cond = threading.Condition()
        self.stopping = False
        self.delivered = 0
        self.failures = 0
        self.overflow = 0
        self.dropped = 0  # refused by the transport for good
        self.healthy = True
        self.thread = threading.Thread(target=self._run, name=f"sink {sink.spec}", daemon=True)

    def put(self, record: SinkRecord) -> None:
        with self.cond:
            if len(self.queue) >= self.capacity:
                self.overflow += 1
                log.error(
                    "output_overflow",
                    extra=kv(
                        output=self.sink.spec, alert_id=record.alert_id, dropped_total=self.overflow
                    ),
                )
                if self.hub.journal is not None:  # final: a restart must not queue it again
                    self.hub.journal.delivered(self.sink.spec, record.alert_id, dropped=True)
                return
            self.queue.append(record)
            self.pending[record.alert_id] = record
            self.cond.notify()

    def _run(self) -> None:
        delay = self.hub.backoff_initial
        last_error = ""
        while True:
            with self.cond:
                while not self.queue and not self.stopping:
                    self.cond.wait()
                if self.stopping and (not self.queue or not self.healthy):
                    return
                record = self.queue[0]
            try:
                self.sink.send(record)
            except Undeliverable as exc:
                self.dropped += 1
                log.error(
                    "output_dropped",
                    extra=kv(
                        output=self.sink.spec,
                        alert_id=record.alert_id,
                        error=exc.strerror or str(exc),
                        dropped_total=self.dropped,
                    ),
                )
                self.hub.on_delivered(self, record, dropped=True)
                continue
            except OSError as exc:
                self.failures += 1
                error = exc.strerror or str(exc)
                if self.healthy or error != last_error:  # a new reason is news too
                    log.warning(
                        "output_failed",
                        extra=kv(output=self.sink.spec, error=error, retry_in=delay),
                    )
                last_error = error
                self.healthy = False
                with self.cond:
                    self.cond.wait_for(lambda: self.stopping, timeout=delay)
                delay = min(delay * 2, self.hub.backoff_max)
                continue
            if not self.healthy:
                log.warning(
                    "output_recovered", extra=kv(output=self.sink.spec, failures=self.failures)
                )
            self.healthy = True
            delay = self.hub.backoff_initial
            last_error = ""
            self.hub.on_delivered(self, record)


class SinkHub:
    """All outputs, with optional journal.

    Args:
        sinks: the outputs.
        journal: where hand-offs and deliveries are recorded (``None`` in tests).
        capacity: per-output queue bound.
        backoff_initial: first retry delay in seconds; doubles up to ``backoff_max``.
    """

    def __init__(
        self,
        sinks: Iterable[Sink],
        journal: Journal | None = None,
        *,
        capacity: int = 10_000,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.journal = journal
        self.lock = threading.Lock()  # orders deliveries against checkpoint snapshots
        self.workers = [_Worker(s, self, capacity) for s in sinks]
        for w in self.workers:
            w.thread.start()

    @property
    def specs(self) -> list[str]:
        """The output specs, in order."""
        return [w.sink.spec for w in self.workers]

    def emit(self, record: SinkRecord) -> None:
        """Hand one record to every output (never blocks on delivery)."""
        if self.journal is not None:
            self.journal.emitted(record)
        for w in self.workers:
            w.put(record)

    def requeue(self, spec: str, records: Iterable[SinkRecord]) -> int:
        """Queue records again for the output named ``spec`` (after a restart).

        A file output is asked first which records it already holds: one may have been
        written just before a crash that kept its delivery out of the journal.
        """
        todo = list(records)
        n = 0
        for w in self.workers:
            if w.sink.spec != spec:
                continue
            written = w.sink.already_written(todo) if isinstance(w.sink, JsonFileSink) else set()
            if written:
                log.info("requeue_skipped", extra=kv(output=spec, already_written=len(written)))
            for r in todo:
                if r.alert_id not in written:
                    w.put(r)
                    n += 1
        return n

    def on_delivered(self, worker: _Worker, record: SinkRecord, *, dropped: bool = False) -> None:
        """Called by an output thread after a successful send, or a final refusal."""
        with self.lock:
            if self.journal is not None:
                self.journal.delivered(worker.sink.spec, record.alert_id, dropped=dropped)
            with worker.cond:
                worker.queue.popleft()
                worker.pending.pop(record.alert_id, None)
                worker.delivered += not dropped

    def undelivered(self) -> dict[str, list[dict[str, str]]]:
        """Per output, records handed over but not delivered yet (call with ``lock`` held)."""
        result: dict[str, list[dict[str, str]]] = {}
        for w in self.workers:
            with w.cond:
                if w.pending:
                    result[w.sink.spec] = [r.to_dict() for r in w.pending.values()]
        return result

    def backlog(self) -> int:
        """Records queued on all outputs."""
        return sum(len(w.queue) for w in self.workers)

    def dropped(self) -> int:
        """Records outputs gave up on: refused by a full queue or, for good, by the transport."""
        return sum(w.overflow + w.dropped for w in self.workers)

    def reopen(self) -> None:
        """Reopen file outputs and reconnect sockets before their next send (SIGHUP)."""
        for w in self.workers:
            w.sink.reopen()

    def drain(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for healthy outputs to empty their queues."""
        done = threading.Event()
        for _ in range(max(1, int(timeout / 0.02))):
            if all(not w.queue or not w.healthy for w in self.workers):
                return True
            done.wait(0.02)
        return False

    def close(self, timeout: float = 2.0) -> None:
        """Let healthy outputs finish, then stop every thread and close the outputs."""
        self.drain(timeout)
        for w in self.workers:
            with w.cond:
                w.stopping = True
                w.cond.notify_all()
        for w in self.workers:
            w.thread.join(timeout)
            w.sink.close()
