"""Issue 16 §5: the state directory, its files and the outputs belong to the daemon.

Every test drives a real ``kexecwatch run`` (or ``doctor``) process. Files "planted by
another user" are made by root and handed to ``nobody`` with chown, which leaves exactly
what that user could have left behind.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import signal
import stat
import subprocess
from pathlib import Path

import pytest

from tests.daemon.harness import RUNNER, Daemon, FakeAuditd, alerted_once, audit_ids

pytestmark = pytest.mark.slow

NOBODY = pwd.getpwnam("nobody")


def give_to_nobody(path: Path) -> None:
    os.lchown(path, NOBODY.pw_uid, NOBODY.pw_gid)


def run_refused(tmp_path: Path, *extra: str, state: Path | None = None) -> str:
    """Start a daemon that must refuse to start: exit 2 with one line on stderr."""
    log = tmp_path / "audit.log"
    log.touch()
    args = ["--log", str(log), "--state-dir", str(state or tmp_path / "state"), *extra]
    r = subprocess.run([*RUNNER, *args], capture_output=True, text=True, timeout=15, check=False)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kexecwatch: error: "), r.stderr
    return lines[0]


def root_victim(tmp_path: Path, name: str) -> Path:
    victim = tmp_path / name
    victim.write_text("precious\n")
    return victim


# -- who owns the state directory -----------------------------------------------------
def test_state_dir_made_by_another_user_is_refused_and_its_links_never_followed(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    journal_victim = root_victim(tmp_path, "victim1")
    tmp_victim = root_victim(tmp_path, "victim2")
    (state / "alerts.journal").symlink_to(journal_victim)
    (state / "checkpoint.json.tmp").symlink_to(tmp_victim)
    for p in (state, state / "alerts.journal", state / "checkpoint.json.tmp"):
        give_to_nobody(p)
    line = run_refused(tmp_path)
    assert str(state) in line and "owned by uid 65534" in line
    assert journal_victim.read_text() == "precious\n"
    assert tmp_victim.read_text() == "precious\n"
    assert state.stat().st_uid == NOBODY.pw_uid  # left as it was


def test_world_writable_state_dir_is_refused_not_chmodded(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o1777)
    line = run_refused(tmp_path)
    assert str(state) in line and "writable by others" in line
    assert stat.S_IMODE(state.stat().st_mode) == 0o1777


def test_own_state_dir_readable_by_others_is_tightened_to_0700(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o755)
    _, d = alerted_once(tmp_path)
    assert d.stop() == 0
    assert stat.S_IMODE(state.stat().st_mode) == 0o700


# -- planted links and special files inside our own state directory ---------------------
def test_planted_journal_symlink_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    victim = root_victim(tmp_path, "victim")
    (state / "alerts.journal").symlink_to(victim)
    line = run_refused(tmp_path)
    assert "alerts.journal" in line and "symlink" in line
    assert victim.read_text() == "precious\n"


def test_planted_checkpoint_tmp_symlink_is_not_followed(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    victim = root_victim(tmp_path, "victim")
    (state / "checkpoint.json.tmp").symlink_to(victim)
    _, d = alerted_once(tmp_path)
    assert d.stop() == 0
    assert victim.read_text() == "precious\n"
    assert not (state / "checkpoint.json.tmp").exists()
    assert json.loads((state / "checkpoint.json").read_text())["recent_alert_ids"]


def plant_checkpoint(tmp_path: Path, kind: str) -> Path:
    """``state/checkpoint.json`` as a FIFO, a link to /dev/zero, a directory or deep JSON."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    cp = state / "checkpoint.json"
    if kind == "fifo":
        os.mkfifo(cp, 0o600)
    elif kind == "dev-zero-link":
        cp.symlink_to("/dev/zero")
    elif kind == "directory":
        cp.mkdir()
    else:
        cp.write_bytes(b"[" * 100_000)
    return state


@pytest.mark.parametrize("kind", ["fifo", "dev-zero-link", "directory"])
def test_checkpoint_that_is_not_a_regular_file_is_refused_at_once(
    tmp_path: Path, kind: str
) -> None:
    plant_checkpoint(tmp_path, kind)
    line = run_refused(tmp_path)  # before: a hang (fifo, /dev/zero) or exit 1 (directory)
    assert "checkpoint.json" in line
    assert {"fifo": "FIFO", "dev-zero-link": "symlink", "directory": "directory"}[kind] in line


def test_oversized_checkpoint_is_set_aside(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    with open(state / "checkpoint.json", "wb") as fh:
        fh.truncate(300 << 20)  # sparse: no disk used
    _, d = alerted_once(tmp_path)
    assert d.stop() == 0
    assert "event=checkpoint_rejected" in d.stderr() and "too large" in d.stderr()
    assert list(state.glob("checkpoint.json.corrupt-*"))


@pytest.mark.parametrize(
    ("kind", "reason"),
    [("fifo", "a FIFO"), ("dev-zero-link", "a symlink"), ("deep", "nested too deeply")],
)
def test_doctor_reports_a_hostile_checkpoint_instead_of_hanging(
    tmp_path: Path, kind: str, reason: str
) -> None:
    state = plant_checkpoint(tmp_path, kind)  # before: doctor hung (fifo, /dev/zero) or crashed
    r = subprocess.run(
        [*RUNNER[:-1], "doctor", "--state-dir", str(state)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode in (0, 1, 2)
    (line,) = [x for x in r.stdout.splitlines() if " checkpoint " in x]
    assert reason in line and not line.startswith("PASS"), r.stdout


# -- checkpoints and journals of the wrong shape ---------------------------------------------
SHAPES = {
    "deep-nesting": b"[" * 100_000,
    "list-not-object": b"[]",
    "undelivered-not-records": json.dumps(
        {
            "kind": "kexecwatch-checkpoint",
            "schema": 1,
            "host_name": "testhost",
            "position": None,
            "detector_state": None,
            "recent_alert_ids": [],
            "undelivered": {"stdout": [5, [1]]},
        }
    ).encode(),
    "position-a-list": json.dumps(
        {
            "kind": "kexecwatch-checkpoint",
            "schema": 1,
            "host_name": "testhost",
            "position": [1, 2],
            "detector_state": None,
            "recent_alert_ids": [],
        }
    ).encode(),
}


def start_over_planted(tmp_path: Path, name: str, content: bytes) -> Daemon:
    """A daemon started on a state directory holding ``content`` as ``name``, then stopped.

    The start must go on: the kexec event written before it alerts exactly once.
    """
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / name).write_bytes(content)
    log = tmp_path / "audit.log"
    w = FakeAuditd(log)
    w.emit(kexec=True)
    d = Daemon(tmp_path, log)
    assert audit_ids(d.wait_alerts(1)) == w.expected
    assert d.stop() == 0
    (aside,) = state.glob(f"{name}.corrupt-*")
    assert aside.read_bytes() == content
    return d


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_checkpoint_of_the_wrong_shape_is_set_aside_and_the_start_goes_on(
    tmp_path: Path, shape: str
) -> None:
    d = start_over_planted(tmp_path, "checkpoint.json", SHAPES[shape])
    assert "event=checkpoint_rejected" in d.stderr()


@pytest.mark.parametrize("garbage", [b"[" * 100_000 + b"\n", b"[[1]]\n", b'{"e": [5]}\n'])
def test_journal_of_the_wrong_shape_is_set_aside_and_the_start_goes_on(
    tmp_path: Path, garbage: bytes
) -> None:
    d = start_over_planted(tmp_path, "alerts.journal", garbage)
    assert "event=journal_rejected" in d.stderr()


# -- one daemon per state directory ------------------------------------------------------------
def test_second_daemon_on_the_same_state_dir_exits_2_naming_the_first(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    w = FakeAuditd(log)
    d = Daemon(tmp_path, log)
    w.emit(kexec=True)
    d.wait_alerts(1)
    line = run_refused(tmp_path, "--output", f"json:{tmp_path / 'other.ndjson'}")
    assert f"pid {d.proc.pid}" in line and "in use" in line
    w.emit(kexec=True)
    assert len(d.wait_alerts(2)) == 2  # the first one is unharmed
    assert d.stop() == 0
    assert not (tmp_path / "other.ndjson").exists()


# -- output files ------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["nobody", "world-writable", "symlink"])
def test_json_output_file_not_ours_is_refused(tmp_path: Path, kind: str) -> None:
    out = tmp_path / "alerts.ndjson"
    victim = root_victim(tmp_path, "victim")
    if kind == "symlink":
        out.symlink_to(victim)
    else:
        out.write_text("")
        if kind == "nobody":
            give_to_nobody(out)
        else:
            out.chmod(0o666)
    line = run_refused(tmp_path, "--output", f"json:{out}")
    assert str(out) in line
    assert re.search(r"owned by uid 65534|writable by others|symlink", line)
    assert victim.read_text() == "precious\n"


# -- configuration values ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "poll-interval = nan\n",
        "poll-interval = 1e308\n",
        "checkpoint-interval = inf\n",
        "status-interval = -1.0\n",
        "event-window-ms = 99999999999999\n",
    ],
)
def test_config_value_out_of_range_exits_2(tmp_path: Path, text: str) -> None:
    cfg = tmp_path / "k.toml"
    cfg.write_text(text)
    line = run_refused(tmp_path, "--config", str(cfg))
    assert str(cfg) in line and text.split(" ")[0] in line


# -- a symlinked audit log ---------------------------------------------------------------------
def test_audit_log_symlink_owned_by_root_is_followed(tmp_path: Path) -> None:
    real_dir = tmp_path / "real"
    real_dir.mkdir(mode=0o750)
    w = FakeAuditd(real_dir / "audit.log")
    link = tmp_path / "audit.log"
    link.symlink_to(real_dir / "audit.log")
    d = Daemon(tmp_path, link)
    w.emit(kexec=True)
    w.rotate()  # rotation happens next to the real file
    w.emit(kexec=True)
    assert sorted(audit_ids(d.wait_alerts(2))) == sorted(w.expected)
    assert d.stop() == 0
    assert f"target={real_dir / 'audit.log'}" in d.stderr()


@pytest.mark.parametrize("kind", ["link-owned-by-nobody", "link-in-world-writable-dir"])
def test_audit_log_symlink_others_control_is_refused(tmp_path: Path, kind: str) -> None:
    real = tmp_path / "real.log"
    real.touch()
    where = tmp_path / "links"
    where.mkdir()
    link = where / "audit.log"
    link.symlink_to(real)
    if kind == "link-owned-by-nobody":
        give_to_nobody(link)
    else:
        where.chmod(0o1777)
    r = subprocess.run(
        [*RUNNER, "--log", str(link), "--state-dir", str(tmp_path / "state")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert r.returncode == 2, r.stderr
    assert str(link) in r.stderr and "symlink" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_json_output_swapped_for_a_link_after_start_is_not_written_through(
    tmp_path: Path,
) -> None:
    w, d = alerted_once(tmp_path)
    victim = root_victim(tmp_path, "victim")
    d.alerts.rename(tmp_path / "alerts.ndjson.1")
    d.alerts.symlink_to(victim)  # planted between a rotation and the reopen
    d.proc.send_signal(signal.SIGHUP)
    d.wait_log("event=reloaded")
    w.emit(kexec=True)
    d.wait_log("event=output_failed")
    assert victim.read_text() == "precious\n"
    assert "symlink" in d.stderr()
    assert d.stop() == 0
