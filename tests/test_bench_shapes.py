"""The log shapes of ``bench/generate.py``: each writes what it says it writes, and its
expectations file is exactly what a replay of the log finds (the kexec rule's alerts, the
records, the lost serials), with the fast path and the full parse agreeing.

The benchmark's figures are only as good as these logs: a shape that silently wrote
something else, or expectations that drifted from the log, would make ``bench/run.py``
compare the wrong things.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from bench.generate import SHAPES, Generator, generate
from kexecwatch.core.audit.assembler import EventsLost
from kexecwatch.core.detect.detector import Detector
from tests.core.scan.test_fast_path import ALL_RULES, BUILTIN, assert_same, run

ROOT = Path(__file__).resolve().parent.parent
_ID = re.compile(r"^type=(\S+) msg=audit\(([0-9.]+:[0-9]+)\): ?(.*)$", re.DOTALL)
EXECS = {"59", "322"}


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[bytes, dict[str, object]]]:
    out = {}
    for shape in SHAPES:
        path = tmp_path_factory.mktemp("shapes") / f"{shape}.log"
        # Many kexec runs, and (where the shape has gaps) many gaps, in a small log.
        more = {"lose_every": 60} if "gap_max" in SHAPES[shape] else {}
        exp = generate(path, 300_000, seed=5, shape=shape, kexec_every=80, **more)
        out[shape] = (path.read_bytes(), exp)
    return out


def events_of(data: bytes) -> dict[str, list[tuple[str, str]]]:
    """Each event id's (type, body) records, in log order."""
    events: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for line in data.decode().split("\n")[:-1]:
        m = _ID.match(line)
        assert m, line
        events[m.group(2)].append((m.group(1), m.group(3)))
    return events


def field(body: str, name: str) -> str:
    m = re.search(rf"(?:^| ){name}=(\S+)", body)
    assert m, (name, body)
    return m.group(1)


def syscall_body(records: list[tuple[str, str]]) -> str | None:
    return next((body for kind, body in records if kind == "SYSCALL"), None)


@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_replay_finds_exactly_the_expected_alerts_records_and_lost_events(
    logs: dict[str, tuple[bytes, dict[str, object]]], shape: str
) -> None:
    data, expected = logs[shape]
    keys = assert_same(data, BUILTIN)
    alerts = sorted(json.loads(k[len("alert ") :])["auditd"]["id"] for k in keys if "alert " in k)
    assert alerts, "the log should hold alerting kexec runs"
    assert alerts == sorted(expected["alerts"])  # type: ignore[type-var]
    _, stats = run(data, BUILTIN, fast=False)
    assert stats["records"] == expected["records"]
    assert stats["lost_events"] == expected["lost"]
    assert stats["incomplete_events"] == 0  # the log ends between whole events
    assert_same(data, ALL_RULES, emit_events=True)


def test_the_command_line_replay_agrees_with_the_expectations(tmp_path: Path) -> None:
    log = tmp_path / "mixed.log"
    expected = generate(log, 300_000, seed=9, shape="mixed", kexec_every=120)
    done = subprocess.run(
        [sys.executable, "-m", "kexecwatch", "replay", str(log), "--ruleset", "upstream"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    found = sorted(json.loads(line)["auditd"]["id"] for line in done.stdout.splitlines())
    assert found == sorted(expected["alerts"])  # type: ignore[type-var]
    assert f"{expected['lost']} lost events" in done.stderr


def test_classic_is_the_log_the_benchmarks_used_before_shapes() -> None:
    # The first MiB of the seed-1 log, as the generator wrote it before shapes existed:
    # the README's earlier figures stay comparable with today's classic log.
    gen = Generator(seed=1, **SHAPES["classic"])  # type: ignore[arg-type]
    head = bytearray()
    lines = gen.lines()
    while len(head) < 1 << 20:
        head += (next(lines) + "\n").encode()
    digest = hashlib.sha256(bytes(head[: 1 << 20])).hexdigest()
    assert digest == "427429087719226b37a6e224d0f383e97321606cb596f90307925cce561255db"


def test_mixed_has_every_shape() -> None:
    for name, options in SHAPES.items():
        for key, value in options.items():
            assert SHAPES["mixed"][key] == value, (name, key)


def test_eoe_ends_every_syscall_event_and_nothing_else(
    logs: dict[str, tuple[bytes, dict[str, object]]],
) -> None:
    events = events_of(logs["eoe"][0])
    for records in events.values():
        kinds = [kind for kind, _ in records]
        if "SYSCALL" in kinds:
            assert kinds[-1] == "EOE" and kinds.count("EOE") == 1, kinds
        else:
            assert "EOE" not in kinds
    assert "EOE" not in logs["classic"][0].decode()


def test_one_event_in_five_is_a_non_exec_system_call_by_a_process_seen_before(
    logs: dict[str, tuple[bytes, dict[str, object]]],
) -> None:
    events = events_of(logs["syscalls"][0])
    execs = [b for r in events.values() if (b := syscall_body(r)) and field(b, "syscall") in EXECS]
    # Processes that exec'd before the log began: the parents of the ones in it.
    execd = {field(body, "ppid") for body in execs}
    calls: dict[str, int] = defaultdict(int)
    for records in events.values():
        body = syscall_body(records)
        if body is None:
            continue
        number = field(body, "syscall")
        kinds = [kind for kind, _ in records]
        if number in EXECS:
            execd.add(field(body, "pid"))
            continue
        if number in ("320", "246"):
            continue  # kexec's own system call in the kexec scenarios
        calls[number] += 1
        assert field(body, "pid") in execd
        assert kinds[-1] == "PROCTITLE"
        if number == "42":  # connect: the address, no names
            assert kinds == ["SYSCALL", "SOCKADDR", "PROCTITLE"]
        else:
            assert kinds[1] == "CWD" and "PATH" in kinds
            assert kinds.count("PATH") == int(field(body, "items"))
    assert set(calls) == {"257", "42", "263", "268"}
    share = sum(calls.values()) / len(events)
    assert 0.12 < share < 0.3, share


def test_privileged_execs_have_bprm_fcaps_between_syscall_and_execve(
    logs: dict[str, tuple[bytes, dict[str, object]]],
) -> None:
    seen = 0
    for records in events_of(logs["fcaps"][0]).values():
        kinds = [kind for kind, _ in records]
        if "BPRM_FCAPS" not in kinds:
            continue
        seen += 1
        assert kinds[:3] == ["SYSCALL", "BPRM_FCAPS", "EXECVE"], kinds
        body = records[0][1]
        caps = records[1][1]
        if field(caps, "fver") == "0":  # set-user-ID root: the effective ids gained
            assert field(body, "euid") == "0" and field(body, "uid") != "0"
            assert field(caps, "pe") == "000001ffffffffff"
        else:
            assert field(caps, "pe") == "0000000000002000"
    assert seen > 10


def test_sessions_hold_services_logins_and_the_login_uid_write(
    logs: dict[str, tuple[bytes, dict[str, object]]],
) -> None:
    events = events_of(logs["sessions"][0])
    kinds = {kind for records in events.values() for kind, _ in records}
    assert {"SERVICE_START", "SERVICE_STOP", "USER_START", "USER_END", "CRED_ACQ"} <= kinds
    assert {"USER_LOGIN", "LOGIN", "USER_AUTH", "USER_ACCT", "USER_CMD", "CRED_DISP"} <= kinds
    logins = [records for records in events.values() if records[0][0] == "LOGIN"]
    assert logins
    for records in logins:
        # As the kernel writes it: the LOGIN record, then the write(2) that set the
        # login uid, in the same event.
        assert [kind for kind, _ in records] == ["LOGIN", "SYSCALL", "PROCTITLE"]
        login, call = records[0][1], records[1][1]
        assert field(call, "syscall") == "1"
        assert field(call, "auid") == field(login, "auid")
        assert field(call, "ses") == field(login, "ses")


def test_gaps_lose_bursts_of_serials(logs: dict[str, tuple[bytes, dict[str, object]]]) -> None:
    data, expected = logs["gaps"]
    det = Detector(list(BUILTIN), host_name="h")
    out = [*det.feed(data), *det.flush()]
    gaps = [o.last_serial - o.first_serial + 1 for o in out if isinstance(o, EventsLost)]
    assert len(gaps) > 3 and max(gaps) > 1
    assert sum(gaps) == expected["lost"]
