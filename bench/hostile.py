"""Hostile-input benchmark (issue 16 §3): time and peak memory of the inputs that used to cost.

Each case runs in its own interpreter (``kexecwatch replay`` on a generated file, or a rule
evaluated on one document) and prints wall time and peak RSS. The figures are for the
README; the tests (``tests/test_bounded_cost.py``,
``tests/core/detect/rule/test_linear_patterns.py``)
only hold the complexity class, under timeouts.

    .venv/bin/python bench/hostile.py [--case NAME ...]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.builders import exec_lines, join  # noqa: E402


def _far_index(count: int) -> bytes:
    lines = exec_lines(1, args=("kexec", "-l", "vmlinuz"))
    lines[1] += b"".join(b' a%d="x"' % (99_999_999 - i) for i in range(count))
    return join(lines)


def _far_index_file() -> bytes:
    # About 437 KB: many events, each with far argument indices.
    out = []
    for serial in range(1, 1_001):
        lines = exec_lines(serial, pid=1000 + serial, args=("kexec", "-l", "vmlinuz"))
        lines[1] += b"".join(b' a%d="x"' % (99_999_999 - i) for i in range(20))
        out.extend(lines)
    return join(out)


def _nodes(count: int) -> bytes:
    return b"".join(
        b"node=h%d type=USER_START msg=audit(1700000000.%03d:%d): pid=1 uid=0 auid=0 ses=1 "
        b"msg='op=PAM:session_open acct=\"root\" res=success'\n" % (i, i % 1000, i + 1)
        for i in range(count)
    )


REPLAY_CASES = {
    "one a99999999 field": lambda: _far_index(1),
    "437 KB of far indices": _far_index_file,
    "40,000 nodes": lambda: _nodes(40_000),
    "80,000 nodes": lambda: _nodes(80_000),
}
RULE_CASES = {
    "regex (a+)+b, 30 chars": ('process.args regex "(a+)+b"', '"a" * 30'),
    "regex (a+)+b, 504 KB": ('process.args regex "(a+)+b"', '"a" * 504_000'),
    "like *a*a*a*a*b, 500 chars": ('process.args like "*a*a*a*a*b"', '"a" * 500'),
    "like *a*a*a*a*b, 504 KB": ('process.args like "*a*a*a*a*b"', '"a" * 504_000'),
    "3-star wildcard, 504 KB": ('process.command_line : "*x*y*z"', '"x" * 504_000'),
    "regex~ [a-z]*x[a-z]{8}, 504 KB": (
        'process.command_line regex~ "[a-z]*x[a-z]{8}"',
        '"ab" * 252_000',
    ),
    "regex [ab]*a[ab]{12}, 504 KB random": (
        'process.command_line regex "[ab]*a[ab]{12}"',
        'bytes(0x61 | b & 1 for b in __import__("random").Random(1).randbytes(504_000)).decode()',
    ),
}


def _measure(argv: list[str], timeout: float) -> tuple[float, float, int]:
    """Run ``argv``; wall seconds, peak RSS in MB, exit code (-9: killed at ``timeout``).

    ``PYTHONPATH`` passes through, so ``PYTHONPATH=/some/checkout`` measures another version.
    """
    wrapped = [
        sys.executable,
        "-c",
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "try:\n"
        "    code = subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL,"
        " stderr=subprocess.DEVNULL, timeout=float(sys.argv[1])).returncode\n"
        "except subprocess.TimeoutExpired:\n"
        "    code = -9\n"
        "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(time.perf_counter() - t, rss / 1024, code)\n",
        str(timeout),
        *argv,
    ]
    out = subprocess.run(wrapped, capture_output=True, check=True, text=True).stdout.split()
    return float(out[0]), float(out[1]), int(out[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", action="append", help="run only these cases (by name)")
    parser.add_argument("--timeout", type=float, default=120, help="seconds per case")
    args = parser.parse_args()
    wanted = set(args.case or [])
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
    print(f"{'case':34} {'seconds':>8} {'peak MB':>8} {'exit':>5}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in REPLAY_CASES.items():
            if wanted and name not in wanted:
                continue
            path = Path(tmp) / "case.log"
            path.write_bytes(make())
            argv = [sys.executable, "-m", "kexecwatch", "replay", "--ruleset", "upstream"]
            seconds, peak, code = _measure([*argv, str(path)], args.timeout)
            print(f"{name:34} {seconds:8.2f} {peak:8.0f} {code:5}")
        for name, (condition, value) in RULE_CASES.items():
            if wanted and name not in wanted:
                continue
            code_text = (
                "from kexecwatch.core.detect.rule import compile_query\n"
                f"q = compile_query('process where ' + {condition!r})\n"
                f"v = {value}\n"
                "q.matches({'event': {'category': ['process']},"
                " 'process': {'args': [v], 'command_line': v}})\n"
            )
            seconds, peak, code = _measure([sys.executable, "-c", code_text], args.timeout)
            print(f"{name:34} {seconds:8.2f} {peak:8.0f} {code:5}")


if __name__ == "__main__":
    main()
