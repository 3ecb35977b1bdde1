"""Issue 16 acceptance: a bounded fuzzing campaign on mutated real recordings.

Inputs are the recordings of ``fixtures/audit/{raw,enriched}`` with structure-aware mutations
(:mod:`tools.fuzzmut`), run through real ``kexecwatch replay`` processes and real
``kexecwatch run`` daemons following real files (:mod:`tools.fuzzlab`). The budget is
``KEXECWATCH_FUZZ_SECONDS`` (default 120), half for each. ``KEXECWATCH_FUZZ_SEED`` picks the
campaign (default: a new one each run, printed); every failure names its seed and input
number and is saved with its input, so ``python -m tools.fuzzlab --seed S --index I --mode M``
runs it again. The first tests check that the checks themselves can fail.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tools import fuzzlab
from tools.fuzzmut import Mutant, Recording

ROOT = Path(__file__).resolve().parents[1]
SECONDS = float(os.environ.get("KEXECWATCH_FUZZ_SECONDS", "120"))
SEED = int(os.environ.get("KEXECWATCH_FUZZ_SEED", random.SystemRandom().randrange(1 << 32)))


def _recording(tmp_path: Path, name: str = "raw/all-scenarios.log") -> Recording:
    return fuzzlab.recording(ROOT / "fixtures/audit" / name, tmp_path)


def _untouched(rec: Recording) -> Mutant:
    m = Mutant.start(rec)
    m.finish(rec)
    return m


def test_unmutated_recordings_pass_every_check(tmp_path: Path) -> None:
    for name in ("raw/all-scenarios.log", "enriched/telemetry-gap.log"):
        rec = _recording(tmp_path, name)
        m = _untouched(rec)
        assert rec.alerts and rec.free, name  # something to keep, and lines free to mutate
        assert fuzzlab.check_replay(rec, m, fuzzlab.run_replay(m.data, tmp_path)) == []


def test_a_lost_alert_is_a_failure(tmp_path: Path) -> None:
    rec = _recording(tmp_path)
    m = _untouched(rec)
    victim = next(iter(fuzzlab.required(rec, m)))
    eid = fuzzlab.event_id_of(victim)
    # The run sees the recording without the victim's records, but the mutant claims to
    # have touched nothing: the oracle must notice.
    data = b"".join(line for line in rec.lines if f"({eid})".encode() not in line)
    problems = fuzzlab.check_replay(rec, m, fuzzlab.run_replay(data, tmp_path))
    assert any("lost" in p and victim in p for p in problems), problems


def test_an_unexplained_alert_is_a_failure(tmp_path: Path) -> None:
    rec = _recording(tmp_path, "raw/v7-exec-short.log")
    m = _untouched(rec)
    # A second copy of the alerting event under a new id, while the mutant claims to have
    # touched nothing: its alert is not explained.
    eid = fuzzlab.event_id_of(next(iter(rec.alerts)))
    copy = [
        line.replace(f"({eid})".encode(), b"(1796013999.000:99999)")
        for line in rec.lines
        if f"({eid})".encode() in line
    ]
    problems = fuzzlab.check_replay(rec, m, fuzzlab.run_replay(m.data + b"".join(copy), tmp_path))
    assert any("unexpected" in p and "1796013999.000:99999" in p for p in problems), problems


def test_tracebacks_exit_codes_and_cost_are_failures(tmp_path: Path) -> None:
    rec = _recording(tmp_path)
    m = _untouched(rec)
    good = fuzzlab.run_replay(m.data, tmp_path)
    bad = fuzzlab.Outcome(
        rc=3,
        cpu_s=fuzzlab.MAX_CPU_S + 1,
        wall_s=1.0,
        rss_mb=fuzzlab.MAX_RSS_MB + 1,
        stdout=good.stdout,
        stderr="Traceback (most recent call last):\n  boom\nValueError: x\n",
    )
    problems = " | ".join(fuzzlab.check_replay(rec, m, bad))
    for word in ("traceback", "exit code 3", "CPU time", "peak RSS"):
        assert word in problems
    skipped = "kexecwatch: a.log:9: error: event 1.000:2 could not be handled (skipped): X\n"
    errs = fuzzlab.check_replay(rec, m, fuzzlab.Outcome(1, 0.1, 0.1, 40.0, good.stdout, skipped))
    assert any(p.startswith("event error") for p in errs)
    silent = fuzzlab.Outcome(1, 0.1, 0.1, 40.0, b"", "")
    assert any("without any alert" in p for p in fuzzlab.check_replay(rec, m, silent))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_childs_peak_rss_is_its_own_not_the_campaigns() -> None:
    # A child forked straight from a large campaign process reported the campaign's pages as its
    # own peak (a CI run failed an input at "247 MB" that replays in 74 MB).
    ballast = bytearray(300 << 20)
    ballast[:: 1 << 12] = b"\1" * len(range(0, len(ballast), 1 << 12))
    small = fuzzlab.Measured([sys.executable, "-c", "pass"], subprocess.DEVNULL, subprocess.DEVNULL)
    grow = "b = bytearray(120 << 20); b[:: 1 << 12] = bytes(len(range(0, len(b), 1 << 12)))"
    big = fuzzlab.Measured([sys.executable, "-c", grow], subprocess.DEVNULL, subprocess.DEVNULL)
    rc_small, _, rss_small = fuzzlab.wait_measured(small, 30)
    rc_big, cpu_big, rss_big = fuzzlab.wait_measured(big, 30)
    assert len(ballast) == 300 << 20
    assert (rc_small, rc_big) == (0, 0)
    assert rss_small < 60, rss_small
    assert 120 <= rss_big < 200, rss_big
    assert cpu_big > 0


def test_a_measured_child_is_limited_signalled_and_never_left_behind() -> None:
    # The address-space limit still applies: a MemoryError is a traceback, and exit code 1.
    hog = fuzzlab.Measured(
        [sys.executable, "-c", f"bytearray({fuzzlab.CHILD_AS_BYTES})"],
        subprocess.DEVNULL,
        subprocess.DEVNULL,
    )
    assert fuzzlab.wait_measured(hog, 30)[0] == 1
    # SIGTERM reaches the command itself: a shell trap answers it with its own exit code.
    trap = "trap 'exit 7' TERM; while :; do sleep 0.05; done"
    term = fuzzlab.Measured(["sh", "-c", trap], subprocess.DEVNULL, subprocess.DEVNULL)
    time.sleep(0.3)
    term.send_signal(signal.SIGTERM)
    assert fuzzlab.wait_measured(term, 30)[0] == 7
    # A timeout kills the command by its pid and reports no exit code.
    sleeper = fuzzlab.Measured(["sleep", "30"], subprocess.DEVNULL, subprocess.DEVNULL)
    t0 = time.monotonic()
    assert fuzzlab.wait_measured(sleeper, 0.5)[0] is None
    assert time.monotonic() - t0 < 10 and not _alive(sleeper.pid)
    # The launcher killed outright (as a killed campaign would be) takes the command with it.
    orphan = fuzzlab.Measured(["sleep", "30"], subprocess.DEVNULL, subprocess.DEVNULL)
    orphan._launcher.kill()
    orphan._launcher.wait()
    deadline = time.monotonic() + 10
    while _alive(orphan.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(orphan.pid)
    assert orphan.poll() == -signal.SIGKILL


def test_inputs_rebuild_from_seed_and_index(tmp_path: Path) -> None:
    a = fuzzlab.make_input(7, 3, tmp_path)[1]
    b = fuzzlab.make_input(7, 3, tmp_path)[1]
    assert a.data == b.data and a.cls == b.cls
    assert fuzzlab.make_input(7, 4, tmp_path)[1].data != a.data


@pytest.mark.parametrize("restart", ["none", "SIGTERM", "kill -9"])
def test_the_daemon_raises_replays_alerts_on_a_recording(tmp_path: Path, restart: str) -> None:
    """The daemon half's oracle is replay's baseline: on an unmutated recording they agree,
    also when a second daemon resumes after the first was stopped."""
    rec = _recording(tmp_path)
    m = _untouched(rec)
    out = fuzzlab.run_daemon(rec, m, tmp_path, random.Random(0), restart=restart)
    assert fuzzlab.check_daemon(rec, m, out) == []
    assert set(fuzzlab.alerts_of(out.stdout)) == set(rec.alerts)
    assert out.restarted == ("" if restart == "none" else restart)


def test_an_alert_sent_twice_is_a_failure(tmp_path: Path) -> None:
    rec = _recording(tmp_path)
    m = _untouched(rec)
    alerts = fuzzlab.run_replay(m.data, tmp_path).stdout
    doubled = fuzzlab.Outcome(0, 0.1, 1.0, 40.0, alerts + alerts.splitlines(True)[0], "")
    assert fuzzlab.check_daemon(rec, m, fuzzlab.Outcome(0, 0.1, 1.0, 40.0, alerts, "")) == []
    assert any("sent twice" in p for p in fuzzlab.check_daemon(rec, m, doubled))


def _campaign(mode: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    if SECONDS <= 0:
        pytest.skip("KEXECWATCH_FUZZ_SECONDS=0: fuzzing campaign switched off")
    save = Path(os.environ.get("KEXECWATCH_FUZZ_DIR") or tmp_path_factory.mktemp("fuzz"))
    stats = fuzzlab.campaign(mode, SECONDS / 2, SEED, save, fuzzlab.Stats())
    print(f"\nfuzz {mode}: seed {SEED}\n{stats.report()}")
    assert not stats.failures, f"seed {SEED}; failing inputs in {save}\n{stats.report()}"


@pytest.mark.slow
def test_fuzz_replay(tmp_path_factory: pytest.TempPathFactory) -> None:
    _campaign("replay", tmp_path_factory)


@pytest.mark.slow
def test_fuzz_daemon(tmp_path_factory: pytest.TempPathFactory) -> None:
    _campaign("daemon", tmp_path_factory)
