"""Measure the daemon: alert latency, idle CPU, CPU under exec load, peak RSS.

Usage: ``python bench/daemon_bench.py [--events 1000] [--rate 2000] [--hour-events 72000]``

Runs a real daemon process on a temporary log written by the fake auditd of the tests,
and prints the figures issue 3 asks for (targets in brackets). Numbers, not asserts.
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
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.daemon.harness import RUNNER, FakeAuditd  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime (fields 14, 15)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Run:
    def __init__(self, tmp: Path) -> None:
        self.log = tmp / "audit.log"
        self.writer = FakeAuditd(self.log)
        self.received: dict[str, float] = {}
        self.proc = subprocess.Popen(
            [
                *RUNNER,
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
            stderr=subprocess.DEVNULL,
        )
        threading.Thread(target=self._read, daemon=True).start()
        time.sleep(2.0)  # start-up, /proc seeding

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            now = time.monotonic()
            aid = json.loads(line)["event"]["id"]
            self.received[aid.split(":", 2)[2]] = now

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)


def latency(run: Run, n: int) -> None:
    written: dict[str, float] = {}
    for _ in range(n):
        run.writer.t += 3_100  # event time: stay under the rule's 100 alerts / 5 minutes
        recs = run.writer.event(kexec=True)
        aid = run.writer.expected[-1]
        run.writer.write(b"".join(recs))
        written[aid] = time.monotonic()
        time.sleep(0.01)
    deadline = time.monotonic() + 30
    while len(run.received) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    lat = sorted((run.received[a] - t) * 1000 for a, t in written.items() if a in run.received)
    if not lat:
        print("latency: no alerts received")
        return
    p50, p99 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    print(
        f"alert latency over {len(lat)}/{n} events: p50 {p50:.1f} ms, p99 {p99:.1f} ms "
        "[p99 < 100 ms]"
    )


def idle_cpu(run: Run, seconds: float) -> None:
    c0, t0 = cpu_seconds(run.proc.pid), time.monotonic()
    time.sleep(seconds)
    c1, t1 = cpu_seconds(run.proc.pid), time.monotonic()
    print(f"idle CPU over {seconds:.0f} s: {100 * (c1 - c0) / (t1 - t0):.2f}% of a core [< 0.5%]")


def load_cpu(run: Run, rate: int, seconds: float) -> None:
    c0, t0 = cpu_seconds(run.proc.pid), time.monotonic()
    tick = 0.1
    for i in range(int(seconds / tick)):
        batch = b"".join(b"".join(run.writer.event()) for _ in range(int(rate * tick)))
        run.writer.write(batch)
        delay = t0 + (i + 1) * tick - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    sentinel(run)
    c1, t1 = cpu_seconds(run.proc.pid), time.monotonic()
    behind = t1 - t0 - seconds
    per_event_ms = 1000 * (c1 - c0) / (rate * seconds)
    print(
        f"CPU at {rate} exec events/s for {seconds:.0f} s: "
        f"{100 * (c1 - c0) / (t1 - t0):.1f}% of a core over {t1 - t0:.1f} s "
        f"(caught up {behind:.1f} s after the writer stopped); {per_event_ms:.3f} ms CPU "
        f"per exec event = {per_event_ms * rate / 10:.0f}% of a core at {rate}/s [< 15%]"
    )


def sentinel(run: Run, timeout: float = 900) -> None:
    """Write one kexec event and wait for its alert: the daemon has caught up."""
    run.writer.t += 3_100
    run.writer.emit(kexec=True)
    aid = run.writer.expected[-1]
    deadline = time.monotonic() + timeout
    while aid not in run.received and time.monotonic() < deadline:
        time.sleep(0.05)


def hour_rss(run: Run, events: int) -> None:
    t0 = time.monotonic()
    for start in range(0, events, 1000):
        batch = b"".join(b"".join(run.writer.event()) for k in range(min(1000, events - start)))
        run.writer.write(batch)
    sentinel(run)
    print(
        f"peak RSS after {events} exec events ({events * 7} lines, "
        f"{time.monotonic() - t0:.0f} s): {peak_rss_mb(run.proc.pid):.1f} MB [< 80 MB]"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--load-seconds", type=float, default=10.0)
    ap.add_argument("--idle-seconds", type=float, default=20.0)
    ap.add_argument(
        "--hour-events",
        type=int,
        default=72_000,
        help="exec events standing for an hour (default: 20 execs/s)",
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = Run(Path(tmp))
        try:
            latency(run, args.events)
            idle_cpu(run, args.idle_seconds)
            load_cpu(run, args.rate, args.load_seconds)
            hour_rss(run, args.hour_events)
        finally:
            run.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
