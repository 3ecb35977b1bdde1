"""``process.thread.capabilities.*``: exactly where the trail states them (BPRM_FCAPS, CAPSET).

Records are built as Linux 6.1 writes them (``audit_log_cap``: 16 hex digits or ``0``), and
the real recording elastic-process-syscalls (setpriv's capset) is read too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kexecwatch.core.detect.detector import Detector, DetectorOptions
from kexecwatch.core.process.capabilities import capabilities_of, capability_names
from kexecwatch.core.process.events import ProcessEvent
from tests import ecs
from tests.builders import exec_lines, join
from tests.core.process.test_syscall_events import call_lines
from tests.test_cli import kexecwatch
from tests.test_rule_source import SNAPSHOT, needs_snapshot

PTRACE = "0000000000080000"  # bit 19
FCAPS = (
    "type=BPRM_FCAPS msg=audit({t}:{serial}): fver=2 fp={pp} fi=0 fe=1 old_pp=0 "
    "old_pi=0 old_pe=0 old_pa=0 pp={pp} pi=0 pe={pe} pa=0 frootid=0"
)


def with_fcaps(
    lines: list[bytes], serial: int, pp: str, pe: str, t: str = "1700000000.000"
) -> list[bytes]:
    """An exec's records with BPRM_FCAPS after its SYSCALL record, the kernel's order."""
    return [lines[0], FCAPS.format(t=t, serial=serial, pp=pp, pe=pe).encode(), *lines[1:]]


def documents(lines: list[bytes], events_as: str = "auditbeat") -> list[dict[str, Any]]:
    det = Detector(
        [], host_name="h", options=DetectorOptions(emit_events=True, events_as=events_as)
    )
    out = det.feed(join(lines)) + det.flush()
    return [o.to_document() for o in out if isinstance(o, ProcessEvent)]


def test_bitmaps_read_as_ecs_names() -> None:
    assert capability_names(b"0") == ()
    assert capability_names(PTRACE.encode()) == ("CAP_SYS_PTRACE",)
    assert capability_names(b"00000000000000c0") == ("CAP_SETGID", "CAP_SETUID")
    assert capability_names(b"000001ffffffffff")[-1] == "CAP_CHECKPOINT_RESTORE"  # type: ignore[index]
    # a number Linux has no name for yet: ECS's pattern allows digits
    assert capability_names(b"0000200000000000") == ("45",)
    for bad in (b"", b"0x10", b"-1", b"1_0", b"00000000000000000", b"zz", None):
        assert capability_names(bad) is None, bad


def test_only_the_two_records_state_capabilities() -> None:
    fields = {"pp": b"80000", "pe": b"0", "cap_pp": b"80000", "cap_pe": b"80000"}
    assert capabilities_of("BPRM_FCAPS", fields) == (("CAP_SYS_PTRACE",), ())
    assert capabilities_of("CAPSET", fields) == (("CAP_SYS_PTRACE",), ("CAP_SYS_PTRACE",))
    assert capabilities_of("PATH", fields) is None
    assert capabilities_of("BPRM_FCAPS", {"pp": b"80000", "pe": b"oops"}) is None


@pytest.mark.parametrize("events_as", ["auditbeat", "defend"])
def test_an_exec_with_file_capabilities_carries_them(events_as: str) -> None:
    lines = exec_lines(10, comm="gdb", exe="/usr/bin/gdb", args=("gdb", "-p", "1"))
    (doc,) = documents(with_fcaps(lines, 10, PTRACE, PTRACE), events_as)
    assert doc["process"]["thread"] == {
        "capabilities": {"permitted": ["CAP_SYS_PTRACE"], "effective": ["CAP_SYS_PTRACE"]}
    }


def test_an_exec_the_trail_says_nothing_of_has_no_capabilities() -> None:
    (doc,) = documents(exec_lines(10, comm="gdb", exe="/usr/bin/gdb"))
    assert "thread" not in doc["process"]


def test_a_raised_permitted_set_without_effective_is_stated_as_empty() -> None:
    lines = exec_lines(10, comm="gdb", exe="/usr/bin/gdb")
    (doc,) = documents(with_fcaps(lines, 10, PTRACE, "0"))
    assert doc["process"]["thread"]["capabilities"] == {
        "permitted": ["CAP_SYS_PTRACE"],
        "effective": [],
    }


def test_a_capset_call_carries_the_sets_it_set() -> None:
    lines = call_lines(20, "capset")
    capset = (
        b"type=CAPSET msg=audit(1700000001.000:20): pid=100 cap_pi=0 "
        b"cap_pp=00000000000000c0 cap_pe=0000000000000080 cap_pa=0"
    )
    (doc,) = documents([lines[0], capset, *lines[1:]])
    assert doc["process"]["thread"]["capabilities"] == {
        "permitted": ["CAP_SETGID", "CAP_SETUID"],
        "effective": ["CAP_SETUID"],
    }


GDB_RULE = "rules/linux/privilege_escalation_gdb_sys_ptrace_elevation.toml"


def gdb_then_root(tmp_path: Path, *, fcaps: bool) -> list[dict[str, Any]]:
    """A login shell under sshd runs gdb (with cap_sys_ptrace=ep when ``fcaps``) as a
    user, then a command as root: "Privilege Escalation via GDB CAP_SYS_PTRACE"'s shape."""
    gdb = exec_lines(3, t="1700000001.000", pid=30, ppid=20, comm="gdb", exe="/usr/bin/gdb")
    lines = [
        *exec_lines(1, pid=10, ppid=1, comm="sshd", exe="/usr/sbin/sshd", uid=0),
        *exec_lines(2, pid=20, ppid=10, comm="bash", exe="/usr/bin/bash", args=("-bash",)),
        *(with_fcaps(gdb, 3, PTRACE, PTRACE, "1700000001.000") if fcaps else gdb),
        *exec_lines(4, t="1700000002.000", pid=31, ppid=20, comm="id", exe="/usr/bin/id", uid=0),
    ]
    return replay_with_rule(tmp_path, GDB_RULE, lines)


def replay_with_rule(tmp_path: Path, rule: str, lines: list[bytes]) -> list[dict[str, Any]]:
    """``lines`` replayed with one rule of the snapshot, in Defend's vocabulary: the alerts."""
    log = tmp_path / "rule.log"
    log.write_bytes(join(lines))
    done = kexecwatch(
        "replay",
        "--rule",
        str(SNAPSHOT / rule),
        "--events-as",
        "defend",
        "--host-id",
        "h",
        "--format",
        "json",
        "--quiet",
        str(log),
    )
    assert done.returncode in (0, 1), done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


@needs_snapshot
def test_the_gdb_cap_sys_ptrace_rule_fires_where_the_trail_states_the_capability(
    tmp_path: Path,
) -> None:
    (alert,) = gdb_then_root(tmp_path, fcaps=True)
    assert alert["rule"]["name"] == "Privilege Escalation via GDB CAP_SYS_PTRACE"
    steps = [e["process"]["name"] for e in alert["kexecwatch"]["sequence"]["events"]]
    assert steps == ["gdb", "id"]
    assert gdb_then_root(tmp_path, fcaps=False) == []


@pytest.mark.skipif(
    not ecs.ECS_FLAT.is_file(), reason=f"ECS definitions not found at {ecs.ECS_FLAT}"
)
def test_the_capability_fields_are_ecs() -> None:
    lines = exec_lines(10, comm="gdb", exe="/usr/bin/gdb")
    (doc,) = documents(with_fcaps(lines, 10, "0000200000080000", "0"))
    assert doc["process"]["thread"]["capabilities"]["permitted"] == ["CAP_SYS_PTRACE", "45"]
    assert ecs.problems(doc) == []


def test_the_real_recordings_capset_states_the_sets() -> None:
    """elastic-process-syscalls was recorded with the real auditd: setpriv's capset leaves
    every capability but CAP_SYS_RESOURCE (cap_pp=000001fffeffffff)."""
    log = Path(__file__).resolve().parents[3] / "fixtures/audit/raw/elastic-process-syscalls.log"
    docs = documents(log.read_bytes().splitlines())
    capsets = [d for d in docs if d["auditd"]["syscall"] == "capset"]
    assert capsets
    for doc in capsets:
        permitted = doc["process"]["thread"]["capabilities"]["permitted"]
        assert len(permitted) == 40 and "CAP_SYS_RESOURCE" not in permitted
    assert all("thread" not in d["process"] for d in docs if d["auditd"]["syscall"] != "capset")
