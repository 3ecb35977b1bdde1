"""What the core asks of the native bulk path, and the values it exchanges with it.

Theory of operation: the native library (``kexecwatch/native``, loaded by a shell) is a
conservative filter in front of the Python scanner. While the assembler is *quiet* (no
event in flight, node ``None``'s clock and serial tracker set: :class:`QuietState`), a
:class:`NativeSession` scans a block of lines and takes every whole event whose effect on
the detector it can reproduce exactly: table updates, counts, done-set entries and lost
events (:class:`ScanResult`). It stops at anything else and hands the position back; the
Python scanner handles that unit and calls it again. What native may take, rule by rule,
is stated in :mod:`kexecwatch.core.scan.nativescan`, which drives it.

Rule 1: the core never loads anything. A shell loads the library and passes a
:class:`NativeLib` to the detector, as it passes the ``/proc`` lookup.
Rule 2: these are plain values and Protocols; nothing here does I/O.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

__all__ = [
    "STOP_DUE",
    "STOP_END",
    "STOP_HANDBACK",
    "STOP_LIVE",
    "STOP_PLAIN",
    "STOP_RENDER",
    "STOP_VERDICT",
    "AheadSource",
    "DoneStore",
    "NativeLib",
    "NativeSession",
    "NeedleBytes",
    "QuietState",
    "RawEntry",
    "ScanResult",
]

#: An argument needle as the native side takes it: its UTF-8 bytes (``surrogateescape``),
#: and whether it is case-insensitive (then already lower-cased).
NeedleBytes = tuple[bytes, bool]

#: The scan reached the end of the block.
STOP_END = 0
#: Python handles the unit (a line, a run, a pair) at ``end``, then scans again.
STOP_HANDBACK = 1
#: The run at ``end`` has a verdict key the session does not know: Python computes its
#: code (``set_verdict``), then scans again.
STOP_VERDICT = 2
#: Live mode: the exec at ``end`` names a parent the table does not know: Python reads it
#: from ``/proc`` (``remember_live``), then scans again.
STOP_LIVE = 3
#: The last unit taken brought the latest event time to the scan's ``due_ms``: a
#: sequence rule's deadline may have passed there; Python matches it, then scans again.
STOP_DUE = 4
#: ``--events`` lines: the exec at ``end`` could be written natively, but Python has not
#: answered for its render key (``key``) yet: Python answers (``render_set``), then scans
#: again (:mod:`kexecwatch.core.process.eventlines`).
STOP_RENDER = 5
#: The run at ``end`` has a plain verdict (``set_verdict_needles`` with ``plain``), its
#: needles are absent, and Python has not answered for its plain key (``key``): Python
#: handles the run and, when it only learned from it, says so (``plain_learned``), then
#: scans again (``native/src/plain.rs``).
STOP_PLAIN = 6

#: One process-table entry as stored: ``(pid, ppid, comm, comm_raw, exe, exe_raw, args,
#: since_ms, exec_id, source, extra)``; see :class:`NativeSession`.
RawEntry = tuple[
    int,
    int | None,
    bytes | None,
    bool,
    bytes | None,
    bool,
    bytes | tuple[bytes, ...] | None,
    int,
    str | None,
    str,
    bytes | None,
]


@dataclass(slots=True)
class QuietState:
    """The assembler's state for node ``None`` while nothing is in flight.

    Attributes:
        present / elapsed: the node's clock (no time pending).
        expected / last_time_ms: its serial tracker.
        ahead: serials seen ahead of ``expected``: ``(serial, sec, ms, seen_elapsed)``,
            in the tracker's order (checkpoints list them so).
        done_ceiling: no event with a serial at or below it may be taken: at least the
            highest serial of node ``None`` in the done set that is neither below
            ``expected`` nor in ``ahead`` (``-1`` when none).
        ahead_kept: the serials ahead are those the session's last scan left (the
            assembler applied that scan's ``ahead_delta``), changed by ``ahead_ops``:
            ``ahead`` is not sent (it may be left empty).
        ahead_ops: with ``ahead_kept``, what Python changed in them since, in order,
            flat ``(op, serial, sec, ms, seen)``: op 0 sets a serial as a dict
            assignment does (in place if present, else last), 1 deletes it, 2 clears all.
    """

    present: int
    elapsed: int
    expected: int
    last_time_ms: int
    ahead: list[tuple[int, int, int, int]] = field(default_factory=list)
    done_ceiling: int = -1
    ahead_kept: bool = False
    ahead_ops: list[int] = field(default_factory=list)


@dataclass(slots=True)
class ScanResult:
    """What one :meth:`NativeSession.scan` call did.

    Attributes:
        end: where the scan stopped in the block (a line start, or its length).
        stop: why (``STOP_*``).
        key: the unknown verdict key (``STOP_VERDICT``), render key (``STOP_RENDER``)
            or plain key (``STOP_PLAIN``).
        ppid / time_ms: the parent to read and the exec's time (``STOP_LIVE``).
        lines / records / events / process_events / last_time_ms: the counts of the
            events taken (``last_time_ms``: the latest event time taken, 0 if none).
        state: the node's state after the events taken.
        done: ``(sec, ms, serial, elapsed)`` per event taken, flat, in order.
        lost: ``(first_serial, last_serial, next_sec, next_ms, next_serial)`` per gap
            declared, in order.
        done_kept: how many of the ``done`` rows (the last ones) the session keeps in
            its :class:`DoneStore` (``0``: none, the assembler keeps the rows itself).
        ahead_delta: what the scan changed in the serials ahead: the serials gone, then
            the rows added, ``(serial, sec, ms, seen)`` flat, in insertion order
            (``None``: only ``state.ahead`` says). With ``ahead_kept``, ``state.ahead``
            is not filled: apply the delta.
        ahead_held: the session holds the scan's changes to the serials ahead, with
            those of the scans before that Python has not read (``ahead_delta`` is
            empty): :meth:`AheadSource.ahead_pull` hands them over when the assembler
            needs its serials ahead (:meth:`NativeSession.ahead_hold`).
        leads: ``(sec, ms, serial)`` per lone ``LOGIN`` record taken, flat, in order
            (``None``: none): the assembler remembers them as its ``push`` does.
        rendered: the ``--events`` lines of the execs the scan wrote (``render_on``).
    """

    end: int
    stop: int
    key: bytes | None
    ppid: int
    time_ms: int
    lines: int
    records: int
    events: int
    process_events: int
    last_time_ms: int
    state: QuietState
    done: array[int]
    lost: list[tuple[int, int, int, int, int]]
    done_kept: int = 0
    ahead_delta: tuple[list[int], array[int]] | None = None
    leads: array[int] | None = None
    rendered: bytes = b""
    ahead_held: bool = False


class DoneStore(Protocol):
    """Node ``None``'s done events that native scans took, kept by the session between
    calls instead of crossing into the assembler's done set one key at a time.

    The assembler keeps the meaning
    (:meth:`~kexecwatch.core.audit.assembler.Assembler.keep_done_in`):
    its done order holds one block per scan and decides alone when rows leave; the
    store is those blocks' rows, oldest first, each ``(sec, ms, serial, elapsed)``.
    """

    def done_contains(self, sec: int, ms: int, serial: int) -> bool:
        """Whether the event ``sec.ms:serial`` is held."""

    def done_drop(self, limit: int, forced: int, stale_before: int) -> tuple[int, int]:
        """Drop rows from the front: at most ``limit``, the first ``forced`` whatever
        their time, then while a row's elapsed time is below ``stale_before``. Returns
        how many went and the front row's elapsed time after (``2**63 - 1``: none)."""

    def done_rows(self, offset: int, count: int) -> array[int]:
        """Rows ``offset .. offset + count``, flat, oldest first."""

    def done_max_serial(self, floor: int, excluded: Iterable[int]) -> int:
        """The highest serial held at or above ``floor`` and not in ``excluded``
        (``-1`` when none)."""


class AheadSource(Protocol):
    """Where the changes to node ``None``'s serials ahead wait while Python does not
    need them (``ScanResult.ahead_held``)."""

    def ahead_pull(self) -> tuple[list[int], array[int]]:
        """The changes held since the last pull, forgotten by the source: the serials
        gone, then the rows ``(serial, sec, ms, seen)`` added, flat, in insertion
        order (delete the first, then append the second)."""


class NativeSession(DoneStore, AheadSource, Protocol):
    """One detector's native state: its process table, verdict cache and scanner.

    The table follows :class:`~kexecwatch.core.process.table.ProcessTable`'s rules exactly
    (stated once in :mod:`kexecwatch.core.process.table`).
    """

    def table_len(self) -> int:
        """How many pids the table holds."""

    def table_args_bytes(self) -> int:
        """How many argv bytes the table holds (history included)."""

    def table_contains(self, pid: int) -> bool:
        """Whether ``pid`` has an entry (no time walk)."""

    def table_entry_at(self, pid: int, at_ms: int) -> RawEntry | None:
        """The entry of ``pid`` as known at ``at_ms`` (the lateness walk)."""

    def table_latest(self, pid: int) -> RawEntry | None:
        """The latest entry of ``pid``."""

    def table_store(self, entry: RawEntry) -> None:
        """Store an entry (history, LRU order, eviction)."""

    def table_rows(self, limit: int) -> list[RawEntry]:
        """The ``limit`` most recently used entries, least recent first."""

    def table_state(self, limit: int) -> list[memoryview | RawEntry]:
        """The snapshot rows of :meth:`table_rows`: a ``memoryview`` holds rows written as
        the checkpoint writes them (joined by ``,``), an entry is one whose row Python
        makes."""

    def table_mark_unreadable(self, pid: int) -> None:
        """Remember that ``/proc`` could not name ``pid``."""

    def table_is_unreadable(self, pid: int) -> bool:
        """Whether ``pid`` is remembered as unreadable."""

    def set_verdict(self, key: bytes, code: int) -> None:
        """Cache the verdict code of a key."""

    def clear_verdicts(self) -> None:
        """Forget every cached verdict."""

    def set_needles(self, needles: Sequence[NeedleBytes]) -> None:
        """The rules' argument needles (text, case-insensitive); forgets every verdict."""

    def set_verdict_needles(
        self,
        key: bytes,
        code: int,
        needles: Iterable[NeedleBytes],
        *,
        empty_if_no_execve: bool,
        plain: int | None = None,
        tests: Sequence[Sequence[Iterable[NeedleBytes]]] = (),
        guards: tuple[int, int] | None = None,
    ) -> None:
        """Cache a verdict code with ``NEEDLE_IF_RELEVANT`` and the needles (each given
        to :meth:`set_needles`) one of which its rules' argument tests need; with
        ``plain``, the facts its rules' plain tests read (``argtest.Reads`` as bits:
        1, 2, 4, 8, 16): a relevant run without its needles is then taken only once
        Python answered for its plain key (``STOP_PLAIN``, :meth:`plain_learned`).
        ``tests``: the tests behind the gate, each as the needle sets (clauses) every
        one of which must have a needle in the command line for it to hold: when no
        test's clauses all do, the needles do not matter. ``guards``: what the tests'
        guards read and which tests have one (:meth:`alive_answer`)."""

    def alive_answer(self, alive: int) -> bool:
        """Which tests' guards hold for the facts of the last ``STOP_PLAIN``'s guard key
        (``False``: no guard key was pending, nothing kept)."""

    def plain_learned(self) -> bool:
        """Python only learned from the run of the last ``STOP_PLAIN``: keep that answer
        for its plain key (``False``: nothing was pending, nothing kept)."""

    def set_inodes(self, inodes: Iterable[int]) -> None:
        """The inodes an ``inode=`` value is compared with (hand back on a match)."""

    def scan(
        self, buf: bytes, start: int, state: QuietState, due_ms: int | None = None
    ) -> ScanResult:
        """Take what it can of ``buf`` from ``start`` (a line start); with ``due_ms``,
        stop (``STOP_DUE``) right after the first unit that brings the latest event
        time taken to ``due_ms`` or beyond."""

    def render_config(self, host: bytes, host_key: bytes) -> None:
        """``--events`` lines: the ``"host":{...}`` member and the host part of entity ids
        (:mod:`kexecwatch.core.process.eventlines`); forgets every render answer."""

    def render_on(self, on: bool) -> None:
        """Whether scans write ``--events`` lines (``ScanResult.rendered``) from now on."""

    def render_set(self, key: bytes, pieces: list[bytes] | None) -> None:
        """Python's answer for a render key: the pieces, or ``None`` (hand back)."""

    def render_clear(self) -> None:
        """Forget every render answer."""

    def done_keep(self, on: bool) -> None:
        """Whether scans keep their taken rows in the :class:`DoneStore` from now on
        (``ScanResult.done_kept``); off empties it."""

    def ahead_hold(self, on: bool) -> None:
        """Whether scans that keep the serials ahead (``QuietState.ahead_kept``) hold
        their changes for :meth:`AheadSource.ahead_pull` (``ScanResult.ahead_held``)
        instead of returning each scan's ``ahead_delta``."""

    def close(self) -> None:
        """Free the session."""


class NativeLib(Protocol):
    """The loaded native library (``kexecwatch.native.binding.NativeLib``)."""

    version: str

    def new_session(
        self,
        *,
        window_ms: int,
        max_entries: int,
        max_args_bytes: int,
        max_lateness_ms: int | None,
        since_ms: int | None,
        until_ms: int | None,
        live: bool,
        single_types: Iterable[str],
        fault_on: bytes | None,
        max_inflight: int = 4096,
    ) -> NativeSession:
        """A new session for one detector."""
