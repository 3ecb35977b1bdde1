"""The native scanner: the native bulk path driven from the scanner stage.

Theory of operation: :class:`NativeScanner` is the Python scanner
(:class:`~kexecwatch.core.scan.scanner.PythonScanner`) with a native session in front. While
the assembler is quiet (:meth:`~kexecwatch.core.audit.assembler.Assembler.quiet_state`), the
session scans the block and takes, without Python, every unit whose effect it can
reproduce exactly:

1. a whole syscall run as :func:`~kexecwatch.core.scan.fastpath.run_end` reads it (canonical
   ``SYSCALL`` layout, no ``node=``, no NUL, no carriage return), optionally followed by
   the ``EOE`` of the same event; two interleaved runs as
   :func:`~kexecwatch.core.scan.fastpath.split_pair` pulls them apart;
2. a single-record event of a type in ``single_types`` (not telemetry, not auditd's own);
   a ``LOGIN`` record with its syscall's whole run right after it (two events of one
   id), or alone: then the result names it (``leads``) and the assembler remembers it,
   as it does a ``LOGIN`` it reads, for its syscall's records that may follow;
3. blank and ``#`` lines;

each only when it is plain progress (its time within a window of the present, its serial
at or after the expected one, not ahead, above the done ceiling), no prefilter needs it
(the verdict cache, filled by Python: :meth:`NativeScanner.verdict_and_needles`), no
learned inode may be in it, and, when its rules' prefilters could take it only for an
argument needle, no such needle can be in its command line (the session holds every
rule's needles, :meth:`NativeScanner.prefilters_changed`; ``native/src/needles.rs``).
When they could take it also for plain facts (the parent, the working directory, the
ids, the capability sets: :func:`plain_split`), it is taken only when Python answered
"learned only" for a run with the same facts (``native/src/plain.rs``): the session
stops at the first run of those facts (``STOP_PLAIN``), Python decides it with its own
code and tells the session (:meth:`NativeScanner._plain_run`). A relevant run whose
needles may be in its command line is taken the same way, by its full key: every plain
fact and its EXECVE bodies, all that its rules' argument tests read (a command that
recurs, needle and all, is decided once). Whether its needles matter at all, the
session asks of the tests behind the verdict's gate (:func:`needle_tests`): each as its
clauses, needle sets every one of which must have a needle in the command line for the
test to hold (ABI 10); when no test's clauses all do, the run is judged as one without
its needles. When only tests with a guard (conjuncts that read no command line of its
own, as the parent's name) may hold, the session asks once per the guards' facts which
guards hold (a ``STOP_PLAIN`` with a guard key, :meth:`NativeScanner._answer_guards`:
:meth:`~kexecwatch.core.scan.scanner._Accepting.alive`), and judges the run again.
The taken units teach the session's process table
(:class:`~kexecwatch.core.process.nativetable.NativeProcessTable`), the counts, the done set
(:meth:`~kexecwatch.core.audit.assembler.Assembler.absorb`: the session keeps the taken events'
rows, the assembler one block per scan, see
:meth:`~kexecwatch.core.audit.assembler.Assembler.keep_done_in`) and the lost-event reports, which
go through the detector's normal handling. Anything else is handed back: this scanner
handles that unit in Python and calls the session again. A live exec whose parent the
table does not know stops the scan so that ``/proc`` is read first, as the Python path
does.

Rule 1: Python keeps the meaning. Native never makes an alert, a process event, a parse
issue or a time jump; the differential tests (``tests/test_native_differential.py``) hold
both scanners to the same outputs, counts and checkpoint state.
Rule 2: a failing native call (:class:`NativeError` from the binding) costs one diagnostic;
native scanning stops for that detector and Python scans on from the same offset.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable
from collections.abc import Set as AbstractSet
from typing import Any, cast

from kexecwatch.core.audit.assembler import EventsLost
from kexecwatch.core.audit.linebuffer import Region
from kexecwatch.core.audit.msgtypes import (
    TELEMETRY_TYPES,
    is_daemon_record,
    is_single_record,
)
from kexecwatch.core.audit.nativeapi import (
    STOP_END,
    STOP_HANDBACK,
    STOP_LIVE,
    STOP_PLAIN,
    STOP_RENDER,
    STOP_VERDICT,
    NativeLib,
    NativeSession,
    NeedleBytes,
)
from kexecwatch.core.audit.record import EventId
from kexecwatch.core.audit.syscalls import EXEC_SYSCALLS, FORK_SYSCALLS
from kexecwatch.core.process.eventlines import EventLines
from kexecwatch.core.scan.argtest import AllOf, AnyOf, Needle, Needles, Part, own_needles
from kexecwatch.core.scan.fastpath import SYSCALL_HEAD, RunBounds, run_end
from kexecwatch.core.scan.prefilter import LearnedItems, Prefilter
from kexecwatch.core.scan.scanner import (
    ARGS_FROM_TABLE,
    PythonScanner,
    _Accepting,
    _Run,
    in_window,
)

__all__ = [
    "NativeScanner",
    "default_native",
    "set_default_native",
    "single_types",
]

#: Verdict code bits (the contract with the native library).
LEARN_EXEC = 1
LEARN_FORK = 2
LEARN_OTHER = 3
EVALUATED_BIT = 1 << 2
NEED_IF_RELEVANT = 1 << 3
NEED_ALWAYS = 1 << 4
INODE_IF_RELEVANT = 1 << 5
INODE_ALWAYS = 1 << 6
NEEDLE_IF_RELEVANT = 1 << 7

#: What :meth:`~kexecwatch.core.scan.scanner.PythonScanner.fast_verdict` answers for a
#: run that only teaches the table.
_FastVerdict = tuple[str, bool, bytes | None, bytes | None, bool]
#: A verdict key as :data:`~kexecwatch.core.scan.fastpath.SYSCALL_HEAD` groups it: raw
#: call, success, comm and exe.
_Key = tuple[bytes, bytes, bytes, bytes]
#: What :meth:`NativeScanner.verdict_and_needles` tells of a verdict with a needle test:
#: the needles, whether a run without EXECVE lines has the empty command line, what
#: its plain tests read (``None``: it has none; :func:`plain_split`), and the tests
#: behind its gate as their needle clauses (:func:`needle_tests`; empty: not needed).
_NeedleVerdict = tuple[
    frozenset[NeedleBytes],
    bool,
    int | None,
    tuple[tuple[frozenset[NeedleBytes], ...], ...],
    tuple[int, int] | None,
]
#: The most verdict codes :meth:`NativeScanner.hands_back` remembers (as the session).
_MAX_CODES = 4096

# Single-record types seen in ordinary logs (user space, anomalies, access decisions).
_COMMON_SINGLE = (
    "USER",
    "LOGIN",
    "USER_AUTH",
    "USER_ACCT",
    "USER_MGMT",
    "CRED_ACQ",
    "CRED_DISP",
    "CRED_REFR",
    "USER_START",
    "USER_END",
    "USER_CHAUTHTOK",
    "USER_ERR",
    "USER_LOGIN",
    "USER_LOGOUT",
    "USER_CMD",
    "USER_TTY",
    "USER_AVC",
    "USER_SELINUX_ERR",
    "USER_ROLE_CHANGE",
    "USER_MAC_POLICY_LOAD",
    "ADD_USER",
    "DEL_USER",
    "ADD_GROUP",
    "DEL_GROUP",
    "SERVICE_START",
    "SERVICE_STOP",
    "SYSTEM_BOOT",
    "SYSTEM_SHUTDOWN",
    "SYSTEM_RUNLEVEL",
    "AVC",
    "SELINUX_ERR",
    "ANOM_ABEND",
    "ANOM_PROMISCUOUS",
    "ANOM_LINK",
    "ANOM_LOGIN_FAILURES",
    "RESP_ANOMALY",
)


def single_types() -> tuple[str, ...]:
    """The single-record event types native may take: single records by
    :func:`~kexecwatch.core.audit.msgtypes.is_single_record`, neither telemetry nor auditd's own."""
    return tuple(
        t
        for t in _COMMON_SINGLE
        if is_single_record(t) and not is_daemon_record(t) and t not in TELEMETRY_TYPES
    )


#: A line start native may take (:meth:`NativeScanner._lines_to_syscall`).
_NATIVE_LINE = re.compile(
    b"\ntype=(?:"
    + b"|".join(sorted(t.encode() for t in {"SYSCALL", *single_types()}))
    + b") msg=audit\\("
)

#: A scan's ``due_ms`` when a sequence is due already: stop after the first event.
_DUE_NOW = -(2**63)

_DEFAULT: list[NativeLib | None] = [None]


def set_default_native(lib: NativeLib | None) -> None:
    """Make ``lib`` the native library every :class:`~kexecwatch.core.detect.detector.Detector`
    uses unless told otherwise (the shells install the chosen scanner at start)."""
    _DEFAULT[0] = lib


def default_native() -> NativeLib | None:
    """The process-wide native library (``None``: the Python scanner)."""
    return _DEFAULT[0]


#: Where a native failure is reported: (line number, reason, outputs).
NativeErrorReport = Callable[[int, str, list[Any]], None]


class NativeScanner(PythonScanner):
    """The Python scanner with a native session taking the bulk (module docstring).

    Args:
        session: the detector's native session (it holds the process table too).
        report: called once if a native call fails; native scanning then stops.
        error_types: what a failing native call may raise (the binding's ``NativeError``
            and anything a bad call raises: every exception, by default).
        **kwargs: as :class:`~kexecwatch.core.scan.scanner.PythonScanner`.
    """

    def __init__(
        self,
        *args: Any,
        session: NativeSession,
        report: NativeErrorReport,
        error_types: tuple[type[Exception], ...] = (Exception,),
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.session = session
        self.native_on = True
        self._report = report
        self._errors = error_types
        self._inode_prefilters: list[Prefilter] = []
        self._inodes: frozenset[int] | None = None
        self._inode_stamp: tuple[tuple[int, int], ...] | None = None
        self._pending: str | None = None
        # The needles the session holds (set_needles), as Python states them; None: the
        # session holds none (too many for it): every argument test is Python's.
        self._needles: frozenset[NeedleBytes] | None = None
        self._render: Callable[[bytes], list[bytes] | None] | None = None
        self._render_allowed: Callable[[], bool] = bool
        self._render_now = False
        self._render_inodes: Callable[[], list[Prefilter]] = list
        # The verdict code the session holds or would hold per key (hands_back).
        self._codes: dict[tuple[bytes, bytes, bytes, bytes], int] = {}
        # The events native takes stay in the session; the done set asks it about them.
        session.done_keep(True)
        self._assembler.keep_done_in(session)
        # The changes to the serials ahead wait in the session until Python reads them.
        session.ahead_hold(True)
        self._assembler.pull_ahead_from(session)

    def render_events(
        self,
        answer: Callable[[bytes], list[bytes] | None],
        allowed: Callable[[], bool],
        host: bytes,
        host_key: bytes,
        inode_prefilters: Callable[[], list[Prefilter]],
    ) -> None:
        """Have the session write ``--events`` lines of plain execs
        (:mod:`kexecwatch.core.process.eventlines`): ``answer`` gives the pieces of a
        render key, ``allowed`` says before each scan whether lines may be written now,
        ``host``/``host_key`` as :func:`~kexecwatch.core.process.eventlines.host_parts`;
        ``inode_prefilters`` the rules' inode tests, whose inodes the session must know
        (it hands back the runs that hold one)."""
        if not self.native_on:
            return
        try:
            self.session.render_config(host, host_key)
        except self._errors as exc:
            self._fail(0, exc, None)
            return
        self._render = answer
        self._render_allowed = allowed
        self._render_inodes = inode_prefilters
        self._inode_prefilters = self._inode_prefilters_now()
        self._inodes = None

    def _inode_prefilters_now(self) -> list[Prefilter]:
        render: list[Prefilter] = getattr(self, "_render_inodes", list)()
        every = (*self.rule_prefilters, *self.prefilters, *render)
        return [i for i in every if i.path_items is not None]

    def prefilters_changed(self) -> None:
        """Forget every verdict (and render answer), here and in the session."""
        super().prefilters_changed()
        self._codes.clear()
        if getattr(self, "_render", None) is not None and self.native_on:
            try:
                self.session.render_clear()
            except self._errors as exc:
                self._fail(0, exc, None)
        self._inode_prefilters = self._inode_prefilters_now()
        self._inodes = None
        if self.native_on:
            try:
                self.session.clear_verdicts()
            except self._errors as exc:
                self._fail(0, exc, None)
            else:
                self._give_needles()

    def _give_needles(self) -> None:
        """Give the session every needle of the rules' argument tests, once: verdicts
        then name the ones their runs are tested for (:meth:`verdict_code`)."""
        wanted = {
            wire
            for prefilter in self.rule_prefilters
            if prefilter.args is not None
            for needle in prefilter.args.needles()
            if (wire := needle_bytes(needle)) is not None
        }
        needles = sorted(wanted)
        try:
            self.session.set_needles(needles)
        except self._errors:
            self._needles = None  # more than the session takes: the tests stay Python's
            return
        self._needles = frozenset(needles)

    def hands_back(self, key: tuple[bytes, bytes, bytes, bytes], relevant: bool) -> bool:
        """Whether the session hands back every whole run of ``key`` (raw call, success,
        comm, exe) whatever its lines hold: its verdict code needs it always, or
        (``relevant``: evaluated, in the window) whenever relevant. Not so for a code
        whose hand-back depends on the run's inodes or needles."""
        code = self._code(key)
        if code & NEED_ALWAYS:
            return True
        return relevant and bool(code & NEED_IF_RELEVANT)

    def _code(self, key: tuple[bytes, bytes, bytes, bytes]) -> int:
        """The verdict code the session holds or would hold for ``key`` (remembered)."""
        code = self._codes.get(key)
        if code is None:
            found, needles = self.verdict_and_needles(b"\0".join(key))
            code = found if needles is None else found | NEEDLE_IF_RELEVANT
            if len(self._codes) >= _MAX_CODES:
                self._codes.clear()
            self._codes[key] = code
        return code

    def verdict_code(self, key: bytes) -> int:
        """The verdict code of a native verdict key (``call\\0success\\0comm\\0exe``), as
        :meth:`~kexecwatch.core.scan.scanner.PythonScanner.fast_verdict` would decide
        (without :data:`NEEDLE_IF_RELEVANT`: :meth:`send_verdict` adds it)."""
        return self.verdict_and_needles(key)[0]

    def send_verdict(self, key: bytes, verdict: tuple[int, _NeedleVerdict | None]) -> None:
        """Cache the verdict of ``key`` (:meth:`verdict_and_needles`) in the session: with
        the needles of its rules' argument tests when those are all it hands back for,
        and what their plain tests read when it has some."""
        code, needles = verdict
        if needles is None:
            self.session.set_verdict(key, code)
        else:
            wire, empty_if_no_execve, plain, tests, guards = needles
            self.session.set_verdict_needles(
                key,
                code,
                wire,
                empty_if_no_execve=empty_if_no_execve,
                plain=plain,
                tests=tests,
                guards=guards,
            )

    def verdict_and_needles(self, key: bytes) -> tuple[int, _NeedleVerdict | None]:
        """The verdict code of ``key`` and, when its rules' prefilters can take a run of
        it only for a needle in its own command line
        (:meth:`~kexecwatch.core.scan.scanner.PythonScanner.verdict_needles`), or for such
        a needle or plain facts (:func:`plain_split`), those needles, whether a run
        without EXECVE lines has the empty command line and what the plain tests read
        (``None``: there are none); the code then has :data:`NEEDLE_IF_RELEVANT` instead
        of :data:`NEED_IF_RELEVANT`."""
        call, success_raw, comm_raw, exe_raw = key.split(b"\0")
        raw = (call, success_raw, comm_raw, exe_raw)
        # The remembered verdict, when there is one: its prefilters' split() is kept.
        verdict = self.verdicts.get(raw) or self.verdict(raw)
        syscall, success, comm, _exe, evaluated, for_rules, for_others = verdict
        if success and syscall in EXEC_SYSCALLS:
            code = LEARN_EXEC
        elif success and syscall in FORK_SYSCALLS:
            code = LEARN_FORK
        else:
            code = LEARN_OTHER if comm is not None else 0
        if evaluated:
            code |= EVALUATED_BIT
        code |= _needs(for_others, NEED_ALWAYS, INODE_ALWAYS)
        rules = _needs(for_rules, NEED_IF_RELEVANT, INODE_IF_RELEVANT)
        if rules == NEED_IF_RELEVANT and self._needles is not None:
            found = self.verdict_needles(raw)
            plain: int | None = None
            if found is None:
                split = plain_split(for_rules, syscall)
                if split is not None:
                    found = split[:2]
                    plain = split[2]
            if found is not None:
                needles, empty_if_no_execve = found
                wire = {needle_bytes(n) for n in needles}
                if not wire and plain is None:
                    return code, None  # no rule prefilter can take such a run
                if wire <= self._needles:  # (an unencodable needle is None: not in it)
                    return code | NEEDLE_IF_RELEVANT, (
                        frozenset(w for w in wire if w is not None),
                        empty_if_no_execve,
                        plain,
                        *self._tests_of(for_rules),
                    )
        return code | rules, None

    def _tests_of(
        self, for_rules: tuple[Prefilter, ...] | bool
    ) -> tuple[tuple[tuple[frozenset[NeedleBytes], ...], ...], tuple[int, int] | None]:
        """The tests behind a needle verdict's gate (:func:`needle_tests`) as the session
        takes them: a needle no command line holds left out of its clause (it is never
        found), a clause with a needle the session does not hold left out of its test
        (fewer clauses: the test may hold more often); none at all when no test has two
        clauses nor a guard (the gate's needles alone decide as much). With them, the
        tests' guards (:func:`test_guards`)."""
        needles = self._needles
        if needles is None:
            return (), None
        tests = []
        for clauses in needle_tests(for_rules):
            test = []
            for clause in clauses:
                wire = {w for n in clause if (w := needle_bytes(n)) is not None}
                if wire <= needles:
                    test.append(frozenset(wire))
            tests.append(tuple(test))
        guards = test_guards(for_rules)
        if all(len(test) < 2 for test in tests) and guards is None:
            return (), None
        return tuple(tests), guards

    def scan(self, region: Region, out: list[Any]) -> int:
        """Handle every line of ``region``: native while quiet, Python for the rest.
        Returns the number the line after ``region`` has."""
        if not self.native_on:
            if self._pending is not None:
                self._report(region.line_no, self._pending, out)
                self._pending = None
            return super().scan(region, out)
        buf = region.framed
        limit = len(buf)
        pos = 1
        line_no = region.line_no
        base = region.offset - 1
        source = region.source
        assembler = self._assembler
        session = self.session
        stats = self._stats
        host = self._host
        while pos < limit:
            state = None if assembler.inflight else assembler.quiet_state()
            if state is None:
                pos, line_no = self._step(buf, pos, line_no, source, base, out)
                if not assembler.inflight:
                    # The event Python read is complete: its EOE (and any line native
                    # would hand back) is read here, not after a round trip each.
                    pos, line_no = self._lines_to_syscall(buf, pos, line_no, source, base, out)
                continue
            if self._render is None and self._python_first(buf, pos):
                # The session would hand it straight back (after a verdict or a due
                # stop, or events Python finished line by line): no round trip. (Not
                # with --events: the session may write a needed exec's line itself.)
                after, line_no = self._needed_runs(buf, pos, line_no, source, base, out)
                if after != pos:
                    pos = after
                    continue
            if self._inode_prefilters:
                self._sync_inodes()
            due = self.sequences_due
            try:
                if self._render is not None and self._render_allowed() != self._render_now:
                    self._render_now = not self._render_now
                    session.render_on(self._render_now)
                # Stop where a sequence comes due, as the Python path matches it there
                # (already due: at the first event taken).
                result = session.scan(
                    buf, pos, state, due if stats.last_time_ms < due else _DUE_NOW
                )
            except self._errors as exc:
                self._fail(line_no, exc, out)
                return PythonScanner.scan(
                    self, Region(buf[pos - 1 :], line_no, source, base + pos), out
                )
            # Even when nothing was taken: the serials ahead are in step again.
            assembler.absorb(result)
            if result.rendered:
                out.append(EventLines(result.rendered))
            if result.lost:
                # Each came before the event that revealed it, so before any match below.
                host.handle(
                    [
                        EventsLost(None, first, last, EventId(sec, ms, serial))
                        for first, last, sec, ms, serial in result.lost
                    ],
                    out,
                )
            if result.lines:
                stats.lines += result.lines
                stats.records += result.records
                stats.events += result.events
                stats.process_events += result.process_events
                stats.last_time_ms = max(stats.last_time_ms, result.last_time_ms)
                line_no += result.lines
                if stats.last_time_ms >= self.sequences_due:
                    # A sequence came due at the last event native took (it stopped
                    # there: STOP_DUE): match it now, as the Python path does after
                    # that event (not at the next event Python reads).
                    host.clock(stats.last_time_ms, out)
            pos = result.end
            stop = result.stop
            if stop == STOP_END:
                return line_no
            if stop == STOP_VERDICT:
                assert result.key is not None
                verdict = self.verdict_and_needles(result.key)
                try:
                    self.send_verdict(result.key, verdict)
                except self._errors as exc:
                    self._fail(line_no, exc, out)
                    return PythonScanner.scan(
                        self, Region(buf[pos - 1 :], line_no, source, base + pos), out
                    )
            elif stop == STOP_RENDER and self._render is not None:
                assert result.key is not None
                try:
                    session.render_set(result.key, self._render(result.key))
                except self._errors as exc:
                    self._fail(line_no, exc, out)
                    return PythonScanner.scan(
                        self, Region(buf[pos - 1 :], line_no, source, base + pos), out
                    )
            elif stop == STOP_PLAIN:
                assert result.key is not None
                if _is_guard_key(result.key) and self._answer_guards(buf, pos):
                    continue  # the session judges the run again, knowing its guards
                # Python decides the run (its needles are absent: its plain facts do),
                # and says when it only learned from it: the same facts stay native.
                pos, line_no = self._plain_run(buf, pos, line_no, source, base, out)
                if not self.native_on:
                    return PythonScanner.scan(
                        self, Region(buf[pos - 1 :], line_no, source, base + pos), out
                    )
                pos, line_no = self._lines_to_syscall(buf, pos, line_no, source, base, out)
                pos, line_no = self._needed_runs(buf, pos, line_no, source, base, out)
            elif stop == STOP_LIVE:
                self.table.remember_live(result.ppid, result.time_ms)
            elif stop == STOP_HANDBACK:
                # Python takes the unit, then reads on up to the next SYSCALL line (the
                # EOE after a run it took, node= logs, odd layouts): native would hand
                # those back one by one, each call costing a round trip.
                pos, line_no = self._step(buf, pos, line_no, source, base, out)
                pos, line_no = self._lines_to_syscall(buf, pos, line_no, source, base, out)
                pos, line_no = self._needed_runs(buf, pos, line_no, source, base, out)
        return line_no

    def _needed_runs(  # noqa: PLR0917 - the scan's position, passed along
        self, buf: bytes, pos: int, line_no: int, source: Hashable, base: int, out: list[Any]
    ) -> tuple[int, int]:
        """Take in Python the whole runs that follow at ``pos`` and that native would
        hand back anyway: those whose verdict code sends every relevant run back
        (:meth:`hands_back`: a prefilter needs it in full, or Python must decide, run by
        run, whether one does: many rules, a test on the parent or the ids), two
        interleaved runs whose first is such a run, and while writing ``--events``,
        every exec it cannot write. Each would cost a round trip. Stops at the first
        unit native may take.

        The code alone decides (remembered per key, :meth:`hands_back`): a run goes to
        Python's fast path as it would in the Python scanner (one verdict per run, made
        there), with no look-ahead verdict; the lines up to the next run are read here
        too when they are not a ``SYSCALL`` line."""
        if self._render_now:
            return self._needed_runs_rendering(buf, pos, line_no, source, base, out)
        limit = len(buf)
        stats = self._stats
        match = SYSCALL_HEAD.match
        take = self.fast_event
        reads = self._python_reads
        while pos < limit:
            m = match(buf, pos - 1)
            if m is None or not reads(m):
                break
            run = run_end(buf, m)
            if run is None:
                # Two interleaved runs: the session takes a pair only when both are
                # plain, so it would hand this one back (its first run needs Python).
                stop = self.fast_pair(buf, m, out)
                if not stop:
                    break
                n = buf.count(b"\n", pos, stop)
                pos = stop
            elif take(buf, m, run, line_no, out):
                n = run[3]  # the run's lines: pos is its start (no second pass over them)
                pos = run[1]
            else:
                break
            stats.lines += n
            stats.records += n
            line_no += n
            if not buf.startswith(b"type=SYSCALL ", pos):
                pos, line_no = self._lines_to_syscall(buf, pos, line_no, source, base, out)
        return pos, line_no

    def _plain_run(  # noqa: PLR0917 - the scan's position, passed along
        self, buf: bytes, pos: int, line_no: int, source: Hashable, base: int, out: list[Any]
    ) -> tuple[int, int]:
        """Handle the run at ``pos`` the session stopped at (``STOP_PLAIN``) as
        :meth:`_step` does, its verdict made first by Python's own
        :meth:`~kexecwatch.core.scan.scanner.PythonScanner.fast_verdict` (and reused
        there): when it only teaches the table, and the run is relevant (the only runs
        the session asks about), the session keeps that answer for the run's plain or
        full key (``native/src/plain.rs``). Returns the next position and line."""
        m = SYSCALL_HEAD.match(buf, pos - 1)
        run = None if m is None else run_end(buf, m)
        if m is None or run is None or self._assembler.inflight:
            return self._step(buf, pos, line_no, source, base, out)
        key = cast(_Key, m.group("call", "success", "comm", "exe"))
        time_ms = int(m["sec"]) * 1000 + int(m["ms"])
        try:
            verdict = self.fast_verdict(key, buf, pos, run, time_ms, extra=m["extra"])
        except Exception:  # the run's own handling (_take) reports it
            return self._step(buf, pos, line_no, source, base, out)
        if verdict is not None and verdict[4]:
            try:
                self.session.plain_learned()
            except self._errors as exc:
                self._fail(line_no, exc, out)
        self.fast_verdict = _known_verdict(self, buf, pos, verdict)  # type: ignore[method-assign]
        try:
            return self._step(buf, pos, line_no, source, base, out)
        finally:
            self.__dict__.pop("fast_verdict", None)

    def _answer_guards(self, buf: bytes, pos: int) -> bool:
        """Tell the session which tests' guards hold for the run at ``pos`` (its stop's
        guard key): :meth:`~kexecwatch.core.scan.scanner._Accepting.alive` on its facts.
        ``False`` when there is no answer here (then Python reads the run)."""
        m = SYSCALL_HEAD.match(buf, pos - 1)
        run = None if m is None else run_end(buf, m)
        if m is None or run is None:
            return False
        raw = cast(_Key, m.group("call", "success", "comm", "exe"))
        verdict = self.verdicts.get(raw) or self.verdict(raw)
        syscall, _success, comm, exe, _evaluated, for_rules, _others = verdict
        if not isinstance(for_rules, _Accepting) or test_guards(for_rules) is None:
            return False
        time_ms = int(m["sec"]) * 1000 + int(m["ms"])
        facts = _Run(self, buf, pos, run, (comm, exe, m["extra"], syscall), time_ms)
        alive = sum(1 << i for i in for_rules.alive(facts) if i < 64)
        try:
            return self.session.alive_answer(alive)
        except self._errors:
            return False

    def _python_first(self, buf: bytes, pos: int) -> bool:
        """Whether the unit at line start ``pos`` is a run (or the first of two
        interleaved runs) the session would hand back whatever its lines hold."""
        m = SYSCALL_HEAD.match(buf, pos - 1)
        return m is not None and self._python_reads(m)

    def _python_reads(self, m: re.Match[bytes]) -> bool:
        """Whether the session would hand back the whole run ``m`` heads whatever its
        lines hold (:meth:`hands_back`, relevance from its verdict code and time)."""
        key = cast(_Key, m.group("call", "success", "comm", "exe"))
        code = self._codes.get(key)
        if code is None:
            code = self._code(key)
        if code & NEED_ALWAYS:
            return True
        if not code & NEED_IF_RELEVANT or not code & EVALUATED_BIT:
            return False
        if self._unbounded:
            return True
        return in_window(int(m["sec"]) * 1000 + int(m["ms"]), self.since_ms, self.until_ms)

    def _needed_runs_rendering(  # noqa: PLR0917 - the scan's position, passed along
        self, buf: bytes, pos: int, line_no: int, source: Hashable, base: int, out: list[Any]
    ) -> tuple[int, int]:
        """:meth:`_needed_runs` while the session writes ``--events`` lines: Python
        reads on through the runs a prefilter needs in full that native cannot write
        (its look-ahead verdict is reused when the run is taken)."""
        limit = len(buf)
        stats = self._stats
        while pos < limit:
            m = SYSCALL_HEAD.match(buf, pos - 1)
            run = None if m is None else run_end(buf, m)
            if m is None or run is None:
                break
            sec, ms = m.group("sec", "ms")
            call, success, comm, exe, extra = m.group("call", "success", "comm", "exe", "extra")
            key = (call, success, comm, exe)
            time_ms = int(sec) * 1000 + int(ms)
            start = m.start() + 1
            verdict = self.fast_verdict(key, buf, start, run, time_ms, extra=extra)
            if verdict is not None:
                break  # only teaches the table: native's to take
            if self._renderable(m):
                break  # native may write its --events line
            # fast_event asks for this verdict again: answer it from here (an instance
            # attribute over the method, for this one run), unless the events the
            # assembler lets out first (none while nothing is in flight) could change
            # what the prefilters know.
            if not self._assembler.inflight:
                self.fast_verdict = _known_verdict(self, buf, start, verdict)  # type: ignore[method-assign]
            try:
                taken = self.fast_event(buf, m, run, line_no, out)
            finally:
                self.__dict__.pop("fast_verdict", None)
            if not taken:
                break
            n = run[3]
            stats.lines += n
            stats.records += n
            pos, line_no = self._lines_to_syscall(buf, run[1], line_no + n, source, base, out)
        return pos, line_no

    def _renderable(self, m: re.Match[bytes]) -> bool:
        """Whether native may write the ``--events`` line of the run ``m`` heads (a guess
        that only saves round trips: a successful exec by a child of a pid above 1; with
        a known parent, native walks its ancestors for an entry leader)."""
        return m.group("success") == b"yes" and int(m.group("ppid")) > 1

    def _step(  # noqa: PLR0917 - the scan's position, passed along
        self, buf: bytes, pos: int, line_no: int, source: Hashable, base: int, out: list[Any]
    ) -> tuple[int, int]:
        """Handle the one unit at line start ``pos`` as the Python scan does: a whole
        run or pair taken fast, or one line. Returns the next position and line."""
        m = SYSCALL_HEAD.match(buf, pos - 1)
        if m is not None:
            run = run_end(buf, m)
            if run is not None:
                stop = run[1] if self.fast_event(buf, m, run, line_no, out) else 0
            else:
                stop = self.fast_pair(buf, m, out)
            if stop:
                n = buf.count(b"\n", pos, stop)
                self._stats.lines += n
                self._stats.records += n
                return stop, line_no + n
        nl = buf.find(b"\n", pos)
        self._host.line(buf[pos:nl], line_no, source, base + pos, out)
        return nl + 1, line_no + 1

    def _lines_to_syscall(  # noqa: PLR0917 - the scan's position, passed along
        self, buf: bytes, pos: int, line_no: int, source: Hashable, base: int, out: list[Any]
    ) -> tuple[int, int]:
        """Read lines in Python up to the next line native may take: a SYSCALL line,
        or a record of a type native takes on its own (``single_types``). Those go back
        to native, which reads them without the full parser's cost; anything else (an
        ``EOE`` after a run Python took, ``node=`` lines) native would hand back one
        round trip at a time."""
        found = _NATIVE_LINE.search(buf, pos - 1)
        stop = len(buf) if found is None else found.start() + 1
        line = self._host.line
        while pos < stop:
            nl = buf.find(b"\n", pos)
            line(buf[pos:nl], line_no, source, base + pos, out)
            line_no += 1
            pos = nl + 1
        return pos, line_no

    def _sync_inodes(self) -> None:
        stamp = inode_stamp(self._inode_prefilters)
        if stamp is not None and stamp == self._inode_stamp and self._inodes is not None:
            return  # the learned inodes are as at the last call: no pair read again
        self._inode_stamp = stamp
        inodes = inode_values(self._inode_prefilters)
        if inodes != self._inodes:
            self.session.set_inodes(inodes)
            self._inodes = inodes

    def _fail(self, line_no: int, exc: Exception, out: list[Any] | None) -> None:
        """One diagnostic, then the Python scanner alone for this detector (outside a
        scan, the diagnostic waits for the next one)."""
        self.native_on = False
        reason = f"native scanner failed, the Python scanner goes on: {type(exc).__name__}: {exc}"
        if out is None:
            self._pending = reason
        else:
            self._report(line_no, reason, out)


def _known_verdict(
    scanner: NativeScanner, buf: bytes, start: int, verdict: _FastVerdict | None
) -> Callable[..., _FastVerdict | None]:
    """:meth:`~kexecwatch.core.scan.scanner.PythonScanner.fast_verdict` of ``scanner``,
    answering ``verdict`` (just made, with its :attr:`needed_by_rules`) for the run at
    ``buf[start]`` without making it again."""
    by_rules = scanner.needed_by_rules
    made = PythonScanner.fast_verdict

    def fast_verdict(
        key: tuple[bytes, bytes, bytes, bytes],
        at: bytes,
        first: int,
        run: RunBounds,
        time_ms: int,
        *,
        extra: bytes | None = None,
    ) -> _FastVerdict | None:
        if at is buf and first == start:
            scanner.needed_by_rules = by_rules
            return verdict
        return made(scanner, key, at, first, run, time_ms, extra=extra)

    return fast_verdict


def plain_split(
    for_rules: tuple[Prefilter, ...] | bool, syscall: str | None
) -> tuple[frozenset[Needle], bool, int] | None:
    """For a verdict's rule prefilters (an ``_Accepting``, or ``True``): when
    :meth:`~kexecwatch.core.scan.scanner._Accepting.split` sorts them into a gate and
    plain tests only (no others, and some plain test that is neither ``True`` nor
    ``False``), the needles one of which a run's own command line must hold for a gated
    test to hold, whether a run without EXECVE lines has the empty command line (with
    no gated test, it does not matter: ``True``), and what the plain tests read as bits
    (:data:`~kexecwatch.core.scan.argtest.Reads` in order: 1, 2, 4, 8, 16). ``None``
    otherwise. For such a verdict, the decision on a relevant run whose needles are
    absent depends on what the plain tests read alone
    (:meth:`~kexecwatch.core.scan.scanner._Accepting.plain_holds`): the session may
    remember Python's answer per those facts (``native/src/plain.rs``)."""
    split = getattr(for_rules, "split", None)
    if split is None:
        return None
    _gate, gated, plain, others = split()
    if others or all(p is False for p in plain) or any(p is True for p in plain):
        return None
    needles: set[Needle] = set()
    for part in gated:
        # The set split() gates on (the rarest), not the fewest: a run whose command
        # line holds one goes to Python, and short needles are in most command lines.
        found = own_needles(part, rare=True)
        if found is None:  # split() gates only parts that have some
            return None
        needles |= found
    reads: tuple[bool, ...] = for_rules.plain_reads  # type: ignore[union-attr]
    bits = sum(1 << n for n, read in enumerate(reads) if read)
    return frozenset(needles), syscall not in ARGS_FROM_TABLE or not gated, bits


def needle_tests(
    for_rules: tuple[Prefilter, ...] | bool,
) -> tuple[tuple[frozenset[Needle], ...], ...]:
    """The tests behind the gate of a verdict's rule prefilters (``gated`` of
    :meth:`~kexecwatch.core.scan.scanner._Accepting.split`), each as its *clauses*:
    needle sets each of which must have a needle in the process's own command line (a
    known one) for the test to hold (:func:`needle_clauses`). A test that never holds is
    left out. When no test's clauses all have one, no test behind the gate holds, and
    the verdict's decision on the run is its plain tests' alone (or "learned only")."""
    split = getattr(for_rules, "split", None)
    if split is None:
        return ()
    gated = split()[1]
    # A test that never holds: one clause no needle is in (the tests keep their places,
    # which _Accepting.alive() numbers).
    return tuple((frozenset(),) if part is False else tuple(needle_clauses(part)) for part in gated)


def test_guards(for_rules: tuple[Prefilter, ...] | bool) -> tuple[int, int] | None:
    """What the guards of the tests behind a verdict's gate read (``argtest.Reads`` as
    bits: 1, 2, 4, 8, 16) and which tests have one (bit ``i``: ``gated[i]``), as
    :meth:`~kexecwatch.core.scan.scanner._Accepting.alive` answers on them; ``None`` when
    none has one (or there are more than 64 tests)."""
    if not isinstance(for_rules, _Accepting):
        return None
    gated = for_rules.split()[1]
    guards = for_rules.guards
    if guards is None or len(gated) > 64:
        return None
    reads = sum(1 << n for n, read in enumerate(for_rules.guard_reads) if read)
    guarded = sum(1 << i for i, guard in enumerate(guards) if guard is not None)
    return (reads, guarded) if guarded else None


def needle_clauses(part: Part | bool) -> list[frozenset[Needle]]:
    """Needle sets each of which must have a needle in the process's own command line
    (when it is known) for ``part`` to hold: a :class:`~kexecwatch.core.scan.argtest.Needles`
    test on it, every clause of each part of an ``AllOf``, and for an ``AnyOf`` whose
    every alternative has one, the union of one clause of each (the rarest, as
    :func:`~kexecwatch.core.scan.argtest.own_needles` picks); no clause for any other
    test (it may hold whatever the line holds)."""
    if isinstance(part, Needles):
        return [] if part.parent else [part.needles]
    if isinstance(part, AllOf):
        return [clause for item in part.parts for clause in needle_clauses(item)]
    if isinstance(part, AnyOf):
        union: set[Needle] = set()
        for item in part.parts:
            found = needle_clauses(item)
            if not found:
                return []
            union |= min(found, key=_rarity)
        return [frozenset(union)]
    return []


def _is_guard_key(key: bytes) -> bool:
    """Whether a ``STOP_PLAIN`` key is a guard key (``native/src/plain.rs``: its mark,
    after the verdict key's four length-prefixed parts, is ``0x40 | reads``)."""
    at = 0
    for _ in range(4):
        at += 8 + int.from_bytes(key[at : at + 8], "little")
    return at < len(key) and key[at] & 0xE0 == 0x40


def _rarity(needles: AbstractSet[Needle]) -> tuple[int, int]:
    """A needle set's likeness to be in a command line, rarest first (longest shortest
    needle, then fewest needles)."""
    return -min((len(text) for text, _ in needles), default=0), len(needles)


def _needs(prefilters: tuple[Prefilter, ...] | bool, need: int, inode: int) -> int:
    """The NEED/INODE bits for the prefilters a verdict found accepting."""
    if prefilters is True:
        return need
    bits = 0
    for prefilter in prefilters or ():
        if prefilter.record_types is not None:
            bits |= need
        elif prefilter.path_items is not None:
            bits |= inode
        else:  # an argument test: Python reads the arguments (the library hands it back)
            bits |= need
    return bits


def needle_bytes(needle: Needle) -> NeedleBytes | None:
    """A needle as the native session takes it: its text's bytes as the command line
    holds them (UTF-8, ``surrogateescape``); ``None`` for text no command line holds."""
    text, nocase = needle
    try:
        return text.encode("utf-8", "surrogateescape"), nocase
    except UnicodeEncodeError:
        return None


def inode_stamp(prefilters: Iterable[Prefilter]) -> tuple[tuple[int, int], ...] | None:
    """What the prefilters' learned inodes are now, as (identity, version) of each
    :class:`~kexecwatch.core.scan.prefilter.LearnedItems`: equal stamps, equal inodes
    (a version moves whenever its pairs change). ``None`` when a collection has no
    version: then the inodes must be read again."""
    stamp = []
    for prefilter in prefilters:
        items = prefilter.path_items
        if not isinstance(items, LearnedItems):
            return None
        stamp.append((id(items), items.version))
    return tuple(stamp)


def inode_values(prefilters: Iterable[Prefilter]) -> frozenset[int]:
    """Every inode the prefilters' learned ``path_items`` hold."""
    return frozenset(
        inode for prefilter in prefilters for inode, _dev in list(prefilter.path_items or ())
    )
