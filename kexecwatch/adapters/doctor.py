"""``kexecwatch doctor``: collect facts about this host and print the posture report.

This is the I/O shell around :mod:`kexecwatch.core.doctor.posture`: it runs ``auditctl``, reads
``/proc``, ``/sys``, ``auditd.conf``, the audit log's modes and the daemon's checkpoint,
then prints one line per check. Nothing here changes the host.
"""

from __future__ import annotations

import argparse
import grp
import json
import os
import pwd
import subprocess
import sys
import time
from pathlib import Path
from typing import TextIO

from kexecwatch.adapters.daemon.config import bounded_number
from kexecwatch.adapters.daemon.statefiles import read_private
from kexecwatch.adapters.sources import read_regular_file
from kexecwatch.core import (
    CheckpointFacts,
    Facts,
    FileFacts,
    Report,
    ServiceFacts,
    Status,
    UserFacts,
    assess,
    escape_text,
    parse_auditd_conf,
    parse_status,
)
from kexecwatch.errors import InputError
from kexecwatch.native.choice import scanner_text

__all__ = ["add_doctor_arguments", "collect_facts", "doctor_command", "render_text"]

DEFAULT_AUDITD_CONF = "/etc/audit/auditd.conf"
DEFAULT_RULES = "/etc/audit/rules.d/kexecwatch.rules"
DEFAULT_STATE_DIR = "/var/lib/kexecwatch"
DEFAULT_LOG = "/var/log/audit/audit.log"
DEFAULT_USER = "kexecwatch"


def add_doctor_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the doctor's options to ``parser`` (the ``doctor`` subcommand's parser)."""
    parser.add_argument(
        "--format", choices=("text", "json"), default="text", help="output format (default: text)"
    )
    parser.add_argument(
        "--log",
        metavar="PATH",
        default=None,
        help=f"audit log to check (default: log_file of auditd.conf, else {DEFAULT_LOG})",
    )
    parser.add_argument(
        "--state-dir",
        metavar="DIR",
        default=DEFAULT_STATE_DIR,
        help=f"daemon state directory holding checkpoint.json (default: {DEFAULT_STATE_DIR})",
    )
    parser.add_argument(
        "--auditd-conf",
        metavar="PATH",
        default=DEFAULT_AUDITD_CONF,
        help=f"auditd configuration (default: {DEFAULT_AUDITD_CONF})",
    )
    parser.add_argument(
        "--rules",
        metavar="PATH",
        default=DEFAULT_RULES,
        help=f"rules that should be loaded (default: {DEFAULT_RULES})",
    )
    parser.add_argument(
        "--service-user",
        metavar="NAME",
        default=DEFAULT_USER,
        help=f"user the daemon runs as (default: {DEFAULT_USER})",
    )
    parser.add_argument(
        "--max-checkpoint-age",
        metavar="SECONDS",
        type=bounded_number(0, 10 * 365 * 86400),
        default=900.0,
        help="warn when the checkpoint is older (default: 900)",
    )


def _run(argv: list[str], *, any_exit: bool = False) -> tuple[str | None, str]:
    """Run a read-only command; return (stdout, "") or (None, why it failed).

    With ``any_exit`` a non-zero exit status still returns stdout (``systemctl is-active``
    says "inactive" and exits 3)."""
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=10, check=False, errors="replace"
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"{argv[0]}: {exc}"
    if done.returncode != 0 and not any_exit:
        why = (done.stderr.strip() or done.stdout.strip()).splitlines()
        return None, f"{' '.join(argv)}: {why[0] if why else f'exit {done.returncode}'}"
    return done.stdout, ""


def _read_small(path: str) -> str | None:
    try:
        return read_regular_file(path, 65536).decode("utf-8", errors="replace")
    except InputError:
        return None


def _stat(path: str) -> FileFacts:
    try:
        st = os.stat(path)
    except OSError:
        return FileFacts(path, exists=False)
    return FileFacts(path, True, st.st_uid, st.st_gid, st.st_mode, Path(path).is_dir())


def _processes() -> list[tuple[int, str, list[str]]]:
    """(pid, comm, argv) of every process we may look at."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            comm = Path(entry.path, "comm").read_text(errors="replace").strip()
            raw = Path(entry.path, "cmdline").read_bytes()
        except OSError:
            continue
        argv = [a.decode(errors="replace") for a in raw.split(b"\0") if a]
        found.append((int(entry.name), comm, argv))
    return found


def _is_daemon(argv: list[str]) -> bool:
    """``…/kexecwatch run …`` or ``python -m kexecwatch run …``."""
    return any(
        (
            os.path.basename(argv[i]) == "kexecwatch"
            or (argv[i] == "kexecwatch" and i > 0 and argv[i - 1] == "-m")
        )
        and argv[i + 1] == "run"
        for i in range(len(argv) - 1)
    )


def _user(name: str) -> UserFacts:
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        return UserFacts(name, exists=False)
    groups = [g for g in grp.getgrall() if name in g.gr_mem or g.gr_gid == pw.pw_gid]
    return UserFacts(
        name,
        True,
        pw.pw_uid,
        frozenset(g.gr_gid for g in groups) | {pw.pw_gid},
        frozenset(g.gr_name for g in groups),
    )


def _checkpoint(state_dir: str, now: float) -> CheckpointFacts:
    path = os.path.join(state_dir, "checkpoint.json")
    try:
        # As the daemon reads it (no link followed, no FIFO waited on), by any owner:
        # doctor may run as root on the daemon user's files.
        data = read_private(path, any_owner=True)
        if data is None:
            return CheckpointFacts(path, exists=False)
        age = now - os.stat(path).st_mtime
    except OSError as exc:
        return CheckpointFacts(path, True, error=exc.strerror or str(exc))
    try:
        content = json.loads(data)
    except ValueError as exc:
        return CheckpointFacts(path, True, age, error=f"not JSON: {exc}")
    except RecursionError:
        return CheckpointFacts(path, True, age, error="not JSON: nested too deeply")
    if not isinstance(content, dict):
        return CheckpointFacts(path, True, age, error="not a JSON object")
    return CheckpointFacts(path, True, age, content)


def _log_dirs(log: str) -> tuple[FileFacts, ...]:
    parents = list(Path(log).parents)
    return tuple(_stat(str(p)) for p in reversed(parents))


def collect_facts(args: argparse.Namespace) -> Facts:
    """Look at the host (read only) and return the facts the checks need."""
    status_text, status_error = _run(["auditctl", "-s"])
    status = parse_status(status_text) if status_text is not None else None
    rules_text, rules_error = _run(["auditctl", "-l"])
    procs = _processes()
    comm_of = {pid: comm for pid, comm, _ in procs}
    conf_text = _read_small(args.auditd_conf)
    conf = parse_auditd_conf(conf_text) if conf_text is not None else None
    log = args.log or (conf or {}).get("log_file") or DEFAULT_LOG
    if os.path.isdir("/run/systemd/system"):
        active, _ = _run(["systemctl", "is-active", "kexecwatch.service"], any_exit=True)
        service = ServiceFacts(systemd=True, active=(active or "").strip() or None)
    else:
        service = ServiceFacts(
            systemd=False, pids=tuple(pid for pid, _, argv in procs if _is_daemon(argv))
        )
    now = time.time()
    return Facts(
        status=status,
        status_error=status_error,
        audit_pid_comm=comm_of.get(status.pid or -1) if status else None,
        auditd_pids=tuple(pid for pid, comm, _ in procs if comm == "auditd"),
        loaded_rules=rules_text,
        loaded_rules_error=rules_error,
        expected_rules=_read_small(args.rules),
        expected_rules_path=args.rules,
        auditd_conf=conf,
        auditd_conf_path=args.auditd_conf,
        log=_stat(log),
        log_dirs=_log_dirs(log),
        user=_user(args.service_user),
        kexec_load_disabled=_read_small("/proc/sys/kernel/kexec_load_disabled"),
        lockdown=_read_small("/sys/kernel/security/lockdown"),
        kexec_loaded=_read_small("/sys/kernel/kexec_loaded"),
        kexec_crash_loaded=_read_small("/sys/kernel/kexec_crash_loaded"),
        service=service,
        checkpoint=_checkpoint(args.state_dir, now),
        max_checkpoint_age_s=args.max_checkpoint_age,
        scanner=scanner_text(),
    )


def render_text(report: Report) -> str:
    """One line per check (``STATUS  id  summary  (fix: …)``), then the verdict."""
    lines = []
    for check in report.checks:
        fix = f"  (fix: {check.fix})" if check.fix and check.status is not Status.PASS else ""
        hint = f"  (hint: {check.fix})" if check.fix and check.status is Status.PASS else ""
        # Summaries quote paths and checkpoint contents: escape them for the terminal.
        line = f"{check.status.value:<4}  {check.id:<19} {check.summary}{fix}{hint}"
        lines.append(escape_text(line))
    effect = report.effect
    meaning = (
        "detection works",
        "detection works partly or needs attention",
        "no kexec can be detected on this host",
    )
    lines.append(f"verdict: {effect.name.lower()} - {meaning[effect]} (exit {int(effect)})")
    return "\n".join(lines) + "\n"


def doctor_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run every check and print the report; return 0 ok, 1 degraded, 2 blind."""
    stream = out if out is not None else sys.stdout
    report = assess(collect_facts(args))
    if args.format == "json":
        stream.write(json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n")
    else:
        stream.write(render_text(report))
    return int(report.effect)


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m kexecwatch.adapters.doctor``) until the CLI has
    a ``doctor`` subcommand."""
    parser = argparse.ArgumentParser(
        prog="kexecwatch doctor", description="Say whether kexec detection works here."
    )
    add_doctor_arguments(parser)
    return doctor_command(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
