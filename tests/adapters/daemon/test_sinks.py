"""Outputs: spec parsing, file/syslog formats, and the hub's isolation of failures."""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from pathlib import Path

import pytest

from kexecwatch.adapters.daemon.fanout import SinkHub
from kexecwatch.adapters.daemon.journal import Journal
from kexecwatch.adapters.daemon.sinks import (
    JsonFileSink,
    SinkRecord,
    SyslogSink,
    parse_output_spec,
)
from kexecwatch.errors import ConfigError


def record(n: int) -> SinkRecord:
    return SinkRecord(f"id{n}", json.dumps({"n": n, "msg": "é"}), f"alert {n}")


@pytest.mark.parametrize(
    ("spec", "kind", "detail"),
    [
        ("stdout", "stdout", ""),
        ("stdout:text", "stdout", "text"),
        ("json:/var/log/k.ndjson", "json", "/var/log/k.ndjson"),
        ("syslog", "syslog", "unix"),
        ("syslog://collector.example:514", "syslog", "udp"),
        ("syslog+tcp://[::1]:6514", "syslog", "tcp"),
    ],
)
def test_good_specs(spec: str, kind: str, detail: str) -> None:
    p = parse_output_spec(spec)
    assert p.kind == kind
    assert detail in (p.path, p.transport, "text" if p.text else "")


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "json:",
        "stdout:yaml",
        "syslog://h",
        "syslog://h:0",
        "syslog://h:70000",
        "syslog+sctp://h:1",
        "file:/x",
    ],
)
def test_bad_specs_name_the_spec(spec: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"bad output {spec!r}")):
        parse_output_spec(spec)


def test_json_file_appends_and_reopens_after_rotation(tmp_path: Path) -> None:
    path = tmp_path / "alerts.ndjson"
    sink = JsonFileSink(f"json:{path}", str(path))
    sink.send(record(1))
    os.replace(path, f"{path}.1")
    sink.send(record(2))  # still the old file until reopened
    sink.reopen()
    sink.send(record(3))
    sink.close()
    assert [json.loads(x)["n"] for x in Path(f"{path}.1").read_text().splitlines()] == [1, 2]
    assert [json.loads(x)["n"] for x in path.read_text().splitlines()] == [3]
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_syslog_udp_message_is_rfc5424() -> None:
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind(("127.0.0.1", 0))
    port = srv.getsockname()[1]
    spec = parse_output_spec(f"syslog://127.0.0.1:{port}")
    sink = SyslogSink(spec, host_name="web 1")
    sink.send(record(1))
    msg = srv.recv(65536)
    head, body = msg.split(b"\xef\xbb\xbf", 1)
    pri_version, ts, host, app, pid, msgid, sd = head.decode().split(" ", 6)
    # authpriv (10) * 8 + warning (4) = 84; RFC 5424 version 1; spaces dropped from host;
    # the alert id as structured data, for a collector to drop a repeated delivery
    assert (pri_version, host, app, msgid, sd) == (
        "<84>1",
        "web1",
        "kexecwatch",
        "alert",
        '[kexecwatch@32473 id="id1"] ',
    )
    assert ts.endswith("Z")
    assert pid == str(os.getpid())
    assert json.loads(body)["n"] == 1
    sink.close()
    srv.close()


def test_syslog_structured_data_escapes_the_id() -> None:
    sink = SyslogSink(parse_output_spec("syslog://127.0.0.1:9"), host_name="h")
    msg = sink.format(SinkRecord('a"b\\c]d', "{}", "t"))
    assert b' [kexecwatch@32473 id="a\\"b\\\\c\\]d"] \xef\xbb\xbf{}' in msg


def test_syslog_udp_refused_locally_is_a_failure() -> None:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    sink = SyslogSink(parse_output_spec(f"syslog://127.0.0.1:{port}"), host_name="h")
    with pytest.raises(OSError):  # noqa: PT011 - any socket error counts
        sink.send(record(1))


def test_syslog_tcp_uses_octet_counting() -> None:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    port = srv.getsockname()[1]
    sink = SyslogSink(parse_output_spec(f"syslog+tcp://127.0.0.1:{port}"), host_name="h")
    sink.send(record(1))
    sink.send(record(2))
    conn, _ = srv.accept()
    conn.settimeout(5)
    data = b""
    while data.count(b"\xef\xbb\xbf") < 2:
        data += conn.recv(65536)
    for n in (1, 2):
        length, rest = data.split(b" ", 1)
        msg, data = rest[: int(length)], rest[int(length) :]
        assert json.loads(msg.split(b"\xef\xbb\xbf", 1)[1])["n"] == n
    sink.close()
    conn.close()
    srv.close()


class FlakySink:
    def __init__(self, spec: str, fail_for: float) -> None:
        self.spec = spec
        self.until = time.monotonic() + fail_for
        self.got: list[str] = []

    def send(self, r: SinkRecord) -> None:
        if time.monotonic() < self.until:
            raise ConnectionRefusedError(111, "Connection refused")
        self.got.append(r.alert_id)

    def reopen(self) -> None: ...

    def close(self) -> None: ...


def wait_for(cond: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return
        time.sleep(0.01)
    raise AssertionError("condition not met")


def test_failing_output_retries_and_does_not_block_the_others(tmp_path: Path) -> None:
    down, up = FlakySink("down", 0.5), FlakySink("up", 0)
    journal = Journal(str(tmp_path))
    hub = SinkHub([down, up], journal, backoff_initial=0.05)
    t0 = time.monotonic()
    for n in range(3):
        hub.emit(record(n))
    assert time.monotonic() - t0 < 0.2  # emit never waits for delivery
    wait_for(lambda: len(up.got) == 3, 1.0)
    assert down.got == []
    with hub.lock:
        assert [r["id"] for r in hub.undelivered()["down"]] == ["id0", "id1", "id2"]
    wait_for(lambda: len(down.got) == 3)
    assert down.got == ["id0", "id1", "id2"]
    hub.close()
    replay = journal.read()
    assert set(replay.emitted) == {"id0", "id1", "id2"}
    assert {("down", "id1"), ("up", "id2")} <= replay.delivered


def test_overflow_is_counted_not_silent(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    down = FlakySink("down", 60)
    hub = SinkHub([down], capacity=2, backoff_initial=10)
    for n in range(5):
        hub.emit(record(n))
    assert hub.workers[0].overflow == 3
    assert "output_overflow" in caplog.text
    hub.close(timeout=0.1)


def test_journal_survives_a_torn_last_line(tmp_path: Path) -> None:
    j = Journal(str(tmp_path))
    j.emitted(record(1))
    j.close()
    with open(tmp_path / "alerts.journal", "ab") as fh:
        fh.write(b'{"e": {"id": "x')
    assert list(Journal(str(tmp_path)).read().emitted) == ["id1"]


def test_stop_does_not_hang_on_a_dead_output() -> None:
    hub = SinkHub([FlakySink("down", 60)], backoff_initial=30)
    hub.emit(record(1))
    t = threading.Thread(target=hub.close, kwargs={"timeout": 0.2})
    t.start()
    t.join(3)
    assert not t.is_alive()


def test_requeue_skips_a_line_the_file_already_holds(tmp_path: Path) -> None:
    # SIGKILL after the line was written but before its delivery reached the journal.
    path = tmp_path / "alerts.ndjson"
    path.write_text("".join(record(n).json_line + "\n" for n in (1, 2)))
    hub = SinkHub([JsonFileSink(f"json:{path}", str(path))])
    assert hub.requeue(f"json:{path}", [record(2), record(3)]) == 1
    hub.close()
    assert [json.loads(x)["n"] for x in path.read_text().splitlines()] == [1, 2, 3]


def test_already_written_reads_only_whole_lines_of_the_tail(tmp_path: Path) -> None:
    path = tmp_path / "alerts.ndjson"
    sink = JsonFileSink(f"json:{path}", str(path))
    assert sink.already_written([record(1)]) == set()  # no file yet
    path.write_text("".join(record(n).json_line + "\n" for n in (1, 2)))
    line2 = len(record(2).json_line) + 1
    assert sink.already_written([record(1), record(2)]) == {"id1", "id2"}
    assert sink.already_written([record(1), record(2)], tail=line2) == {"id2"}
    assert sink.already_written([record(2)], tail=line2 - 1) == set()  # cut: not a match


class ScriptedSink:
    """Fails with the given errors, one per attempt, then delivers."""

    def __init__(self, errors: list[str]) -> None:
        self.spec = "scripted"
        self.errors = errors
        self.got: list[str] = []

    def send(self, r: SinkRecord) -> None:
        if self.errors:
            raise OSError(0, self.errors.pop(0))
        self.got.append(r.alert_id)

    def reopen(self) -> None: ...

    def close(self) -> None: ...


def test_a_failing_output_is_logged_again_when_its_reason_changes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Down, then up with a certificate the output refuses: the second reason must show.
    refused = "Connection refused"
    expired = "TLS certificate verify failed: certificate has expired"
    sink = ScriptedSink([refused, refused, expired, expired])
    hub = SinkHub([sink], backoff_initial=0.01, backoff_max=0.02)
    hub.emit(record(1))
    wait_for(lambda: sink.got == ["id1"])
    hub.close()
    failed = [r.getMessage() for r in caplog.records if r.getMessage() == "output_failed"]
    assert len(failed) == 2
    assert caplog.text.count(f'error="{refused}"') == 1
    assert caplog.text.count(f'error="{expired}"') == 1
