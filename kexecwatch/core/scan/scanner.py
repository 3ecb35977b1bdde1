"""The scanner stage: blocks of whole lines in; events, table updates and counts out.

Theory of operation: the detector hands every block of complete lines to a scanner. The
scanner takes a shortcut for the bulk of a log. A whole syscall event written in one
piece is recognised at once (:data:`~kexecwatch.core.scan.fastpath.SYSCALL_HEAD`,
:func:`~kexecwatch.core.scan.fastpath.run_end`) and handed to the assembler whole, and so are
two whole events whose records interleave (:func:`~kexecwatch.core.scan.fastpath.split_pair`).
Unless an :class:`~kexecwatch.core.scan.prefilter.Prefilter` accepts it, such an event's
records are never parsed: it only teaches the process table and the counts. Every other
line goes to the host's fallback line handler (the reference path: parse the record,
push it to the assembler). An event a prefilter accepts goes to the host's event hook,
records and all.

The interface is narrow on purpose, so that another implementation (the native bulk
path, :mod:`kexecwatch.core.scan.nativescan`) sits behind it too: a :class:`ScanHost` (the
fallback line handler, the event hook, the handling of what the assembler produces, the
report of a failed event), the :class:`~kexecwatch.core.audit.assembler.Assembler`, a process
table (:class:`~kexecwatch.core.process.table.ProcessTableLike`) and the counts
(:class:`ScanCounts`).

Rule 1: the scanner never changes a result. What it takes whole gives the same
outputs, table and counts as the reference path would (``tests/core/scan/test_fast_path.py``).
Rule 2: ``[since, until)`` is stated once, in :func:`in_window`.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Collection, Hashable, Iterable, Sequence
from functools import partial
from typing import Any, Literal, Protocol

from kexecwatch.core.audit.assembler import Assembler, AssemblerOutput, AuditEvent
from kexecwatch.core.audit.fieldmemo import fields_of
from kexecwatch.core.audit.fields import decode_untrusted
from kexecwatch.core.audit.linebuffer import Region
from kexecwatch.core.audit.record import AuditRecord, EventId, parse_record
from kexecwatch.core.audit.syscalls import (
    EXEC_SYSCALLS,
    GROUP_SYSCALLS,
    KEXEC_SYSCALLS,
    PROCESS_SYSCALLS,
)
from kexecwatch.core.process.capabilities import CAPABILITY_RECORDS
from kexecwatch.core.process.table import Args, ProcessTableLike
from kexecwatch.core.scan.argtest import (
    MAX_KEY_LINE,
    NOTHING_READ,
    AllOf,
    AnyOf,
    Facts,
    Known,
    LineSearch,
    Needle,
    NeedleGate,
    Part,
    Reads,
    command_line_of,
    either,
    known_of,
    own_needles,
    reads_command_lines,
    reads_of,
)
from kexecwatch.core.scan.fastpath import (
    FAST_TYPES,
    SYSCALL_BODY,
    SYSCALL_HEAD,
    RunBounds,
    argv_of_execve_bodies,
    execve_bodies,
    inode_search,
    path_inodes,
    record_types,
    records_of,
    run_end,
    split_argv,
    split_pair,
    syscall_of,
    whole_argv,
)
from kexecwatch.core.scan.prefilter import LearnedItems, Prefilter, text_of

__all__ = [
    "ALWAYS_EVALUATED",
    "EVALUATED",
    "NEVER_DUE",
    "PythonScanner",
    "ScanCounts",
    "ScanHost",
    "evaluated_syscalls",
    "in_window",
    "raw_args",
]

#: The syscalls whose events are always evaluated (counted as process events, returned
#: with ``--events``, shown to the rules): execs and kexec calls.
ALWAYS_EVALUATED = EXEC_SYSCALLS | KEXEC_SYSCALLS
#: Every syscall whose events may be evaluated: those, and the other process syscalls
#: (README, "Auditing more than execs") when a loaded rule can match them
#: (:func:`evaluated_syscalls`).
EVALUATED = ALWAYS_EVALUATED | PROCESS_SYSCALLS


def evaluated_syscalls(prefilters: Iterable[Prefilter]) -> frozenset[str]:
    """The syscalls evaluated for rules (or ``--events``) whose needs are ``prefilters``.

    :data:`ALWAYS_EVALUATED`, and each other syscall of :data:`EVALUATED` that one of
    ``prefilters`` names (one that names none: every one). So a rule set that cannot
    match a signal, a process end or a ``set*id`` call (the default rules) spends nothing
    on those events but teaching the process table, while a rule that matches them, or
    ``--events`` (:data:`~kexecwatch.core.scan.prefilter.EVERYTHING`), sees them all.
    """
    found = set(ALWAYS_EVALUATED)
    for prefilter in prefilters:
        if prefilter.syscalls is None:
            return EVALUATED
        found |= prefilter.syscalls & EVALUATED
    return frozenset(found)


def in_window(time_ms: int, since_ms: int | None, until_ms: int | None) -> bool:
    """Whether an event at ``time_ms`` lies in ``[since_ms, until_ms)`` (``None``: open).

    The one statement of ``--since``/``--until``: only events in the window are
    evaluated, counted and returned; the others still teach the process table.
    """
    return (since_ms is None or time_ms >= since_ms) and (until_ms is None or time_ms < until_ms)


class ScanHost(Protocol):
    """What a scanner needs of its detector. ``out`` is the detector's output list,
    which the scanner passes through untouched."""

    def line(self, raw: bytes, line_no: int, source: Hashable, offset: int, out: list[Any]) -> None:
        """The fallback line handler (the reference path): one line, its newline cut."""

    def event(self, event: AuditEvent, out: list[Any]) -> None:
        """The event hook, for an event some prefilter needs in full; never raises."""

    def run_event(self, run: bytes, event_id: EventId, line_no: int, out: list[Any]) -> bool:
        """The event hook for a whole run (its lines, from line ``line_no``), where the
        detector can read the run without records; ``False`` (nothing done) where it
        cannot: :meth:`event` then gets the run's event. Never raises."""

    def handle(self, produced: list[AssemblerOutput], out: list[Any]) -> None:
        """What the assembler produced (lost events, expired events, diagnostics)."""

    def failed(self, event_id: EventId, line_no: int, exc: Exception, out: list[Any]) -> None:
        """Count and report an event whose handling raised; the stream goes on."""

    def clock(self, time_ms: int, out: list[Any]) -> None:
        """An event of ``time_ms`` the scanner took itself has reached ``sequences_due``."""


class ScanCounts(Protocol):
    """The running counts a scanner keeps (the detector's ``Stats``)."""

    lines: int
    records: int
    events: int
    process_events: int
    last_time_ms: int


#: (syscall, success, comm, exe, evaluated, rule prefilters, other prefilters) that
#: accept a fast-path event by its SYSCALL record alone (before record types and inodes);
#: ``True`` for prefilters when one accepts it by that record alone (it is static).
_Verdict = tuple[
    str,
    bool,
    bytes | None,
    bytes | None,
    bool,
    "_Accepting | Literal[True]",
    "_Accepting | Literal[True]",
]
_MAX_VERDICTS = 4096
_new_id = tuple.__new__
#: The most answers :meth:`PythonScanner._open_tests` remembers (then forgets all at once),
#: each for EXECVE bodies of at most :data:`MAX_OPEN_RAW` bytes: at most ~4.5 MB.
MAX_OPEN_TESTS = 4096
MAX_OPEN_RAW = 1024
#: The most credentials texts :meth:`PythonScanner.share_extra` remembers at once.
MAX_SHARED_EXTRAS = 1024
#: :attr:`PythonScanner.sequences_due` while no sequence waits: beyond any record time.
NEVER_DUE = 2**62


class PythonScanner:
    """The scanner in Python: the fast path (see the module docstring).

    Args:
        host: the detector's side of the interface.
        assembler: the detector's assembler.
        table: the detector's process table.
        stats: the detector's counts.
        starts: the detector's resume positions of events in flight, by ``(node, id)``.
        host_name: ``host.name`` for records without ``node=``.
        since_ms / until_ms: the window of evaluated events (:func:`in_window`).
        fault_on: the test hook of ``DetectorOptions``: a run holding these bytes goes
            to the event hook, which raises.
    """

    def __init__(
        self,
        host: ScanHost,
        *,
        assembler: Assembler,
        table: ProcessTableLike,
        stats: ScanCounts,
        starts: dict[Any, Any],
        host_name: str,
        since_ms: int | None = None,
        until_ms: int | None = None,
        fault_on: bytes | None = None,
    ) -> None:
        self._host = host
        self._assembler = assembler
        self.table = table
        self._stats = stats
        self._starts = starts
        self.host_name = host_name
        self.since_ms = since_ms
        self.until_ms = until_ms
        self.fault_on = fault_on
        self._unbounded = since_ms is None and until_ms is None
        #: The record time from which an event must tell the detector its time (a
        #: sequence is due then); :data:`NEVER_DUE` while none waits.
        self.sequences_due = NEVER_DUE
        # Whether a sequence rule is loaded: without one, events are taken with no
        # clock test at all (see set_sequences_due).
        self._clocked = False
        self.rule_prefilters: list[Prefilter] = []
        #: The syscalls evaluated, by what the rules need (:func:`evaluated_syscalls`).
        self.evaluated = ALWAYS_EVALUATED
        #: Whether the last :meth:`fast_verdict` of ``None`` came from a rule prefilter.
        self.needed_by_rules = False
        # Set while the event hook has an event a rule prefilter is known to need.
        self._needed = False
        self.prefilters: list[Prefilter] = []
        # What the prefilters say about each (syscall, success, comm, exe) seen on the
        # fast path: they depend on nothing else but record types and learned inodes.
        self.verdicts: dict[tuple[bytes, bytes, bytes, bytes], _Verdict] = {}
        # One copy of each credentials text the table keeps (see share_extra).
        self._extras: dict[bytes, bytes] = {}
        # The EXECVE bodies the last run's argument tests read: (buf, where its EXECVE
        # lines start, bodies), so that the table is taught them without a second read.
        self._bodies: tuple[bytes, int, bytes | None] | None = None
        # The rule prefilters that accept a reference-path event's SYSCALL values
        # (_static_rules).
        self._static: dict[
            tuple[str, bool, bytes | None, bytes | None, str], tuple[Prefilter, ...]
        ] = {}
        # The open tests behind each verdict's needle gate, by its bodies (_open_tests).
        self._open: dict[
            tuple[int, tuple[int, ...], bytes | None], tuple[int, ...] | Literal[True]
        ] = {}
        # The inode search of each LearnedItems, while its version holds (by id).
        self._searches: dict[int, tuple[LearnedItems, int, re.Pattern[bytes]]] = {}

    def evaluates(self, syscall: str | None, time_ms: int) -> bool:
        """Whether the event of ``syscall`` at ``time_ms`` is evaluated (counted as a
        process event, shown to the rules): its syscall is one they need
        (:attr:`evaluated`) and it lies in ``[since, until)`` (:func:`in_window`)."""
        return syscall in self.evaluated and (
            self._unbounded or in_window(time_ms, self.since_ms, self.until_ms)
        )

    def set_rule_prefilters(self, prefilters: Sequence[Prefilter]) -> None:
        """What the rules (or ``--events``) need, among the evaluated events in the window."""
        self.rule_prefilters = list(prefilters)
        self.evaluated = evaluated_syscalls(self.rule_prefilters)
        self.prefilters_changed()

    def add_prefilter(self, prefilter: Prefilter) -> None:
        """What another consumer needs, among all syscall events."""
        self.prefilters.append(prefilter)
        self.prefilters_changed()

    def prefilters_changed(self) -> None:
        """Forget every verdict: the prefilters they were computed from changed."""
        self.verdicts.clear()
        self._searches.clear()
        self._open.clear()
        self._static.clear()

    # -- the scan --------------------------------------------------------------

    def scan(self, region: Region, out: list[Any]) -> int:
        """Handle every line of ``region``; return the number the line after it has."""
        # The newline in front of every line, the first too, makes the search for the
        # next whole event one C-level call. Offsets below are into ``buf``; ``pos``
        # is always a line start.
        buf = region.framed
        limit = len(buf)
        pos = 1
        line_no = region.line_no
        base = region.offset - 1
        source = region.source
        count = buf.count
        find = buf.find
        search = SYSCALL_HEAD.search
        stats = self._stats
        line = self._host.line
        take = self.fast_event if self._clocked else self._take
        while pos < limit:
            m = search(buf, pos - 1)
            stop = limit if m is None else m.start() + 1
            while pos < stop:
                nl = find(b"\n", pos)
                line(buf[pos:nl], line_no, source, base + pos, out)
                line_no += 1
                pos = nl + 1
            if m is None:
                return line_no
            run = run_end(buf, m)
            if run is not None:
                if take(buf, m, run, line_no, out):
                    n = run[3]  # pos is the run's start
                    stats.lines += n
                    stats.records += n
                    line_no += n
                    pos = run[1]
                    continue
                stop = 0
            else:
                stop = self.fast_pair(buf, m, out)
            if stop:
                n = count(b"\n", pos, stop)
                stats.lines += n
                stats.records += n
                line_no += n
                pos = stop
                continue
            nl = find(b"\n", pos)
            line(buf[pos:nl], line_no, source, base + pos, out)
            line_no += 1
            pos = nl + 1
        return line_no

    def fast_event(  # noqa: PLR0917 - the pieces of one event, from the fast path
        self,
        buf: bytes,
        m: re.Match[bytes],
        run: RunBounds,
        line_no: int,
        out: list[Any],
        taken: bool = False,
    ) -> bool:
        """Handle one whole syscall event (``SYSCALL_HEAD`` match, ``run_end``); ``False``
        if it cannot be taken whole. ``taken``: the assembler has taken it already.

        Then, when its time has made a sequence due, tell the detector."""
        if not self._take(buf, m, run, line_no, out, taken):
            return False
        if self._stats.last_time_ms >= self.sequences_due:
            self._host.clock(self._stats.last_time_ms, out)
        return True

    def _take(  # noqa: PLR0917 - as fast_event
        self,
        buf: bytes,
        m: re.Match[bytes],
        run: RunBounds,
        line_no: int,
        out: list[Any],
        taken: bool = False,
    ) -> bool:
        """:meth:`fast_event` without the sequence clock (no sequence rule is loaded)."""
        # One C call for every group (SYSCALL_HEAD's order), instead of one per field.
        (
            raw_id,
            sec,
            ms,
            serial,
            call,
            success_raw,
            exit_raw,
            ppid_raw,
            pid_raw,
            extra,
            comm_raw,
            exe_raw,
        ) = m.groups()
        extra = self._extras.get(extra) or self.share_extra(extra)
        sec_i = int(sec)
        ms_i = int(ms)
        # EventId(...) without the Python-level __new__ of a named tuple: one frame less.
        event_id = _new_id(EventId, (sec_i, ms_i, int(serial)))
        time_ms = sec_i * 1000 + ms_i
        if not taken:
            produced = self._assembler.maybe_push_whole(None, event_id, time_ms, line_no)
            if produced is None:
                return False
            if produced:
                self._host.handle(produced, out)
        if self._starts:
            self._starts.pop((None, event_id), None)
        stats = self._stats
        stats.events += 1
        if time_ms > stats.last_time_ms:  # noqa: PLR1730 - no builtin call per event
            stats.last_time_ms = time_ms
        try:
            verdict = self.fast_verdict(
                (call, success_raw, comm_raw, exe_raw),
                buf,
                m.start() + 1,
                run,
                time_ms,
                extra=extra,
            )
            fault = self.fault_on
            faulty = fault is not None and buf.find(fault, m.start(), run[1]) >= 0
            if verdict is None or faulty:
                lines = buf[m.start() + 1 : run[1]]
                if faulty or not self._host.run_event(lines, event_id, line_no, out):
                    records = records_of(lines, line_no, event_id)
                    # A rule prefilter took it: skim() need not ask them all again.
                    self._needed = verdict is None and self.needed_by_rules
                    try:
                        self._host.event(AuditEvent(None, event_id, records, "proctitle"), out)
                    finally:
                        self._needed = False
                return True
            syscall, success, comm, exe, relevant = verdict
            ppid = int(ppid_raw)
            table = self.table
            if table.lookup is not None:
                table.remember_live(ppid, time_ms)
            if success and syscall in EXEC_SYSCALLS:
                args: Args = None
                made = self._bodies
                if made is not None and made[0] is buf and made[1] == run[2]:
                    args = made[2]  # read for the verdict's argument tests already
                else:
                    lines = buf[run[2] : run[0]]
                    if lines:
                        args = execve_bodies(lines, raw_id)
                table.learn_exec(int(pid_raw), ppid, comm, exe, args, time_ms, raw_id, extra)
            else:
                table.learn(
                    syscall=syscall,
                    success=success,
                    pid=int(pid_raw),
                    ppid=ppid,
                    comm=comm,
                    exe=exe,
                    exit_code=int(exit_raw),
                    args=None,
                    event_id=event_id,
                    extra=extra,
                )
            if relevant:
                stats.process_events += 1
        except Exception as exc:  # one bad event must not cost the others
            self._host.failed(event_id, line_no, exc, out)
        return True

    def set_sequences_due(self, time_ms: int | None) -> None:
        """Set :attr:`sequences_due` (the detector does, as its sequences change);
        ``None`` when no sequence rule is loaded: then no event's time is ever tested."""
        self.sequences_due = NEVER_DUE if time_ms is None else time_ms
        self._clocked = time_ms is not None

    def share_extra(self, extra: bytes) -> bytes:
        """``extra`` (an event's credentials text), the copy the table is to keep.

        The same few texts recur exec after exec (root's, a service user's): the table
        holds one copy of each, not one per entry (4 MB less at 65,536 entries). At most
        :data:`MAX_SHARED_EXTRAS` are remembered, so hostile input costs no memory.
        """
        extras = self._extras
        if len(extras) >= MAX_SHARED_EXTRAS:
            extras.clear()
        extras[extra] = extra
        return extra

    def fast_verdict(
        self,
        key: tuple[bytes, bytes, bytes, bytes],
        buf: bytes,
        start: int,
        run: RunBounds,
        time_ms: int,
        *,
        extra: bytes | None = None,
    ) -> tuple[str, bool, bytes | None, bytes | None, bool] | None:
        """What the table needs of the whole run ``buf[start:run[1]]`` (syscall, success,
        comm, exe) and whether it is relevant (in ``[since, until)``); ``None`` when a
        prefilter needs the event in full (then :attr:`needed_by_rules` says whether a
        rule prefilter does). ``key``: its raw call, success, comm and exe; ``extra``: its
        ids (the ``extra`` group of ``SYSCALL_HEAD``; ``None``: not known)."""
        verdict = self.verdicts.get(key) or self.verdict(key)
        syscall, success, comm, exe, evaluated, for_rules, for_others = verdict
        relevant = evaluated and (
            self._unbounded or in_window(time_ms, self.since_ms, self.until_ms)
        )
        rules_need = for_rules if relevant else _NOTHING
        if rules_need is True:
            self.needed_by_rules = True
            return None
        if rules_need or for_others:
            # What argument tests read, made only for prefilters that have one (the
            # learned-inode search of the kexec detections, asked of every exec, has none).
            facts: Callable[[], Facts] = (
                _Run(self, buf, start, run, (comm, exe, extra, syscall), time_ms)
                if rules_need.reads_facts or (for_others is not True and for_others.reads_facts)
                else _no_facts
            )
            if rules_need and self._any_accepts(rules_need, buf, start, run, facts):
                self.needed_by_rules = True
                return None
            if for_others and (
                for_others is True or self._any_accepts(for_others, buf, start, run, facts)
            ):
                self.needed_by_rules = False
                return None
        return syscall, success, comm, exe, relevant

    def _any_accepts(
        self,
        prefilters: tuple[Prefilter, ...],
        buf: bytes,
        start: int,
        run: RunBounds,
        facts: Callable[[], Facts],
    ) -> bool:
        """Whether one of ``prefilters`` (which accept the SYSCALL record, none of them
        static) takes the run ``buf[start:run[1]]``; ``facts`` are what their argument
        tests read of it, made when first asked (an :class:`_Accepting` asks its parts as
        :meth:`_Accepting.split` sorts them).

        Its PATH records, like every middle record, lie after its EXECVE lines
        (``run[0]``), so only that part is searched for inodes.
        """
        if isinstance(prefilters, _Accepting):
            _gate, gated, plain, others = prefilters.parts or prefilters.split()
            if gated or plain:
                if others and self._any_accepts(others, buf, start, run, facts):
                    return True
                # A _Run answers what the remembered answers are keyed by without making
                # the Facts, which most runs never need.
                source = facts if isinstance(facts, _Run) else facts()
                if plain and prefilters.plain_holds(plain, source):
                    return True
                if not gated:
                    return False
                alive = prefilters.alive(source)
                if not alive:
                    return False
                found = self._open_tests(prefilters, alive, source)
                if found is True:
                    return True
                if not found:
                    return False
                made = facts()
                return any(
                    p is True or (p is not False and p.holds(made))
                    for p in map(gated.__getitem__, found)
                )
            prefilters = others
        end = run[1]
        for prefilter in prefilters:
            if prefilter.record_types is not None and not (
                prefilter.record_types & record_types(buf[start:end])
            ):
                continue
            if prefilter.args is not None and not prefilter.args.accepts(facts()):
                continue
            known = prefilter.path_items
            if known is None:
                return True
            if known and self._inode_search(known).search(buf, run[0], end):
                return True
        return False

    def _open_tests(
        self, accepting: _Accepting, alive: tuple[int, ...], source: Facts | _Run
    ) -> tuple[int, ...] | Literal[True]:
        """The tests ``alive`` behind ``accepting``'s gate (indices into
        :meth:`_Accepting.split`'s ``gated``, :meth:`_Accepting.alive`) that may hold on
        the run of ``source``: none when their gate (:meth:`_Accepting.gate_of`) is shut,
        else those whose own needles are in the command line (a look for them costs less
        than the test); ``True`` when one of those holds, known from the command line
        alone (:attr:`_Accepting.own_parts`: its guard holds, as it is alive, and what is
        left of it reads nothing but the command line), and then those that read more are
        not asked.

        The answer depends on nothing but those tests and the run's EXECVE bodies
        (``raw_args``; without any, on the verdict alone): it is remembered per verdict,
        tests and bodies, as commands recur (a build's compiler lines, a service's health
        checks), up to :data:`MAX_OPEN_TESTS` answers of bodies up to :data:`MAX_OPEN_RAW`
        bytes. (Before, a run whose needles were there was tested again each time: c30
        has 600 such runs of bodies seen before, curl, grep, cat, under every rule.)"""
        raw = source.bodies() if isinstance(source, _Run) else source.raw_args
        key = (accepting.serial, alive, raw) if raw is None or len(raw) <= MAX_OPEN_RAW else None
        memo = self._open
        if key is not None:
            known = memo.get(key)
            if known is not None:
                return known
        made = source() if isinstance(source, _Run) else source
        found: tuple[int, ...] | Literal[True]
        if accepting.gate_of(alive).shut(made):
            found = ()
        else:
            # The line is decoded now (split()).
            gated, gates = accepting.split()[1], accepting.gates
            found = _settled(
                accepting.own_parts,
                tuple(
                    i
                    for i in alive
                    if gated[i] is True or (gated[i] is not False and not gates[i](made))
                ),
                made,
            )
        if key is not None:
            if len(memo) >= MAX_OPEN_TESTS:
                memo.clear()
            memo[key] = found
        return found

    def _inode_search(self, known: Collection[tuple[int, str]]) -> re.Pattern[bytes]:
        """:func:`~kexecwatch.core.scan.fastpath.inode_search` of ``known``; for a
        :class:`~kexecwatch.core.scan.prefilter.LearnedItems`, kept while its version
        holds (not made again from every pair for every exec)."""
        if not isinstance(known, LearnedItems):
            return inode_search(tuple(known))
        kept = self._searches.get(id(known))
        if kept is not None and kept[0] is known and kept[1] == known.version:
            return kept[2]
        search = inode_search(tuple(known))
        if len(self._searches) >= 64:
            self._searches.clear()
        self._searches[id(known)] = (known, known.version, search)
        return search

    def fast_pair(self, buf: bytes, m: re.Match[bytes], out: list[Any]) -> int:
        """Handle two whole syscall events whose records interleave (see
        :func:`~kexecwatch.core.scan.fastpath.split_pair`), the first's ``SYSCALL_HEAD``
        match being ``m``. Returns the offset past the pair, or 0 when the pair cannot
        be taken so: then nothing has changed.

        Only events no prefilter needs in full are taken: they teach the table and
        nothing else, so the line numbers their records lose here are never read.
        """
        assembler = self._assembler
        if assembler.inflight:
            return 0
        pair = split_pair(buf, m)
        if pair is None:
            return 0
        events = []
        for part in pair[:2]:
            head = SYSCALL_HEAD.match(part)
            run = None if head is None else run_end(part, head)
            if head is None or run is None:
                return 0
            sec, ms, serial, call, success, comm, exe, extra = head.group(
                "sec", "ms", "serial", "call", "success", "comm", "exe", "extra"
            )
            event_id = EventId(int(sec), int(ms), int(serial))
            key = (call, success, comm, exe)
            if self.fast_verdict(key, part, 1, run, event_id.time_ms, extra=extra) is None:
                return 0
            events.append((part, head, run, event_id))
        (_, _, _, first), (_, _, _, second) = events
        produced = assembler.maybe_push_pair(None, first, first.time_ms, second, second.time_ms)
        if produced is None:
            return 0
        if produced:
            self._host.handle(produced, out)
        for part, head, run, _ in events:
            self.fast_event(part, head, run, 0, out, taken=True)
        return pair[2]

    def verdict(self, key: tuple[bytes, bytes, bytes, bytes]) -> _Verdict:
        """What the prefilters say about a fast-path event with these raw values
        (computed and remembered)."""
        call, success_raw, comm_raw, exe_raw = key
        syscall = syscall_of(call)
        success = success_raw == b"yes"
        comm = decode_untrusted(comm_raw)
        exe = decode_untrusted(exe_raw)
        host = self.host_name

        def accepting(
            prefilters: list[Prefilter],
        ) -> _Accepting | Literal[True]:
            # A fast-path run holds no record types beyond FAST_TYPES.
            found = [
                i
                for i in prefilters
                if (i.record_types is None or i.record_types & FAST_TYPES)
                and i.accepts_static(syscall, success, comm, exe, host)
            ]
            if any(i.is_static for i in found):
                return True
            return _Accepting(found, text_of(comm), text_of(exe))

        evaluated = syscall in self.evaluated
        verdict = (
            syscall,
            success,
            comm,
            exe,
            evaluated,
            accepting(self.rule_prefilters) if evaluated else _NOTHING,
            accepting(self.prefilters),
        )
        if len(self.verdicts) >= _MAX_VERDICTS:
            self.verdicts.clear()
        self.verdicts[key] = verdict
        return verdict

    def verdict_needles(
        self, key: tuple[bytes, bytes, bytes, bytes]
    ) -> tuple[frozenset[Needle], bool] | None:
        """The needles one of which must be in a relevant run's own command line for a
        rule prefilter to take a run of ``key``, and whether a run of ``key`` without
        EXECVE lines has the empty command line (else its arguments are not known).

        ``None`` when a rule prefilter may take such a run otherwise (one is static, or
        tests more than the process's own command line: :meth:`_Accepting.split`); no
        needles when no rule prefilter can take it. The native scanner's needle test
        (``native/src/needles.rs``) stands on this.
        """
        verdict = self.verdicts.get(key) or self.verdict(key)
        syscall, for_rules = verdict[0], verdict[5]
        if not isinstance(for_rules, _Accepting):
            return None
        _gate, gated, plain, others = for_rules.split()
        if others or any(part is not False for part in plain):
            return None
        needles: set[Needle] = set()
        for part in gated:
            found = own_needles(part)
            if found is None:  # split() gates only parts that have some
                return None
            needles |= found
        return frozenset(needles), syscall not in ARGS_FROM_TABLE

    # -- events of the reference path --------------------------------------------

    def _event_facts(
        self, event: AuditEvent, comm: bytes | None, exe: bytes | None, m: re.Match[bytes]
    ) -> Facts:
        """What argument tests read of a reference-path event (``m``: its ``SYSCALL``
        record's :data:`~kexecwatch.core.scan.fastpath.SYSCALL_BODY` match)."""
        raw = raw_args(event.records)
        syscall = syscall_of(m["call"])
        args = (
            (_NO_ARGS if syscall not in ARGS_FROM_TABLE else None)
            if raw is None
            else argv_of_execve_bodies(raw)
        )
        table = self.table
        time_ms = event.id.time_ms
        ppid = int(m["ppid"])
        parent = None if table.lookup is not None else lambda: _parent_known(table, ppid, time_ms)
        cwd = next((r.body for r in reversed(event.records) if r.type == "CWD"), None)
        return Facts(
            known_of(comm, exe, args),
            parent,
            m["extra"],
            _cwd_text(cwd),
            capabilities=any(r.type in CAPABILITY_RECORDS for r in event.records),
        )

    def _static_rules(
        self, syscall: str, success: bool, comm: bytes | None, exe: bytes | None, host: str
    ) -> tuple[Prefilter, ...]:
        """The rule prefilters whose constraints on these ``SYSCALL`` values hold
        (:meth:`Prefilter.accepts_static`, which depends on nothing else), in order;
        remembered (at most :data:`_MAX_VERDICTS` value sets), as a fast-path verdict is:
        the others cannot accept such an event, whatever its records."""
        key = (syscall, success, comm, exe, host)
        found = self._static.get(key)
        if found is None:
            found = tuple(
                p
                for p in self.rule_prefilters
                if p.accepts_static(syscall, success, comm, exe, host)
            )
            if len(self._static) >= _MAX_VERDICTS:
                self._static.clear()
            self._static[key] = found
        return found

    def skim(self, event: AuditEvent, syscall_record: AuditRecord) -> bool:
        """Teach the table from a reference-path event nobody needs in full.

        ``syscall_record`` is its ``SYSCALL`` record. Returns ``False`` when the event
        must be built in full: its record is not in the canonical layout
        (:data:`~kexecwatch.core.scan.fastpath.SYSCALL_BODY`), it is a ``setsid`` or
        ``setpgid`` call (the table's sessions and groups), or a rule prefilter accepts it
        (known already for a fast-path event handed over for a rule). Other prefilters
        have had the event in the event hook already.
        """
        if self._needed:
            return False
        m = SYSCALL_BODY.fullmatch(syscall_record.body)
        if m is None:
            return False
        syscall = syscall_of(m["call"])
        if syscall in GROUP_SYSCALLS:
            return False  # the table learns sessions and groups from the whole event
        success = m["success"] == b"yes"
        comm = decode_untrusted(m["comm"])
        exe = decode_untrusted(m["exe"])
        time_ms = event.id.time_ms
        relevant = self.evaluates(syscall, time_ms)
        if relevant:
            host = event.node or self.host_name
            kinds = frozenset(r.type for r in event.records)
            made: list[Facts] = []

            def facts() -> Facts:
                if not made:
                    made.append(self._event_facts(event, comm, exe, m))
                return made[0]

            for prefilter in self._static_rules(syscall, success, comm, exe, host):
                if prefilter.accepts(
                    syscall,
                    success,
                    comm,
                    exe,
                    host=host,
                    record_types=kinds,
                    inodes=lambda: _record_inodes(event.records),
                    facts=facts,
                ):
                    return False
        ppid = int(m["ppid"])
        table = self.table
        if table.lookup is not None:
            table.parent_at(ppid, time_ms)  # may seed the table from /proc
        table.learn(
            syscall=syscall,
            success=success,
            pid=int(m["pid"]),
            ppid=ppid,
            comm=comm,
            exe=exe,
            exit_code=int(m["exit"]),
            args=raw_args(event.records),
            event_id=event.id,
            extra=m["extra"],
        )
        if relevant:
            self._stats.process_events += 1
        return True


class _Accepting(tuple[Prefilter, ...]):
    """The prefilters that accept a verdict's SYSCALL record (none of them static),
    sorted when first needed (:meth:`split`) into: argument tests that only an argument
    with one of their needles can satisfy (asked only when a
    :class:`~kexecwatch.core.scan.argtest.NeedleGate` finds one), tests that do not read
    the process's own command line (their answer remembered per :meth:`Facts.key` of what
    they read: the parent's command line among it, as a shell parent's repeats for each
    of its children), and the rest."""

    name: str
    executable: str
    #: Whether one of them has an argument test (reads :class:`Facts`).
    reads_facts: bool
    parts: _Split | None
    #: What the tests that do not read the process's own command line read
    #: (:func:`reads_of`), once split.
    plain_reads: Reads
    #: Per test behind the gate, once split: whether none of its own needles is in the
    #: decoded command line (:meth:`NeedleGate.shut_line`; with one test, never).
    gates: tuple[Callable[[Facts], bool], ...]
    seen: dict[tuple[object, ...], bool]
    #: Unique to this object (never reused): what the scanner remembers of it is keyed
    #: so (:meth:`PythonScanner._open_tests`).
    serial: int
    #: Once split, per test behind the gate: its own needles, and its guard: the
    #: conjuncts that do not read the process's own command line (``None``: none), which
    #: must hold for it to hold; ``guards`` is ``None`` when no test has one.
    needles: tuple[frozenset[Needle], ...]
    guards: tuple[Part | None, ...] | None
    #: What the guards read (:func:`reads_of`), and which tests they leave, remembered
    #: per :meth:`Facts.key` of that (:meth:`alive`).
    guard_reads: Reads
    alive_seen: dict[tuple[object, ...], tuple[int, ...]]
    #: Once split, per test behind the gate: what is left of it once its guard holds
    #: (its conjuncts that read the process's own command line) where that reads nothing
    #: else of the facts, an answer that depends on the command line alone; else ``None``.
    own_parts: tuple[Part | None, ...]
    #: Every test behind the gate, and the gate of each set of tests left (:meth:`gate_of`).
    everyone: tuple[int, ...]
    alive_gates: dict[tuple[int, ...], _GateLook]

    def __new__(cls, prefilters: Sequence[Prefilter], name: str, executable: str) -> _Accepting:
        made = super().__new__(cls, prefilters)
        made.name = name
        made.executable = executable
        made.reads_facts = any(p.args is not None for p in prefilters)
        made.parts = None
        made.plain_reads = NOTHING_READ
        made.gates = ()
        made.seen = {}
        made.serial = next(_SERIALS)
        made.needles = ()
        made.guards = None
        made.guard_reads = NOTHING_READ
        made.alive_seen = {}
        made.own_parts = ()
        made.everyone = ()
        made.alive_gates = {}
        return made

    def split(self) -> _Split:
        """The gate, the tests behind it, the tests that do not read the process's own
        command line, and the prefilters asked as they are."""
        if self.parts is None:
            gated: list[tuple[Part | bool, frozenset[Needle]]] = []
            plain: list[Part | bool] = []
            others: list[Prefilter] = []
            for prefilter in self:
                if (
                    prefilter.args is None
                    or prefilter.record_types is not None
                    or prefilter.path_items is not None
                ):
                    others.append(prefilter)
                    continue
                left = prefilter.args.given(self.name, self.executable)
                places = [(left, _place(left))]
                if places[0][1] is None and isinstance(left, AnyOf):
                    # The prefilter accepts when one alternative holds: each may be
                    # sorted on its own (a test of the working directory, or needles).
                    places = [(part, _place(part)) for part in left.parts]
                if any(place is None for _, place in places):
                    others.append(prefilter)
                    continue
                for part, place in places:
                    if isinstance(place, frozenset):
                        gated.append((part, place))
                    else:
                        plain.append(part)
            self.plain_reads = either(*map(reads_of, plain))
            self.gates = (
                tuple(_LineGate(needles) for _, needles in gated)
                if len(gated) > 1
                else (_never_shut,) * len(gated)
            )
            guards = tuple(_guard_of(part) for part, _ in gated)
            if any(guard is not None for guard in guards):
                self.guards = guards
                self.guard_reads = either(*(reads_of(g) for g in guards if g is not None))
            self.needles = tuple(needles for _, needles in gated)
            self.own_parts = tuple(_own_part(part) for part, _ in gated)
            self.everyone = tuple(range(len(gated)))
            self.parts = (
                _gate_of(frozenset(n for _, needles in gated for n in needles)),
                tuple(part for part, _ in gated),
                tuple(plain),
                tuple(others),
            )
        return self.parts

    def alive(self, facts: Facts | _Run) -> tuple[int, ...]:
        """The tests behind the gate (indices into :meth:`split`'s ``gated``) whose guard
        holds (or which have none): the others cannot hold. Remembered by what the guards
        read (:meth:`Facts.key`): a rule on the child's arguments of some parent (an AI
        tool, a web server) is decided by the parent, for every child of another one."""
        guards = self.guards
        if guards is None:
            return self.everyone
        key = facts.key(self.guard_reads)
        found = None if key is None else self.alive_seen.get(key)
        if found is None:
            made = facts() if isinstance(facts, _Run) else facts
            found = tuple(i for i, g in enumerate(guards) if g is None or g.holds(made))
            if key is not None:
                if len(self.alive_seen) >= _MAX_VERDICTS:
                    self.alive_seen.clear()
                self.alive_seen[key] = found
        return found

    def gate_of(self, alive: tuple[int, ...]) -> _GateLook:
        """The gate of the tests ``alive`` (:meth:`alive`): their needles only."""
        gate = self.alive_gates.get(alive)
        if gate is None:
            if len(self.alive_gates) >= _MAX_ALIVE_GATES:
                self.alive_gates.clear()
            gate = self.alive_gates[alive] = _look_of(
                frozenset().union(*(self.needles[i] for i in alive))
            )
        return gate

    def plain_holds(self, plain: tuple[Part | bool, ...], facts: Facts | _Run) -> bool:
        """Whether one of ``plain`` (tests that do not read the process's own command
        line) holds; remembered by what they read (:meth:`Facts.key`; a :class:`_Run`'s
        key is the same, made without the Facts)."""
        key = facts.key(self.plain_reads)
        found = None if key is None else self.seen.get(key)
        if found is None:
            made = facts() if isinstance(facts, _Run) else facts
            found = any(p is True or (p is not False and p.holds(made)) for p in plain)
            if key is not None:
                if len(self.seen) >= _MAX_VERDICTS:
                    self.seen.clear()
                self.seen[key] = found
        return found


_SERIALS = itertools.count()

#: The syscalls whose process events take the caller's arguments from the process table
#: (the detector's ``self_exec``) when they have no EXECVE record: for the others, such
#: an event's document has no arguments.
ARGS_FROM_TABLE = KEXEC_SYSCALLS | PROCESS_SYSCALLS
#: The arguments of a document without any, as the argument tests read them: an empty
#: command line holds no needle, as a missing one satisfies no comparison.
_NO_ARGS: tuple[bytes, ...] = ()

#: No prefilter accepts (a verdict's rule prefilters of an event not evaluated).
_NOTHING = _Accepting((), "", "")


def _look_of(needles: frozenset[Needle]) -> _GateLook:
    """The :class:`_GateLook` (and :class:`NeedleGate`) of ``needles``, made once for
    every verdict that has the same (most commands share the rules' needles: c30's 30
    verdicts with argument tests have 17 needle sets), each compiling a few trie
    searches; at most :data:`_MAX_GATES` kept."""
    look = _GATES.get(needles)
    if look is None:
        if len(_GATES) >= _MAX_GATES:
            _GATES.clear()
        look = _GATES[needles] = _GateLook(needles)
    return look


class _GateLook:
    """:meth:`NeedleGate.shut` of some needles, with a shortcut for command lines.

    A body of arguments in the kernel's plainest forms (``whole_argv``, or ``split_argv``
    for long arguments in pieces) is not searched whole: a needle without a space is in
    the command line (the arguments joined by spaces, :func:`command_line_of`) only if it
    is in one argument, and in its lower-cased form only if it is in one argument's
    (``str.lower`` of a line is that of its arguments joined by spaces: its one rule that
    reads neighbours, the final sigma, stops at a space as at the end of a text, and UTF-8
    decoding never reads across a space); whether an argument holds one is remembered
    per argument (a build's
    compiler and linker lines repeat their ``-I`` and object arguments line after line;
    c30's 3,900 runs the memo of :meth:`PythonScanner._open_tests` misses have 120,000
    arguments, 6,300 of them new). The arguments not seen before are searched at once,
    joined by spaces (which no such needle holds), and one by one only when a needle is
    there. Only the needles with a space are looked for in the whole line. Any other
    body, and any needle set with an empty needle: the gate. (Before, a body with an
    argument beyond ASCII was searched whole: 130 of the 3,900 on c30 under every rule.)"""

    __slots__ = ("_holding", "_needles", "_searches", "_seen", "gate")

    def __init__(self, needles: frozenset[Needle]) -> None:
        self.gate = NeedleGate(needles)
        self._needles = needles
        # The searches of the needles without and with a space, made for the first
        # long line (most needle sets never see one).
        self._searches: tuple[LineSearch | None, LineSearch | None] | None = None
        # The ASCII arguments looked at, and those of them holding a needle without a
        # space: a line's arguments are asked of both at once (C-level set calls).
        self._seen: set[bytes] = set()
        self._holding: set[bytes] = set()

    def _split(self) -> tuple[LineSearch | None, LineSearch | None]:
        searches = self._searches
        if searches is None:
            needles = self._needles
            spaced = frozenset(n for n in needles if " " in n[0])
            unspaced = needles - spaced
            searches = self._searches = (
                None
                if not unspaced or any(not text for text, _ in needles)
                else LineSearch(unspaced),
                LineSearch(spaced) if spaced else None,
            )
        return searches

    def shut(self, facts: Facts) -> bool:
        """Whether no needle is in the process's own command line (known)."""
        raw = facts.raw_args
        if raw is None:
            return self.gate.shut(facts)
        search, spaced = self._split()
        if search is None:
            return self.gate.shut(facts)
        args = whole_argv(raw)
        if args is None:
            args = split_argv(raw)
            if args is None:
                return self.gate.shut(facts)
        seen, holding = self._seen, self._holding
        if not holding.isdisjoint(args):
            return False
        if not seen.issuperset(args):
            new = set(args).difference(seen)
            text = command_line_of(new)
            if search.found(Facts(("", "", text)), False, text):
                self._learn(search, new)
                return False
            if self._room(len(new)):
                seen.update(arg for arg in new if len(arg) <= _MAX_SEEN_ARG)
        if spaced is None:
            return True
        return not spaced.found(facts, False, command_line_of(args))

    def _room(self, count: int) -> bool:
        """Whether ``count`` more arguments may be remembered (all are forgotten first
        when they would make more than :data:`_MAX_SEEN_ARGS`)."""
        if len(self._seen) + count > _MAX_SEEN_ARGS:
            self._seen.clear()
            self._holding.clear()
        return count <= _MAX_SEEN_ARGS

    def _learn(self, search: LineSearch, new: set[bytes]) -> None:
        """Remember which of the arguments ``new`` hold a needle without a space."""
        if not self._room(len(new)):
            return
        seen, holding = self._seen, self._holding
        for arg in new:
            if len(arg) <= _MAX_SEEN_ARG:
                text = command_line_of((arg,))
                seen.add(arg)
                if search.found(Facts(("", "", text)), False, text):
                    holding.add(arg)


#: What a _GateLook remembers: at most so many arguments, each of at most so many bytes.
_MAX_SEEN_ARGS = 8192
_MAX_SEEN_ARG = 256


def _gate_of(needles: frozenset[Needle]) -> NeedleGate:
    """The :class:`NeedleGate` of ``needles`` (:func:`_look_of`)."""
    return _look_of(needles).gate


_GATES: dict[frozenset[Needle], _GateLook] = {}
_MAX_GATES = 256


def _guard_of(part: Part | bool) -> Part | None:
    """The conjuncts of ``part`` (a test behind the gate) that do not read the process's
    own command line, as one test (``None``: it has none)."""
    if not isinstance(part, AllOf):
        return None
    found = tuple(p for p in part.parts if not reads_command_lines(p, own=True))
    if not found:
        return None
    return found[0] if len(found) == 1 else AllOf(found)


def _own_part(part: Part | bool) -> Part | None:
    """What is left of ``part`` (a test behind the gate) once its guard (:func:`_guard_of`)
    holds: its conjuncts that read the process's own command line, as one test, where
    they read nothing else of the facts (:func:`reads_of`: no parent, directory, ids or
    capabilities); else ``None``."""
    if not isinstance(part, AllOf):
        own: Part | bool = part
    else:
        found = tuple(p for p in part.parts if reads_command_lines(p, own=True))
        own = found[0] if len(found) == 1 else AllOf(found)
    if isinstance(own, bool) or reads_of(own) != NOTHING_READ:
        return None
    return own


def _settled(
    own_parts: tuple[Part | None, ...], found: tuple[int, ...], made: Facts
) -> tuple[int, ...] | Literal[True]:
    """``found`` (alive tests behind the gate whose own needles are in the command line
    of ``made``) less those known from the command line alone not to hold (their own
    part, :func:`_own_part`); ``True`` when one such holds (the prefilters accept)."""
    left = []
    for i in found:
        own = own_parts[i]
        if own is None:
            left.append(i)
        elif own.holds(made):
            return True
    return tuple(left)


#: The most gates of sets of tests left an _Accepting keeps (then forgets all at once).
_MAX_ALIVE_GATES = 64


def _place(part: Part | bool) -> frozenset[Needle] | bool | None:
    """Where :meth:`_Accepting.split` puts a test: behind the gate (its own needles:
    :func:`own_needles`), among those that do not read the process's own command line
    (``True``), or nowhere (``None``: it is asked as its prefilter)."""
    needles = own_needles(part, rare=True)
    if needles is not None:
        return needles
    return None if reads_command_lines(part, own=True) else True


class _LineGate:
    """:meth:`NeedleGate.shut_line` of some needles: whether none of them is in the
    process's own command line (known), its search made when first asked (most tests
    behind a gate are never asked: the gate is shut)."""

    __slots__ = ("_needles", "_search")

    def __init__(self, needles: frozenset[Needle]) -> None:
        self._needles = needles
        self._search: LineSearch | None = None

    def __call__(self, facts: Facts) -> bool:
        line = facts.own[2]
        if line is None:
            return False
        search = self._search
        if search is None:
            search = self._search = LineSearch(self._needles)
        return not search.found(facts, False, line)


def _never_shut(facts: Facts) -> bool:
    """The gate of the only test behind a gate: the whole gate was open."""
    return False


def _no_facts() -> Facts:
    """The facts of a run whose prefilters have no argument test: never asked."""
    raise AssertionError("no prefilter here reads facts")


#: What :meth:`_Accepting.split` gives.
_Split = tuple[
    NeedleGate, tuple["Part | bool", ...], tuple["Part | bool", ...], tuple[Prefilter, ...]
]


_UNREAD: Any = object()


class _Run:
    """What argument tests read of the whole run ``buf[start:bounds[1]]``, each part read
    when first asked: its EXECVE bodies (:meth:`bodies`; a run without EXECVE lines:
    ``None``, its document's arguments come from elsewhere), its parent as the table
    knows it (:meth:`parent`), the key of what the tests that do not read its own
    command line read (:meth:`key`, equal to :meth:`Facts.key`), and, called, its
    :class:`Facts` (its arguments decoded as the full parse decodes them). Most runs are
    decided by answers remembered per bodies and per key, without the Facts.

    ``own``: its decoded comm and exe, its ids (``extra``) and its syscall."""

    __slots__ = (
        "_bodies",
        "_bounds",
        "_buf",
        "_capabilities",
        "_cwd",
        "_facts",
        "_own",
        "_parent",
        "_scanner",
        "_start",
        "_time_ms",
    )

    def __init__(  # noqa: PLR0917 - the pieces of one run, from fast_verdict
        self,
        scanner: PythonScanner,
        buf: bytes,
        start: int,
        bounds: RunBounds,
        own: tuple[bytes | None, bytes | None, bytes | None, str],
        time_ms: int,
    ) -> None:
        self._scanner = scanner
        self._buf = buf
        self._start = start
        self._bounds = bounds
        self._own = own
        self._time_ms = time_ms
        self._bodies: bytes | None = _UNREAD
        self._parent: Known | None = _UNREAD
        self._cwd: str | None = _UNREAD
        self._capabilities: bool = _UNREAD
        self._facts: Facts | None = None

    def bodies(self) -> bytes | None:
        """Its EXECVE bodies (``execve_bodies``), which the scanner keeps to teach the
        table (``PythonScanner._bodies``)."""
        raw = self._bodies
        if raw is _UNREAD:
            buf, start, bounds = self._buf, self._start, self._bounds
            lines = buf[bounds[2] : bounds[0]]
            raw = None
            if lines:
                raw_id = buf[buf.find(b"(", start) + 1 : buf.find(b")", start)]
                raw = execve_bodies(lines, raw_id)
            self._bodies = raw
            self._scanner._bodies = (buf, bounds[2], raw)
        return raw

    def parent(self) -> Known | bool | None:
        """Its parent, as :meth:`Facts.of` gives it (``True``: not known, with a live
        ``/proc`` lookup, whose reads change the table)."""
        if self._scanner.table.lookup is not None:
            return True
        return self._parent_known()

    def _parent_known(self) -> Known | None:
        known = self._parent
        if known is _UNREAD:
            buf, start = self._buf, self._start
            table = self._scanner.table
            # The run's head has the canonical layout, where no field before ppid's
            # holds " ppid=": a look for it, not the whole head's match again.
            at = buf.find(b" ppid=", start) + 6
            ppid = buf[at : buf.find(b" ", at)]
            if at < 6 or not ppid.isdigit():
                head = SYSCALL_HEAD.match(buf, start - 1)
                known = (
                    None if head is None else _parent_known(table, int(head["ppid"]), self._time_ms)
                )
            else:
                known = _parent_known(table, int(ppid), self._time_ms)
            self._parent = known
        return known

    def cwd(self) -> str | None:
        """``process.working_directory`` (:func:`_run_cwd`)."""
        cwd = self._cwd
        if cwd is _UNREAD:
            cwd = self._cwd = _run_cwd(self._buf, self._bounds)
        return cwd

    def capabilities(self) -> bool:
        """Whether a record states its capability sets (:func:`_run_capabilities`)."""
        stated = self._capabilities
        if stated is _UNREAD:
            stated = self._capabilities = _run_capabilities(self._buf, self._start, self._bounds)
        return stated

    def key(self, reads: Reads) -> tuple[object, ...] | None:
        """:meth:`Facts.key` of its Facts, without making them."""
        parent: object = self.parent() if reads[0] or reads[4] else None
        if isinstance(parent, tuple):
            if not reads[4]:
                parent = parent[:2]
            elif parent[2] is not None and len(parent[2]) > MAX_KEY_LINE:
                return None
        return (
            parent,
            self.cwd() if reads[1] else None,
            self._own[2] if reads[2] else None,
            self.capabilities() if reads[3] else None,
        )

    def __call__(self) -> Facts:
        """Its :class:`Facts`, made once."""
        facts = self._facts
        if facts is None:
            comm, exe, extra, syscall = self._own
            raw = self.bodies()
            args = _NO_ARGS if syscall not in ARGS_FROM_TABLE else None
            facts = self._facts = Facts(
                known_of(comm, exe, args),
                None if self._scanner.table.lookup is not None else self._parent_known,
                extra,
                self.cwd,
                capabilities=self.capabilities,
                line=None if raw is None else partial(_command_line, raw),
                raw_args=raw,
            )
        return facts


def _command_line(raw: bytes) -> str | None:
    """The command line of raw EXECVE bodies (``execve_bodies``), decoded as the full
    parse decodes them."""
    args = argv_of_execve_bodies(raw)
    return None if args is None else command_line_of(args)


def _run_cwd(buf: bytes, run: RunBounds) -> str | None:
    """``process.working_directory`` of the whole run ending at ``run[1]``: its last CWD
    record's (middle records lie after its EXECVE lines, ``run[0]``)."""
    at = buf.rfind(b"\ntype=CWD ", run[0] - 1, run[1])
    if at < 0:
        return None
    line = buf[at + 1 : buf.find(b"\n", at + 1)]
    # Every line of a whole run starts "type=CWD msg=audit(<its id>):" (run_end), which
    # parse_record reads whole: the record's body, and so the directory, is a function
    # of the rest of the line alone, remembered per rest (directories recur).
    rest = line[line.find(b"):", 19) + 2 :]
    if rest in _CWDS:
        return _CWDS[rest]
    record = parse_record(line)
    found = _cwd_text(record.body if isinstance(record, AuditRecord) else None)
    if len(rest) <= _MAX_CWD_KEY:
        if len(_CWDS) >= _MAX_CWDS:
            _CWDS.clear()
        _CWDS[rest] = found
    return found


#: Working directories by the rest of their CWD line (:func:`_run_cwd`): at most so many,
#: each of at most so many bytes.
_CWDS: dict[bytes, str | None] = {}
_MAX_CWDS = 1024
_MAX_CWD_KEY = 512


def _run_capabilities(buf: bytes, start: int, run: RunBounds) -> bool:
    """Whether the whole run ``buf[start:run[1]]`` (``start`` a line start) has a record
    stating capability sets (:data:`~kexecwatch.core.process.capabilities.CAPABILITY_RECORDS`)."""
    return any(buf.find(head, start - 1, run[1]) >= 0 for head in _CAPABILITY_HEADS)


_CAPABILITY_HEADS = tuple(b"\ntype=" + kind.encode() + b" " for kind in sorted(CAPABILITY_RECORDS))


def _cwd_text(body: bytes | None) -> str | None:
    """The ``cwd=`` value of a CWD record's body, as the document holds it."""
    if body is None:
        return None
    cwd = decode_untrusted(fields_of(body)[0].get("cwd"))
    return None if cwd is None else cwd.decode("utf-8", "surrogateescape")


def _parent_known(table: ProcessTableLike, ppid: int, time_ms: int) -> Known | None:
    """The parent's :data:`~kexecwatch.core.scan.argtest.Known` as the full path will read it
    (``ProcessTableLike.parent_at``)."""
    parent = table.parent_at(ppid, time_ms)
    return None if parent is None else known_of(parent.name, parent.executable, parent.args)


def _record_inodes(records: tuple[AuditRecord, ...]) -> Collection[int]:
    return frozenset().union(*(path_inodes(r.body) for r in records if r.type == "PATH"))


def raw_args(records: tuple[AuditRecord, ...]) -> bytes | None:
    """The raw argv of an event's records: its EXECVE bodies joined by newlines
    (what :func:`~kexecwatch.core.scan.fastpath.argv_of_execve_bodies` decodes), or ``None``."""
    bodies = [r.body for r in records if r.type == "EXECVE"]
    return b"\n".join(bodies) if bodies else None
