"""process.entry_leader: found from the process table's links and audit sessions, never guessed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from kexecwatch.core.detect.detector import Detector, DetectorOptions
from kexecwatch.core.process.events import ProcessEvent
from kexecwatch.core.process.table import LiveProcess
from tests.builders import exec_lines, join

ROOT = Path(__file__).resolve().parents[3]
UNSET = 4294967295


def creds(ses: int, uid: int = 0) -> bytes:
    ids = " ".join(f"{k}={uid}" for k in ("uid", "gid", "euid", "suid", "fsuid"))
    gids = " ".join(f"{k}={uid}" for k in ("egid", "sgid", "fsgid"))
    auid = UNSET if ses == UNSET else uid
    return f"auid={auid} {ids} {gids} tty=(none) ses={ses}".encode()


def live(pid: int, ppid: int, name: str, exe: str, ses: int) -> LiveProcess:
    return LiveProcess(pid, ppid, name.encode(), exe.encode(), (exe.encode(),), 1000, creds(ses))


def run(
    procs: list[LiveProcess], lines: list[bytes], *, seed_extra: bool = True
) -> list[dict[str, Any]]:
    det = Detector([], host_name="h", options=DetectorOptions(emit_events=True))
    for proc in procs:
        det.table.add_live(proc if seed_extra else replace(proc, extra=None))
    out = det.feed(join(lines)) + det.flush()
    return [o.to_document() for o in out if isinstance(o, ProcessEvent)]


def session(ses: int) -> list[bytes]:
    """A login shell (pid 200) whose child runs id (pid 201), both in audit session ``ses``."""
    shell = exec_lines(1, pid=200, ppid=120, comm="bash", exe="/usr/bin/bash", args=("-bash",))
    cmd = exec_lines(2, t="1700000001.000", pid=201, ppid=200, comm="id", args=("id",))
    return [line.replace(b"ses=1 ", f"ses={ses} ".encode()) for line in shell + cmd]


SSHD = [
    live(1, 0, "systemd", "/usr/lib/systemd/systemd", UNSET),
    live(100, 1, "sshd", "/usr/sbin/sshd", UNSET),
    live(110, 100, "sshd-session", "/usr/lib/openssh/sshd-session", 5),
    live(120, 110, "sshd-session", "/usr/lib/openssh/sshd-session", 5),
]


def test_an_ssh_login_shell_is_the_entry_leader_of_its_commands() -> None:
    shell, cmd = run(SSHD, session(5))
    own = shell["process"]["entry_leader"]
    assert own["same_as_process"] is True and own["entry_meta"] == {"type": "sshd"}
    assert own["pid"] == 200 and own["entity_id"] == shell["process"]["entity_id"]
    leader = cmd["process"]["entry_leader"]
    assert leader["entry_meta"] == {"type": "sshd"}
    assert (leader["pid"], leader["name"], leader["executable"]) == (200, "bash", "/usr/bin/bash")
    assert leader["same_as_process"] is False
    assert leader["entity_id"] == shell["process"]["entity_id"]
    assert leader["args"] == ["-bash"] and leader["user"] == {"id": "1000"}


def test_a_service_started_by_init_leads_itself() -> None:
    [doc] = run(SSHD[:1], exec_lines(1, pid=300, ppid=1, comm="cron", exe="/usr/sbin/cron"))
    leader = doc["process"]["entry_leader"]
    assert leader["entry_meta"] == {"type": "init"} and leader["same_as_process"] is True


def test_a_session_entered_by_another_program_is_unknown() -> None:
    cron = [
        SSHD[0],
        live(130, 1, "cron", "/usr/sbin/cron", UNSET),
        live(120, 130, "cron", "/usr/sbin/cron", 9),
    ]
    # pid 120 is cron's child in session 9: the shell it starts enters no named service.
    shell, cmd = run(cron, session(9))
    assert shell["process"]["entry_leader"]["entry_meta"] == {"type": "unknown"}
    assert shell["process"]["entry_leader"]["pid"] == 120
    assert cmd["process"]["entry_leader"]["pid"] == 120


def test_no_leader_without_the_whole_chain() -> None:
    cron_child = live(120, 130, "cron", "/usr/sbin/cron", 9)
    cron = [SSHD[0], live(130, 1, "cron", "/usr/sbin/cron", UNSET), cron_child]
    assert run(cron, session(9))[1]["process"]["entry_leader"]["pid"] == 120
    # The cron daemon (pid 130) is not known: where session 9 began cannot be told.
    assert all("entry_leader" not in d["process"] for d in run([cron_child], session(9)))
    # The parents' sessions are not known (no credentials): no guess either ...
    assert all("entry_leader" not in d["process"] for d in run(cron, session(9), seed_extra=False))
    # ... but a parent named as an entry service needs no session.
    docs = run(SSHD, session(5), seed_extra=False)
    assert docs[1]["process"]["entry_leader"]["pid"] == 200


def test_the_recordings_show_no_entry_leader() -> None:
    # Recorded under a recorder whose pid never appears in the log: every chain ends at an
    # unknown parent, so no document may claim a leader.
    for log in ("raw", "enriched"):
        data = (ROOT / "fixtures" / "audit" / log / "all-scenarios.log").read_bytes()
        docs = run([], [data.rstrip(b"\n")])
        assert docs and all("entry_leader" not in d["process"] for d in docs)
