"""Errors and exit codes of the command line, driven as a real process (issue 13).

Every input problem is one line on stderr and exit 2; exit 1 only ever means alerts.
"""

from __future__ import annotations

import grp
import gzip
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.builders import exec_lines, join
from tests.test_cli import KEXEC_LOG, QUIET_LOG


def kexecwatch(
    *args: str, stdin: bytes | int = b"", prefix: tuple[str, ...] = (), timeout: float = 60
) -> subprocess.CompletedProcess[bytes]:
    feed: dict[str, object] = {"input": stdin} if isinstance(stdin, bytes) else {"stdin": stdin}
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [*prefix, sys.executable, "-m", "kexecwatch", *args],
        capture_output=True,
        timeout=timeout,
        check=False,
        **feed,
    )


def one_error_line(result: subprocess.CompletedProcess[bytes]) -> str:
    """The single stderr line of a failed run; fails unless exit 2 and exactly one line."""
    err = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 2, (result.returncode, err)
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("kexecwatch: error: ")
    return lines[0]


def unprivileged() -> tuple[str, ...]:
    """A command prefix that makes mode bits apply: root keeps its uid but loses its
    capabilities (CAP_DAC_OVERRIDE), so a 0000 file or directory is unreadable."""
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root and setpriv (util-linux) is missing: cannot drop privileges")
    return (setpriv, "--bounding-set=-all", "--inh-caps=-all")


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[Path]:
    """``tmp_path/audit/audit.log`` behind a directory nobody may enter (as /var/log/audit)."""
    audit = tmp_path / "audit"
    audit.mkdir()
    (audit / "audit.log").write_bytes(KEXEC_LOG)
    audit.chmod(0)
    yield audit
    audit.chmod(0o755)


# -- 1. file-access errors ---------------------------------------------------------------


def test_unreadable_log_is_one_line_exit_2_with_a_hint(locked: Path) -> None:
    group = grp.getgrgid(locked.stat().st_gid).gr_name
    line = one_error_line(kexecwatch("replay", str(locked / "audit.log"), prefix=unprivileged()))
    assert f"{locked / 'audit.log'}: permission denied on {locked}: run as root or as a " in line
    assert f"member of its group {group} (for the audit log: log_group in auditd.conf" in line
    line = one_error_line(kexecwatch("replay", str(locked), prefix=unprivileged()))
    assert f"{locked}: permission denied: run as root or as a member of its group {group}" in line


def test_unreadable_file_names_its_group(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(KEXEC_LOG)
    log.chmod(0)
    line = one_error_line(kexecwatch("replay", str(log), prefix=unprivileged()))
    group = grp.getgrgid(log.stat().st_gid).gr_name
    assert f"{log}: permission denied: run as root or as a member of its group {group}" in line


def test_symlink_loop_is_one_line(tmp_path: Path) -> None:
    loop = tmp_path / "loop.log"
    loop.symlink_to(loop)
    line = one_error_line(kexecwatch("replay", str(loop)))
    assert "symbolic links" in line


@pytest.mark.parametrize("device", ["/dev/null", "/dev/zero"])
def test_a_device_is_refused(device: str) -> None:
    line = one_error_line(kexecwatch("replay", device, timeout=20))
    assert f"{device}: not a regular file (a character device)" in line


def test_a_fifo_is_refused_without_waiting(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    line = one_error_line(kexecwatch("replay", str(fifo), timeout=20))
    assert "not a regular file (a FIFO)" in line
    assert "kexecwatch replay - <" in line  # how to read it anyway


def test_live_checks_its_path_the_same_way(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert "(a FIFO)" in one_error_line(kexecwatch("live", str(fifo), timeout=20))
    assert "(a directory)" in one_error_line(kexecwatch("live", str(tmp_path)))
    assert "(a character device)" in one_error_line(kexecwatch("live", "--replay", "/dev/zero"))


# -- 2. inputs with no audit record ----------------------------------------------------------

SHADOW = b"root:$y$j9T$TOPSECRETSALT$TOPSECRETHASHTOPSECRETHASHTOPSECRETHASH0:19700:0:99999:7:::\n"


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(SHADOW * 3, id="shadow"),
        pytest.param(b"hello\nworld\n", id="text"),
        pytest.param(bytes(range(256)) * 40, id="random-bytes"),
        pytest.param(Path(sys.executable).resolve().read_bytes()[:200_000], id="binary"),
        pytest.param(b"", id="empty"),
    ],
)
def test_input_without_audit_records_is_an_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "not-audit"
    path.write_bytes(content)
    line = one_error_line(kexecwatch("replay", str(path)))
    assert f"{path}: no audit record" in line
    assert "TOPSECRET" not in line


def test_one_source_without_records_among_good_ones_is_named(tmp_path: Path) -> None:
    good = tmp_path / "audit.log"
    good.write_bytes(KEXEC_LOG)
    shadow = tmp_path / "shadow-"
    shadow.write_bytes(SHADOW)
    result = kexecwatch("replay", "--quiet", str(good), str(shadow))
    assert result.returncode == 2
    assert result.stdout  # the alerts of the good file are still written
    err = result.stderr.decode()
    assert err == f"kexecwatch: error: {shadow}: no audit record in it ({len(SHADOW)} bytes read)\n"


def test_a_source_without_records_before_good_ones_is_named_not_the_next(
    tmp_path: Path,
) -> None:
    shadow = tmp_path / "shadow-"
    shadow.write_bytes(SHADOW)
    good = tmp_path / "audit.log"
    good.write_bytes(KEXEC_LOG)
    line = one_error_line(kexecwatch("replay", "--quiet", str(shadow), str(good)))
    assert line == f"kexecwatch: error: {shadow}: no audit record in it ({len(SHADOW)} bytes read)"
    # In a directory's set the rotated file comes first, the current log after it.
    (tmp_path / "audit.log.1").write_bytes(SHADOW)
    line = one_error_line(kexecwatch("replay", "--quiet", str(tmp_path)))
    assert f"{tmp_path / 'audit.log.1'}: no audit record in it" in line


def test_a_bad_line_is_quoted_short_and_escaped(tmp_path: Path) -> None:
    secret = b"type=\x1b[2J" + b"A" * 5000 + b"TOPSECRET"
    log = tmp_path / "audit.log"
    later = join(exec_lines(2, pid=11, comm="ls", exe="/usr/bin/ls", args=("ls",)))
    log.write_bytes(QUIET_LOG + secret + b"\n" + later)
    result = kexecwatch("replay", str(log))
    assert result.returncode == 0
    [issue] = [x for x in result.stderr.decode().splitlines() if ": parse issue:" in x]
    assert "TOPSECRET" not in issue and "\x1b" not in issue
    quoted = issue.split("no msg=audit( header: ", 1)[1]
    assert quoted.startswith("type=\\x1b[2JAAA")
    assert len(quoted.split("…")[0]) == 60
    assert quoted.endswith(f"…(+{len(secret) - 57} bytes)")  # 57 bytes shown as 60 chars


def test_a_line_that_is_not_audit_shaped_is_never_quoted(tmp_path: Path) -> None:
    """A password file's lines mixed into the stream: not one byte of them is shown."""
    log = tmp_path / "audit.log"
    later = join(exec_lines(2, pid=11, comm="ls", exe="/usr/bin/ls", args=("ls",)))
    partial = b"root:TOPSECRET-partial-line\n"
    log.write_bytes(QUIET_LOG + SHADOW + partial + later + SHADOW[:40])
    result = kexecwatch("replay", str(log))
    assert result.returncode == 0, result.stderr
    err = result.stderr.decode()
    assert "TOPSECRET" not in err and "root:" not in err and "$y$" not in err
    issues = [x for x in err.splitlines() if ": parse issue:" in x]
    assert len(issues) == 3
    assert issues[0].endswith(f"no type= field ({len(SHADOW) - 1} bytes, not shown)")


# -- 3. gzip on standard input ---------------------------------------------------------------


def test_gzip_on_standard_input_is_recognised() -> None:
    result = kexecwatch("replay", "--format", "text", "-", stdin=gzip.compress(KEXEC_LOG))
    assert result.returncode == 1, result.stderr
    assert "kexec -l vmlinuz" in result.stdout.decode()


# -- 4. per-file line numbers ----------------------------------------------------------------


def test_diagnostics_name_each_file_and_its_own_line(tmp_path: Path) -> None:
    first = join(exec_lines(1, pid=10, comm="ls", exe="/usr/bin/ls", args=("ls",)))
    (tmp_path / "audit.log.1").write_bytes(first + b"garbage one\n" + first + b"tail")
    (tmp_path / "audit.log").write_bytes(first + b"garbage two\n")
    result = kexecwatch("replay", str(tmp_path))
    n = first.count(b"\n")
    err = result.stderr.decode()
    old, new = tmp_path / "audit.log.1", tmp_path / "audit.log"
    assert f"{old}:{n + 1}: parse issue: no type= field (11 bytes, not shown)" in err
    assert f"{old}:{2 * n + 2}: parse issue: line without newline" in err
    assert f"{new}:{n + 1}: parse issue: no type= field (11 bytes, not shown)" in err


# -- 5. --no-builtin-rules without --rule ---------------------------------------------------


@pytest.mark.parametrize("command", ["replay", "live"])
def test_no_builtin_rules_without_a_rule_is_a_usage_error(tmp_path: Path, command: str) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(KEXEC_LOG)
    args = [str(log)] if command == "replay" else ["--replay", str(log)]
    line = one_error_line(kexecwatch(command, "--no-builtin-rules", *args))
    assert "--no-builtin-rules" in line and "--rule FILE" in line


# -- 6. replay with no path ------------------------------------------------------------------


def test_replay_without_a_path_reads_the_default_log_set_not_stdin() -> None:
    read_end, write_end = os.pipe()  # a standard input that never ends: must not be read
    try:
        result = kexecwatch("replay", stdin=read_end, timeout=30)
    finally:
        os.close(read_end)
        os.close(write_end)
    err = result.stderr.decode()
    assert err.startswith(
        "kexecwatch: no PATH given: replaying /var/log/audit/ (audit.log and its rotations, "
        "oldest first; - reads standard input)\n"
    )
    assert result.returncode in (0, 1, 2)


# -- 7. no subcommand ------------------------------------------------------------------------


def test_no_subcommand_prints_the_help_and_exits_2() -> None:
    result = kexecwatch()
    assert result.returncode == 2
    err = result.stderr.decode()
    assert err.startswith("usage: kexecwatch ")
    for command in ("replay", "run", "doctor", "live", "check-rule"):
        assert f"    {command}" in err
    assert "kexecwatch: error: a COMMAND is required" in err


# -- 8. rule and configuration files are files too ------------------------------------------


@pytest.fixture(params=["fifo", "device"])
def never_ending(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    """A path that reading may never finish (a FIFO without a writer, /dev/zero) and
    how kexecwatch names its kind."""
    if request.param == "device":
        return Path("/dev/zero"), "(a character device)"
    fifo = tmp_path / "never.toml"
    os.mkfifo(fifo)
    return fifo, "(a FIFO)"


def test_a_rule_file_that_is_a_fifo_or_device_is_one_line_not_a_hang(
    tmp_path: Path, never_ending: tuple[Path, str]
) -> None:
    rule, what = never_ending
    log = tmp_path / "audit.log"
    log.write_bytes(KEXEC_LOG)
    for args in (
        ("replay", "--rule", str(rule), str(log)),
        ("live", "--rule", str(rule), "--replay", str(log)),
    ):
        line = one_error_line(kexecwatch(*args, timeout=20))
        assert f"{rule}: not a regular file {what}" in line, args
    checked = kexecwatch("check-rule", str(rule), timeout=20)
    assert checked.returncode == 2
    assert checked.stdout.decode() == f"{rule}: error: not a regular file {what}\n"


def test_an_unreadable_rule_file_is_one_plain_line(tmp_path: Path) -> None:
    rule = tmp_path / "rule.toml"
    rule.write_text("[rule]\n")
    rule.chmod(0)
    log = tmp_path / "audit.log"
    log.write_bytes(KEXEC_LOG)
    line = one_error_line(
        kexecwatch("replay", "--rule", str(rule), str(log), prefix=unprivileged())
    )
    assert line == f"kexecwatch: error: {rule}: permission denied"
    # A directory is a rule source now (issue 15); one without a runnable rule is an error.
    (tmp_path / "rule.toml").unlink()
    line = one_error_line(kexecwatch("replay", "--rule", str(tmp_path), str(log)))
    assert line.startswith(
        f"kexecwatch: error: {tmp_path}: no rule kexecwatch can run in this directory"
    )


def test_a_config_or_doctor_file_that_is_a_fifo_or_device_is_not_read(
    tmp_path: Path, never_ending: tuple[Path, str]
) -> None:
    path, what = never_ending
    line = one_error_line(
        kexecwatch("run", "--config", str(path), "--state-dir", str(tmp_path / "st"), timeout=20)
    )
    assert (
        line == f"kexecwatch: error: {path}: cannot read configuration: not a regular file {what}"
    )
    for flag in ("--rules", "--auditd-conf"):  # read as missing: doctor still reports
        done = kexecwatch("doctor", flag, str(path), "--state-dir", str(tmp_path), timeout=20)
        assert done.returncode in (1, 2) and b"verdict:" in done.stdout, flag
