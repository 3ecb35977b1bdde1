"""Fuzzing campaign: mutated real recordings through ``kexecwatch replay`` and ``kexecwatch run``.

Every input is one recording of ``fixtures/audit/{raw,enriched}`` with structure-aware
mutations (:mod:`tools.fuzzmut`), built from a seed and an input number so that any input can
be rebuilt. Each input goes through a real ``kexecwatch replay`` process, or through a real
``kexecwatch run`` daemon following a real file, and is checked for:

- no traceback on stderr, and an exit code of 0, 1 or 2 (``run``: 0 after SIGTERM);
- bounded CPU time and peak RSS of the child (its own, through :mod:`tools.rusage_launcher`),
  and bounded output;
- ``replay``: exit 1 exactly when it printed alerts;
- the same alerts as the unmutated recording wherever the mutation did not touch the
  alerting events (the oracle is described in :func:`expected_change`).

Usage (a long run for figures; the test suite runs a short one)::

    .venv/bin/python -m tools.fuzzlab --seconds 1500 [--seed N] [--mode replay|daemon|both]
    .venv/bin/python -m tools.fuzzlab --seed N --index I --mode replay   # rebuild one input
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from tools.fuzzmut import MUTATIONS, Mutant, Recording, event_id_of

__all__ = ["Failure", "Outcome", "Stats", "campaign", "event_id_of", "make_input", "recording"]

ROOT = Path(__file__).resolve().parents[1]
RECORDINGS = sorted((ROOT / "fixtures" / "audit").glob("*/*.log"))
ALL_SCENARIOS = [p for p in RECORDINGS if p.name == "all-scenarios.log"]
KEXECWATCH = [sys.executable, "-m", "kexecwatch"]

# Bounds per input. CPU time rather than wall time, because the machine is shared: the
# recordings replay in about 0.2 s of CPU and 40 MB; the bounds leave wide room for the
# largest mutants (a few MB) while catching the quadratic and exploding cases of issue 16.
MAX_CPU_S = 10.0
MAX_WALL_S = 60.0
MAX_RSS_MB = 200.0
MAX_OUTPUT_MB = 20.0
# Hard limits on the child, so that a runaway input cannot take the shared machine with it:
# the address space (a MemoryError is then a traceback, which fails the input) and CPU time.
CHILD_AS_BYTES = 1 << 30
CHILD_CPU_S = 60
DAEMON_WAIT_S = 30.0  # generous: only a failing input waits it out

# Alerts that no mutation-local oracle can predict: a lost-events alert depends on the
# serials of every event, which byte flips and duplicated lines legitimately change.
UNPREDICTABLE_ACTIONS = frozenset({"events-lost"})

# Mutation classes left out of the campaign, each with the failure it still shows on main.
# Empty when every known failure is fixed; never leave an entry without its reason.
EXCLUDED: dict[str, str] = {}


@dataclass
class Outcome:
    """What one run of one input did."""

    rc: int | None
    cpu_s: float
    wall_s: float
    rss_mb: float
    stdout: bytes
    stderr: str
    timed_out: bool = False
    restarted: str = ""  # run: how the first daemon was stopped before a second resumed
    notes: list[str] = field(default_factory=list)  # problems seen along the way


@dataclass
class Failure:
    """One input that broke a check: enough to rebuild it and to read what went wrong."""

    mode: str
    seed: int
    index: int
    recording: str
    mutation: str
    problems: list[str]
    saved: Path | None = None

    def line(self) -> str:
        where = f" saved={self.saved}" if self.saved else ""
        return (
            f"{self.mode} seed={self.seed} index={self.index} {self.mutation} on "
            f"{self.recording}: {'; '.join(self.problems)}{where}"
        )


@dataclass
class Stats:
    """Figures for a campaign: inputs tried, the worst cost seen, and the failures."""

    tried: dict[str, int] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)  # daemon inputs resumed after a stop
    worst_cpu: tuple[float, str] = (0.0, "")
    worst_wall: tuple[float, str] = (0.0, "")
    worst_rss: tuple[float, str] = (0.0, "")
    failures: list[Failure] = field(default_factory=list)

    def add(self, mode: str, mutant: Mutant, out: Outcome) -> None:
        key = f"{mode}:{mutant.cls}"
        self.tried[key] = self.tried.get(key, 0) + 1
        if out.restarted:
            self.restarts[out.restarted] = self.restarts.get(out.restarted, 0) + 1
        label = f"{mode} {mutant.cls} on {mutant.recording}"
        if out.cpu_s > self.worst_cpu[0]:
            self.worst_cpu = (out.cpu_s, label)
        if out.wall_s > self.worst_wall[0]:
            self.worst_wall = (out.wall_s, label)
        if out.rss_mb > self.worst_rss[0]:
            self.worst_rss = (out.rss_mb, label)

    def report(self) -> str:
        total = sum(self.tried.values())
        lines = [
            f"inputs tried: {total}",
            "per class: " + ", ".join(f"{k}={v}" for k, v in sorted(self.tried.items())),
            "daemon restarts: " + (", ".join(f"{k}={v}" for k, v in self.restarts.items()) or "0"),
            f"worst CPU time: {self.worst_cpu[0]:.2f} s ({self.worst_cpu[1]})",
            f"worst wall time: {self.worst_wall[0]:.2f} s ({self.worst_wall[1]})",
            f"worst peak RSS: {self.worst_rss[0]:.1f} MB ({self.worst_rss[1]})",
            f"failures: {len(self.failures)}",
        ]
        lines += [f"  {f.line()}" for f in self.failures]
        return "\n".join(lines)


LAUNCHER = Path(__file__).with_name("rusage_launcher.py")


class Measured:
    """A command started through :mod:`tools.rusage_launcher`, so that its cost is its own.

    A child forked straight from the campaign would report the campaign's resident pages as its
    own peak RSS. The launcher also applies :data:`CHILD_AS_BYTES` and :data:`CHILD_CPU_S`.
    ``pid`` is the command's; ``send_signal`` and ``kill`` reach it through the launcher, which
    reaps it, so no signal can reach a reused pid.
    """

    def __init__(self, argv: list[str], stdout: BinaryIO | int, stderr: BinaryIO | int) -> None:
        r, w = os.pipe()
        try:
            self._launcher = subprocess.Popen(
                [sys.executable, "-S", str(LAUNCHER), str(w), str(CHILD_AS_BYTES),
                 str(CHILD_CPU_S), *argv],
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                pass_fds=(w,),
            )  # fmt: skip
        finally:
            os.close(w)
        self._report = os.fdopen(r, "rb")
        started = self._report.readline()
        if not started:
            self._launcher.wait()
            self._report.close()
            raise RuntimeError(f"the launcher could not start {argv[0]}")
        self.pid = int(started)
        self.returncode: int | None = None
        self.cpu_s = 0.0
        self.rss_mb = 0.0

    def poll(self) -> int | None:
        """The command's exit code once it has ended, else None."""
        if self.returncode is None and self._launcher.poll() is not None:
            done = self._report.readline().split()
            self._report.close()
            if len(done) == 3:
                self.returncode = int(done[0])
                self.cpu_s = float(done[1])
                self.rss_mb = int(done[2]) / 1024
            else:  # the launcher itself was killed; the command died with it
                self.returncode = self._launcher.returncode
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            self._launcher.send_signal(signal.SIGUSR1 if sig == signal.SIGKILL else sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def wait_measured(proc: Measured, timeout: float) -> tuple[int | None, float, float]:
    """Wait for ``proc``: (exit code or None on timeout, CPU s, peak RSS MB).

    On timeout the command is killed (it is ours, by pid) and still reaped, so nothing stays
    behind; its exit code is then reported as ``None``.
    """
    deadline = time.monotonic() + timeout
    timed_out = False
    while proc.poll() is None:
        if time.monotonic() > deadline and not timed_out:
            timed_out = True
            proc.kill()
            deadline += 30.0
        elif timed_out and time.monotonic() > deadline:
            raise RuntimeError(f"pid {proc.pid} outlived SIGKILL")
        time.sleep(0.01)
    return (None if timed_out else proc.returncode), proc.cpu_s, proc.rss_mb


def alerts_of(ndjson: bytes) -> dict[str, str]:
    """alert id (event.id) -> event.action of every alert document in ``ndjson``."""
    out = {}
    for line in ndjson.splitlines():
        doc = json.loads(line)
        out[doc["event"]["id"]] = doc.get("event", {}).get("action", "")
    return out


def predictable(alerts: dict[str, str]) -> set[str]:
    return {a for a, action in alerts.items() if action not in UNPREDICTABLE_ACTIONS}


def required(rec: Recording, mutant: Mutant) -> set[str]:
    """The unmutated recording's alerts that the mutant must still raise.

    - A *free* mutant (it changed only lines of events outside the recording's context, see
      :class:`tools.fuzzmut.Recording`, and no changed line claims a context event's id or a
      context pid) must raise every alert except those on the events it touched.
    - Any other mutant (it hit a kexec event, or cut the file) must raise every alert on an
      untouched event whose records all come before the first line it changed: nothing
      later in a log changes what an earlier, completed event raised.
    """
    must = {a for a in predictable(rec.alerts) if event_id_of(a) not in mutant.touched_ids}
    if not mutant.free:
        must = {a for a in must if rec.last_line[event_id_of(a)] < mutant.first_touched}
    return must


def expected_change(rec: Recording, mutant: Mutant, got: set[str]) -> list[str]:
    """Alerts lost, or raised that the mutation does not explain (see :func:`required`).

    A new alert is explained when it is on an event the mutant touched or, for a mutant that
    is not free, on an event after the first line it changed.
    """
    problems = []
    missing = sorted(required(rec, mutant) - got)
    if missing:
        problems.append(f"{len(missing)} alert(s) lost: {missing[:3]}")
    extra = sorted(
        a
        for a in got - predictable(rec.alerts)
        if event_id_of(a) not in mutant.touched_ids
        and (mutant.free or rec.last_line.get(event_id_of(a), 1 << 62) < mutant.first_touched)
    )
    if extra:
        problems.append(f"{len(extra)} unexpected alert(s): {extra[:3]}")
    return problems


# An event the detector could not handle ("One bad event" in the README) is a bug that the
# input found, even though the run goes on: replay's and run's ways of saying so.
EVENT_ERRORS = ("could not be handled", "event=event_error")


def bounded(out: Outcome) -> list[str]:
    problems = []
    if "Traceback (most recent call last)" in out.stderr:
        tail = out.stderr.strip().splitlines()[-1][:200]
        problems.append(f"traceback on stderr ({tail})")
    for line in out.stderr.splitlines():
        if any(e in line for e in EVENT_ERRORS):
            problems.append(f"event error ({line[:200]})")
            break
    if out.timed_out:
        problems.append(f"killed after {out.wall_s:.0f} s of wall time")
    if out.cpu_s > MAX_CPU_S:
        problems.append(f"CPU time {out.cpu_s:.1f} s > {MAX_CPU_S} s")
    if out.rss_mb > MAX_RSS_MB:
        problems.append(f"peak RSS {out.rss_mb:.0f} MB > {MAX_RSS_MB} MB")
    if len(out.stdout) > MAX_OUTPUT_MB * 1e6:
        problems.append(f"output {len(out.stdout) / 1e6:.0f} MB > {MAX_OUTPUT_MB} MB")
    return problems


def run_replay(data: bytes, work: Path) -> Outcome:
    """``kexecwatch replay FILE`` on ``data`` written to a real file."""
    path = work / "input.log"
    path.write_bytes(data)
    out_path, err_path = work / "replay.out", work / "replay.err"
    t0 = time.monotonic()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = Measured(
            [*KEXECWATCH, "replay", "--quiet", "--progress", "never", str(path)], out, err
        )
        rc, cpu, rss = wait_measured(proc, MAX_WALL_S)
    return Outcome(
        rc,
        cpu,
        time.monotonic() - t0,
        rss,
        out_path.read_bytes(),
        err_path.read_text(errors="replace"),
        timed_out=rc is None,
    )


def sane_replay(out: Outcome) -> list[str]:
    """The checks of one replay run that need no oracle: cost, exit code, output."""
    problems = bounded(out)
    if out.timed_out:
        return problems
    if out.rc not in (0, 1, 2):
        problems.append(f"exit code {out.rc}")
    try:
        got = alerts_of(out.stdout)
    except (ValueError, KeyError) as e:
        return [*problems, f"output is not alert NDJSON: {e}"]
    if out.rc == 1 and not got:
        problems.append("exit 1 (alerts found) without any alert")
    if out.rc == 0 and got:
        problems.append(f"exit 0 with {len(got)} alert(s)")
    return problems


def check_replay(rec: Recording, mutant: Mutant, out: Outcome) -> list[str]:
    problems = sane_replay(out)
    if any(p.startswith(("killed", "output is not")) for p in problems):
        return problems
    return problems + expected_change(rec, mutant, predictable(alerts_of(out.stdout)))


DAEMON_CONFIG = (
    "poll-interval = 0.2\ncheckpoint-interval = 0.5\nstatus-interval = 1.0\nevent-window-ms = 500\n"
)


_STOPS = {"none": None, "SIGTERM": signal.SIGTERM, "kill -9": signal.SIGKILL}


def run_daemon(
    rec: Recording, mutant: Mutant, work: Path, rng: random.Random, restart: str = "random"
) -> Outcome:
    """A real ``kexecwatch run`` following ``work/audit.log`` while the mutant is appended.

    Part of the input is on disk before start, the rest is appended in up to three writes
    cut at random bytes (possibly mid-line). For a third of the inputs the daemon is stopped
    after the first write (SIGTERM, or ``kill -9``) and a new one resumes from the same state
    directory, so what a mutant leaves in the checkpoint is tried too. The last daemon runs
    until every alert the oracle requires has arrived (or :data:`DAEMON_WAIT_S`), then one
    event window more, then gets SIGTERM.
    """
    log, alerts = work / "audit.log", work / "alerts.ndjson"
    config = work / "k.toml"
    config.write_text(DAEMON_CONFIG)
    data = mutant.data
    cuts = sorted(rng.randrange(len(data) + 1) for _ in range(rng.randint(1, 3)))
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    if restart == "random":
        restart = rng.choice(("none", "none", "none", "none", "SIGTERM", "kill -9"))
    stop = _STOPS[restart]
    log.write_bytes(pieces[0])
    err_path = work / "daemon.err"
    args = [
        *KEXECWATCH, "run", "--config", str(config), "--log", str(log),
        "--state-dir", str(work / "state"), "--output", f"json:{alerts}",
        "--host-name", "fuzzhost",
    ]  # fmt: skip
    t0 = time.monotonic()
    notes: list[str] = []
    cpu = rss = 0.0
    with open(err_path, "ab") as err:
        proc = _start_daemon(args, err, err_path)
        try:
            with open(log, "ab") as f:
                for n, piece in enumerate(pieces[1:]):
                    f.write(piece)
                    f.flush()
                    time.sleep(0.05)
                    if n == 0 and stop is not None:
                        time.sleep(0.3)
                        proc.send_signal(stop)
                        rc, cpu, rss = wait_measured(proc, 30.0)
                        if stop == signal.SIGTERM and rc != 0:
                            notes.append(f"exit code {rc} after the first SIGTERM")
                        proc = _start_daemon(args, err, err_path)
            must = required(rec, mutant)
            _until(lambda: must <= set(_read_alerts(alerts)) or proc.poll() is not None)
            time.sleep(0.8)  # one event window and a poll more, for alerts that must not come
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            rc, cpu2, rss2 = wait_measured(proc, 30.0)
        finally:
            if proc.returncode is None:  # an exception above: never leave the daemon behind
                proc.kill()
                wait_measured(proc, 30.0)
    stderr = err_path.read_text(errors="replace")
    return Outcome(
        rc,
        max(cpu, cpu2),
        time.monotonic() - t0,
        max(rss, rss2),
        alerts.read_bytes() if alerts.exists() else b"",
        stderr,
        timed_out=rc is None,
        restarted=restart if stop is not None else "",
        notes=notes,
    )


def _start_daemon(args: list[str], err: BinaryIO, err_path: Path) -> Measured:
    """Start a daemon logging to ``err``; return once it follows the log (or has died)."""
    err.flush()
    own_from = err_path.stat().st_size
    proc = Measured(args, subprocess.DEVNULL, err)
    _until(
        lambda: b"event=file_switch" in err_path.read_bytes()[own_from:] or proc.poll() is not None
    )
    return proc


def _until(cond: Callable[[], bool], timeout: float = DAEMON_WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.05)


def _read_alerts(path: Path) -> dict[str, str]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    whole = data[: data.rfind(b"\n") + 1]  # the daemon may be writing the last line
    return alerts_of(whole)


def check_daemon(rec: Recording, mutant: Mutant, out: Outcome) -> list[str]:
    problems = bounded(out)
    if out.timed_out:
        return problems
    if out.rc != 0:
        last = out.stderr.strip().splitlines()[-1:] or [""]
        problems.append(f"exit code {out.rc} after SIGTERM ({last[0][:200]})")
    try:
        got = alerts_of(out.stdout)
    except (ValueError, KeyError) as e:
        return [*problems, f"alerts file is not NDJSON: {e}"]
    if len(got) < len(out.stdout.splitlines()):
        twice = len(out.stdout.splitlines()) - len(got)
        problems.append(f"{twice} alert(s) sent twice (restart: {out.restarted or 'none'})")
    problems += out.notes
    problems += expected_change(rec, mutant, predictable(got))
    return problems


_RECORDINGS: dict[Path, Recording] = {}


def recording(path: Path, work: Path) -> Recording:
    """The recording at ``path`` with its baseline alerts (from a real replay), cached."""
    if path not in _RECORDINGS:
        data = path.read_bytes()
        out = run_replay(data, work)
        name = f"{path.parent.name}/{path.name}"
        if out.rc not in (0, 1) or sane_replay(out):
            raise RuntimeError(f"baseline replay of {path} failed: {out.stderr[-500:]}")
        _RECORDINGS[path] = Recording.build(name, data, alerts_of(out.stdout), out.stdout)
    return _RECORDINGS[path]


def make_input(
    seed: int, index: int, work: Path, classes: list[str] | None = None
) -> tuple[Recording, Mutant, random.Random]:
    """Input ``index`` of campaign ``seed`` (mutations drawn from ``classes``, by default
    all but :data:`EXCLUDED`): the same arguments give the same bytes."""
    rng = random.Random(f"{seed}:{index}")
    # The two all-scenarios recordings hold most alerts: a third of the inputs start there.
    path = rng.choice(RECORDINGS) if rng.random() < 0.67 else rng.choice(ALL_SCENARIOS)
    rec = recording(path, work)
    if classes is None:
        classes = [c for c in MUTATIONS if c not in EXCLUDED]
    n = rng.choice((1, 1, 1, 2, 3))
    mutant = Mutant.start(rec)
    for cls in rng.sample(classes, min(n, len(classes))):
        mutant.classes.append(cls)
        MUTATIONS[cls](rec, mutant, rng)
    mutant.finish(rec)
    return rec, mutant, rng


def campaign(
    mode: str,
    seconds: float,
    seed: int,
    save_dir: Path,
    stats: Stats,
    only_index: int | None = None,
    classes: list[str] | None = None,
) -> Stats:
    """Run inputs of ``seed`` through ``mode`` (``replay`` or ``daemon``) for ``seconds``."""
    deadline = time.monotonic() + seconds
    index = 0 if only_index is None else only_index
    while True:
        with tempfile.TemporaryDirectory(prefix="kw-fuzz-") as tmp:
            work = Path(tmp)
            rec, mutant, rng = make_input(seed, index, work, classes)
            if mode == "replay":
                out = run_replay(mutant.data, work)
                problems = check_replay(rec, mutant, out)
            else:
                out = run_daemon(rec, mutant, work, rng)
                problems = check_daemon(rec, mutant, out)
            stats.add(mode, mutant, out)
            if problems:
                fail = Failure(mode, seed, index, rec.name, mutant.cls, problems)
                fail.saved = save_failure(save_dir, fail, mutant.data, out)
                stats.failures.append(fail)
        index += 1
        if only_index is not None or time.monotonic() > deadline:
            return stats


def save_failure(save_dir: Path, fail: Failure, data: bytes, out: Outcome) -> Path:
    """Keep the failing input and what the run printed, for a human to look at."""
    where = save_dir / f"{fail.mode}-{fail.seed}-{fail.index}"
    where.mkdir(parents=True, exist_ok=True)
    (where / "input.log").write_bytes(data)
    (where / "stderr.txt").write_text(out.stderr[-200_000:])
    (where / "problems.txt").write_text(fail.line() + "\n")
    return where


def iter_modes(mode: str) -> Iterator[str]:
    yield from (("replay", "daemon") if mode == "both" else (mode,))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=120.0, help="total budget (default 120)")
    ap.add_argument("--seed", type=int, default=None, help="campaign seed (default: random)")
    ap.add_argument("--index", type=int, default=None, help="run only this input")
    ap.add_argument("--mode", choices=("replay", "daemon", "both"), default="both")
    ap.add_argument("--save-dir", type=Path, default=None, help="where failing inputs go")
    ap.add_argument("--daemon-share", type=float, default=0.5, help="budget share of daemon")
    ap.add_argument("--include-excluded", action="store_true", help="also run the EXCLUDED classes")
    ap.add_argument("--only", default="", help="comma-separated mutation classes to run")
    args = ap.parse_args(argv)
    if args.only:
        classes = args.only.split(",")
    else:
        classes = [c for c in MUTATIONS if args.include_excluded or c not in EXCLUDED]
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    save_dir = args.save_dir or Path(tempfile.mkdtemp(prefix="kw-fuzz-failures-"))
    print(f"seed {seed}; failing inputs go to {save_dir}", flush=True)
    stats = Stats()
    t0 = time.monotonic()
    for mode in iter_modes(args.mode):
        share = (
            1.0
            if args.mode != "both"
            else (args.daemon_share if mode == "daemon" else 1 - args.daemon_share)
        )
        campaign(
            mode,
            args.seconds * share,
            seed,
            save_dir,
            stats,
            only_index=args.index,
            classes=classes,
        )
    print(stats.report())
    print(f"elapsed {time.monotonic() - t0:.0f} s")
    return 1 if stats.failures else 0


if __name__ == "__main__":
    sys.exit(main())
