"""The native driver in the scanner stage: it agrees with the Python scanner, takes the
bulk itself, and falls back to Python after a native failure with one diagnostic."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import Any

import pytest

from bench.generate import Generator
from kexecwatch.core.audit.assembler import _GapTracker
from kexecwatch.core.audit.linebuffer import Region
from kexecwatch.core.audit.nativeapi import (
    STOP_HANDBACK,
    NativeLib,
    NativeSession,
    QuietState,
    ScanResult,
)
from kexecwatch.core.detect.detector import DetectionRule, Detector, DetectorOptions, EventError
from kexecwatch.core.process.table import LiveProcess
from kexecwatch.core.scan.nativescan import NativeScanner, single_types
from kexecwatch.core.scan.scanner import PythonScanner
from kexecwatch.rules import load_builtin_rules
from tests.builders import feed_in_pieces
from tests.core.detect.test_detector import fingerprint
from tests.nativelib import native_lib

ALL_RULES = load_builtin_rules("all")


def generated(n: int = 4000, seed: int = 3, **shape: Any) -> bytes:
    gen = Generator(seed=seed, **shape)
    return b"".join((line + "\n").encode() for _, line in zip(range(n), gen.lines(), strict=False))


def outcome(
    data: bytes,
    native: NativeLib | None,
    rules: Sequence[DetectionRule] = ALL_RULES,
    cuts: Sequence[int] = (),
    lookup: Any = None,
    **options: Any,
) -> tuple[list[str], dict[str, int], dict[str, Any], str]:
    det = Detector(
        copy.deepcopy(list(rules)),
        host_name="h",
        options=DetectorOptions(**options),
        lookup=lookup,
        native=native,
    )
    out = feed_in_pieces(det, data, cuts)
    return fingerprint(out), det.stats.as_dict(), det.to_state(), det.scanner_name


def test_native_and_python_scanners_agree_on_a_generated_log() -> None:
    lib = native_lib()
    data = generated(interleave=0.2, lose_every=50, kexec_every=20)
    for options in ({}, {"emit_events": True}, {"since_ms": 1717000141000}, {"window_ms": 0}):
        python = outcome(data, None, **options)
        native = outcome(data, lib, cuts=(len(data) // 3, len(data) // 2), **options)
        assert python[3] == "python" and native[3].startswith("native ")
        assert native[:3] == python[:3], options


def test_the_native_scan_takes_the_bulk() -> None:
    lib = native_lib()
    data = generated(interleave=0.0, lose_every=0, kexec_every=0)
    det = Detector(copy.deepcopy(ALL_RULES), host_name="h", native=lib)
    scanner = det._scanner
    assert isinstance(scanner, NativeScanner)
    handled: list[int] = []
    fast_event = scanner.fast_event

    def spy(*args: Any, **kwargs: Any) -> bool:
        handled.append(1)
        return fast_event(*args, **kwargs)

    scanner.fast_event = spy  # type: ignore[method-assign]
    feed_in_pieces(det, data)
    assert det.stats.events > 500
    # The Python scanner takes a handful (the first event, kexec runs the rules need).
    assert len(handled) < det.stats.events / 20, (len(handled), det.stats.events)


def test_live_parents_are_read_from_proc_as_the_python_scanner_reads_them() -> None:
    lib = native_lib()
    data = generated(n=2000, interleave=0.1)
    asked: dict[str, list[int]] = {"python": [], "native": []}

    def lookup_for(name: str) -> Any:
        def lookup(pid: int) -> LiveProcess | None:
            asked[name].append(pid)
            if pid % 3:
                return None
            return LiveProcess(pid, 1, b"init", b"/sbin/init", (b"init",), 0)

        return lookup

    python = outcome(data, None, lookup=lookup_for("python"))
    native = outcome(data, lib, lookup=lookup_for("native"))
    assert native[:3] == python[:3]
    assert asked["native"] == asked["python"] and asked["python"]


class _FailingLib:
    """The real library, whose sessions fail their second scan (a native error)."""

    def __init__(self, lib: NativeLib) -> None:
        self.lib = lib
        self.version = lib.version

    def new_session(self, **kwargs: Any) -> NativeSession:
        return _FailingSession(self.lib.new_session(**kwargs))  # type: ignore[return-value]


class _FailingSession:
    def __init__(self, session: NativeSession) -> None:
        self._session = session
        self.scans = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    def scan(
        self, buf: bytes, start: int, state: QuietState, due_ms: int | None = None
    ) -> ScanResult:
        self.scans += 1
        if self.scans == 2:
            raise RuntimeError("kw_scan: native panic")
        return self._session.scan(buf, start, state, due_ms)

    def set_inodes(self, inodes: Iterable[int]) -> None:
        self._session.set_inodes(inodes)


def test_a_native_failure_costs_one_diagnostic_and_python_goes_on() -> None:
    lib = native_lib()
    data = generated(interleave=0.2, lose_every=50, kexec_every=20)
    python = outcome(data, None)
    failing = outcome(data, _FailingLib(lib))  # type: ignore[arg-type]
    errors = [k for k in failing[0] if k.startswith("EventError(")]
    assert len(errors) == 1 and "native scanner failed" in errors[0], errors
    assert [k for k in failing[0] if not k.startswith("EventError(")] == python[0]
    assert failing[1] == {**python[1], "event_errors": python[1]["event_errors"] + 1}
    assert failing[2]["processes"] == python[2]["processes"]
    assert failing[2]["assembler"] == python[2]["assembler"]


def test_event_error_is_the_diagnostic_type() -> None:
    """The one diagnostic is an EventError (shown as ``error``), never a crash."""
    lib = native_lib()
    det = Detector([], host_name="h", native=_FailingLib(lib))  # type: ignore[arg-type]
    out = det.feed(generated(n=600))
    assert [type(x) for x in out if isinstance(x, EventError)] == [EventError]


def test_while_many_serials_wait_ahead_of_a_gap_native_still_takes_the_bulk() -> None:
    """The serials ahead of a gap stay in the session between calls (only changes
    cross), so a log with frequent gaps costs no more per call: native takes most of
    its events, no stretch goes to the Python scanner (as it did while every call
    carried them all), and the outputs and state are the Python scanner's."""
    lib = native_lib()
    data = generated(n=6000, seed=4, lose_every=100, gap_max=3, kexec_every=12, interleave=0.05)
    det = Detector(copy.deepcopy(ALL_RULES), host_name="h", native=lib)
    scanner = det._scanner
    assert isinstance(scanner, NativeScanner)
    stretches: list[int] = []
    python_scan = PythonScanner.scan
    taken: list[int] = []
    native_scan = scanner.session.scan

    def counted(self: PythonScanner, region: Region, out: list[Any]) -> int:
        stretches.append(len(region.data))
        return python_scan(self, region, out)

    def counted_native(
        buf: bytes, start: int, state: QuietState, due_ms: int | None = None
    ) -> ScanResult:
        result = native_scan(buf, start, state, due_ms)
        taken.append(result.events)
        return result

    with pytest.MonkeyPatch.context() as patch:
        # NativeScanner.scan would call PythonScanner.scan for each stretch it hands over.
        patch.setattr(PythonScanner, "scan", counted)
        patch.setattr(scanner.session, "scan", counted_native)
        out = feed_in_pieces(det, data)
    assert not stretches
    assert sum(taken) > det.stats.events // 2, (sum(taken), det.stats.events)
    python = outcome(data, None)
    assert (fingerprint(out), det.stats.as_dict(), det.to_state()) == python[:3]


class _CountedSession:
    """A native session that counts its scan calls (everything else passed through)."""

    def __init__(self, session: NativeSession) -> None:
        self._session = session
        self.scans = 0

    def scan(self, *args: Any) -> ScanResult:
        self.scans += 1
        return self._session.scan(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


def test_with_events_the_execs_python_builds_cost_no_round_trip_each() -> None:
    """With --events every exec in the window goes to Python in full: native would hand
    each back, one call each (before: a call per exec); Python takes them in a row."""
    lib = native_lib()
    data = generated(n=6000, seed=5, interleave=0.0, lose_every=0, kexec_every=0)
    det = Detector(
        copy.deepcopy(ALL_RULES),
        host_name="h",
        native=lib,
        options=DetectorOptions(emit_events=True),
    )
    scanner = det._scanner
    assert isinstance(scanner, NativeScanner)
    counted = _CountedSession(scanner.session)
    scanner.session = counted  # type: ignore[assignment]
    out = feed_in_pieces(det, data, (len(data) // 3,))
    assert det.stats.process_events > 500
    assert counted.scans < det.stats.process_events / 20, (counted.scans, det.stats.events)
    python = outcome(data, None, emit_events=True)
    assert (fingerprint(out), det.stats.as_dict(), det.to_state()) == python[:3]


def test_serials_ahead_stay_in_the_session_between_calls() -> None:
    """The session keeps the serials seen ahead of a gap between calls; each call's
    changes (gaps filled, new serials ahead, gaps declared lost) come back as a delta,
    and what Python changes in between (the kexec exec the rules need, read by Python)
    sends the rows again. Cut before every run, so every event is its own call: the
    same lost reports, counts and checkpoints (serials ahead in their order) as Python,
    after every run."""
    lib = native_lib()
    t0 = 1_717_000_000_000
    serials = [100, 102, 104, 101, 103, 106, 105, 110, 107, 108, 109, 112, 111, 120, 121]
    runs = [_exec_run(t0 + 10 * i, s, 300 + i, "ls") for i, s in enumerate(serials)]
    runs.insert(7, _exec_run(t0 + 65, 999, 400, "kexec"))  # ahead, and read by Python
    # A second at a time (plain progress), past a window: 113-119 and 122-998 are lost.
    runs += [_exec_run(t0 + 1_000 * (i + 1), 1000 + i, 500 + i, "ls") for i in range(6)]
    runs.append(_exec_run(t0 + 6_100, 1006, 600, "kexec"))
    data = "".join(runs).encode()
    python = outcome(data, None)
    assert any(k.startswith("EventsLost(") for k in python[0])
    every_run = [sum(len(r) for r in runs[:i]) for i in range(1, len(runs))]
    for cuts in ((), every_run):
        assert outcome(data, lib, cuts=cuts)[:3] == python[:3]
    # Fed run by run: the checkpoint after each (what a restart would resume from).
    checkpoints = []
    for native in (None, lib):
        det = Detector(copy.deepcopy(ALL_RULES), host_name="h", native=native)
        checkpoints.append([(det.feed(run.encode()), det.to_state())[1] for run in runs])
    assert checkpoints[1] == checkpoints[0]


def test_serials_ahead_cross_into_python_only_when_python_reads_them() -> None:
    """After a gap nearly every event native takes waits ahead until the gap fills or
    is declared lost. The session holds those changes (ahead_hold) until Python needs
    its tracker (an event it reads, a checkpoint): a serial that went ahead and came
    back in between never crosses. Far fewer rows reach Python's dict than when each
    scan's delta is applied, with the Python scanner's outputs, counts and state."""
    lib = native_lib()
    data = generated(n=30000, seed=6, lose_every=150, gap_max=20, kexec_every=1000, interleave=0.0)
    # Fed in pieces cut between events (a cut inside a run would have Python read it).
    cuts = sorted({data.find(b"type=SYSCALL", at) for at in range(4096, len(data), 4096)} - {-1})
    applied: list[int] = []
    apply = _GapTracker.apply

    def counted(self: _GapTracker, gone: list[int], added: Any) -> None:
        applied[-1] += len(gone) + len(added) // 4
        apply(self, gone, added)

    results = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_GapTracker, "apply", counted)
        for hold in (False, True):
            applied.append(0)
            det = Detector(copy.deepcopy(ALL_RULES), host_name="h", native=lib)
            scanner = det._scanner
            assert isinstance(scanner, NativeScanner)
            scanner.session.ahead_hold(hold)
            out = feed_in_pieces(det, data, cuts)
            results.append((fingerprint(out), det.stats.as_dict(), det.to_state()))
    eager, held = applied
    assert eager > 5000, applied
    assert held < eager * 2 // 3, applied
    python = outcome(data, None)
    assert results[0] == results[1] == python[:3]


def _exec_run(time_ms: int, serial: int, pid: int, comm: str) -> str:
    tag = f"{time_ms // 1000}.{time_ms % 1000:03d}:{serial}"
    return (
        f"type=SYSCALL msg=audit({tag}): arch=c000003e syscall=59 success=yes exit=0 a0=1 "
        f"a1=2 a2=3 a3=0 items=1 ppid=1 pid={pid} auid=1000 uid=1000 gid=1000 euid=1000 "
        "suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=3 "
        f'comm="{comm}" exe="/usr/sbin/{comm}" key=(null)\n'
        f'type=EXECVE msg=audit({tag}): argc=2 a0="{comm}" a1="-l"\n'
        f"type=PROCTITLE msg=audit({tag}): proctitle=6C73\n"
    )


def test_single_records_after_a_handed_back_event_go_back_to_native() -> None:
    # A kexec event is handed back (the rules need it whole); the user-session records
    # after it are single-record events native takes, not lines for the full parser.
    lib = native_lib()
    data = generated(n=20_000, seed=6, kexec_every=5)
    det = Detector(copy.deepcopy(ALL_RULES), host_name="h", native=lib)
    host = det._scanner._host
    line = host.line
    singles = [t.encode() for t in single_types()]
    read: list[bytes] = []

    def counted(raw: bytes, *args: Any) -> None:
        read.append(raw.split(b" ", 1)[0].removeprefix(b"type="))
        line(raw, *args)

    host.line = counted
    out = feed_in_pieces(det, data)
    taken_by_python = [t for t in read if t in singles]
    in_log = sum(data.count(b"\ntype=" + t + b" ") for t in singles)
    assert in_log > 20
    # Before: about half of them (21 of 37), each after a handed-back event.
    assert len(taken_by_python) * 10 < in_log, taken_by_python[:20]
    python = outcome(data, None)
    assert (fingerprint(out), det.stats.as_dict(), det.to_state()) == python[:3]


def test_the_eoe_after_an_event_python_read_costs_no_round_trip() -> None:
    """Python reads an event whose records a user-session record interleaves (it is
    in flight meanwhile); its EOE, once it is complete, is read by Python too, not
    handed back by a native call of its own. A block that starts with the EOE of the
    last event native took (the block before ended at its PROCTITLE) is native's."""
    lib = native_lib()
    data = generated(n=40_000, seed=7, eoe=True, session_share=0.03, lose_every=0)
    det = Detector(copy.deepcopy(ALL_RULES), host_name="h", native=lib)
    scanner = det._scanner
    assert isinstance(scanner, NativeScanner)
    native_scan = scanner.session.scan
    handbacks: list[bool] = []

    def counted(buf: bytes, start: int, state: QuietState, due_ms: int | None = None) -> Any:
        result = native_scan(buf, start, state, due_ms)
        if result.stop == STOP_HANDBACK:
            handbacks.append(buf.startswith(b"type=EOE ", result.end))
        return result

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scanner.session, "scan", counted)
        out = feed_in_pieces(det, data, tuple(range(65536, len(data), 65536)))
    # Before: 92 of 188 hand-backs were such an EOE.
    assert len(handbacks) > 50
    assert sum(handbacks) * 20 < len(handbacks), (sum(handbacks), len(handbacks))
    python = outcome(data, None)
    assert (fingerprint(out), det.stats.as_dict(), det.to_state()) == python[:3]


def test_learned_inodes_are_read_again_only_when_they_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before each scan call the session's inode set is brought up to date with the
    rules' learned inodes; it is made again only when one of their
    :class:`~kexecwatch.core.scan.prefilter.LearnedItems` changed version, not by
    reading every pair at every call. Same outcome as the Python scanner."""
    import kexecwatch.core.scan.nativescan as nativescan

    lib = native_lib()
    data = generated(n=6000, interleave=0.2, lose_every=50, kexec_every=20)
    cuts = list(range(4000, len(data), 4000))
    det = Detector(copy.deepcopy(ALL_RULES), host_name="h", native=lib)
    scanner = det._scanner
    assert isinstance(scanner, NativeScanner)
    made: list[int] = []
    synced: list[int] = []
    real_values = nativescan.inode_values
    real_sync = scanner._sync_inodes

    def values(prefilters: Any) -> frozenset[int]:
        made.append(1)
        return real_values(prefilters)

    def sync() -> None:
        synced.append(1)
        real_sync()

    monkeypatch.setattr(nativescan, "inode_values", values)
    scanner._sync_inodes = sync  # type: ignore[method-assign]
    out = feed_in_pieces(det, data, cuts)
    python = outcome(data, None, cuts=cuts)
    assert (fingerprint(out), det.stats.as_dict(), det.to_state()) == python[:3]
    assert len(synced) > 50, len(synced)
    assert len(made) < len(synced) / 5, (len(made), len(synced))
