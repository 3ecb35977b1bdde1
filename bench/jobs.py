"""``replay --per-host --jobs N`` benchmark: 1 job against 2 on several host directories.

Generates (once, seeded, one seed per host) HOSTS directories of about SIZE each under
``bench/out/jobs-SIZE/``, each holding one ``audit.log`` made by ``bench/generate.py``,
then times ``kexecwatch replay --per-host`` over all of them with ``--jobs 1`` and with
``--jobs 2``, interleaved, ROUNDS times each. Prints the median wall time of each, the
ratio (target: 2 jobs take at most 0.6 of 1 job's time on 2 cores), and checks that both
wrote the same bytes.

Usage::

    python bench/jobs.py                       # 4 hosts of 50 MB, 3 rounds
    python bench/jobs.py --hosts 4 --size 10M --rounds 3
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
TARGET = 0.6

sys.path.insert(0, str(HERE.parent))
from bench.generate import generate, parse_size  # noqa: E402


def host_dirs(count: int, size: str) -> list[Path]:
    """``count`` host directories of about ``size`` each (made once, reused).

    The generator's expectations file stays beside the directory, not in it, since
    a directory's ``audit.log*`` set would take it for a log.
    """
    base = OUT / f"jobs-{size}"
    dirs = []
    for i in range(1, count + 1):
        directory = base / f"host-{i}"
        log = directory / "audit.log"
        if not log.exists():
            directory.mkdir(parents=True, exist_ok=True)
            staged = base / f"host-{i}.log"
            print(f"generating {log} ...", file=sys.stderr)
            generate(staged, parse_size(size), seed=i)
            os.replace(staged, log)
        dirs.append(directory)
    return dirs


def command(dirs: list[Path], jobs: int) -> list[str]:
    exe = shutil.which("kexecwatch", path=str(Path(sys.executable).parent)) or "kexecwatch"
    return [exe, "replay", "--per-host", "--jobs", str(jobs), "--quiet", *map(str, dirs)]


def timed(cmd: list[str]) -> tuple[float, float, str]:
    """Wall seconds and CPU seconds (user + system, all processes) of one run, and the
    SHA-256 of what it wrote to stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, check=False)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)}: exit {done.returncode}: {done.stderr.decode()}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return seconds, cpu, hashlib.sha256(done.stdout).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="replay --per-host --jobs benchmark")
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--size", default="50M", help="log size of each host")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    dirs = host_dirs(args.hosts, args.size)
    total_mb = sum((d / "audit.log").stat().st_size for d in dirs) / 1e6
    for d in dirs:  # warm the page cache
        (d / "audit.log").read_bytes()
    times: dict[int, list[float]] = {1: [], 2: []}
    cpu: dict[int, list[float]] = {1: [], 2: []}
    digests: set[str] = set()
    load = os.getloadavg()[0]
    for round_no in range(args.rounds):
        for jobs in (1, 2):  # interleaved: one of each per round
            seconds, cpu_seconds, digest = timed(command(dirs, jobs))
            times[jobs].append(seconds)
            cpu[jobs].append(cpu_seconds)
            digests.add(digest)
        print(f"round {round_no + 1}/{args.rounds} done", file=sys.stderr)

    one, two = statistics.median(times[1]), statistics.median(times[2])
    ratio = two / one
    print(
        f"\n{args.hosts} hosts, {total_mb:.0f} MB in all, {os.cpu_count()} CPUs, "
        f"{args.rounds} interleaved rounds, medians; load average {load:.2f} before the runs "
        "(other work on the machine takes cores from the 2 jobs)"
    )
    print("| jobs | wall s | MB/s | CPU s | wall s of each round |")
    print("|---:|---:|---:|---:|---|")
    for jobs, secs in ((1, one), (2, two)):
        rounds = ", ".join(f"{t:.2f}" for t in times[jobs])
        spent = statistics.median(cpu[jobs])
        print(f"| {jobs} | {secs:.2f} | {total_mb / secs:.0f} | {spent:.2f} | {rounds} |")
    verdict = "met" if ratio <= TARGET else "NOT met"
    print(f"\n--jobs 2 / --jobs 1: {ratio:.2f} (target <= {TARGET}: {verdict})")
    same = len(digests) == 1
    print(f"same output bytes for every run: {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
