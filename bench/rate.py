"""CPU cost of a live daemon at a sustained exec rate (default 2,000 exec events/s).

Feeds generated events through one Detector in real time, in small batches as a tail
reader would see them (one read every ``--tick`` seconds), and reports the CPU seconds
used per wall second (1.0 = one core busy).

Usage::

    python bench/rate.py --rate 2000 --seconds 20
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.generate import Generator
from kexecwatch.core.detect.detector import Detector
from kexecwatch.rules import load_builtin_rules


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=2000, help="exec events per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--tick", type=float, default=0.05, help="seconds between reads")
    args = parser.parse_args(argv)

    gen = Generator(seed=7, interleave=0.03)
    lines = gen.lines()
    det = Detector(load_builtin_rules(), host_name="bench")
    per_tick = args.rate * args.tick
    owed = 0.0
    cpu_start = time.process_time()
    wall_start = time.monotonic()
    next_tick = wall_start
    while time.monotonic() - wall_start < args.seconds:
        owed += per_tick
        batch: list[str] = []
        target = gen.events + int(owed)
        owed -= int(owed)
        while gen.events < target:
            batch.append(next(lines))
        det.feed("".join(line + "\n" for line in batch).encode())
        next_tick += args.tick
        time.sleep(max(0.0, next_tick - time.monotonic()))
    wall = time.monotonic() - wall_start
    cpu = time.process_time() - cpu_start
    # The generator's own cost is measured alone and taken out.
    gen2 = Generator(seed=7, interleave=0.03)
    lines2 = gen2.lines()
    g0 = time.process_time()
    while gen2.events < gen.events:
        "".join(next(lines2) + "\n").encode()
    gen_cpu = time.process_time() - g0
    print(
        f"{gen.events / wall:.0f} exec events/s for {wall:.1f} s: detector CPU "
        f"{(cpu - gen_cpu) / wall * 100:.1f}% of one core "
        f"(total {cpu / wall * 100:.1f}% incl. generating the log, {gen_cpu / wall * 100:.1f}%); "
        f"{det.stats.events} events, {det.stats.alerts} alerts"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
