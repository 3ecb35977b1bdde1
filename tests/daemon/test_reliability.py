"""Reliability matrix (issue 3, tests 2 and 3): a real daemon process against real files.

Oracle: the audit ids of the kexec events written vs the alerts on the NDJSON output,
each expected alert exactly once and nothing else.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon.harness import Daemon, FakeAuditd, alerted_once, audit_ids
from tests.smallfs import fill
from tests.smallfs import small_tmpfs as mounted_tmpfs

#: The rule id of audit-telemetry-gap (kexecwatch/rules/kexecwatch_audit_telemetry_gap.toml).
TELEMETRY_GAP_RULE_ID = "90e35c4d-3187-4bd6-b4a8-8404a3e7090f"

pytestmark = pytest.mark.slow


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return tmp_path / "audit.log"


def exactly_once(d: Daemon, w: FakeAuditd) -> None:
    ids = audit_ids(d.wait_alerts(len(w.expected)))
    time.sleep(0.3)  # a duplicate would arrive right behind
    ids = audit_ids(d.alert_ids())
    assert sorted(ids) == sorted(w.expected), d.stderr()[-3000:]


def test_rotation_between_records_and_mid_event(tmp_path: Path, log: Path) -> None:
    w = FakeAuditd(log)
    d = Daemon(tmp_path, log)
    w.emit(kexec=True)
    w.rotate()  # between two events
    recs = w.event(kexec=True)
    for r in recs[:3]:
        w.write(r)
    w.rotate()  # inside an event: its records straddle two files
    for r in recs[3:]:
        w.write(r)
    w.emit(kexec=True)
    exactly_once(d, w)
    assert d.stop() == 0


def test_rotation_in_the_middle_of_a_line(tmp_path: Path, log: Path) -> None:
    w = FakeAuditd(log)
    d = Daemon(tmp_path, log)
    recs = w.event(kexec=True)
    w.write(b"".join(recs[:2]) + recs[2][:10])
    time.sleep(0.5)  # the daemon has read the half line
    os.replace(log, f"{log}.1")  # renamed while the writer still holds it
    w.write(recs[2][10:] + b"".join(recs[3:]))
    w.reopen()
    w.emit(kexec=True)
    exactly_once(d, w)
    assert "dropped_tail" not in d.stderr()
    assert d.stop() == 0


def test_copytruncate_truncate_and_recreate(tmp_path: Path, log: Path) -> None:
    w = FakeAuditd(log)
    d = Daemon(tmp_path, log)
    for _ in range(5):
        w.emit()
    w.emit(kexec=True)
    d.wait_alerts(1)
    w.emit(kexec=True)
    shutil.copyfile(log, f"{log}.1")  # logrotate copytruncate
    os.truncate(log, 0)
    w.emit(kexec=True)
    d.wait_alerts(3)
    os.truncate(log, 0)  # plain truncation
    w.emit(kexec=True)
    d.wait_alerts(4)
    w.close()
    log.unlink()  # delete, then recreate
    w.fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    w.emit(kexec=True)
    exactly_once(d, w)
    assert d.stop() == 0


def test_slow_writer_half_line(tmp_path: Path, log: Path) -> None:
    w = FakeAuditd(log)
    d = Daemon(tmp_path, log)
    recs = w.event(kexec=True)
    joined = b"".join(recs)
    cut = len(recs[0]) + len(recs[1]) + 20  # SYSCALL and EXECVE whole, then half a CWD
    w.write(joined[:cut])
    time.sleep(1.5)  # longer than the event window: a held half line is not idleness
    w.write(joined[cut:])
    exactly_once(d, w)
    assert d.stop() == 0


def test_restart_with_checkpoint_and_rotations_while_stopped(tmp_path: Path, log: Path) -> None:
    w = FakeAuditd(log)
    d = Daemon(tmp_path, log)
    w.emit(kexec=True)
    d.wait_alerts(1)
    assert d.stop() == 0
    w.emit(kexec=True)
    w.rotate()
    w.emit(kexec=True)
    w.rotate()
    w.emit(kexec=True)
    d2 = Daemon(tmp_path, log)
    exactly_once(d2, w)
    assert d2.stop() == 0


def test_kill_between_alert_and_checkpoint(tmp_path: Path, log: Path) -> None:
    w = FakeAuditd(log)
    w.emit(kexec=True)
    d = Daemon(tmp_path, log, env={"KEXECWATCH_TEST_PAUSE_AFTER_HANDOFF": "30"})
    d.wait_log("event=test_pause")
    d.wait_alerts(1)  # delivered, but no checkpoint covers it yet
    d.kill()
    cp = json.loads((tmp_path / "state" / "checkpoint.json").read_text())
    assert cp["recent_alert_ids"] == []  # the order: hand-off first, checkpoint after
    w.emit(kexec=True)
    d2 = Daemon(tmp_path, log)
    exactly_once(d2, w)
    assert "alert_suppressed_duplicate" in d2.stderr() or len(d2.alert_ids()) == 2
    assert d2.stop() == 0


def test_corrupt_checkpoint_is_set_aside(tmp_path: Path, log: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "checkpoint.json").write_bytes(b'{"kind": "kexecwatch-checkpoint", "sch')
    w = FakeAuditd(log)
    w.emit(kexec=True)
    d = Daemon(tmp_path, log)
    exactly_once(d, w)
    assert "event=checkpoint_rejected" in d.stderr()
    assert list(state.glob("checkpoint.json.corrupt-*"))
    assert d.stop() == 0


def test_checkpointed_file_rotated_away_raises_a_gap_alert(tmp_path: Path, log: Path) -> None:
    w = FakeAuditd(log, num_logs=2)
    d = Daemon(tmp_path, log)
    w.emit(kexec=True)
    d.wait_alerts(1)
    assert d.stop() == 0
    w.emit(kexec=True)  # lost with its file
    w.expected.pop()
    w.rotate()
    w.emit(kexec=True)
    w.rotate()  # destroys the checkpointed file
    w.emit(kexec=True)
    d2 = Daemon(tmp_path, log)
    d2.wait_alerts(len(w.expected) + 1)
    ids = d2.alert_ids()
    gaps = [i for i in ids if i.startswith(f"{TELEMETRY_GAP_RULE_ID}:")]  # through the rules
    assert len(gaps) == 1
    assert sorted(audit_ids([i for i in ids if i not in gaps])) == sorted(w.expected)
    assert d2.stop() == 0


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    with mounted_tmpfs(tmp_path / "tmpfs") as mnt:
        yield mnt


def test_checkpoint_on_a_full_disk(tmp_path: Path, log: Path, small_tmpfs: Path) -> None:
    w = FakeAuditd(log)
    d = Daemon(tmp_path, log, state=small_tmpfs)
    w.emit(kexec=True)
    d.wait_alerts(1)
    good = (small_tmpfs / "checkpoint.json").read_bytes()
    filler = small_tmpfs / "filler"
    fill(filler)
    w.emit(kexec=True)
    d.wait_alerts(2)  # tailing and alerting go on
    d.wait_log("event=checkpoint_failed")
    assert json.loads((small_tmpfs / "checkpoint.json").read_bytes()) == json.loads(good)
    filler.unlink()
    w.emit(kexec=True)
    exactly_once(d, w)
    time.sleep(1.0)
    cp = json.loads((small_tmpfs / "checkpoint.json").read_bytes())
    assert len(cp["recent_alert_ids"]) == 3  # retried and written once there was room
    assert d.stop() == 0


def test_output_down_for_a_while(tmp_path: Path, log: Path) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    w = FakeAuditd(log)
    d = Daemon(tmp_path, log, outputs=(f"syslog+tcp://127.0.0.1:{port}",))
    w.emit(kexec=True)
    w.emit(kexec=True)
    d.wait_alerts(2)  # the file output is not held up by the dead collector
    d.wait_log("event=output_failed")
    got: list[bytes] = []
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen()
    srv.settimeout(30)

    def collect() -> None:
        conn, _ = srv.accept()
        conn.settimeout(10)
        buf = b""
        while buf.count(b"\xef\xbb\xbf") < 3:
            chunk = conn.recv(65536)
            if not chunk:
                break
            buf += chunk
        got.append(buf)
        conn.close()

    t = threading.Thread(target=collect)
    t.start()
    w.emit(kexec=True)
    t.join(40)
    exactly_once(d, w)
    assert got
    assert got[0].count(b"\xef\xbb\xbf") == 3
    srv.close()
    assert d.stop() == 0


def test_million_line_burst(tmp_path: Path, log: Path) -> None:
    w = FakeAuditd(log)
    d = Daemon(tmp_path, log)
    lines: list[bytes] = []
    for n in range(1_000_000):
        if n % 100_000 == 50_000:
            lines += w.event(kexec=True)
        else:  # single-record events: cheap for the core, the load is on the follower
            w.serial += 1
            stamp = f"{w.t // 1000}.{w.t % 1000:03d}"  # auditd's clock: never backwards
            lines.append(
                f"type=USER_START msg=audit({stamp}:{w.serial}): pid=1 uid=0 "
                f"auid=0 ses=1 msg='op=PAM:session_open res=success'\n".encode()
            )
        if len(lines) >= 100_000:
            w.write(b"".join(lines))
            lines = []
        if n == 500_000:
            w.write(b"".join(lines))
            lines = []
            w.rotate()
    w.write(b"".join(lines))
    ids = audit_ids(d.wait_alerts(len(w.expected), timeout=300))
    assert sorted(ids) == sorted(w.expected)
    assert d.stop() == 0


def test_bounded_memory_under_never_completing_records(tmp_path: Path, log: Path) -> None:
    w = FakeAuditd(log)
    d = Daemon(tmp_path, log)
    block = []
    # SYSCALL records only, each with its own id, never an EOE; earlier in time than the
    # kexec event, so capping the events in flight evicts them, not the kexec event.
    for n in range(20_000):
        block.append(
            f"type=SYSCALL msg=audit(1699999999.{n % 1000:03d}:{n + 10}): "
            f"arch=c000003e syscall=59 success=yes exit=0 items=2 ppid=1 pid={n} "
            f'comm="x" exe="/bin/x"\n'.encode()
        )
    w.write(b"".join(block))
    w.emit(kexec=True)
    d.wait_alerts(1, timeout=120)
    status = Path(f"/proc/{d.proc.pid}/status").read_text()
    rss_kb = int(next(x for x in status.splitlines() if x.startswith("VmHWM")).split()[1])
    assert rss_kb < 150_000, f"peak RSS {rss_kb} kB"
    assert d.stop() == 0


def test_sigkill_after_the_write_before_the_journal_does_not_repeat_it(tmp_path: Path) -> None:
    w, d = alerted_once(tmp_path)
    assert d.stop() == 0
    # What a SIGKILL between JsonFileSink.send and the journal's delivery mark leaves.
    line = d.alerts.read_text().splitlines()[0]
    doc = json.loads(line)
    doc["event"]["id"] = doc["event"]["id"].replace(":-:", ":other:")
    moved = json.dumps(doc, separators=(",", ":"))
    rec = {"id": doc["event"]["id"], "json": moved, "text": "t", "msgid": "alert"}
    with open(d.state / "alerts.journal", "a") as fh:
        fh.write(json.dumps({"e": rec}) + "\n")
    with open(d.alerts, "a") as fh:
        fh.write(moved + "\n")
    d = Daemon(tmp_path, w.path)
    w.emit(kexec=True)
    d.wait_alerts(3)
    assert d.stop() == 0
    ids = d.alert_ids()
    assert len(ids) == 3 and len(set(ids)) == 3, d.stderr()[-2000:]
    assert "event=requeue_skipped" in d.stderr()


def test_the_checkpoint_is_the_standard_librarys_bytes_and_restores(
    tmp_path: Path, log: Path
) -> None:
    """The process table's rows are written natively with the native scanner (Python
    writes the rows it is unsure of): the file is byte for byte what ``json.dumps`` writes
    of its content, rows of both kinds included, and a restart from it is exactly once."""
    w = FakeAuditd(log)
    for _ in range(300):
        w.write(b"".join(w.event()))
    _, odd = w._records("vi", ["vi", "caf\u00e9", "a\\b"], 1)  # quoted, UTF-8
    odd[1] = odd[1].replace(b"argc=3", b"argc=4")  # off the kernel's layout: Python's row
    w.write(b"".join(odd))
    w.emit(kexec=True)
    d = Daemon(tmp_path, log)
    d.wait_alerts(1)
    assert d.stop() == 0
    raw = (tmp_path / "state" / "checkpoint.json").read_bytes()
    cp = json.loads(raw)
    assert json.dumps(cp, separators=(",", ":"), ensure_ascii=True).encode() == raw
    rows = cp["detector_state"]["processes"]
    assert sum(r[4] == ["ls", "-l"] for r in rows) == 300
    assert ["vi", "caf\u00c3\u00a9", "a\\b", ""] in [r[4] for r in rows]  # latin-1 text
    w.emit(kexec=True)
    d2 = Daemon(tmp_path, log)
    exactly_once(d2, w)
    assert d2.stop() == 0
