"""Measure the daemon, per scanner: alert latency, idle CPU, CPU under exec load, RSS.

Usage::

    python bench/daemon_bench.py                      # both scanners, the tests' fake auditd
    python bench/daemon_bench.py --feed mixed         # records from bench/generate.py's shape
    python bench/daemon_bench.py --scanner native --events 1000 --rate 2000
    python bench/daemon_bench.py --only load --tick 0.001 --rounds 3  # a writer flushing every ms

For each scanner (``KEXECWATCH_SCANNER=python`` and ``=native``), runs a real
``kexecwatch run`` on a temporary log and appends records to it as auditd does, then
prints the figures issue 11 asks for (targets in brackets) and a table of both. Numbers,
not asserts.

The feed: ``fake`` is the tests' fake auditd (one ``ls -l`` exec per event, with ``EOE``,
not ENRICHED; the feed of the figures measured before issue 11); a shape name of
``bench/generate.py`` writes that shape's events (ENRICHED, varied commands and parents;
``mixed`` adds non-exec system calls, sessions, EOE and gaps between the execs). The exec
rate counts exec events only.

1. Alert latency: EVENTS alerting kexec events, one every 10 ms, each written in one
   ``write``; the time from the write to the alert's line on the daemon's stdout.
2. Idle CPU: nothing written for IDLE seconds.
3. CPU under load: RATE exec events a second for LOAD seconds, written every TICK
   seconds (0.1 by default; 0.001 stands for auditd flushing a few records at a time);
   then one kexec event, whose alert says the daemon has caught up.
4. Alert latency inside a busy log: RATE exec events a second written every millisecond
   (as auditd flushes under load) for BUSY seconds, with a kexec event every 50 ms; the
   time from each kexec's write to its alert. A busy log is read less often (the
   follower's ``BUSY_SETTLE``), so this is the latency the 100 ms target must hold under.
5. RSS: HOUR exec events (an hour at 20 execs a second) written as fast as the daemon
   takes them, then the peak RSS (``VmHWM``), with the RSS before and after them.

``--rounds N`` runs the scanners in turn N times (python, native, python, ...) and
reports each figure's median round and the range of all rounds; ``--only`` picks figures.
``--baseline EXE`` measures another installed kexecwatch too (say, main's build), in the
same rounds, each of its runs right after this checkout's with the same scanner: on a shared
machine only such pairs compare.

The daemon runs as ``python -m kexecwatch run`` with this checkout first on ``PYTHONPATH``
(the interpreter running the bench), or as ``EXE run`` for a baseline. Its stderr goes to a
file; a daemon that exits while measured (it could not start: a scanner that does not load,
a bad option) ends the bench at once with exit 3 and the last lines it wrote.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.generate import SHAPES, Generator  # noqa: E402
from bench.run import SCANNERS, Reader, scanner_problem  # noqa: E402
from tests.daemon.harness import FakeAuditd  # noqa: E402

#: This checkout's daemon: the bench's own interpreter, the checkout first on its path.
CHECKOUT = (sys.executable, "-m", "kexecwatch")
#: Seconds a daemon is given to start (load rules, seed the table from /proc) before the
#: figures begin.
START_SECONDS = 2.0
#: The daemon's stderr lines quoted when it exits early.
STDERR_TAIL = 5

TICKS = os.sysconf("SC_CLK_TCK")
TARGETS = {
    "latency": ("alert latency p99", "< 100 ms"),
    "idle": ("idle CPU", "< 0.5% of a core"),
    "load": ("CPU at {rate:,} exec events/s, a write every {tick:g} ms", "<= 2% of a core"),
    "busy": (
        "alert latency p99 inside a busy log ({rate:,} exec events/s, a write every ms)",
        "< 100 ms",
    ),
    "rss": ("peak RSS after {hour:,} exec events", "< 64 MB"),
}


class DaemonExited(Exception):
    """The daemon under measure exited; ``str()`` says how, with its last stderr lines."""


class Build(NamedTuple):
    """A kexecwatch to run: its command (without ``run``) and its label in the table."""

    cmd: tuple[str, ...]
    label: str = ""

    def env(self, scanner: str) -> dict[str, str]:
        env = Reader("", (), scanner).env
        if self.cmd == CHECKOUT:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(REPO), env.get("PYTHONPATH"))))
        else:
            env.pop("PYTHONPATH", None)
        return env

    def column(self, scanner: str) -> str:
        return f"{scanner} [{self.label}]" if self.label else scanner


class Figure(NamedTuple):
    """One measured figure: the text of the table, and the number its median is of."""

    text: str
    value: float


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime (fields 14, 15)


def rss_mb(pid: int, field: str = "VmHWM") -> float:
    """``field`` of ``/proc/PID/status`` in MB: ``VmHWM`` the peak RSS, ``VmRSS`` now."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


class FakeFeed:
    """The tests' fake auditd: ``ls -l`` execs and ``kexec -l`` ones."""

    def __init__(self, log: Path) -> None:
        self.writer = FakeAuditd(log)

    def write(self, data: bytes) -> None:
        self.writer.write(data)

    def kexec(self) -> tuple[bytes, str]:
        self.writer.t += 3_100  # event time: stay under the rule's 100 alerts / 5 minutes
        recs = self.writer.event(kexec=True)
        return b"".join(recs), self.writer.expected[-1]

    def execs(self, n: int) -> bytes:
        return b"".join(b"".join(self.writer.event()) for _ in range(n))

    def close(self) -> None:
        self.writer.close()


class ShapeFeed:
    """Events of a ``bench/generate.py`` shape, appended with O_APPEND as auditd does."""

    def __init__(self, log: Path, shape: str) -> None:
        self.fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.gen = Generator(seed=11, **SHAPES[shape])  # type: ignore[arg-type]
        self.batches = self.gen.batches()

    def write(self, data: bytes) -> None:
        os.write(self.fd, data)

    def kexec(self) -> tuple[bytes, str]:
        """An alerting kexec scenario (tried until the rule must alert) and its audit id."""
        while True:
            self.gen.pause(3_100)
            before = len(self.gen.expected)
            events = self.gen.with_eoe(self.gen.kexec_scenario())
            data = "".join(line + "\n" for event in events for line in event).encode()
            if len(self.gen.expected) > before:
                return data, self.gen.expected[-1]
            self.write(data)

    def execs(self, n: int) -> bytes:
        """At least ``n`` exec events (whole events, with what the shape puts between)."""
        target = self.gen.events + n
        lines: list[str] = []
        while self.gen.events < target or not self.gen.whole:
            lines += next(self.batches)
        return "".join(line + "\n" for line in lines).encode()

    def close(self) -> None:
        os.close(self.fd)


class Run:
    """A ``kexecwatch run`` daemon with one scanner, its stdout read by a thread, its
    stderr kept in a file."""

    def __init__(self, tmp: Path, scanner: str, feed: str, build: Build) -> None:
        self.log = tmp / "audit.log"
        self.feed: FakeFeed | ShapeFeed = (
            FakeFeed(self.log) if feed == "fake" else ShapeFeed(self.log, feed)
        )
        self.received: dict[str, float] = {}
        self.stderr_path = tmp / "daemon.stderr"
        with self.stderr_path.open("wb") as stderr:
            self.proc = subprocess.Popen(
                [
                    *build.cmd,
                    "run",
                    "--log",
                    str(self.log),
                    "--state-dir",
                    str(tmp / "state"),
                    "--output",
                    "stdout",
                    "--host-name",
                    "bench",
                ],
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=build.env(scanner),
                cwd=tmp,
            )
        threading.Thread(target=self._read, daemon=True).start()
        self.pause(START_SECONDS)  # start-up, /proc seeding

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            now = time.monotonic()
            aid = json.loads(line)["event"]["id"]
            self.received[aid.split(":", 2)[2]] = now

    def check(self) -> None:
        """Raise :class:`DaemonExited` if the daemon is no longer running."""
        code = self.proc.poll()
        if code is None:
            return
        lines = self.stderr_path.read_text(errors="replace").splitlines()[-STDERR_TAIL:]
        said = "; ".join(line.strip() for line in lines) or "nothing on stderr"
        raise DaemonExited(f"kexecwatch run exited with status {code}: {said}")

    def pause(self, seconds: float) -> None:
        """Sleep ``seconds``, checking every 50 ms that the daemon still runs."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.check()
            time.sleep(min(0.05, left))
        self.check()

    def wait_for(self, done: Callable[[], bool], timeout: float) -> None:
        """Wait until ``done()`` or ``timeout`` seconds; raise if the daemon exits."""
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline:
            self.pause(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(60)
        self.feed.close()


def latency(run: Run, n: int) -> Figure:
    written: dict[str, float] = {}
    for _ in range(n):
        data, aid = run.feed.kexec()
        run.feed.write(data)
        written[aid] = time.monotonic()
        time.sleep(0.01)
    return latency_figure(run, written, "alert latency")


def busy_latency(run: Run, rate: int, seconds: float) -> Figure:
    """Kexec events inside a stream of ``rate`` exec events a second, written every ms."""
    written: dict[str, float] = {}
    per_ms = max(1, rate // 1000)
    t0 = time.monotonic()
    for i in range(int(seconds * 1000)):
        if i % 50 == 0:
            data, aid = run.feed.kexec()
            run.feed.write(data + run.feed.execs(per_ms - 1))
            written[aid] = time.monotonic()
        else:
            run.feed.write(run.feed.execs(per_ms))
        delay = t0 + (i + 1) * 0.001 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if i % 100 == 0:
            run.check()
    return latency_figure(run, written, "alert latency inside a busy log")


def latency_figure(run: Run, written: dict[str, float], what: str) -> Figure:
    """The p50 and p99 from each alert id's write time to its alert line."""
    run.wait_for(lambda: written.keys() <= run.received.keys(), 30)
    lat = sorted((run.received[a] - t) * 1000 for a, t in written.items() if a in run.received)
    n = len(written)
    if not lat:
        print(f"{what}: no alerts received")
        return Figure("no alert", float("inf"))
    p50, p99 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    print(f"{what} over {len(lat)}/{n} events: p50 {p50:.1f} ms, p99 {p99:.1f} ms [p99 < 100 ms]")
    return Figure(f"p99 {p99:.1f} ms (p50 {p50:.1f} ms, {len(lat)}/{n} alerts)", p99)


def idle_cpu(run: Run, seconds: float) -> Figure:
    c0, t0 = cpu_seconds(run.proc.pid), time.monotonic()
    run.pause(seconds)
    c1, t1 = cpu_seconds(run.proc.pid), time.monotonic()
    share = 100 * (c1 - c0) / (t1 - t0)
    print(f"idle CPU over {seconds:.0f} s: {share:.2f}% of a core [< 0.5%]")
    return Figure(f"{share:.2f}%", share)


def load_cpu(run: Run, rate: int, seconds: float, tick: float) -> Figure:
    c0, t0 = cpu_seconds(run.proc.pid), time.monotonic()
    for i in range(int(seconds / tick)):
        run.feed.write(run.feed.execs(int(rate * tick)))
        delay = t0 + (i + 1) * tick - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if i % 100 == 0:
            run.check()
    sentinel(run)
    c1, t1 = cpu_seconds(run.proc.pid), time.monotonic()
    behind = t1 - t0 - seconds
    share = 100 * (c1 - c0) / (t1 - t0)
    per_event_ms = 1000 * (c1 - c0) / (rate * seconds)
    print(
        f"CPU at {rate} exec events/s for {seconds:.0f} s, a write every {tick * 1000:g} ms: "
        f"{share:.1f}% of a core over "
        f"{t1 - t0:.1f} s (caught up {behind:.1f} s after the writer stopped); "
        f"{per_event_ms:.3f} ms CPU per exec event = {per_event_ms * rate / 10:.1f}% of a core "
        f"at {rate}/s [<= 2%]"
    )
    share_at_rate = per_event_ms * rate / 10
    return Figure(f"{share_at_rate:.1f}% ({per_event_ms * 1000:.0f} us an exec)", share_at_rate)


def sentinel(run: Run, timeout: float = 900) -> None:
    """Write one kexec event and wait for its alert: the daemon has caught up."""
    data, aid = run.feed.kexec()
    run.feed.write(data)
    run.wait_for(lambda: aid in run.received, timeout)
    if aid not in run.received:
        raise DaemonExited(f"no alert for the sentinel kexec event within {timeout:g} s")


def hour_rss(run: Run, events: int) -> Figure:
    before = rss_mb(run.proc.pid, "VmRSS")
    t0 = time.monotonic()
    for start in range(0, events, 1000):
        run.feed.write(run.feed.execs(min(1000, events - start)))
        run.check()
    sentinel(run)
    rss, now = rss_mb(run.proc.pid), rss_mb(run.proc.pid, "VmRSS")
    print(
        f"peak RSS after {events} exec events ({time.monotonic() - t0:.0f} s): "
        f"{rss:.1f} MB [< 64 MB]; RSS {before:.1f} MB before them, {now:.1f} MB after"
    )
    return Figure(f"{rss:.1f} MB (RSS {before:.0f} MB before, {now:.0f} MB after)", rss)


def measure(scanner: str, build: Build, args: argparse.Namespace) -> dict[str, Figure]:
    print(f"\n== scanner {scanner}, {build.label or 'this checkout'}, feed {args.feed}")
    steps: dict[str, Callable[[Run], Figure]] = {
        "latency": lambda run: latency(run, args.events),
        "idle": lambda run: idle_cpu(run, args.idle_seconds),
        "load": lambda run: load_cpu(run, args.rate, args.load_seconds, args.tick),
        "busy": lambda run: busy_latency(run, args.rate, args.busy_seconds),
        "rss": lambda run: hour_rss(run, args.hour_events),
    }
    with tempfile.TemporaryDirectory() as tmp:
        run = Run(Path(tmp), scanner, args.feed, build)
        try:
            return {name: step(run) for name, step in steps.items() if name in args.only}
        finally:
            run.stop()


def median_text(figures: list[Figure]) -> str:
    """The median round's text (the lower middle one for an even count) and the range."""
    ranked = sorted(figures, key=lambda f: f.value)
    middle = ranked[(len(ranked) - 1) // 2]
    if len(ranked) == 1:
        return middle.text
    low, high = ranked[0].value, ranked[-1].value
    return f"{middle.text}, median of {len(ranked)} (range {low:.3g} to {high:.3g})"


def usable(
    scanners: Sequence[str], builds: Sequence[Build], ap: argparse.ArgumentParser, asked: bool
) -> list[str]:
    """The scanners every build runs with; an asked-for one that cannot run is an error."""
    kept = []
    for s in scanners:
        problems = [(b, scanner_problem(s, b.cmd, b.env(s))) for b in builds]
        bad = [(b, p) for b, p in problems if p is not None]
        if not bad:
            kept.append(s)
            continue
        b, problem = bad[0]
        who = f" ({b.label})" if b.label else ""
        if asked:
            ap.error(f"--scanner {s}{who}: {problem}")
        print(f"daemon_bench.py: the {s} scanner is not measured{who}: {problem}", file=sys.stderr)
    return kept


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=1000, help="kexec events for the latency")
    ap.add_argument("--rate", type=int, default=2000, help="exec events a second under load")
    ap.add_argument("--load-seconds", type=float, default=10.0)
    ap.add_argument(
        "--tick",
        type=float,
        default=0.1,
        help="seconds between writes under load (default 0.1; 0.001: a write a millisecond)",
    )
    ap.add_argument(
        "--only",
        action="append",
        choices=list(TARGETS),
        help="measure only this figure (repeatable; default: all)",
    )
    ap.add_argument(
        "--rounds", type=int, default=1, help="rounds of every scanner in turn; medians"
    )
    ap.add_argument("--idle-seconds", type=float, default=20.0)
    ap.add_argument(
        "--busy-seconds",
        type=float,
        default=10.0,
        help="seconds of the busy log around the kexec events (a kexec every 50 ms)",
    )
    ap.add_argument(
        "--hour-events",
        type=int,
        default=72_000,
        help="exec events standing for an hour (default: 20 execs/s)",
    )
    ap.add_argument(
        "--feed",
        choices=["fake", *SHAPES],
        default="fake",
        help="what is written: the tests' fake auditd (default) or a bench/generate.py shape",
    )
    ap.add_argument(
        "--scanner",
        dest="scanners",
        action="append",
        choices=SCANNERS,
        help="KEXECWATCH_SCANNER values (repeatable; default: each that runs)",
    )
    ap.add_argument(
        "--baseline",
        metavar="EXE",
        help="another installed kexecwatch to measure in the same rounds (A/B pairs)",
    )
    args = ap.parse_args(argv)
    args.only = args.only or list(TARGETS)
    if not 0.001 <= args.tick <= args.load_seconds or args.rounds < 1:
        ap.error("--tick must be 0.001 to --load-seconds, --rounds at least 1")
    builds = [Build(CHECKOUT)]
    if args.baseline:
        builds.append(Build((args.baseline,), "baseline"))
    scanners = usable(args.scanners or SCANNERS, builds, ap, bool(args.scanners))
    load = os.getloadavg()[0]
    columns = [(s, b) for s in scanners for b in builds]
    rounds: dict[tuple[str, Build], list[dict[str, Figure]]] = {c: [] for c in columns}
    try:
        for _ in range(args.rounds):
            for s, b in columns:
                rounds[s, b].append(measure(s, b, args))
    except DaemonExited as exc:
        print(f"daemon_bench.py: error: {exc}", file=sys.stderr)
        return 3
    print(
        f"\nfeed {args.feed}; {os.cpu_count()} CPUs, load average {load:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after (a shared machine: other work adds noise)\n"
    )
    print("| figure | " + " | ".join(b.column(s) for s, b in columns) + " | target |")
    print("|---|" + "---:|" * len(columns) + "---|")
    for key, (title, target) in TARGETS.items():
        if key not in args.only:
            continue
        name = title.format(rate=args.rate, hour=args.hour_events, tick=args.tick * 1000)
        cells = [median_text([r[key] for r in rounds[c]]) for c in columns]
        print(f"| {name} | " + " | ".join(cells) + f" | {target} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
