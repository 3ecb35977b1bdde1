"""The two files tools/auditlab.py writes before it starts auditd: the guardian program
and auditd.conf."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

__all__ = ["GUARDIAN_SOURCE", "LogFormat", "conf_text"]

LogFormat = Literal["RAW", "ENRICHED"]

# The guardian runs with nothing but the standard library; it must work even when
# the project's virtualenv is broken. argv: auditctl confdir workdir backlog_limit.
GUARDIAN_SOURCE = r"""
import os, shutil, signal, subprocess, sys, time
auditctl, confdir, workdir, backlog = sys.argv[1:5]
for s in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGPIPE):
    signal.signal(s, signal.SIG_IGN)
pids, keep = set(), False
for line in sys.stdin:
    w = line.split()
    if len(w) == 2 and w[0] == "pid":
        pids.add(int(w[1]))
    elif w == ["keep"]:
        keep = True
def alive(p):
    try:
        with open("/proc/%d/stat" % p) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
def ours(p):
    try:
        with open("/proc/%d/cmdline" % p, "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return False
    return argv[0].endswith(b"auditd") and confdir.encode() in argv
for d in os.listdir("/proc"):
    if d.isdigit() and ours(int(d)):
        pids.add(int(d))
q = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
subprocess.run([auditctl, "-D"], **q)
for p in sorted(pids):
    if alive(p) and ours(p):
        os.kill(p, signal.SIGTERM)
        end = time.monotonic() + 10
        while alive(p) and time.monotonic() < end:
            time.sleep(0.05)
        if alive(p):
            os.kill(p, signal.SIGKILL)
subprocess.run([auditctl, "-e", "0"], **q)
if backlog != "0":
    subprocess.run([auditctl, "-b", backlog], **q)
if not keep:
    shutil.rmtree(workdir, ignore_errors=True)
"""


def conf_text(
    log_file: Path,
    plugin_dir: Path,
    log_format: LogFormat,
    node_name: str | None,
    max_log_file: int,
    num_logs: int,
    extra: Mapping[str, str],
) -> str:
    """auditd.conf for a private session: own log, no plugins, every disk action IGNORE."""
    conf = {
        "local_events": "yes",
        "write_logs": "yes",
        "log_file": str(log_file),
        "log_group": "root",
        "log_format": log_format,
        "flush": "INCREMENTAL_ASYNC",
        "freq": "20",
        "max_log_file": str(max_log_file),
        "num_logs": str(num_logs),
        "max_log_file_action": "ROTATE",
        "priority_boost": "0",
        "name_format": "USER" if node_name else "NONE",
        "space_left": "2",
        "space_left_action": "IGNORE",
        "admin_space_left": "1",
        "admin_space_left_action": "IGNORE",
        "disk_full_action": "IGNORE",
        "disk_error_action": "IGNORE",
        "verify_email": "no",
        "action_mail_acct": "root",
        "use_libwrap": "no",
        "tcp_client_max_idle": "0",
        "enable_krb5": "no",
        "distribute_network": "no",
        "q_depth": "2000",
        "overflow_action": "IGNORE",
        "max_restarts": "0",
        "plugin_dir": str(plugin_dir),
        "end_of_event_timeout": "2",
    }
    if node_name:
        conf["name"] = node_name
    conf.update(extra)
    return "".join(f"{k} = {v}\n" for k, v in conf.items())
