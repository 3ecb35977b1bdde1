"""Run sequence and sample rules over a stream of events: bounded, expiring, checkpointable.

Theory of operation. The detector hands every document (with its record time) to a
:class:`SequenceEngine`, which keeps one runner per sequence or sample rule. A runner
first tests the document against each distinct stage; one that matches no stage is
forgotten at once. The others wait in a small *reorder buffer* and are matched in
record-time order, once record time has moved ``reorder_ms`` past them (the detector's
event window: how late an audit event may complete). So a sequence whose events
complete out of order still matches in the order they happened, as Elasticsearch
matches by ``@timestamp``. The end of the input releases the buffer at once.

Record time is the detector's clock (the newest time of every event read), not only the
times of the events a rule is shown: :meth:`SequenceEngine.observe` takes it as ``now_ms``,
and :attr:`SequenceEngine.due_ms` says from when on an event no rule is shown must still
be passed to :meth:`SequenceEngine.tick`. So what is due is matched at the same event
whether the rule index and prefilters keep events from a rule or not.

Sequences (Elasticsearch's semantics, streamed):

* A partial sequence is kept per join key and per number of stages matched; a newer
  partial at the same place replaces the older one (the most recent event is kept).
* An event extends the most advanced partial of its key that it can, else starts a new
  one: it takes part in at most one sequence per key. When a sequence completes, every
  partial of its key is dropped, so each completed sequence alerts once and ``with
  runs=60`` on 120 events alerts twice, not 61 times.
* ``maxspan``: the last event is at most ``maxspan`` after the first (inclusive).
  A partial older than that is dropped as record time passes. A sequence without
  ``maxspan`` (and a sample) is bounded by the rule's look-back (``from``, ``now-6m``
  by default), the most Elastic's own scheduled search would ever span.
* ``until [...]``: an event that matches it drops every partial of its key.
* A missing event ``![...]`` between two stages drops the partials of its key waiting
  at that point; before the first stage, it vetoes a sequence whose first event comes
  within ``maxspan`` after it; after the last, the sequence alerts only once record
  time has passed ``first + maxspan`` without such an event of its key.

Samples: per join key, the first event matching each stage fills that stage (an event
fills one stage); when every stage is filled the sample alerts, in stage order, and the
key starts afresh.

Bounds: at most ``max_partials`` partial sequences (or sample keys) per rule; beyond
that the least recently changed key's are dropped and counted in :attr:`dropped`. The
reorder buffer holds at most :data:`MAX_BUFFERED` events per rule; beyond that the
oldest is matched early. :meth:`SequenceEngine.to_state` is JSON-ready and bounded.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

from kexecwatch.core.detect.rule.evaluate import CompiledQuery
from kexecwatch.core.detect.rule.sequence import CompiledSequence, CompiledStage
from kexecwatch.core.detect.ruleindex import RuleIndex, prefilters_of

__all__ = [
    "DEFAULT_MAX_EVENTS",
    "DEFAULT_MAX_PARTIALS",
    "MAX_BUFFERED",
    "MIN_EVENTS_PER_RULE",
    "MatchedSequence",
    "SequenceEngine",
    "SequenceId",
    "SequenceMatch",
    "sequence_rules",
]

#: Partial sequences (or sample keys) kept per rule before the oldest are dropped.
DEFAULT_MAX_PARTIALS = 1000
#: Events held in partial (and pending) sequences and samples, over all rules.
DEFAULT_MAX_EVENTS = 50_000
#: The least share of :data:`DEFAULT_MAX_EVENTS` a rule gets, however many rules there are.
MIN_EVENTS_PER_RULE = 100
#: Events waiting in one rule's reorder buffer before the oldest is matched early.
MAX_BUFFERED = 500
_DEFAULT_LOOKBACK_MS = 6 * 60_000
_LOOKBACK = re.compile(r"now-(\d+)([smhd])")
_UNITS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_UNSET_IDS = frozenset({"4294967295", "-1"})
_STATE_VERSION = 1
#: A record time beyond any: nothing due.
_NEVER = 2**62

Doc = dict[str, Any]


@dataclass(frozen=True, slots=True)
class SequenceId:
    """The id of a matched sequence: its events' audit ids; ``time_ms`` of the last."""

    time_ms: int
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class MatchedSequence:
    """The events of a completed sequence or sample, as an alert carries them.

    ``to_document()`` is the last event's document with ``kexecwatch.sequence`` added:
    ``kind`` (``sequence``/``sample``), ``join`` (the ``by`` fields and their values)
    and ``events`` (every event's document, in order).
    """

    kind: str
    documents: tuple[Doc, ...]
    join: tuple[tuple[str, Any], ...]
    time_ms: int

    @property
    def id(self) -> SequenceId:
        """Stable across runs: the audit ids of the first and last events, and a digest
        of all of them when there are more than two."""
        ids = [str(_path(d, ("auditd", "id")) or "-") for d in self.documents]
        text = ids[0] if len(ids) == 1 else f"{ids[0]}..{ids[-1]}"
        if len(ids) > 2:
            text += "#" + hashlib.sha256("+".join(ids).encode()).hexdigest()[:12]
        return SequenceId(self.time_ms, text)

    @property
    def node(self) -> str | None:
        """The host the last event came from."""
        name = _path(self.documents[-1], ("host", "name"))
        return name if isinstance(name, str) else None

    @property
    def user(self) -> str | None:
        """The last event's login uid when set, else its uid (the alert limit's user)."""
        doc = self.documents[-1]
        auid = _path(doc, ("auditd", "login_user", "id"))
        if isinstance(auid, str) and auid not in _UNSET_IDS:
            return auid
        uid = _path(doc, ("user", "id"))
        return uid if isinstance(uid, str) else None

    def to_document(self) -> Doc:
        """The alert's base document (see the class docstring)."""
        last = self.documents[-1]
        doc = dict(last)
        doc["kexecwatch"] = {
            **last.get("kexecwatch", {}),
            "sequence": {
                "kind": self.kind,
                "join": {name: value for name, value in self.join},
                "events": list(self.documents),
            },
        }
        return doc


@dataclass(frozen=True, slots=True)
class SequenceMatch:
    """A completed sequence of one rule, and a one-line reason for the alert."""

    rule: Any
    events: MatchedSequence
    reason: str


def sequence_rules(rules: Iterable[Any]) -> list[Any]:
    """The rules whose query is a sequence or a sample."""
    return [r for r in rules if isinstance(getattr(r, "query", None), CompiledSequence)]


class SequenceEngine:
    """One runner per sequence or sample rule; see the module docstring.

    Args:
        rules: every rule; those without a sequence or sample query are ignored.
        reorder_ms: how far record time must pass an event before it is matched.
        max_partials: the cap on partial sequences per rule.
        max_events: the cap on events held in partial sequences, over all rules (each
            rule gets an equal share, at least :data:`MIN_EVENTS_PER_RULE`).
        needs_events: whether a (process) rule needs any event at all, as
            :func:`~kexecwatch.core.detect.ruleindex.prefilters_of` says (the default); one
            that needs none has a stage no document can match and is never shown one.
    """

    def __init__(
        self,
        rules: Iterable[Any],
        *,
        reorder_ms: int,
        max_partials: int = DEFAULT_MAX_PARTIALS,
        max_events: int = DEFAULT_MAX_EVENTS,
        needs_events: Callable[[Any], bool] | None = None,
    ) -> None:
        self.runners: list[_Runner] = []
        chosen = sequence_rules(rules)
        # The events held are shared out: the checkpoint stays bounded whatever the rules.
        event_cap = max(MIN_EVENTS_PER_RULE, max_events // max(1, len(chosen)))
        for rule in chosen:
            query: CompiledSequence = rule.query
            cls = _SampleRunner if query.kind == "sample" else _SequenceRunner
            self.runners.append(cls(rule, query, reorder_ms, max_partials, event_cap))
        self._telemetry = {
            i
            for i, r in enumerate(self.runners)
            if getattr(r.rule, "applies_to", "process") == "telemetry"
        }
        # Runners with something waiting on record time: they see every event's time.
        self._busy: set[int] = set()
        #: The earliest record time at which a busy runner has something due (a buffered
        #: event to match, a window to close, partials to expire); ``None`` when idle.
        #: The detector compares every event's time with it (see :meth:`tick`).
        self.due_ms: int | None = None
        needs = needs_events or (lambda rule: bool(prefilters_of(rule)))
        # Every distinct stage of every rule, filed by what it requires: an event is
        # tested only against the stages that could match it. A process rule one of whose
        # stages no process document can match (it needs no event: prefilters_of) can
        # never complete, so its runner is never shown an event: what it would hold
        # (a sample's slots, partials waiting for a network event) could only ever be
        # dropped again.
        self._fed = {i for i, r in enumerate(self.runners) if i in self._telemetry or needs(r.rule)}
        self._build_index()
        # The runners whose drops may count: those fed, and any a snapshot gave drops.
        self._counted = [self.runners[i] for i in sorted(self._fed)]

    def _build_index(self) -> None:
        self._index = RuleIndex(
            [
                _StageEntry(stage.query, i, number)
                for i in sorted(self._fed)
                for number, stage in enumerate(self.runners[i].distinct)
            ]
        )

    def __bool__(self) -> bool:
        return bool(self.runners)

    @property
    def dropped(self) -> int:
        """Partial sequences dropped to keep within the cap, over all rules."""
        return sum(r.dropped for r in self._counted)

    def observe(
        self, document: Doc, time_ms: int, *, now_ms: int | None = None, telemetry: bool = False
    ) -> list[SequenceMatch]:
        """Take one process (or, for telemetry rules, telemetry) document; return the
        sequences that completed. ``now_ms``: the detector's record clock (the newest
        time of every event read, shown to a rule or not), when ahead of ``time_ms``."""
        now = time_ms if now_ms is None or now_ms < time_ms else now_ms
        wanted: dict[int, set[int]] = {}
        for entry in self._index.candidates(document):
            wanted.setdefault(entry.runner, set()).add(entry.number)
        out: list[SequenceMatch] = []
        # A runner no stage of which can match, and with nothing waiting, has nothing
        # to do: most events cost one index look-up, not one call per rule.
        for i in sorted(wanted.keys() | self._busy):
            if telemetry and i not in self._telemetry:
                continue
            runner = self.runners[i]
            stages = wanted.get(i)
            if stages is not None:
                out += runner.feed(document, time_ms, stages, now)
            else:
                out += runner.advance(now)
            if runner.waiting():
                self._busy.add(i)
            else:
                self._busy.discard(i)
        self._set_due()
        return out

    def tick(self, now_ms: int) -> list[SequenceMatch]:
        """Record time has reached ``now_ms`` (an event no runner was shown): match what
        is due. Call it only when ``now_ms >= due_ms``; it is then what :meth:`observe`
        would have done for an event of no rule's at that time."""
        out: list[SequenceMatch] = []
        runners = self.runners
        for i in sorted(self._busy):
            out += runners[i].advance(now_ms)
        # Only busy runners were advanced: the others still wait for nothing.
        self._busy = {i for i in self._busy if runners[i].waiting()}
        self._set_due()
        return out

    def _recount(self) -> None:
        self._busy = {i for i, r in enumerate(self.runners) if r.waiting()}
        self._set_due()

    def _set_due(self) -> None:
        runners = self.runners
        self.due_ms = min((runners[i].deadline() for i in self._busy), default=None)

    def advance(self, now_ms: int) -> list[SequenceMatch]:
        """Record time has reached ``now_ms`` (an idle live log): match what is due."""
        out: list[SequenceMatch] = []
        for runner in self.runners:
            out += runner.advance(now_ms)
        self._recount()
        return out

    def flush(self) -> list[SequenceMatch]:
        """End of input: match every buffered event."""
        out: list[SequenceMatch] = []
        for runner in self.runners:
            out += runner.release(None)
        self._recount()
        return out

    def to_state(self) -> dict[str, Any]:
        """A JSON-ready snapshot of every runner, by rule id."""
        return {
            "version": _STATE_VERSION,
            "rules": {r.rule.rule_id: r.to_state() for r in self.runners},
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Load :meth:`to_state`'s snapshot; rules whose query changed start empty.

        Raises:
            ValueError: for a snapshot of another shape.
        """
        if not isinstance(state, dict) or state.get("version") != _STATE_VERSION:
            raise ValueError("not a sequence state (version 1)")
        saved = state.get("rules")
        if not isinstance(saved, dict):
            raise ValueError("sequence state without rules")
        revived = False
        for i, runner in enumerate(self.runners):
            item = saved.get(runner.rule.rule_id)
            if isinstance(item, dict) and item.get("query") == runner.query.text:
                try:
                    runner.restore(item)
                    self._recount()
                except (KeyError, TypeError, ValueError, IndexError) as exc:
                    raise ValueError(
                        f"corrupt sequence state of {runner.rule.rule_id}: {exc}"
                    ) from exc
                if i not in self._fed and runner.waiting():
                    # Held state from a detector whose documents could match every stage
                    # (another event vocabulary): shown events again, as before.
                    self._fed.add(i)
                    revived = True
        if revived:
            self._build_index()
        self._counted = [r for i, r in enumerate(self.runners) if i in self._fed or r.dropped]


# -- runners -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class _StageEntry:
    """One distinct stage of one rule, as the rule index files it (by its ``query``)."""

    query: CompiledQuery
    runner: int
    number: int


@dataclass(slots=True)
class _Partial:
    docs: tuple[Doc, ...]
    times: tuple[int, ...]

    def then(self, doc: Doc, time_ms: int) -> _Partial:
        return _Partial((*self.docs, doc), (*self.times, time_ms))

    def to_state(self) -> list[Any]:
        return [list(self.docs), list(self.times)]

    @staticmethod
    def from_state(item: list[Any]) -> _Partial:
        docs, times = item
        return _Partial(tuple(dict(d) for d in docs), tuple(int(t) for t in times))


class _Runner:
    """What sequence and sample runners share: the reorder buffer and the bounds."""

    def __init__(
        self, rule: Any, query: CompiledSequence, reorder_ms: int, cap: int, event_cap: int
    ) -> None:
        self.rule = rule
        self.query = query
        self.reorder_ms = reorder_ms
        self.cap = max(1, cap)
        self.event_cap = max(1, event_cap)
        self.dropped = 0
        self.distinct: list[CompiledStage] = []
        for stage in query.all_stages():
            if all(stage is not s for s in self.distinct):
                self.distinct.append(stage)
        # Where a stage's flag is in an event's flags (stages are told apart by identity).
        self._flag_of = {id(stage): n for n, stage in enumerate(self.distinct)}
        self.span = query.maxspan_ms or _lookback_ms(getattr(rule, "from_", ""))
        self._buffer: list[tuple[int, int, Doc, tuple[bool, ...]]] = []
        self._serial = 0
        self._newest: int | None = None
        self.clock = 0

    def feed(
        self, doc: Doc, time_ms: int, stages: AbstractSet[int], now_ms: int
    ) -> list[SequenceMatch]:
        """Take an event that may match the distinct stages numbered ``stages`` (the
        others cannot: the rule index says so); ``now_ms`` is the record clock."""
        # Every event moves record time on, so partials expire and a trailing missing
        # event's window closes even when nothing of the rule happens.
        self._newest = now_ms if self._newest is None else max(self._newest, now_ms)
        out: list[SequenceMatch] = []
        flags: tuple[bool, ...] = ()
        if stages:
            flags = tuple(
                n in stages and stage.query.matches(doc) for n, stage in enumerate(self.distinct)
            )
        if any(flags):
            self._serial += 1
            heapq.heappush(self._buffer, (time_ms, self._serial, doc, flags))
            while len(self._buffer) > MAX_BUFFERED:
                t, _, early, early_flags = heapq.heappop(self._buffer)
                out += self.process(early, t, early_flags)
        upto = self._newest - self.reorder_ms
        out += self.release(upto)
        return out + self.tick(upto)

    def waiting(self) -> bool:
        """Whether something waits for record time (buffered events, partial sequences
        to expire, alerts due when a window closes)."""
        return bool(self._buffer)

    def deadline(self) -> int:
        """The earliest time of the newest event at which :meth:`advance` does something."""
        due = self._buffer[0][0] if self._buffer else _NEVER
        sweep = self.sweep_due()
        return min(due, sweep) + self.reorder_ms

    def sweep_due(self) -> int:
        """The earliest record time (less the reorder delay) at which :meth:`tick` acts."""
        return _NEVER

    def sweep_after(self, now_ms: int) -> int:
        """The next sweep of expired partials: the next quarter-span mark of record
        time, so that sweeps fall on the same record times however often the runner
        is shown events (with the rule index or without)."""
        step = max(1, self.span // 4)
        return (now_ms // step + 1) * step

    def start_sweeps(self) -> None:
        """Something to expire appears: the first sweep is at the next mark."""
        self._next_sweep = self.sweep_after((self._newest or 0) - self.reorder_ms)

    def advance(self, now_ms: int) -> list[SequenceMatch]:
        self._newest = now_ms if self._newest is None else max(self._newest, now_ms)
        out = self.release(self._newest - self.reorder_ms)
        return out + self.tick(self._newest - self.reorder_ms)

    def release(self, upto: int | None) -> list[SequenceMatch]:
        out: list[SequenceMatch] = []
        buffer = self._buffer
        while buffer and (upto is None or buffer[0][0] <= upto):
            t, _, doc, flags = heapq.heappop(buffer)
            out += self.process(doc, t, flags)
        return out

    def matched(self, stage: CompiledStage, flags: tuple[bool, ...]) -> bool:
        return flags[self._flag_of[id(stage)]]

    def process(self, doc: Doc, time_ms: int, flags: tuple[bool, ...]) -> list[SequenceMatch]:
        raise NotImplementedError

    def tick(self, now_ms: int) -> list[SequenceMatch]:
        """Expire by record time; return what is due (trailing missing events)."""
        return []

    def match(self, docs: Sequence[Doc], time_ms: int, stage: CompiledStage) -> SequenceMatch:
        last = docs[-1]
        join = tuple((name, _path(last, tuple(name.split(".")))) for name in stage.key_fields)
        events = MatchedSequence(self.query.kind, tuple(docs), join, time_ms)
        joined = " ".join(f"{n}={_shown(v)}" for n, v in join)
        how = f" by {joined}" if joined else ""
        version = getattr(self.rule, "version", 1)
        reason = f"{self.query.kind} of {len(docs)} events{how} (EQL rule v{version})"
        return SequenceMatch(self.rule, events, reason)

    def base_state(self) -> dict[str, Any]:
        return {
            "query": self.query.text,
            "buffer": [[t, s, d, list(f)] for t, s, d, f in sorted(self._buffer)],
            "serial": self._serial,
            "newest": self._newest,
            "clock": self.clock,
            "dropped": self.dropped,
        }

    def restore_base(self, state: dict[str, Any]) -> None:
        buffer = [
            (int(t), int(s), dict(d), tuple(bool(x) for x in f)) for t, s, d, f in state["buffer"]
        ]
        if any(len(f) != len(self.distinct) for *_, f in buffer):
            raise ValueError("buffered event of another query")
        heapq.heapify(buffer)
        self._buffer = buffer
        self._serial = int(state["serial"])
        newest = state["newest"]
        self._newest = None if newest is None else int(newest)
        self.clock = int(state["clock"])
        self.dropped = int(state["dropped"])

    def to_state(self) -> dict[str, Any]:
        raise NotImplementedError

    def restore(self, state: dict[str, Any]) -> None:
        raise NotImplementedError


class _SequenceRunner(_Runner):
    def __init__(
        self, rule: Any, query: CompiledSequence, reorder_ms: int, cap: int, event_cap: int
    ) -> None:
        super().__init__(rule, query, reorder_ms, cap, event_cap)
        stages = query.stages
        self.positives = [s for s in stages if not s.missing]
        # Each missing stage with the number of positive stages before it.
        self.gaps: list[tuple[CompiledStage, int]] = []
        seen = 0
        for stage in stages:
            if stage.missing:
                self.gaps.append((stage, seen))
            else:
                seen += 1
        self.partials: OrderedDict[str, dict[int, _Partial]] = OrderedDict()
        self.count = 0  # partial sequences
        self.held = 0  # events in partial and pending sequences
        self.pending: OrderedDict[str, list[_Partial]] = OrderedDict()
        self.last_missing: OrderedDict[str, int] = OrderedDict()
        self._next_sweep = 0

    def process(self, doc: Doc, time_ms: int, flags: tuple[bool, ...]) -> list[SequenceMatch]:
        self.clock = max(self.clock, time_ms)
        out = self.tick(time_ms)
        until = self.query.until
        if until is not None and self.matched(until, flags):
            key = until.key(doc)
            if key is not None:
                self.drop_key(key)
                self.drop_pending(key)
        last = len(self.positives)
        for stage, before in self.gaps:
            if not self.matched(stage, flags):
                continue
            key = stage.key(doc)
            if key is None:
                continue
            if before == 0:
                if not self.partials and not self.last_missing:
                    self.start_sweeps()
                self.last_missing[key] = time_ms
                self.last_missing.move_to_end(key)
                while len(self.last_missing) > self.cap:
                    self.last_missing.popitem(last=False)
            elif before == last:
                self.drop_pending(key)
            else:
                slot = self.partials.get(key)
                removed = slot.pop(before, None) if slot is not None else None
                if removed is not None:
                    self.count -= 1
                    self.held -= len(removed.docs)
        used: set[str] = set()
        for index in range(last - 1, -1, -1):
            stage = self.positives[index]
            if not self.matched(stage, flags):
                continue
            key = stage.key(doc)
            if key is None or key in used:
                continue
            if index == 0:
                used.add(key)
                started = _Partial((doc,), (time_ms,))
                if last == 1:
                    out += self.complete(started, key, stage)
                else:
                    self.put(key, 1, started)
                continue
            slot = self.partials.get(key)
            partial = slot.pop(index, None) if slot is not None else None
            if partial is None:
                continue
            self.count -= 1
            self.held -= len(partial.docs)
            if time_ms - partial.times[0] > self.span:
                continue
            used.add(key)
            grown = partial.then(doc, time_ms)
            if index == last - 1:
                out += self.complete(grown, key, stage)
            else:
                self.put(key, index + 1, grown)
        return out

    def waiting(self) -> bool:
        return bool(self._buffer or self.pending or self.partials or self.last_missing)

    def sweep_due(self) -> int:
        due = _NEVER
        if self.partials or self.last_missing:
            due = self._next_sweep
        if self.pending:
            # tick() matches a pending sequence once now > first + span.
            first = min(p.times[0] for waiting in self.pending.values() for p in waiting)
            due = min(due, first + self.span + 1)
        return due

    def put(self, key: str, matched: int, partial: _Partial) -> None:
        if not self.partials and not self.last_missing:
            self.start_sweeps()
        slot = self.partials.setdefault(key, {})
        old = slot.get(matched)
        if old is None:
            self.count += 1
        else:
            self.held -= len(old.docs)
        slot[matched] = partial
        self.held += len(partial.docs)
        self.partials.move_to_end(key)
        self.shrink()

    def shrink(self) -> None:
        """Drop the least recently changed keys while over a cap (counted)."""
        while self.count > self.cap or self.held > self.event_cap:
            if self.partials:
                _, oldest = self.partials.popitem(last=False)
                self.count -= len(oldest)
                self.held -= sum(len(p.docs) for p in oldest.values())
                self.dropped += len(oldest)
            elif self.pending:
                _, gone = self.pending.popitem(last=False)
                self.held -= sum(len(p.docs) for p in gone)
                self.dropped += len(gone)
            else:
                break

    def drop_key(self, key: str) -> None:
        slot = self.partials.pop(key, None)
        if slot is not None:
            self.count -= len(slot)
            self.held -= sum(len(p.docs) for p in slot.values())

    def drop_pending(self, key: str) -> None:
        gone = self.pending.pop(key, None)
        if gone is not None:
            self.held -= sum(len(p.docs) for p in gone)

    def complete(self, partial: _Partial, key: str, stage: CompiledStage) -> list[SequenceMatch]:
        self.drop_key(key)
        if any(before == 0 for _, before in self.gaps):
            seen = self.last_missing.get(key)
            if seen is not None and partial.times[-1] - self.span <= seen <= partial.times[0]:
                return []
        if any(before == len(self.positives) for _, before in self.gaps):
            self.pending.setdefault(key, []).append(partial)
            self.pending.move_to_end(key)
            self.held += len(partial.docs)
            self.shrink()
            return []
        return [self.match(partial.docs, partial.times[-1], stage)]

    def tick(self, now_ms: int) -> list[SequenceMatch]:
        out: list[SequenceMatch] = []
        if self.pending:
            stage = self.positives[-1]
            for key in list(self.pending):
                waiting = self.pending[key]
                due = [p for p in waiting if p.times[0] + self.span < now_ms]
                if due:
                    out += [self.match(p.docs, p.times[-1], stage) for p in due]
                    self.held -= sum(len(p.docs) for p in due)
                    rest = [p for p in waiting if p.times[0] + self.span >= now_ms]
                    if rest:
                        self.pending[key] = rest
                    else:
                        del self.pending[key]
        if now_ms >= self._next_sweep:
            self._next_sweep = self.sweep_after(now_ms)
            for key in list(self.partials):
                slot = self.partials[key]
                for matched in [m for m, p in slot.items() if p.times[0] + self.span < now_ms]:
                    self.held -= len(slot.pop(matched).docs)
                    self.count -= 1
                if not slot:
                    del self.partials[key]
            for key in [k for k, t in self.last_missing.items() if t + self.span < now_ms]:
                del self.last_missing[key]
        return out

    def to_state(self) -> dict[str, Any]:
        return {
            **self.base_state(),
            "partials": [
                [key, matched, p.to_state()]
                for key, slot in self.partials.items()
                for matched, p in slot.items()
            ],
            "pending": [[key, [p.to_state() for p in ps]] for key, ps in self.pending.items()],
            "missing": [[key, t] for key, t in self.last_missing.items()],
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.restore_base(state)
        self.partials.clear()
        self.count = 0
        for key, matched, item in state["partials"]:
            if not 1 <= int(matched) < len(self.positives):
                raise ValueError("partial sequence of another query")
            self.partials.setdefault(str(key), {})[int(matched)] = _Partial.from_state(item)
            self.count += 1
        self.pending = OrderedDict(
            (str(k), [_Partial.from_state(p) for p in ps]) for k, ps in state["pending"]
        )
        self.held = sum(len(p.docs) for slot in self.partials.values() for p in slot.values())
        self.held += sum(len(p.docs) for ps in self.pending.values() for p in ps)
        self.last_missing = OrderedDict((str(k), int(t)) for k, t in state["missing"])


class _SampleRunner(_Runner):
    def __init__(
        self, rule: Any, query: CompiledSequence, reorder_ms: int, cap: int, event_cap: int
    ) -> None:
        super().__init__(rule, query, reorder_ms, cap, event_cap)
        self.slots: OrderedDict[str, dict[int, tuple[int, Doc]]] = OrderedDict()
        self.held = 0  # events in the slots
        self._next_sweep = 0

    def waiting(self) -> bool:
        return bool(self._buffer or self.slots)

    def sweep_due(self) -> int:
        return self._next_sweep if self.slots else _NEVER

    def process(self, doc: Doc, time_ms: int, flags: tuple[bool, ...]) -> list[SequenceMatch]:
        self.clock = max(self.clock, time_ms)
        self.tick(time_ms)
        stages = self.query.stages
        for index, stage in enumerate(stages):
            if not self.matched(stage, flags):
                continue
            key = stage.key(doc)
            if key is None:
                continue
            slot = self.slots.get(key)
            if slot is not None and index in slot:
                continue
            if slot is None:
                if not self.slots:
                    self.start_sweeps()
                slot = self.slots[key] = {}
            slot[index] = (time_ms, doc)
            self.held += 1
            self.slots.move_to_end(key)
            while len(self.slots) > self.cap or self.held > self.event_cap:
                _, gone = self.slots.popitem(last=False)
                self.held -= len(gone)
                self.dropped += 1
            if len(slot) == len(stages) and key in self.slots:
                del self.slots[key]
                self.held -= len(slot)
                docs = [slot[i][1] for i in range(len(stages))]
                return [self.match(docs, max(t for t, _ in slot.values()), stage)]
            return []
        return []

    def tick(self, now_ms: int) -> list[SequenceMatch]:
        if now_ms < self._next_sweep:
            return []
        self._next_sweep = self.sweep_after(now_ms)
        for key in list(self.slots):
            slot = self.slots[key]
            if min(t for t, _ in slot.values()) + self.span < now_ms:
                del self.slots[key]
                self.held -= len(slot)
        return []

    def to_state(self) -> dict[str, Any]:
        return {
            **self.base_state(),
            "slots": [
                [key, [[i, t, d] for i, (t, d) in slot.items()]] for key, slot in self.slots.items()
            ],
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.restore_base(state)
        self.slots.clear()
        for key, items in state["slots"]:
            slot = {int(i): (int(t), dict(d)) for i, t, d in items}
            if any(not 0 <= i < len(self.query.stages) for i in slot):
                raise ValueError("sample slot of another query")
            self.slots[str(key)] = slot
        self.held = sum(len(slot) for slot in self.slots.values())


# -- helpers -------------------------------------------------------------------------


def _lookback_ms(from_: str) -> int:
    m = _LOOKBACK.fullmatch(from_ or "")
    return int(m.group(1)) * _UNITS[m.group(2)] if m else _DEFAULT_LOOKBACK_MS


def _path(doc: Doc, path: tuple[str, ...]) -> Any:
    value: Any = doc
    for part in path:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:59] + "…"
