"""``replay --per-host --jobs N``: one stream per host, replayed in parallel processes,
one merged output whose order does not depend on N (issue 14, "Offline, many hosts").

Driven as real processes on copies of the recorded fixtures laid out as one directory
per host, as an investigation receives them.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.builders import exec_lines, join
from tests.test_cli_errors import kexecwatch, one_error_line

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "audit"


@pytest.fixture
def hosts(tmp_path: Path) -> list[Path]:
    """Four host directories: rotated sets, raw and enriched recordings, some records
    carrying node= and some not."""
    layout = {
        "web-1": {"audit.log.1": "raw/all-scenarios.log", "audit.log": "raw/kdump-flows.log"},
        "db-2": {"audit.log": "enriched/evasion-args.log"},
        "build-3": {
            "audit.log.2": "raw/v7-exec-short.log",
            "audit.log.1": "raw/telemetry-gap.log",
            "audit.log": "raw/v7-load-long.log",
        },
        "edge-4": {"audit.log": "enriched/all-scenarios.log"},
    }
    made = []
    for host, files in layout.items():
        directory = tmp_path / host
        directory.mkdir()
        for name, fixture in files.items():
            shutil.copyfile(FIXTURES / fixture, directory / name)
        made.append(directory)
    return made


def lines_of(stdout: bytes) -> list[bytes]:
    return stdout.splitlines(keepends=True)


@pytest.mark.parametrize(
    "extra",
    [
        (),
        ("--format", "text"),
        ("--events",),
        ("--events", "--since", "1796012995", "--until", "2026-12-31"),
    ],
    ids=["json", "text", "events", "events-since-until"],
)
def test_output_is_byte_identical_whatever_the_number_of_jobs(
    hosts: list[Path], extra: tuple[str, ...]
) -> None:
    paths = [str(h) for h in hosts]
    runs = [
        kexecwatch("replay", "--per-host", "--jobs", str(n), "--quiet", *extra, *paths)
        for n in (1, 2, 3)
    ]
    for run in runs:
        assert run.returncode in (0, 1), run.stderr.decode()
        assert b"Traceback" not in run.stderr
    assert runs[0].stdout, "the fixtures produce output"
    assert runs[0].stdout == runs[1].stdout == runs[2].stdout
    assert runs[0].stderr == runs[1].stderr == runs[2].stderr
    # The order of the arguments does not matter either: hosts sort by name.
    reversed_run = kexecwatch(
        "replay", "--per-host", "--jobs", "2", "--quiet", *extra, *reversed(paths)
    )
    assert reversed_run.stdout == runs[0].stdout


def test_merged_output_is_each_host_alone_sorted_by_time_then_host(hosts: list[Path]) -> None:
    merged = kexecwatch("replay", "--per-host", "--jobs", "2", "--quiet", *map(str, hosts))
    assert merged.returncode == 1, merged.stderr.decode()
    expected: list[tuple[str, str, int, bytes]] = []
    for host in hosts:
        alone = kexecwatch("replay", "--quiet", "--host-name", host.name, str(host))
        assert alone.returncode == 1, alone.stderr.decode()
        for seq, line in enumerate(lines_of(alone.stdout)):
            expected.append((json.loads(line)["@timestamp"], host.name, seq, line))
    # Each host its own stream and process table: the merge is the four replays
    # interleaved by @timestamp, then host, then each host's own order.
    assert lines_of(merged.stdout) == [line for *_, line in sorted(expected)]
    names = {json.loads(line)["host"]["name"] for line in lines_of(merged.stdout)}
    # host.name is the directory's name for records without node=, node= otherwise.
    assert {"web-1", "build-3"} <= names
    assert "db-2" not in names and "edge-4" not in names  # all their records carry node=


def test_summary_per_host_and_in_total(hosts: list[Path]) -> None:
    result = kexecwatch("replay", "--per-host", "--jobs", "2", *map(str, hosts))
    err = result.stderr.decode()
    lines = err.splitlines()
    summaries = [re.match(r"kexecwatch: host (\S+): \d+ records, ", line) for line in lines]
    named = [m.group(1) for m in summaries if m]
    assert named == sorted(h.name for h in hosts), err
    assert lines[-1].startswith("kexecwatch: 4 hosts: ")
    total_alerts = len(lines_of(result.stdout))
    assert f", {total_alerts} alerts," in lines[-1]


def test_no_alert_on_any_host_exits_0(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        shutil.copyfile(FIXTURES / "raw" / "v7-noise.log", tmp_path / name / "audit.log")
    result = kexecwatch(
        "replay", "--per-host", "--jobs", "2", str(tmp_path / "a"), str(tmp_path / "b")
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b""


def test_one_host_in_error_names_it_the_others_still_replay_and_exit_2(
    hosts: list[Path],
) -> None:
    broken = hosts[1]
    data = gzip.compress((broken / "audit.log").read_bytes())
    (broken / "audit.log").write_bytes(data[: len(data) // 2])  # a gzip file cut short
    result = kexecwatch("replay", "--per-host", "--jobs", "2", "--quiet", *map(str, hosts))
    err = result.stderr.decode()
    assert result.returncode == 2, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("kexecwatch: error: ")]
    assert len(errors) == 1, err
    assert errors[0].startswith(f"kexecwatch: error: host db-2: {broken / 'audit.log'}: ")
    # The other hosts' alerts are all there.
    others = kexecwatch("replay", "--per-host", "--quiet", *(str(h) for h in hosts if h != broken))
    assert others.returncode == 1
    got = set(lines_of(result.stdout))
    assert set(lines_of(others.stdout)) <= got


def test_host_without_audit_records_is_an_error_naming_the_host(
    hosts: list[Path], tmp_path: Path
) -> None:
    text = tmp_path / "notes"
    text.mkdir()
    (text / "audit.log").write_text("just some notes\n")
    result = kexecwatch("replay", "--per-host", "--jobs", "2", "--quiet", str(hosts[0]), str(text))
    err = result.stderr.decode()
    assert result.returncode == 2, err
    assert f"kexecwatch: error: host notes: {text / 'audit.log'}: no audit record in it" in err
    assert result.stdout, "web-1's alerts are still written"


def test_parse_issues_name_the_host_and_the_file_line(tmp_path: Path) -> None:
    host = tmp_path / "odd-host"
    host.mkdir()
    shutil.copyfile(FIXTURES / "malformed-garbage-lines.log", host / "audit.log")
    result = kexecwatch("replay", "--per-host", "--jobs", "2", "--quiet", str(host))
    err = result.stderr.decode()
    assert "Traceback" not in err
    issues = [line for line in err.splitlines() if "parse issue" in line]
    assert issues, err
    for line in issues:
        assert line.startswith(f"kexecwatch: host odd-host: {host / 'audit.log'}:"), line


def test_a_file_is_a_host_named_after_the_file(tmp_path: Path) -> None:
    log = tmp_path / "mail-7.log.gz"
    log.write_bytes(gzip.compress((FIXTURES / "raw" / "v7-exec-short.log").read_bytes()))
    result = kexecwatch("replay", "--per-host", "--quiet", str(log))
    assert result.returncode == 1, result.stderr.decode()
    assert json.loads(result.stdout)["host"]["name"] == "mail-7"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--jobs", "0", "--per-host"), "--jobs"),
        (("--jobs", "2"), "--per-host"),
        (("--per-host", "-"), "standard input"),
        (("--per-host", "--host-name", "x"), "--host-name"),
    ],
)
def test_usage_errors_are_one_line_exit_2(
    hosts: list[Path], args: tuple[str, ...], message: str
) -> None:
    line = one_error_line(kexecwatch("replay", *args, str(hosts[0])))
    assert message in line


def test_two_paths_with_one_host_name_are_refused(tmp_path: Path) -> None:
    for parent in ("case-1", "case-2"):
        (tmp_path / parent / "web").mkdir(parents=True)
        shutil.copyfile(FIXTURES / "raw" / "v7-noise.log", tmp_path / parent / "web" / "audit.log")
    line = one_error_line(
        kexecwatch(
            "replay",
            "--per-host",
            str(tmp_path / "case-1" / "web"),
            str(tmp_path / "case-2" / "web"),
        )
    )
    assert "'web'" in line and "case-1" in line and "case-2" in line


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_what_one_host_teaches_the_rules_stays_with_that_host(tmp_path: Path, jobs: str) -> None:
    # Host a runs kexec (inode 4242): the disguised-binary detection learns that inode.
    # Host b runs ls, whose inode happens to be 4242 too on its own disk: not kexec there.
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "audit.log").write_bytes(
        join(exec_lines(1, args=("kexec", "--version"), inode=4242))
    )
    (tmp_path / "b" / "audit.log").write_bytes(
        join(
            exec_lines(
                1, t="1700000001.000", comm="ls", exe="/usr/bin/ls", args=("ls",), inode=4242
            )
        )
    )
    result = kexecwatch(
        "replay", "--per-host", "--jobs", jobs, "--quiet", str(tmp_path / "a"), str(tmp_path / "b")
    )
    assert b"Traceback" not in result.stderr
    hosts = [json.loads(line)["host"]["name"] for line in lines_of(result.stdout)]
    assert "b" not in hosts, result.stdout.decode()


def test_sigterm_ends_the_workers_and_leaves_no_scratch_file(tmp_path: Path) -> None:
    from bench.generate import generate

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    paths = []
    for seed in (1, 2):
        host = tmp_path / f"host-{seed}"
        host.mkdir()
        generate(host / "log", 12_000_000, seed=seed)
        (host / "log").rename(host / "audit.log")  # its .expected.json stays outside the set
        (host / "log.expected.json").rename(tmp_path / f"{seed}.expected.json")
        paths.append(str(host))
    proc = subprocess.Popen(
        [sys.executable, "-m", "kexecwatch", "replay", "--per-host", "--jobs", "2", "--events"]
        + paths,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "TMPDIR": str(scratch)},
    )
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 30
        while len(children(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        workers = children(proc.pid)
        assert len(workers) == 2, "two worker processes replay the two hosts"
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        leftover = [pid for pid in workers if status_of(pid) != b"Z"]
        for pid in [proc.pid, *leftover] if proc.poll() is None else leftover:
            os.kill(pid, signal.SIGKILL)  # a failed check leaves nothing running
        proc.wait()
    assert not leftover, "the workers outlived the replay"
    assert proc.returncode == 128 + signal.SIGTERM, err.decode()
    assert b"Traceback" not in err
    assert list(scratch.iterdir()) == []


def children(pid: int) -> list[int]:
    """The live child processes of ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def status_of(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return b"Z"
