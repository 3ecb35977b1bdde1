"""The daemon's own logs, read from a real ``kexecwatch run``: strict logfmt or JSON lines,
start and shutdown lines, and retry delays that are the delays waited."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path

from kexecwatch.core.scan.nativescan import default_native
from tests.daemon.harness import RUNNER, RUNNING, Daemon, FakeAuditd

TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
LEVELS = {"debug", "info", "warning", "error", "critical"}
_BARE = set(chr(c) for c in range(0x21, 0x7F)) - {'"', "=", "\\"}
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def parse_logfmt(line: str) -> dict[str, str]:
    """A strict logfmt parser: ``key=value`` pairs separated by one space; a value is bare
    (printable ASCII but space, ``"``, ``=``, ``\\``) or double-quoted with backslash
    escapes and no raw control characters. Keys are unique. Raises ValueError."""
    pairs: dict[str, str] = {}
    i, n = 0, len(line)
    while True:
        start = i
        while i < n and (line[i].isalnum() or line[i] in "_.") and line[i].isascii():
            i += 1
        key = line[start:i]
        if not key or key[0].isdigit() or i >= n or line[i] != "=":
            raise ValueError(f"bad key at {start}: {line!r}")
        i += 1
        if i < n and line[i] == '"':
            i += 1
            out: list[str] = []
            while True:
                if i >= n:
                    raise ValueError(f"unterminated quote: {line!r}")
                ch = line[i]
                if ch == '"':
                    i += 1
                    break
                if ch == "\\":
                    esc = line[i + 1 : i + 2]
                    if esc == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", line[i + 2 : i + 6]):
                        out.append(chr(int(line[i + 2 : i + 6], 16)))
                        i += 6
                        continue
                    if esc not in _ESCAPES:
                        raise ValueError(f"bad escape at {i}: {line!r}")
                    out.append(_ESCAPES[esc])
                    i += 2
                    continue
                if not ch.isprintable():
                    raise ValueError(f"raw control character at {i}: {line!r}")
                out.append(ch)
                i += 1
            value = "".join(out)
        else:
            start = i
            while i < n and line[i] in _BARE:
                i += 1
            value = line[start:i]
            if not value:
                raise ValueError(f"empty value at {start}: {line!r}")
        if key in pairs:
            raise ValueError(f"duplicate key {key}: {line!r}")
        pairs[key] = value
        if i == n:
            return pairs
        if line[i] != " " or i + 1 == n:
            raise ValueError(f"expected one space at {i}: {line!r}")
        i += 1


def log_lines(d: Daemon) -> list[dict[str, str]]:
    """Every line the daemon wrote to stderr, parsed; fails on any line that is not logfmt."""
    parsed = []
    for line in d.stderr().splitlines():
        fields = parse_logfmt(line)
        assert list(fields)[:4] == ["ts", "level", "logger", "event"], line
        assert TS.fullmatch(fields["ts"]), line
        assert fields["level"] in LEVELS, line
        for value in fields.values():
            assert "{'" not in value and "': " not in value, f"a Python repr: {line}"
        parsed.append(fields)
    return parsed


def events(lines: list[dict[str, str]], name: str) -> list[dict[str, str]]:
    return [f for f in lines if f["event"] == name]


def test_parser_is_strict() -> None:
    assert parse_logfmt('a=1 b="x \\"y\\"\\n" c=-') == {"a": "1", "b": 'x "y"\n', "c": "-"}
    for bad in ("a=1  b=2", "a= b", "a='x y'", 'a="x', "a=1 a=2", "ts=2026-12-06 03:19:30,464"):
        try:
            parse_logfmt(bad)
        except ValueError:
            continue
        raise AssertionError(f"accepted {bad!r}")


def test_every_line_of_a_daemon_run_is_logfmt_with_start_and_shutdown(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    w = FakeAuditd(log)
    d = Daemon(tmp_path, log)
    w.emit(kexec=True)
    d.wait_alerts(1)
    # A reload failure whose reason holds spaces, quotes and a newline.
    (tmp_path / "k.toml").write_text('rules = ["/no such \\"dir\\"/a\\nb.toml"]\n')
    d.proc.send_signal(signal.SIGHUP)
    d.wait_log("rules_reload_failed")
    w.rotate()
    w.emit()
    d.wait_log("reason=rotated")
    time.sleep(0.5)
    assert d.stop() == 0
    lines = log_lines(d)
    [start] = events(lines, "start")
    assert start["resume"] == "none"
    assert start["note"] == f"no checkpoint: reading {log} from its start"
    # The scanner the daemon runs (KEXECWATCH_SCANNER, inherited from this run).
    assert start["scanner"] == ("python" if default_native() is None else "native")
    [failed] = events(lines, "rules_reload_failed")
    assert '"dir"/a\nb.toml' in failed["reason"]
    switch = events(lines, "file_switch")[-1]
    st = log.stat()
    assert (switch["file_dev"], switch["file_ino"]) == (str(st.st_dev), str(st.st_ino))
    [stop] = events(lines, "shutdown")
    assert stop["signal"] == "SIGTERM"
    assert stop["offset"] == str(st.st_size)
    assert (stop["alerts"], stop["delivered"]) == ("1", "1")
    assert events(lines, "status")[-1]["lines"] == "14"

    # A restart names the checkpoint's resume point.
    d2 = Daemon(tmp_path, log)
    w.emit(kexec=True)
    d2.wait_alerts(2)
    assert d2.stop() == 0
    start = events(log_lines(d2), "start")[-1]
    assert start["resume"] == "checkpoint"
    assert (start["path"], start["offset"]) == (str(log), str(st.st_size))
    assert (start["file_dev"], start["file_ino"]) == (str(st.st_dev), str(st.st_ino))


def test_log_format_json_writes_one_object_per_line(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    # Started before the log exists: the harness waits for a logfmt line otherwise.
    d = Daemon(tmp_path, log, extra_args=("--log-format", "json"))
    w = FakeAuditd(log)
    w.emit(kexec=True)
    d.wait_alerts(1)
    assert d.stop() == 0
    docs = [json.loads(line) for line in d.stderr().splitlines()]
    assert all(TS.fullmatch(doc["ts"]) and doc["level"] in LEVELS for doc in docs)
    [stop] = [doc for doc in docs if doc["event"] == "shutdown"]
    assert stop["signal"] == "SIGTERM" and stop["delivered"] == 1
    assert stop["offset"] == log.stat().st_size


def test_logged_retry_delay_is_the_delay_waited(tmp_path: Path) -> None:
    # The default poll interval (1 s), so that a wait set by polling shows.
    config = tmp_path / "empty.toml"
    config.write_text("")
    missing = tmp_path / "not-yet" / "audit.log"
    err_path = tmp_path / "stderr"
    with open(err_path, "wb") as err:
        proc = subprocess.Popen(
            [
                *RUNNER,
                "--config",
                str(config),
                "--log",
                str(missing),
                "--state-dir",
                str(tmp_path / "s"),
                "--output",
                f"json:{tmp_path / 'a.json'}",
            ],
            stderr=err,
        )
    RUNNING.append(proc)

    def tries() -> list[dict[str, str]]:
        return [parse_logfmt(x) for x in err_path.read_text().splitlines() if "log_unreadable" in x]

    deadline = time.monotonic() + 20
    while len(tries()) < 6 and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    seen = tries()
    assert len(seen) >= 6, err_path.read_text()
    for this, following in itertools.pairwise(seen):
        waited = _seconds(following["ts"]) - _seconds(this["ts"])
        said = float(this["retry_in"])
        # Never sooner than said; later only by scheduling noise on a busy machine.
        assert said - 0.01 <= waited <= said + 0.4, (said, waited, err_path.read_text())


def _seconds(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def test_log_level_and_no_builtin_rules_flags(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.touch()
    base = [*RUNNER, "--log", str(log), "--state-dir", str(tmp_path / "s")]
    r = subprocess.run(
        [*base, "--no-builtin-rules"], capture_output=True, text=True, timeout=60, check=False
    )
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "--no-builtin-rules" in r.stderr and "--rule" in r.stderr
    proc = subprocess.Popen(
        [*base, "--log-level", "warning", "--output", f"json:{tmp_path / 'a.json'}"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # The daemon writes its first checkpoint once started; a fixed sleep raced a slow
        # start on a loaded machine.
        deadline = time.monotonic() + 60
        while not (tmp_path / "s" / "checkpoint.json").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "event=start" not in err and "level=info" not in err, err
    assert os.path.exists(tmp_path / "s" / "checkpoint.json")


def stopped_after_every_record(d: Daemon, w: FakeAuditd, lines: int) -> dict[str, str]:
    """Stop ``d`` once every alert of ``w`` arrived and a status line followed; check that
    all ``lines`` were read and each alert came once. Returns the last status line."""
    d.wait_alerts(len(w.expected))
    time.sleep(1.5)  # a status line after the last read
    assert d.stop() == 0
    status = events(log_lines(d), "status")[-1]
    assert int(status["lines"]) == lines
    assert len(d.alert_ids()) == len(set(d.alert_ids())) == len(w.expected)
    return status


def test_a_log_written_a_record_at_a_time_is_read_in_batches(tmp_path: Path) -> None:
    """auditd may append one record per write: 7 writes an exec event. The daemon reads
    such a stream in batches (at most one read per 25 ms settle delay), every record
    exactly once, and counts its reads in the status line (``reads=``)."""
    log = tmp_path / "audit.log"
    w = FakeAuditd(log)
    w.emit()
    d = Daemon(tmp_path, log)
    t0 = time.monotonic()
    events_written = 1
    while time.monotonic() - t0 < 2.0:  # about 1,400 writes a second
        for rec in w.event(kexec=events_written % 50 == 0):
            w.write(rec)
            time.sleep(0.0005)
        events_written += 1
    seconds = time.monotonic() - t0
    status = stopped_after_every_record(d, w, 7 * events_written)
    # One read per settle delay while the writer runs, a few around it (start, the
    # last lines, a slow machine falling behind pace).
    assert 1 <= int(status["reads"]) <= seconds / 0.025 + 15, (status["reads"], seconds)
    w.close()


def test_a_busy_log_is_read_every_busy_settle_and_its_alerts_still_arrive(
    tmp_path: Path,
) -> None:
    """A log written at a few MB a second (three exec events a write, up to 2,000 writes a
    second) is past ``BUSY_RATE``: the daemon reads it at most once per 50 ms
    ``BUSY_SETTLE`` (25 ms would allow twice the reads), every record exactly once, and an
    alert written while the log is that busy arrives while the writer still writes (the
    hold is bounded; it never waits for a quiet spell)."""
    from kexecwatch.adapters.daemon.follower import BUSY_RATE, BUSY_SETTLE

    log = tmp_path / "audit.log"
    w = FakeAuditd(log)
    w.emit()
    d = Daemon(tmp_path, log)
    t0 = time.monotonic()
    events_written = 1
    probe: tuple[float, int] | None = None  # when the probe kexec was written, alerts before
    arrived_while_busy = False
    # A kexec event every 50 ms, not every n-th event: on a quiet machine the writer
    # writes more events, and more than the limiter's 100 alerts per rule and user
    # (max_signals) would be suppressed (61 at most here).
    next_kexec = t0
    while time.monotonic() - t0 < 3.0:
        now = time.monotonic()
        kexec = now >= next_kexec
        if kexec:
            next_kexec += 0.05
        batch = [w.event(kexec=kexec and i == 0) for i in range(3)]
        if probe is None and now - t0 > 1.0:
            probe = (now, len(w.expected))
            batch.append(w.event(kexec=True))
        w.write(b"".join(b"".join(event) for event in batch))
        events_written += len(batch)
        if probe is not None and not arrived_while_busy and events_written % 20 == 0:
            arrived_while_busy = len(d.alert_ids()) > probe[1]
        time.sleep(0.0005)
    seconds = time.monotonic() - t0
    assert log.stat().st_size > 2 * BUSY_RATE * seconds  # busy indeed, whatever the load
    status = stopped_after_every_record(d, w, 7 * events_written)
    assert arrived_while_busy  # within the two seconds the writer went on
    # One read per busy settle delay, a few around it (start, the first reads at the
    # short delay, the last lines, a slow machine falling behind pace).
    assert 1 <= int(status["reads"]) <= seconds / BUSY_SETTLE + 15, (status["reads"], seconds)
    w.close()


def test_a_burst_of_alerts_is_checkpointed_once_a_second_not_once_each(tmp_path: Path) -> None:
    """Each checkpoint snapshots the process table and fsyncs; the journal already makes
    every hand-off survive ``kill -9``. So alerts are checkpointed at most once a second
    (and at once when the last one was longer ago), not after every alert."""
    log = tmp_path / "audit.log"
    w = FakeAuditd(log)
    w.emit()
    d = Daemon(tmp_path, log)
    time.sleep(1.2)  # the start's checkpoint is over a second old: the first alert's is at once
    t0 = time.monotonic()
    for _ in range(60):  # 60 alerts in about 1.2 s, each read on its own
        w.emit(kexec=True)
        time.sleep(0.02)
    seconds = time.monotonic() - t0
    d.wait_alerts(60)
    time.sleep(2.5)  # the deferred checkpoint, then a status line
    lines = log_lines(d)
    checkpoints = int(events(lines, "status")[-1]["checkpoints"])
    assert d.stop() == 0
    assert len(set(d.alert_ids())) == 60
    # Start, the first alert's, the harness's checkpoint-interval (0.5 s) while lines
    # come, the one after the last alert, and one of slack: a dozen at most, not 60.
    assert checkpoints <= 3 + seconds / 0.5 + 1, (checkpoints, seconds)
    state = json.loads((tmp_path / "state" / "checkpoint.json").read_text())
    assert len(state["recent_alert_ids"]) == 60  # the last checkpoint covers them all
    w.close()
