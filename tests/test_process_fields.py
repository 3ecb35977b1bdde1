"""The fields issue 15 adds to process documents, on the real recordings and by hand.

host.id, process.entity_id / process.parent.entity_id, process.interactive and
process.tty.*, the credentials (process.user, .group, .real_*, .saved_*) and the parent's.
The recordings were made as the system user kxlab (uid 995, gid 994, no terminal, no login
session: fixtures/README.md), RAW without node= and ENRICHED with node=kxlab-node.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kexecwatch.core.detect.alerts import Alert
from kexecwatch.core.detect.detector import Detector, DetectorOptions
from kexecwatch.core.process.events import ProcessEvent
from kexecwatch.core.process.identity import entity_id, extra_of, tty_device, tty_name
from kexecwatch.core.process.table import LiveProcess, ProcessTable
from kexecwatch.rules import load_builtin_rules
from tests.builders import exec_lines, join

ROOT = Path(__file__).resolve().parent.parent
AUDIT = ROOT / "fixtures" / "audit"
RAW = AUDIT / "raw" / "all-scenarios.log"
ENRICHED = AUDIT / "enriched" / "all-scenarios.log"
SYSCALLS = AUDIT / "raw" / "evasion-syscalls.log"
HOST_ID = "4f1c2a3b4c5d6e7f8091a2b3c4d5e6f7"


def documents(
    data: bytes,
    *,
    fast_path: bool = True,
    host_id: str | None = HOST_ID,
    events_as: str = "auditbeat",
) -> list[dict[str, Any]]:
    det = Detector(
        [],
        host_name="fixture-host",
        host_id=host_id,
        options=DetectorOptions(emit_events=True, fast_path=fast_path, events_as=events_as),
    )
    out = det.feed(data) + det.flush()
    return [o.to_document() for o in out if isinstance(o, ProcessEvent)]


@pytest.fixture(scope="module")
def raw_docs() -> list[dict[str, Any]]:
    return documents(RAW.read_bytes())


@pytest.fixture(scope="module")
def enriched_docs() -> list[dict[str, Any]]:
    return documents(ENRICHED.read_bytes())


def test_host_id_is_the_configured_id_or_the_node(
    raw_docs: list[dict[str, Any]], enriched_docs: list[dict[str, Any]]
) -> None:
    assert raw_docs and enriched_docs
    assert {d["host"]["id"] for d in raw_docs} == {HOST_ID}
    assert {d["host"]["id"] for d in enriched_docs} == {"kxlab-node"}  # node= wins
    assert all("id" not in d["host"] for d in documents(RAW.read_bytes(), host_id=None))


@pytest.mark.parametrize("which", ["raw", "enriched"])
def test_credentials_follow_ecs_mapping(which: str, request: pytest.FixtureRequest) -> None:
    docs: list[dict[str, Any]] = request.getfixturevalue(f"{which}_docs")
    for doc in docs:
        p = doc["process"]
        for key, value in (
            ("user", "995"),
            ("real_user", "995"),
            ("saved_user", "995"),
            ("group", "994"),
            ("real_group", "994"),
            ("saved_group", "994"),
        ):
            assert p[key]["id"] == value, (key, doc["auditd"]["id"])
            if which == "enriched":
                assert p[key]["name"] == "kxlab"
            else:
                assert "name" not in p[key]
        assert p["interactive"] is False  # tty=(none)
        assert "tty" not in p


@pytest.mark.parametrize("which", ["raw", "enriched"])
def test_parent_entity_id_is_the_parents_own_entity_id(
    which: str, request: pytest.FixtureRequest
) -> None:
    docs: list[dict[str, Any]] = request.getfixturevalue(f"{which}_docs")
    by_audit_id = {d["auditd"]["id"]: d for d in docs}
    starts = [d for d in docs if d["event"]["type"] == ["start"]]
    assert len({d["process"]["entity_id"] for d in starts}) == len(starts)
    joined = 0
    for doc in docs:
        parent = doc["process"]["parent"]
        if doc["auditd"]["parent_source"] == "unknown":
            assert "entity_id" not in parent and "user" not in parent
            continue
        own = by_audit_id.get(doc["auditd"]["parent_exec_id"])
        if own is None:
            continue
        joined += 1
        assert parent["entity_id"] == own["process"]["entity_id"]
        # The parent's credentials come from the table (its exec's SYSCALL text).
        assert parent["user"] == {"id": own["process"]["user"]["id"]}
        assert parent["real_group"] == {"id": own["process"]["real_group"]["id"]}
        assert parent["interactive"] is False
    assert joined > 100


@pytest.mark.parametrize("which", ["raw", "enriched"])
def test_a_kexec_call_has_the_entity_id_of_its_callers_exec(which: str) -> None:
    docs = documents((AUDIT / which / "evasion-syscalls.log").read_bytes())
    by_audit_id = {d["auditd"]["id"]: d for d in docs}
    calls = [d for d in docs if d["auditd"]["syscall"].startswith("kexec_")]
    assert calls
    for call in calls:
        exec_doc = by_audit_id[call["auditd"]["self_exec_id"]]
        assert call["process"]["entity_id"] == exec_doc["process"]["entity_id"]


def test_fast_and_reference_paths_give_the_same_documents() -> None:
    for log in (RAW, ENRICHED):
        data = log.read_bytes()
        assert documents(data, fast_path=True) == documents(data, fast_path=False)


def test_entity_id_formula() -> None:
    digest = hashlib.sha256(b"host-1\x00" + b"4242\x00" + b"1700000000.000:7").digest()
    expected = base64.urlsafe_b64encode(digest[:18]).decode()
    assert entity_id("host-1", 4242, "1700000000.000:7") == expected
    assert len(expected) == 24


def setuid_run() -> list[dict[str, Any]]:
    """A shell on pts/3 (uid 1000) runs a setuid program (euid 0) that runs id."""
    shell = exec_lines(1, pid=10, ppid=1, comm="bash", exe="/usr/bin/bash", args=("bash",))
    su = exec_lines(2, t="1700000001.000", pid=11, ppid=10, comm="su", args=("su",))
    su[0] = (
        su[0]
        .replace(b"euid=1000 suid=1000", b"euid=0 suid=0")
        .replace(b"egid=1000 sgid=1000", b"egid=0 sgid=0")
        .replace(b"tty=pts0", b"tty=pts3")
    )
    child = exec_lines(3, t="1700000002.000", pid=12, ppid=11, comm="id", args=("id",), uid=0)
    child[0] = child[0].replace(b"tty=pts0", b"tty=(none)")
    det = Detector([], host_name="h", options=DetectorOptions(emit_events=True))
    out = det.feed(join(shell + su + child)) + det.flush()
    return [o.to_document() for o in out if isinstance(o, ProcessEvent)]


def test_setuid_exec_and_its_child_see_effective_real_and_saved_ids() -> None:
    _, su, child = setuid_run()
    p = su["process"]
    assert p["user"] == {"id": "0"} and p["saved_user"] == {"id": "0"}
    assert p["real_user"] == {"id": "1000"}
    assert p["group"] == {"id": "0"} and p["real_group"] == {"id": "1000"}
    assert p["interactive"] is True
    assert p["tty"] == {"char_device": {"major": 136, "minor": 3}}
    assert p["parent"]["user"] == {"id": "1000"}
    assert p["parent"]["tty"] == {"char_device": {"major": 136, "minor": 0}}
    parent = child["process"]["parent"]
    assert parent["user"] == {"id": "0"} and parent["real_user"] == {"id": "1000"}
    assert parent["interactive"] is True
    assert parent["entity_id"] == su["process"]["entity_id"]
    assert child["process"]["interactive"] is False


@pytest.mark.parametrize(
    ("tty", "device"),
    [
        ("pts0", (136, 0)),
        ("pts300", (137, 44)),
        ("tty1", (4, 1)),
        ("ttyS0", (4, 64)),
        ("console", (5, 1)),
        ("ttyUSB0", None),
        ("(none)", None),
        ("pts99999", None),
    ],
)
def test_tty_device_numbers(tty: str, device: tuple[int, int] | None) -> None:
    assert tty_device(tty) == device


def test_extra_is_the_text_from_auid_to_comm() -> None:
    body = exec_lines(1)[0].split(b"): ", 1)[1]
    assert extra_of(body) == (
        b"auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 "
        b"egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=1"
    )
    assert extra_of(b"arch=c000003e syscall=59 pid=1") is None


def test_the_table_state_keeps_extra_and_reads_old_states() -> None:
    det = Detector([], host_name="h")
    det.feed(join(exec_lines(1, pid=10, comm="bash", args=("bash",))))
    det.flush()
    state = json.loads(json.dumps(det.table.to_state()))
    restored = ProcessTable()
    restored.restore(state)
    parent = restored.parent_at(10, 1_800_000_000_000)
    assert parent is not None and parent.extra is not None
    assert parent.extra.startswith(b"auid=1000 uid=1000") and parent.extra.endswith(b"ses=1")
    old = ProcessTable()
    old.restore([row[:8] for row in state])  # written before entries had extra
    known = old.parent_at(10, 1_800_000_000_000)
    assert known is not None and known.extra is None and known.name == b"bash"


def replay_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kexecwatch", "replay", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_replay_host_id_flag() -> None:
    proc = replay_cli("--events", "--host-id", HOST_ID, str(RAW))
    assert proc.returncode == 0, proc.stderr
    docs = [json.loads(line) for line in proc.stdout.splitlines()]
    assert docs and {d["host"]["id"] for d in docs} == {HOST_ID}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--host-id", ""), "--host-id must be 1 to 256 printable characters"),
        (("--host-id", "a b"), "--host-id must be 1 to 256 printable characters"),
        (("--host-id", "x" * 300), "--host-id must be 1 to 256 printable characters"),
        (("--per-host", "--host-id", "x"), "--host-id cannot be used with --per-host"),
        (("--events-as", "sysmon"), "invalid choice: 'sysmon'"),
    ],
)
def test_bad_host_id_or_profile_is_a_one_line_error(args: tuple[str, ...], message: str) -> None:
    proc = replay_cli(*args, str(RAW))
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_bundled_rules_alert_alike_in_both_vocabularies() -> None:
    """--events-as defend never changes what the built-in rules (v7 included) alert on."""
    logs = sorted(AUDIT.glob("*/*.log"))
    assert len(logs) > 40
    alerted = 0
    for log in logs:
        data = log.read_bytes()
        found = []
        for events_as in ("auditbeat", "defend"):
            det = Detector(
                load_builtin_rules(),
                host_name="h",
                options=DetectorOptions(events_as=events_as),
            )
            out = det.feed(data) + det.flush()
            found.append(sorted(a.id for a in out if isinstance(a, Alert)))
        assert found[0] == found[1], log.name
        alerted += len(found[0])
    assert alerted > 50


def test_defend_vocabulary_field_by_field() -> None:
    det = Detector([], host_name="h", options=DetectorOptions(emit_events=True, events_as="defend"))
    failed = exec_lines(2, t="1700000001.000", pid=11, success=False)
    out = det.feed(join(exec_lines(1, pid=10) + failed)) + det.flush()
    start, failure = [o.to_document()["event"] for o in out if isinstance(o, ProcessEvent)]
    assert (start["action"], start["type"], start["category"]) == ("exec", ["start"], ["process"])
    assert (failure["action"], failure["type"], failure["outcome"]) == (
        "exec",
        ["info"],
        "failure",
    )
    calls = [d for d in documents(RAW.read_bytes()) if d["auditd"]["syscall"].startswith("kexec_")]
    assert {d["event"]["action"] for d in calls} <= {"kexec_load", "kexec_file_load"}


@pytest.mark.parametrize("name", ["pts0", "pts300", "tty1", "ttyS0", "console"])
def test_tty_name_is_the_inverse_of_tty_device(name: str) -> None:
    device = tty_device(name)
    assert device is not None
    assert tty_name(*device) == name


def test_a_parent_read_from_proc_brings_its_credentials() -> None:
    live = LiveProcess(
        7,
        1,
        b"sudo",
        b"/usr/bin/sudo",
        (b"sudo", b"-s"),
        start_ms=1_699_999_990_000,
        extra=b"auid=1000 uid=1000 gid=1000 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 "
        b"tty=pts2 ses=4",
    )
    det = Detector(
        [], host_name="h", options=DetectorOptions(emit_events=True), lookup=lambda pid: live
    )
    out = det.feed(join(exec_lines(1, pid=8, ppid=7, uid=0))) + det.flush()
    [doc] = [o.to_document() for o in out if isinstance(o, ProcessEvent)]
    parent = doc["process"]["parent"]
    assert doc["auditd"]["parent_source"] == "procfs"
    assert parent["user"] == {"id": "0"} and parent["real_user"] == {"id": "1000"}
    assert parent["interactive"] is True
    assert parent["tty"] == {"char_device": {"major": 136, "minor": 2}}
    assert parent["entity_id"] == entity_id("h", 7, "procfs:1699999990000")
