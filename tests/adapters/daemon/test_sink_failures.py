"""Outputs that cannot be jammed (issue 16 §4): real full file systems, real sockets."""

from __future__ import annotations

import errno
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kexecwatch.adapters.daemon.fanout import SinkHub
from kexecwatch.adapters.daemon.journal import Journal
from kexecwatch.adapters.daemon.sinks import (
    SYSLOG_MAX_BYTES,
    JsonFileSink,
    OutputSpec,
    SinkRecord,
    SyslogSink,
    parse_output_spec,
)
from tests.smallfs import PAGE, fill, small_tmpfs


def record(n: int, size: int = 0) -> SinkRecord:
    return SinkRecord(f"id{n}", json.dumps({"n": n, "pad": "x" * size}), f"alert {n}")


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    with small_tmpfs(tmp_path / "tmpfs", "256k") as mnt:
        yield mnt


def test_a_partial_write_on_a_full_disk_is_cut_back_before_the_retry(tmpfs: Path) -> None:
    path = tmpfs / "alerts.ndjson"
    sink = JsonFileSink(f"json:{path}", str(path))
    sink.send(record(1))
    fill(tmpfs / "filler", leave=PAGE)  # room for a page of the next line, not all of it
    big = record(2, 3 * PAGE)
    with pytest.raises(OSError, match=os.strerror(errno.ENOSPC)):
        sink.send(big)
    assert path.read_text() == record(1).json_line + "\n"  # nothing of the failed line left
    (tmpfs / "filler").unlink()
    sink.send(big)  # the hub's retry
    sink.close()
    assert path.read_text().splitlines() == [record(1).json_line, big.json_line]


def test_a_torn_last_line_left_by_a_crash_is_cut_before_appending(tmp_path: Path) -> None:
    # What kill -9 in the middle of a large write() leaves: the start of a line, no newline.
    path = tmp_path / "alerts.ndjson"
    path.write_text(record(1).json_line + "\n" + record(2).json_line[:10])
    sink = JsonFileSink(f"json:{path}", str(path))
    sink.send(record(2))
    sink.close()
    assert path.read_text().splitlines() == [record(1).json_line, record(2).json_line]


def alert_with_arg(n: int, arg: str) -> SinkRecord:
    doc = {
        "event": {"kind": "alert", "id": f"id{n}"},
        "process": {"args": ["kexec", "-l", arg], "command_line": f"kexec -l {arg}"},
    }
    return SinkRecord(f"id{n}", json.dumps(doc), f"alert {n}")


def body(msg: bytes) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(msg.split(b"\xef\xbb\xbf", 1)[1])
    return doc


def test_syslog_shortens_a_70kb_argument_and_keeps_going(udp_server: socket.socket) -> None:
    port = udp_server.getsockname()[1]
    sink = SyslogSink(parse_output_spec(f"syslog://127.0.0.1:{port}"), host_name="h")
    sink.send(alert_with_arg(1, "A" * 70_000))
    sink.send(alert_with_arg(2, "vmlinuz"))
    first, second = udp_server.recv(1 << 17), udp_server.recv(1 << 17)
    sink.close()
    assert len(first) <= SYSLOG_MAX_BYTES
    doc = body(first)
    assert doc["event"]["id"] == "id1"
    arg = doc["process"]["args"][2]
    assert arg.startswith("AAAA")
    kept = len(arg.split("…")[0])
    assert arg.endswith(f"…(+{70_000 - kept} bytes)")
    assert doc["process"]["command_line"].endswith(" bytes)")
    assert body(second)["process"]["args"] == ["kexec", "-l", "vmlinuz"]  # whole, untouched


def test_syslog_shortens_a_flood_of_small_arguments(udp_server: socket.socket) -> None:
    port = udp_server.getsockname()[1]
    sink = SyslogSink(parse_output_spec(f"syslog://127.0.0.1:{port}"), host_name="h")
    doc = {"event": {"kind": "alert", "id": "id1"}, "process": {"args": ["a"] * 40_000}}
    sink.send(SinkRecord("id1", json.dumps(doc), "t"))
    msg = udp_server.recv(1 << 17)
    sink.close()
    assert len(msg) <= SYSLOG_MAX_BYTES
    args = body(msg)["process"]["args"]
    assert args[0] == "a" and args[-1] == f"…(+{40_000 - len(args) + 1} items)"


def hub_with(sink: SyslogSink, journal: Journal) -> SinkHub:
    return SinkHub([sink], journal, backoff_initial=0.05)


def test_a_udp_message_refused_for_its_size_is_dropped_counted_and_logged(
    udp_server: socket.socket, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A cap above what UDP carries (65,507 bytes): the transport itself refuses the message.
    port = udp_server.getsockname()[1]
    sink = SyslogSink(
        parse_output_spec(f"syslog://127.0.0.1:{port}"), host_name="h", max_bytes=200_000
    )
    journal = Journal(str(tmp_path))
    hub = hub_with(sink, journal)
    hub.emit(alert_with_arg(1, "A" * 70_000))
    hub.emit(alert_with_arg(2, "vmlinuz"))
    assert body(udp_server.recv(1 << 17))["event"]["id"] == "id2"  # not held up
    hub.close()
    assert hub.workers[0].dropped == hub.dropped() == 1  # hub.dropped() goes to status lines
    assert "event=output_dropped" in caplog.text and "alert_id=id1" in caplog.text
    # Dropped is final: a restart does not queue it again.
    assert (f"syslog://127.0.0.1:{port}", "id1") in journal.read().delivered


def test_a_dev_log_datagram_refused_for_its_size_is_dropped(tmp_path: Path) -> None:
    path = str(tmp_path / "log.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(path)
    srv.settimeout(5)
    spec = OutputSpec("syslog", "syslog", path=path, transport="unix")
    sink = SyslogSink(spec, host_name="h", max_bytes=1 << 20)
    hub = hub_with(sink, Journal(str(tmp_path)))
    hub.emit(alert_with_arg(1, "A" * 300_000))  # over the ~212 KB a unix datagram may hold
    hub.emit(alert_with_arg(2, "vmlinuz"))
    assert body(srv.recv(1 << 20))["event"]["id"] == "id2"
    hub.close()
    srv.close()
    assert hub.workers[0].dropped == 1


def test_the_journal_cuts_back_a_partial_write(tmpfs: Path) -> None:
    journal = Journal(str(tmpfs), reserve=0)
    journal.emitted(record(1))
    fill(tmpfs / "filler", leave=PAGE)
    journal.emitted(record(2, 3 * PAGE))  # fails part-way: logged and counted, not raised
    assert journal.failures == 1
    (tmpfs / "filler").unlink()
    journal.emitted(record(3))
    assert list(journal.read().emitted) == ["id1", "id3"]


def test_the_journal_writes_on_into_its_reserved_space_on_a_full_disk(tmpfs: Path) -> None:
    journal = Journal(str(tmpfs), reserve=128 << 10)
    fill(tmpfs / "filler")
    for n in range(100):
        journal.emitted(record(n, 1000))
        journal.delivered("json:x", f"id{n}")
    assert journal.failures == 0
    replay = journal.read()
    assert len(replay.emitted) == len(replay.delivered) == 100


def test_the_journal_cuts_a_line_torn_by_a_crash_before_appending(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path))
    journal.emitted(record(1))
    journal.close()
    with open(tmp_path / "alerts.journal", "ab") as fh:
        fh.write(b'{"e":{"id":"x')  # kill -9 in the middle of a write
    journal = Journal(str(tmp_path))
    journal.emitted(record(2))
    assert list(journal.read().emitted) == ["id1", "id2"]


def test_a_full_queue_keeps_the_oldest_and_drops_the_newest_for_good(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    spec = f"syslog+tcp://127.0.0.1:{probe.getsockname()[1]}"
    probe.close()  # the collector is down
    journal = Journal(str(tmp_path))
    hub = SinkHub([SyslogSink(parse_output_spec(spec), host_name="h")], journal, capacity=2)
    for n in (1, 2, 3):
        hub.emit(alert_with_arg(n, "vmlinuz"))
    with hub.lock:
        queued = [r["id"] for r in hub.undelivered()[spec]]
    hub.close(timeout=0.1)
    assert queued == ["id1", "id2"]  # the oldest kept, in order
    assert hub.dropped() == 1
    assert "event=output_overflow" in caplog.text and "alert_id=id3" in caplog.text
    # Dropped is final: a restart after kill -9 does not queue it again from the journal.
    delivered = journal.read().delivered
    assert (spec, "id3") in delivered
    assert (spec, "id1") not in delivered
