"""The command line, driven as a real process: outputs, summaries and exit codes."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.builders import exec_lines, join

KEXEC_LOG = join(
    exec_lines(1, pid=10, comm="bash", exe="/usr/bin/bash", args=("bash",))
    + exec_lines(2, pid=11, ppid=10, args=("kexec", "-l", "vmlinuz"))
    + exec_lines(3, pid=12, ppid=10, args=("kexec", "-p", "vmlinuz"))
)
QUIET_LOG = join(exec_lines(1, pid=10, comm="ls", exe="/usr/bin/ls", args=("ls",)))


def kexecwatch(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "kexecwatch", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    (tmp_path / "kexec.log").write_bytes(KEXEC_LOG)
    (tmp_path / "quiet.log").write_bytes(QUIET_LOG)
    return tmp_path


def test_alerts_exit_1_with_one_json_document_each(logs: Path) -> None:
    result = kexecwatch(
        "replay", "--ruleset", "upstream", "--host-name", "h1", str(logs / "kexec.log")
    )
    assert result.returncode == 1
    [line] = result.stdout.decode().splitlines()
    doc = json.loads(line)
    assert doc["event"]["kind"] == "alert"
    assert doc["rule"]["name"] == "Kernel Load or Unload via Kexec Detected"
    assert doc["rule"]["version"] == "7"
    assert doc["kexecwatch"]["rule"]["severity"] == "medium"
    assert doc["event"]["risk_score"] == 47
    assert doc["process"]["args"] == ["kexec", "-l", "vmlinuz"]
    assert doc["process"]["parent"]["name"] == "bash"
    assert doc["host"]["name"] == "h1"
    assert set(doc["threat"]["tactic"]["id"]) == {"TA0004", "TA0003", "TA0005"}
    summary = result.stderr.decode()
    assert "1 alerts" in summary and "0 parse issues" in summary


@pytest.mark.parametrize(
    ("ruleset", "names"),
    [
        (
            "all",
            [
                "Kernel Load or Unload via Kexec Detected",
                "Kexec Kernel Load or Exec with Evasive Arguments",
            ],
        ),
        ("kexecwatch", ["Kexec Kernel Load or Exec with Evasive Arguments"]),
        ("upstream", ["Kernel Load or Unload via Kexec Detected"]),
    ],
)
def test_ruleset_selects_the_builtin_rules(logs: Path, ruleset: str, names: list[str]) -> None:
    result = kexecwatch("replay", "--ruleset", ruleset, str(logs / "kexec.log"))
    assert result.returncode == 1
    docs = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [d["rule"]["name"] for d in docs] == names
    assert all(d["event"]["reason"] for d in docs)
    if ruleset != "upstream":
        assert docs[-1]["event"]["reason"] == (
            "kexec -p vmlinuz parsed as panic-load; upstream rule misses unlisted option -p"
        )


def test_unknown_ruleset_is_a_usage_error(logs: Path) -> None:
    result = kexecwatch("replay", "--ruleset", "elastic", str(logs / "kexec.log"))
    assert result.returncode == 2
    assert "--ruleset" in result.stderr.decode()


def test_no_alert_exits_0(logs: Path) -> None:
    result = kexecwatch("replay", str(logs / "quiet.log"))
    assert result.returncode == 0
    assert result.stdout == b""


def test_stdin_gzip_and_directory_sources(logs: Path, tmp_path: Path) -> None:
    assert kexecwatch("replay", "-", stdin=KEXEC_LOG).returncode == 1
    gz = tmp_path / "set"
    gz.mkdir()
    lines = KEXEC_LOG.splitlines(keepends=True)
    cut = 7  # inside event 2: SYSCALL and EXECVE before the rotation, the rest after
    (gz / "audit.log.1.gz").write_bytes(gzip.compress(b"".join(lines[:cut])))
    (gz / "audit.log").write_bytes(b"".join(lines[cut:]))
    # The set is one stream: an event cut in two by the rotation is whole again.
    result = kexecwatch("replay", "--format", "text", str(gz))
    assert result.returncode == 1
    assert "kexec -l vmlinuz" in result.stdout.decode()
    assert "0 parse issues" in result.stderr.decode()


def test_events_prints_process_events(logs: Path) -> None:
    result = kexecwatch("replay", "--events", str(logs / "kexec.log"))
    docs = [json.loads(x) for x in result.stdout.decode().splitlines()]
    assert [d["process"]["pid"] for d in docs] == [10, 11, 12]
    assert all(d["event"]["kind"] == "event" for d in docs)


def test_since_until_select_by_event_time(logs: Path) -> None:
    result = kexecwatch("replay", "--since", "2023-11-15", str(logs / "kexec.log"))
    assert result.returncode == 0
    result = kexecwatch(
        "replay", "--since", "2023-11-14T22:00:00Z", "--until", "now", str(logs / "kexec.log")
    )
    assert result.returncode == 1


def test_missing_file_exits_2_naming_it(tmp_path: Path) -> None:
    result = kexecwatch("replay", str(tmp_path / "absent.log"))
    assert result.returncode == 2
    assert result.stderr.decode().strip() == (
        f"kexecwatch: error: {tmp_path / 'absent.log'}: no such file or directory"
    )


def test_bad_date_exits_2(logs: Path) -> None:
    result = kexecwatch("replay", "--until", "half past never", str(logs / "kexec.log"))
    assert result.returncode == 2
    assert "bad --until 'half past never'" in result.stderr.decode()


def test_bad_rule_exits_2_with_line_col_and_caret(logs: Path, tmp_path: Path) -> None:
    rule = tmp_path / "bad.toml"
    rule.write_text(
        '[metadata]\ncreation_date = "2026/11/30"\nupdated_date = "2026/11/30"\n'
        'maturity = "production"\n'
        '[rule]\nrule_id = "x"\nname = "x"\ndescription = "x"\nrisk_score = 1\n'
        'severity = "low"\nlanguage = "eql"\ntype = "eql"\nauthor = ["me"]\nlicense = "MIT"\n'
        "query = '''\nprocess where process.name = \"kexec\"\n'''\n"
    )
    result = kexecwatch("replay", "--rule", str(rule), str(logs / "kexec.log"))
    assert result.returncode == 2
    err = result.stderr.decode()
    assert f"{rule}:16:" in err
    assert "^" in err


def test_usage_error_exits_2() -> None:
    result = kexecwatch("replay", "--format", "xml")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr.decode()


def test_text_output_is_terminal_safe(tmp_path: Path) -> None:
    lines = exec_lines(1, pid=11, args=("kexec", "-l"))
    lines[1] = (
        b'type=EXECVE msg=audit(1700000000.000:1): argc=3 a0="kexec" a1="-l" '
        + b"a2="
        + b"\x1b]0;pwned\x07\x1b[2J[bold]x\xff\x9b".hex().upper().encode()
    )
    path = tmp_path / "hostile.log"
    path.write_bytes(join(lines))
    result = kexecwatch("replay", "--format", "text", str(path))
    assert result.returncode == 1
    out = result.stdout
    assert not any(b < 0x20 and b != 0x0A for b in out), out
    assert b"\x9b" not in out.decode("utf-8").encode("latin-1", "replace")
    text = out.decode()
    assert "\\x1b]0;pwned\\x07\\x1b[2J[bold]x\\xff" in text


def test_a_flood_by_one_user_does_not_suppress_roots_kexec(tmp_path: Path) -> None:
    # Issue 16: user 1000 runs kexec 120 times, then root runs it in the same 5-minute window.
    lines: list[bytes] = []
    for serial in range(1, 121):
        lines += exec_lines(serial, pid=1000 + serial, args=("kexec", "-l", "vmlinuz"))
    lines += exec_lines(500, pid=4242, uid=0, t="1700000060.000", args=("kexec", "-e"))
    (tmp_path / "flood.log").write_bytes(join(lines))
    result = kexecwatch("replay", "--ruleset", "upstream", str(tmp_path / "flood.log"))
    assert result.returncode == 1, result.stderr
    docs = [json.loads(line) for line in result.stdout.splitlines()]
    assert [d["process"]["pid"] for d in docs].count(4242) == 1
    assert len(docs) == 101
    root = next(d for d in docs if d["process"]["pid"] == 4242)
    assert root["user"]["id"] == "0"
    assert "20 suppressed" in result.stderr.decode()
    assert "user 1000" in result.stderr.decode()


RECORDED = Path(__file__).resolve().parent.parent / "fixtures/audit/raw/v7-exec-short.log"
ROOT_IDS = re.compile(rb" (a?uid|euid|suid|fsuid|gid|egid|sgid|fsgid)=\d+")


def copy_event(records: list[bytes], serial: int, t: str, pid: int) -> list[bytes]:
    """A recorded event again, under another audit id and pid."""
    head = re.compile(rb"msg=audit\([0-9.]+:\d+\)")
    stamp = f"msg=audit({t}:{serial})".encode()
    return [
        head.sub(stamp, line).replace(b" pid=12903 ", f" pid={pid} ".encode()) for line in records
    ]


def test_recorded_kexec_flood_by_one_uid_does_not_suppress_roots(tmp_path: Path) -> None:
    # Issue 16, from a recording: the stand-in kexec run by uid 995 (auid unset) alerts
    # (audit id 83999). 120 more of it fill uid 995's window; then the same event run by
    # root (its ids set to 0: the recorder never runs kexec as root) still alerts.
    log = RECORDED.read_bytes()
    event = [line for line in log.splitlines() if b":83999)" in line]
    assert event and b" uid=995 " in event[0]
    lines = log.splitlines()
    for i in range(120):
        lines += copy_event(event, 84003 + i, f"1796013690.{i:03d}", 20000 + i)
    root = copy_event(event, 84200, "1796013700.000", 30000)
    lines += [ROOT_IDS.sub(lambda m: m.group(0).split(b"=")[0] + b"=0", root[0]), *root[1:]]
    (tmp_path / "flood.log").write_bytes(b"".join(line + b"\n" for line in lines))
    result = kexecwatch("replay", "--ruleset", "upstream", str(tmp_path / "flood.log"))
    assert result.returncode == 1, result.stderr
    docs = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(docs) == 101
    [root_doc] = [d for d in docs if d["process"]["pid"] == 30000]
    assert root_doc["user"]["id"] == "0"
    assert "21 alert(s)" in result.stderr.decode()
    assert "user 995" in result.stderr.decode()
