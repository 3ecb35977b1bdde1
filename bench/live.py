"""CPU use of ``kexecwatch live`` in a real terminal (tmux), read from /proc.

    .venv/bin/python bench/live.py [--events 50000]

Prints, for a generated log of N exec events:
  * ``kexecwatch replay`` on it (no screen): wall time and events/s, the baseline;
  * ``live --replay --speed max``: wall time to "replay finished", CPU seconds, events/s;
  * ``live`` idle after the replay finished (20 s): CPU %;
  * ``live PATH`` following a file nobody writes (20 s): CPU %.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.builders import exec_lines, join  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
NOISE = [("bash", "/usr/bin/bash"), ("ls", "/usr/bin/ls"), ("grep", "/usr/bin/grep")]


def make_log(path: Path, events: int) -> None:
    with path.open("wb") as out:
        for n in range(1, events + 1):
            t = f"{1_700_000_000 + n // 200}.{n % 1000:03d}"
            if n % 1000 == 0:
                lines = exec_lines(n, t=t, pid=10_000 + n, ppid=500, args=("kexec", "-l", "k"))
            else:
                comm, exe = NOISE[n % len(NOISE)]
                lines = exec_lines(
                    n, t=t, pid=10_000 + n, ppid=500, comm=comm, exe=exe, args=(comm, "-x", str(n))
                )
            out.write(join(lines))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


class Pane:
    def __init__(self, command: str) -> None:
        self.socket = f"kxw-bench-{os.getpid()}"
        self.run("new-session", "-d", "-x", "100", "-y", "30", "-s", "b", command)
        time.sleep(0.5)

    def run(self, *args: str) -> str:
        env = {**os.environ, "LANG": "C.UTF-8", "TERM": "xterm-256color"}
        return subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True, env=env
        ).stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "b")

    def pid(self) -> int:
        return int(self.run("display", "-p", "-t", "b", "#{pane_pid}").strip())

    def close(self) -> None:
        path = self.run("display", "-p", "#{socket_path}").strip()
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], check=False)
        Path(path).unlink(missing_ok=True)


def idle_cpu(pid: int, seconds: float) -> float:
    c0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return 100 * (cpu_seconds(pid) - c0) / (time.monotonic() - t0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--idle", type=float, default=20.0)
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        print("tmux is needed (apt-get install tmux)")
        return 1
    kexecwatch = [sys.executable, "-m", "kexecwatch"]
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "audit.log"
        make_log(log, args.events)
        size = log.stat().st_size / 1e6
        print(f"log: {args.events} exec events, {size:.1f} MB")
        t0 = time.monotonic()
        subprocess.run(
            [*kexecwatch, "replay", "--quiet", str(log)],
            stdout=subprocess.DEVNULL,
            check=False,
            cwd=ROOT,
        )
        wall = time.monotonic() - t0
        print(f"replay (no screen):     {wall:6.2f} s wall, {args.events / wall:9,.0f} events/s")

        pane = Pane(f"cd {ROOT} && exec {' '.join(kexecwatch)} live --replay {log} --speed max")
        try:
            pid = pane.pid()
            t0 = time.monotonic()
            while "replay finished" not in pane.screen():
                time.sleep(0.05)
            wall = time.monotonic() - t0
            cpu = cpu_seconds(pid)
            print(
                f"live --speed max:       {wall:6.2f} s wall, {cpu:6.2f} s CPU, "
                f"{args.events / wall:9,.0f} events/s (incl. start-up)"
            )
            print(
                f"live idle (finished):   {idle_cpu(pid, args.idle):6.2f} % CPU "
                f"over {args.idle:.0f} s"
            )
        finally:
            pane.close()
        pane = Pane(f"cd {ROOT} && exec {' '.join(kexecwatch)} live {log}")
        try:
            pid = pane.pid()
            while "events " + f"{args.events:,}" not in pane.screen():
                time.sleep(0.1)
            print(
                f"live following, idle:   {idle_cpu(pid, args.idle):6.2f} % CPU "
                f"over {args.idle:.0f} s"
            )
        finally:
            pane.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
