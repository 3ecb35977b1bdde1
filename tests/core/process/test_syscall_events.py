"""Process syscalls besides execs: a process's end, a module load, a signal, prctl, ...

When the syscalls are audited (README, "Auditing more than execs"), their events are
process events the rules see, in each vocabulary's words: Auditbeat names them after the
syscall (``killed-pid`` for a signal sent) with ``auditd.data.syscall``; Elastic Defend
says ``end`` for ``exit_group`` and ``load_module`` for a module loaded. Records here are
built like the kernel writes them; the real recording is tests/test_compass_lab.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from kexecwatch.core.detect.alerts import Alert
from kexecwatch.core.detect.detector import Detector, DetectorOptions
from kexecwatch.core.detect.rule import compile_query
from kexecwatch.core.process.events import ProcessEvent
from kexecwatch.core.scan.prefilter import prefilter_from_values
from tests.builders import exec_lines, join
from tests.core.simple_rule import SimpleRule

# x86_64 numbers, as auditd writes them
NUMBERS = {
    "exit": 60,
    "kill": 62,
    "setuid": 105,
    "setgid": 106,
    "setreuid": 113,
    "setregid": 114,
    "setresuid": 117,
    "setresgid": 119,
    "setfsuid": 122,
    "setfsgid": 123,
    "setsid": 112,
    "capset": 126,
    "prctl": 157,
    "init_module": 175,
    "tkill": 200,
    "exit_group": 231,
    "tgkill": 234,
    "finit_module": 313,
}


def call_lines(
    serial: int,
    syscall: str,
    *,
    success: bool | None = True,
    args: tuple[str, str, str, str] = ("0", "0", "0", "0"),
    pid: int = 100,
    comm: str = "lab",
    exe: str = "/srv/kxlab/lab",
    uid: int = 1000,
    gid: int = 1000,
) -> list[bytes]:
    """One non-exec syscall event; ``success=None``: no ``success=``/``exit=`` (the
    kernel writes none for ``exit_group``, which does not return)."""
    head = f"type={{}} msg=audit(1700000001.000:{serial}): "
    outcome = "" if success is None else f"success={'yes' if success else 'no'} exit=0 "
    a0, a1, a2, a3 = args
    lines = [
        head.format("SYSCALL")
        + f"arch=c000003e syscall={NUMBERS[syscall]} {outcome}a0={a0} a1={a1} a2={a2} "
        f"a3={a3} items=0 ppid=1 pid={pid} auid=1000 uid={uid} gid={gid} euid={uid} "
        f'suid={uid} fsuid={uid} egid={gid} sgid={gid} fsgid={gid} tty=pts0 ses=1 comm="{comm}" '
        f'exe="{exe}" key="lab"',
        head.format("PROCTITLE") + "proctitle=6C6162",
    ]
    return [line.encode() for line in lines]


def documents(lines: list[bytes], events_as: str) -> list[dict[str, Any]]:
    det = Detector(
        [], host_name="h", options=DetectorOptions(emit_events=True, events_as=events_as)
    )
    out = det.feed(join(lines)) + det.flush()
    return [o.to_document() for o in out if isinstance(o, ProcessEvent)]


@pytest.mark.parametrize("syscall", sorted(NUMBERS))
def test_each_process_syscall_is_a_process_event_under_its_name(syscall: str) -> None:
    [doc] = documents(call_lines(1, syscall), "auditbeat")
    assert doc["auditd"]["syscall"] == syscall
    assert doc["auditd"]["data"]["syscall"] == syscall
    assert doc["event"]["category"] == ["process"]


@pytest.mark.parametrize(
    ("syscall", "success", "events_as", "action", "kind"),
    [
        ("exit_group", None, "auditbeat", "exit_group", "end"),
        ("exit_group", None, "defend", "end", "end"),
        ("exit", True, "defend", "end", "end"),
        ("kill", True, "auditbeat", "killed-pid", "info"),
        ("tgkill", True, "auditbeat", "killed-pid", "info"),
        ("kill", True, "defend", "kill", "info"),
        ("finit_module", True, "defend", "load_module", "start"),
        ("init_module", True, "defend", "load_module", "start"),
        ("finit_module", False, "defend", "finit_module", "info"),  # refused: nothing loaded
        ("finit_module", True, "auditbeat", "finit_module", "info"),
        ("prctl", True, "auditbeat", "prctl", "info"),
        ("prctl", True, "defend", "prctl", "info"),
        ("setsid", True, "defend", "session_id_change", "change"),
        ("setsid", False, "defend", "setsid", "info"),
        ("setsid", True, "auditbeat", "setsid", "info"),
    ],
)
def test_action_and_type_in_each_vocabulary(
    syscall: str, success: bool | None, events_as: str, action: str, kind: str
) -> None:
    [doc] = documents(call_lines(1, syscall, success=success), events_as)
    assert (doc["event"]["action"], doc["event"]["type"]) == (action, [kind])


def test_the_caller_s_argv_comes_from_its_exec() -> None:
    lines = exec_lines(1, pid=100, comm="insmod", exe="/usr/sbin/insmod", args=("insmod", "x.ko"))
    lines += call_lines(2, "finit_module", pid=100, comm="insmod", exe="/usr/sbin/insmod")
    _, call = documents(lines, "defend")
    assert call["process"]["args"] == ["insmod", "x.ko"]
    assert call["event"]["action"] == "load_module"


@pytest.mark.parametrize(
    ("uid", "gid", "events_as", "action", "kind"),
    [
        (0, 1000, "defend", "uid_change", "change"),
        (0, 0, "defend", "uid_change", "change"),  # both: one event, as uid_change
        (1000, 0, "defend", "gid_change", "change"),
        (1000, 1000, "defend", "setresuid", "info"),  # to its own ids: nothing changed
        (0, 0, "auditbeat", "setresuid", "info"),
    ],
)
def test_a_set_id_call_is_a_change_when_the_ids_differ_from_the_exec_s(
    uid: int, gid: int, events_as: str, action: str, kind: str
) -> None:
    lines = exec_lines(1, pid=100, uid=1000, comm="lab", exe="/srv/kxlab/lab", args=("lab",))
    lines += call_lines(2, "setresuid", pid=100, uid=uid, gid=gid)
    _, call = documents(lines, events_as)
    assert (call["event"]["action"], call["event"]["type"]) == (action, [kind])
    assert call["process"]["user"]["id"] == str(uid)


def test_a_set_id_call_of_an_unknown_process_is_no_change() -> None:
    [call] = documents(call_lines(1, "setuid", uid=0), "defend")
    assert (call["event"]["action"], call["event"]["type"]) == ("setuid", ["info"])


def test_kexec_calls_keep_their_document() -> None:
    det = Detector([], host_name="h", options=DetectorOptions(emit_events=True))
    head = "type={} msg=audit(1700000001.000:1): "
    line = head.format("SYSCALL") + (
        "arch=c000003e syscall=246 success=no exit=-1 a0=0 a1=0 a2=0 a3=0 items=0 ppid=1 "
        "pid=5 auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 "
        'sgid=1000 fsgid=1000 tty=pts0 ses=1 comm="x" exe="/x" key="k"'
    )
    out = det.feed(line.encode() + b"\n") + det.flush()
    [doc] = [o.to_document() for o in out if isinstance(o, ProcessEvent)]
    assert doc["auditd"]["data"] == {"a0": "0", "a1": "0", "a2": "0", "a3": "0"}


@pytest.mark.parametrize(
    ("required", "syscall", "success"),
    [
        ({"event.action": {"exec"}}, "execve", True),  # Defend's exec: refused before
        ({"event.action": {"exec"}, "event.type": {"start"}}, "execveat", True),
        ({"event.type": {"end"}}, "exit_group", False),
        ({"event.action": {"end"}}, "exit", True),
        ({"event.action": {"load_module"}, "event.type": {"start"}}, "finit_module", True),
        ({"event.action": {"killed-pid"}}, "tkill", True),
        ({"auditd.data.syscall": {"prctl"}}, "prctl", True),
        ({"event.action": {"uid_change"}, "event.type": {"change"}}, "setresuid", True),
        ({"event.action": {"session_id_change"}}, "setsid", True),
    ],
)
def test_rule_interests_accept_the_events_that_carry_their_values(
    required: dict[str, set[str]], syscall: str, success: bool
) -> None:
    prefilter = prefilter_from_values({k: frozenset(v) for k, v in required.items()})
    assert prefilter is not None
    assert prefilter.accepts_static(syscall, success, b"x", b"/x", "h")


def test_rule_interests_still_refuse_what_no_event_carries() -> None:
    start = prefilter_from_values({"event.type": frozenset({"start"})})
    assert start is not None
    assert not start.accepts_static("exit_group", True, b"x", b"/x", "h")
    assert not start.accepts_static("execve", False, b"x", b"/x", "h")
    assert prefilter_from_values({"event.type": frozenset({"creation"})}) is None
    change = prefilter_from_values({"event.type": frozenset({"change"})})
    assert change is not None
    assert not change.accepts_static("execve", True, b"x", b"/x", "h")


class _Query(SimpleRule):
    def __init__(self, text: str) -> None:
        self.query = compile_query(text)
        super().__init__(self.query.matches)


@pytest.mark.parametrize("fast_path", [True, False])
def test_a_defend_exec_rule_fires_on_the_fast_path_too(fast_path: bool) -> None:
    rule = _Query('process where event.action == "exec" and process.name == "kexec"')
    det = Detector(
        [rule],
        host_name="h",
        options=DetectorOptions(events_as="defend", fast_path=fast_path),
    )
    out = det.feed(join(exec_lines(1))) + det.flush()
    assert len([o for o in out if isinstance(o, Alert)]) == 1


@pytest.mark.parametrize("fast_path", [True, False])
def test_a_signal_rule_fires_on_a_kill_event(fast_path: bool) -> None:
    rule = _Query(
        'process where event.action == "killed-pid" and auditd.data.syscall == "kill" '
        'and auditd.data.a1 == "22"'
    )
    det = Detector([rule], host_name="h", options=DetectorOptions(fast_path=fast_path))
    lines = call_lines(1, "kill", args=("1f4", "22", "0", "0"))
    lines += call_lines(2, "kill", args=("1f4", "f", "0", "0"))
    out = det.feed(join(lines)) + det.flush()
    assert [str(a.event.id) for a in out if isinstance(a, Alert)] == ["1700000001.000:1"]
