"""process.session_leader.* and process.group_leader.*: where setsid, setpgid or /proc state them.

Records are built as the kernel writes them (x86_64 numbers); every test runs under the
scanner the environment chooses (``KEXECWATCH_SCANNER``), so the native scanner's hand-back
of ``setsid``/``setpgid`` is held too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kexecwatch.core.audit.record import EventId
from kexecwatch.core.detect.alerts import Alert
from kexecwatch.core.detect.detector import Detector, DetectorOptions
from kexecwatch.core.process.events import Parent, ProcessEvent
from kexecwatch.core.process.groups import ProcessGroups
from kexecwatch.core.process.table import LiveProcess
from tests import ecs
from tests.builders import exec_lines, join
from tests.core.process.test_capabilities import replay_with_rule
from tests.core.process.test_syscall_events import _Query
from tests.test_rule_source import needs_snapshot

NUMBERS = {"setpgid": 109, "setsid": 112, "setresuid": 117}


def call(
    serial: int,
    syscall: str,
    *,
    t: str = "1700000000.000",
    pid: int,
    ppid: int,
    args: tuple[int, int] = (0, 0),
    comm: str = "bash",
    exe: str = "/usr/bin/bash",
    uid: int = 1000,
    euid: int | None = None,
    gid: int = 1000,
    success: bool = True,
) -> list[bytes]:
    """One non-exec syscall event (``args``: a0 and a1)."""
    e = uid if euid is None else euid
    head = f"type={{}} msg=audit({t}:{serial}): "
    exit_code = pid if syscall == "setsid" else 0
    outcome = f"success=yes exit={exit_code}" if success else "success=no exit=-1"
    return [
        (
            head.format("SYSCALL") + f"arch=c000003e syscall={NUMBERS[syscall]} {outcome} "
            f"a0={args[0]:x} a1={args[1]:x} a2=0 a3=0 items=0 ppid={ppid} pid={pid} "
            f"auid=1000 uid={uid} gid={gid} euid={e} suid={e} fsuid={e} egid={gid} sgid={gid} "
            f'fsgid={gid} tty=pts0 ses=1 comm="{comm}" exe="{exe}" key="kexecwatch-session"'
        ).encode(),
        (head.format("PROCTITLE") + "proctitle=6C6162").encode(),
    ]


def login() -> list[bytes]:
    """sshd (pid 10) starts a login shell: the child (20) calls setsid, then runs bash."""
    return [
        *exec_lines(1, pid=10, ppid=1, comm="sshd", exe="/usr/sbin/sshd", uid=0),
        *call(2, "setsid", pid=20, ppid=10, comm="sshd", exe="/usr/sbin/sshd", uid=0),
        *exec_lines(3, pid=20, ppid=10, comm="bash", exe="/usr/bin/bash", args=("-bash",)),
    ]


def job(serial: int, pid: int, comm: str, exe: str, pgid: int = 0) -> list[bytes]:
    """bash (20) starts a job: it moves the child into its own group (or ``pgid``), the
    child does the same (job control's race-free pair), then the child execs."""
    return [
        *call(serial, "setpgid", pid=20, ppid=10, args=(pid, pgid)),
        *call(serial + 1, "setpgid", pid=pid, ppid=20, args=(0, pgid)),
        *exec_lines(serial + 2, pid=pid, ppid=20, comm=comm, exe=exe, args=(comm,)),
    ]


def documents(lines: list[bytes], **options: Any) -> list[dict[str, Any]]:
    det = Detector([], host_name="h", options=DetectorOptions(emit_events=True, **options))
    out = det.feed(join(lines)) + det.flush()
    return [o.to_document() for o in out if isinstance(o, ProcessEvent)]


def last_process(lines: list[bytes]) -> dict[str, Any]:
    process: dict[str, Any] = documents(lines)[-1]["process"]
    return process


def test_a_job_of_a_login_shell_knows_both_leaders() -> None:
    process = last_process([*login(), *job(4, 30, "vim", "/usr/bin/vim")])
    session, group = process["session_leader"], process["group_leader"]
    assert (session["pid"], session["name"], session["executable"]) == (20, "bash", "/usr/bin/bash")
    assert session["args"] == ["-bash"] and session["same_as_process"] is False
    assert session["entity_id"] == process["parent"]["entity_id"]
    assert session["user"] == {"id": "1000"}
    assert (group["pid"], group["name"], group["same_as_process"]) == (30, "vim", True)
    assert group["entity_id"] == process["entity_id"]


def test_a_pipeline_shares_its_first_process_group() -> None:
    lines = [
        *login(),
        *job(4, 30, "cat", "/usr/bin/cat"),
        *job(7, 31, "grep", "/usr/bin/grep", pgid=30),
    ]
    group = last_process(lines)["group_leader"]
    assert (group["pid"], group["name"], group["same_as_process"]) == (30, "cat", False)


def test_a_child_without_calls_of_its_own_inherits_through_the_table() -> None:
    lines = [
        *login(),
        *job(4, 30, "make", "/usr/bin/make"),
        *exec_lines(7, pid=40, ppid=30, comm="cc", exe="/usr/bin/cc"),
        *exec_lines(8, pid=50, ppid=40, comm="as", exe="/usr/bin/as"),
    ]
    process = last_process(lines)
    assert process["session_leader"]["name"] == "bash"
    assert process["group_leader"]["name"] == "make"


def test_the_setsid_event_shows_its_new_session() -> None:
    docs = documents(login(), events_as="defend")
    (setsid,) = [d for d in docs if d["event"]["action"] == "session_id_change"]
    assert setsid["process"]["session_leader"]["same_as_process"] is True
    assert setsid["process"]["session_leader"]["pid"] == 20


def test_nothing_is_inherited_before_the_calls_are_seen_audited() -> None:
    lines = [
        *exec_lines(1, pid=10, ppid=1, comm="sshd", exe="/usr/sbin/sshd", uid=0),
        *exec_lines(3, pid=20, ppid=10, comm="bash", exe="/usr/bin/bash"),
        *exec_lines(4, pid=30, ppid=20, comm="vim", exe="/usr/bin/vim"),
    ]
    for doc in documents(lines):
        assert "session_leader" not in doc["process"]
        assert "group_leader" not in doc["process"]


def test_no_guess_through_init_an_unknown_parent_or_a_later_change() -> None:
    # seen audited (a setsid elsewhere), but the walk reaches pid 1 or an unknown pid
    lines = [
        *call(1, "setsid", pid=5, ppid=1, comm="cron", exe="/usr/sbin/cron", uid=0),
        *exec_lines(2, pid=60, ppid=1, comm="orphan", exe="/usr/bin/orphan"),
        *exec_lines(3, pid=70, ppid=66, comm="lost", exe="/usr/bin/lost"),
    ]
    for doc in documents(lines)[1:]:
        assert "session_leader" not in doc["process"], doc["process"]["name"]
    # the parent's session was stated after the child started: not what it inherited
    late = [
        *exec_lines(1, pid=10, ppid=1, comm="sshd", exe="/usr/sbin/sshd", uid=0),
        *exec_lines(2, pid=30, ppid=10, comm="child", exe="/usr/bin/child"),
        *call(3, "setsid", t="1700000005.000", pid=10, ppid=1, comm="sshd", exe="/x", uid=0),
        *exec_lines(4, t="1700000006.000", pid=40, ppid=30, comm="gc", exe="/usr/bin/gc"),
    ]
    assert "session_leader" not in last_process(late)


def test_a_reused_pid_under_another_parent_loses_the_old_facts() -> None:
    lines = [
        *login(),
        *job(4, 30, "vim", "/usr/bin/vim"),
        # pid 30 again, now a child of pid 99 the table does not know
        *exec_lines(7, pid=30, ppid=99, comm="other", exe="/usr/bin/other"),
    ]
    process = last_process(lines)
    assert "group_leader" not in process and "session_leader" not in process


def test_a_refused_call_states_nothing_but_shows_the_calls_are_audited() -> None:
    groups = ProcessGroups()
    det = Detector([], host_name="h", options=DetectorOptions(emit_events=True))
    det.feed(join(call(1, "setsid", pid=20, ppid=10, success=False)))
    det.flush()
    assert det.table.groups.audited and len(det.table.groups) == 0
    assert not groups.audited


def test_proc_states_sessions_and_groups_live() -> None:
    groups = ProcessGroups()
    groups.add_live(20, 10, sid=20, pgid=20, since_ms=1_000)
    parent = Parent(pid=20, name=b"bash", ppid=10, source="procfs", since_ms=1_000)
    # a /proc fact is the process's own, without any call seen
    assert groups.resolve(20, 10, 2_000, ()) == (20, 20)
    # inheriting from it needs the calls audited
    assert groups.resolve(30, 20, 2_000, (parent,)) == (None, None)
    groups.audited = True
    assert groups.resolve(30, 20, 2_000, (parent,)) == (20, 20)


def test_the_daemons_proc_entries_carry_them() -> None:
    det = Detector([], host_name="h", options=DetectorOptions(emit_events=True))
    det.table.add_live(
        LiveProcess(20, 10, b"bash", b"/usr/bin/bash", (b"-bash",), 1_000, None, sid=20, pgid=20)
    )
    out = det.feed(join(exec_lines(1, pid=20, ppid=10, comm="vim", exe="/usr/bin/vim")))
    (event,) = [o for o in out + det.flush() if isinstance(o, ProcessEvent)]
    assert event.to_document()["process"]["session_leader"]["same_as_process"] is True


def test_the_facts_survive_a_checkpoint() -> None:
    det = Detector([], host_name="h", options=DetectorOptions(emit_events=True))
    det.feed(join([*login(), *job(4, 30, "vim", "/usr/bin/vim")]))
    det.flush()
    state = json.loads(json.dumps(det.to_state()))
    again = Detector([], host_name="h", options=DetectorOptions(emit_events=True))
    again.restore(state)
    out = again.feed(join(exec_lines(9, pid=40, ppid=30, comm="ls", exe="/usr/bin/ls")))
    (event,) = [o for o in out + again.flush() if isinstance(o, ProcessEvent)]
    process = event.to_document()["process"]
    assert process["session_leader"]["name"] == "bash"
    assert process["group_leader"]["name"] == "vim"


def test_an_event_id_orders_facts_by_time() -> None:
    groups = ProcessGroups()
    groups.audited = True
    groups.add_live(20, 10, sid=20, pgid=20, since_ms=EventId(5, 0, 1).time_ms)
    parent = Parent(pid=20, ppid=10, source="procfs", since_ms=5_000)
    assert groups.resolve(30, 20, 4_000, (parent,)) == (None, None)


@pytest.mark.skipif(
    not ecs.ECS_FLAT.is_file(), reason=f"ECS definitions not found at {ecs.ECS_FLAT}"
)
def test_the_leader_fields_are_ecs() -> None:
    for doc in documents([*login(), *job(4, 30, "vim", "/usr/bin/vim")]):
        assert ecs.problems(doc) == []


DPKG_RULE = "rules/linux/persistence_dpkg_unusual_execution.toml"
SUDO_RULE = "rules/linux/privilege_escalation_sudo_token_via_process_injection.toml"


@needs_snapshot
def test_unusual_dpkg_execution_fires_with_known_leaders(tmp_path: Path) -> None:
    script = "/var/lib/dpkg/info/evil.postinst"
    (alert,) = replay_with_rule(
        tmp_path, DPKG_RULE, [*login(), *job(4, 30, "evil.postinst", script)]
    )
    assert alert["rule"]["name"] == "Unusual DPKG Execution"
    assert alert["process"]["executable"] == script
    # dpkg as the session's leader: excluded, as the rule says
    dpkg = [
        *exec_lines(1, pid=10, ppid=1, comm="sshd", exe="/usr/sbin/sshd", uid=0),
        *call(2, "setsid", pid=20, ppid=10, comm="sshd", exe="/usr/sbin/sshd", uid=0),
        *exec_lines(3, pid=20, ppid=10, comm="dpkg", exe="/usr/bin/dpkg"),
        *job(4, 30, "evil.postinst", script),
    ]
    assert replay_with_rule(tmp_path, DPKG_RULE, dpkg) == []


@needs_snapshot
def test_sudo_token_manipulation_joins_on_the_session_leader(tmp_path: Path) -> None:
    sudo_exec = exec_lines(7, pid=40, ppid=20, comm="sudo", exe="/usr/bin/sudo", args=("sudo",))
    # set-user-ID root: euid 0, real uid the user's
    sudo_exec[0] = sudo_exec[0].replace(b"euid=1000 suid=1000", b"euid=0 suid=0")
    lines = [
        *login(),
        *job(4, 30, "gdb", "/usr/bin/gdb"),
        *sudo_exec,
        *call(8, "setresuid", pid=40, ppid=20, comm="sudo", exe="/usr/bin/sudo", uid=0, gid=0),
    ]
    (alert,) = replay_with_rule(tmp_path, SUDO_RULE, lines)
    assert alert["rule"]["name"] == "Potential Sudo Token Manipulation via Process Injection"
    steps = [e["process"]["name"] for e in alert["kexecwatch"]["sequence"]["events"]]
    assert steps == ["gdb", "sudo"]


@pytest.mark.parametrize("fast_path", [True, False])
def test_a_rule_reads_the_leaders_on_every_path(fast_path: bool) -> None:
    """Without --events, nothing needs the setsid/setpgid events but the table: each
    scanner (and the reference path) must still hand them to it."""
    rule = _Query(
        'process where process.name == "vim" and process.session_leader.name == "bash" '
        "and process.group_leader.same_as_process == true"
    )
    det = Detector([rule], host_name="h", options=DetectorOptions(fast_path=fast_path))
    out = det.feed(join([*login(), *job(4, 30, "vim", "/usr/bin/vim")])) + det.flush()
    assert [str(a.event.id) for a in out if isinstance(a, Alert)] == ["1700000000.000:6"]


RECORDING = Path(__file__).resolve().parents[3] / "fixtures" / "audit" / "raw"


def test_the_real_recordings_setsid_leads_its_own_session() -> None:
    """elastic-process-syscalls was recorded with the real auditd (fixtures/scenarios.toml):
    ``setsid /usr/bin/true`` calls setsid, then execs true in the new session."""
    data = (RECORDING / "elastic-process-syscalls.log").read_bytes()
    det = Detector([], host_name="h", options=DetectorOptions(emit_events=True))
    events = [o for o in det.feed(data) + det.flush() if isinstance(o, ProcessEvent)]
    (setsid,) = [e for e in events if e.syscall == "setsid"]
    mine = [e for e in events if e.pid == setsid.pid and e.id.serial >= setsid.id.serial]
    after = [e.to_document()["process"] for e in mine]
    assert [p["name"] for p in after] == ["setsid", "true", "true"]  # setsid, exec, exit
    for process in after:
        assert process["session_leader"]["pid"] == setsid.pid
        assert process["group_leader"]["same_as_process"] is True
    others = [e for e in events if e.id.serial < setsid.id.serial]
    assert all(e.session_leader is None for e in others)  # before: nothing seen audited
