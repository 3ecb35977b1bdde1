"""Turn facts about a host into ``kexecwatch doctor`` verdicts.

Rule 1: this module never looks at the host. The adapter collects :class:`Facts` (command
output, file modes, sysfs values, the time) and :func:`assess` returns the same checks for
the same facts, which is what the unit tests rely on.

Rule 2: every check yields exactly one :class:`Check`, in :data:`CHECK_IDS` order, with a
status for the reader (PASS/WARN/FAIL), an effect on detection (OK/DEGRADED/BLIND) and a
one-line fix whenever the status is not PASS. The status word follows the effect (PASS is
OK, WARN is DEGRADED, FAIL is BLIND), so the words and the exit code never disagree.

Theory of operation: the exit code is the worst effect. A check makes the host BLIND only
when no audit record of a kexec can reach kexecwatch at all, namely when

* auditd is not running (or another program holds the kernel's audit socket),
* auditing is disabled (``auditctl -s``: ``enabled 0``),
* none of the expected rules is loaded (or, without a rules file, execve is not audited),
* the log is missing, not written (``write_logs = no``) or unreadable by the service user.

Anything else that is not a PASS (partial rules, lost events, a small backlog, the daemon
not running, a stale checkpoint, a kernel already staged for kexec, facts that could not
be read) makes it DEGRADED.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum

from kexecwatch.core.doctor.auditctl import missing_rules, parse_rules
from kexecwatch.core.doctor.hostfacts import Facts, FileFacts, UserFacts

__all__ = [
    "CHECK_IDS",
    "MIN_BACKLOG_LIMIT",
    "Check",
    "Effect",
    "Report",
    "Status",
    "assess",
]

#: Below this kernel backlog a burst of execs on a busy host overflows the queue (the kernel
#: default is 64; Debian's and RHEL's base rules set 8192).
MIN_BACKLOG_LIMIT = 1024

CHECK_IDS = (
    "auditd-running",
    "audit-enabled",
    "audit-rules",
    "log-readable",
    "log-format",
    "audit-backlog",
    "kexec-load-disabled",
    "lockdown",
    "kexec-loaded",
    "kexec-crash-loaded",
    "service",
    "checkpoint",
    "scanner",
)


class Status(StrEnum):
    """What the reader should feel about one check."""

    PASS = "PASS"  # noqa: S105 - a verdict, not a password
    WARN = "WARN"
    FAIL = "FAIL"


class Effect(IntEnum):
    """What one check means for detection; the value is the doctor's exit code."""

    OK = 0
    DEGRADED = 1
    BLIND = 2


_STATUS_OF = {Effect.OK: Status.PASS, Effect.DEGRADED: Status.WARN, Effect.BLIND: Status.FAIL}


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the doctor's report."""

    id: str
    status: Status
    effect: Effect
    summary: str
    fix: str = ""

    def __post_init__(self) -> None:
        if _STATUS_OF[self.effect] is not self.status:
            raise ValueError(
                f"check {self.id}: status {self.status.value} does not match effect "
                f"{self.effect.name}; expected {_STATUS_OF[self.effect].value}"
            )

    def to_dict(self) -> dict[str, str]:
        """A JSON-ready form (``effect`` as its lower-case name)."""
        return {
            "id": self.id,
            "status": self.status.value,
            "effect": self.effect.name.lower(),
            "summary": self.summary,
            "fix": self.fix,
        }


@dataclass(frozen=True, slots=True)
class Report:
    """All checks and the overall verdict."""

    checks: tuple[Check, ...]

    @property
    def effect(self) -> Effect:
        """The worst effect of any check: the exit code."""
        return max((c.effect for c in self.checks), default=Effect.OK)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready form with a stable shape (``format`` bumps on breaking changes)."""
        return {
            "format": 1,
            "verdict": self.effect.name.lower(),
            "exit_code": int(self.effect),
            "checks": [c.to_dict() for c in self.checks],
        }


def _pass(check_id: str, summary: str, hint: str = "") -> Check:
    return Check(check_id, Status.PASS, Effect.OK, summary, hint)


def _warn(check_id: str, summary: str, fix: str) -> Check:
    return Check(check_id, Status.WARN, Effect.DEGRADED, summary, fix)


def _fail(check_id: str, summary: str, fix: str) -> Check:
    return Check(check_id, Status.FAIL, Effect.BLIND, summary, fix)


_AS_ROOT = "run kexecwatch doctor as root (auditctl needs CAP_AUDIT_CONTROL)"
# The rules ship inside the package, so this works after a pip install too.
_INSTALL_RULES = "kexecwatch audit-rules > /etc/audit/rules.d/kexecwatch.rules && augenrules --load"


def _check_auditd(f: Facts) -> Check:
    cid = "auditd-running"
    start = "start auditd: systemctl start auditd (or service auditd start)"
    if f.status is None or f.status.pid is None:
        if f.auditd_pids:
            return _warn(
                cid,
                f"auditd runs (pid {f.auditd_pids[0]}); kernel status unknown: {f.status_error}",
                _AS_ROOT,
            )
        return _fail(cid, f"no auditd process; kernel status unknown: {f.status_error}", start)
    if f.status.pid == 0:
        return _fail(cid, "no audit daemon is registered with the kernel", start)
    if f.audit_pid_comm != "auditd":
        return _fail(
            cid,
            f"pid {f.status.pid} ({f.audit_pid_comm or 'gone'}) holds the audit "
            "socket, not auditd, so nothing is written to the audit log",
            "stop that program and start auditd, or point kexecwatch at its log",
        )
    return _pass(cid, f"auditd pid {f.status.pid} is registered with the kernel")


def _check_enabled(f: Facts) -> Check:
    cid = "audit-enabled"
    if f.status is None or f.status.enabled is None:
        return _warn(cid, f"unknown: {f.status_error or 'no enabled line'}", _AS_ROOT)
    if f.status.enabled == 0:
        return _fail(
            cid,
            "auditing is disabled (enabled 0)",
            "auditctl -e 1, and keep -e 1 (or -e 2) in /etc/audit/rules.d",
        )
    if f.status.enabled == 2:
        return _pass(
            cid, "auditing is enabled and immutable (enabled 2): rules are locked until reboot"
        )
    return _pass(
        cid,
        "auditing is enabled (enabled 1)",
        "optional: end the rules with -e 2 so they cannot be removed until reboot",
    )


def _check_rules(f: Facts) -> Check:
    cid = "audit-rules"
    path = f.expected_rules_path or "the rules file"
    locked = f.status is not None and f.status.enabled == 2
    load = (
        f"put {path} in /etc/audit/rules.d and reboot (rules are locked by -e 2)"
        if locked
        else f"augenrules --load (or auditctl -R {path})"
    )
    if f.loaded_rules is None:
        return _warn(cid, f"cannot list loaded rules: {f.loaded_rules_error}", _AS_ROOT)
    loaded = parse_rules(f.loaded_rules)
    expected = parse_rules(f.expected_rules) if f.expected_rules is not None else ()
    if not expected:
        execve = [r for r in loaded if "execve" in r.syscalls]
        why = "is missing" if f.expected_rules is None else "holds no rules"
        if execve:
            arches = [a for r in execve for a in r.fields if a.startswith("arch=")]
            shown = ", ".join(dict.fromkeys(a.removeprefix("arch=") for a in arches))
            count = f"{len(execve)} rule{'s' if len(execve) > 1 else ''}"
            return _warn(
                cid,
                f"{path} {why}; execve is audited by {count}" + (f" ({shown})" if shown else ""),
                f"{_INSTALL_RULES}, or pass --rules PATH to compare",
            )
        return _fail(cid, f"{path} {why} and execve is not audited", _INSTALL_RULES)
    missing = missing_rules(expected, loaded)
    if not missing:
        return _pass(cid, f"all {len(expected)} rules of {path} are loaded")
    if len(missing) == len(expected):
        return _fail(cid, f"none of the {len(expected)} rules of {path} is loaded", load)
    return _warn(
        cid,
        f"{len(missing)} of {len(expected)} rules of {path} are not loaded, e.g. {missing[0].text}",
        load,
    )


def _readable(f: FileFacts, user: UserFacts, bit: int) -> bool:
    """Whether ``user`` has permission ``bit`` (4 read, 1 search) by plain mode bits."""
    if user.uid == 0:
        return True
    if f.uid == user.uid:
        return bool(f.mode & (bit << 6))
    if f.gid in user.gids:
        return bool(f.mode & (bit << 3))
    return bool(f.mode & bit)


def _check_log(f: Facts) -> Check:
    cid = "log-readable"
    user = f.user
    if not f.log.exists:
        return _fail(
            cid,
            f"{f.log.path} does not exist",
            "start auditd; check log_file in auditd.conf or pass --log PATH",
        )
    if not user.exists:
        return _warn(
            cid,
            f"service user {user.name} does not exist, so nobody can say "
            f"whether it reads {f.log.path}",
            f"adduser --system --group {user.name} && adduser {user.name} adm "
            "(the package does this), or pass --service-user",
        )
    blocked = [d for d in f.log_dirs if not _readable(d, user, 1)]
    if blocked or not _readable(f.log, user, 4):
        what = blocked[0] if blocked else f.log
        where = f"directory {what.path}" if blocked else what.path
        return _fail(
            cid,
            f"{user.name} cannot read {where} (owner {what.uid}, group "
            f"{what.gid}, mode {what.mode & 0o7777:04o})",
            f"set log_group = adm in auditd.conf, restart auditd, and adduser {user.name} adm",
        )
    group = (f.auditd_conf or {}).get("log_group", "root")
    if user.uid != 0 and group not in user.group_names and not group.isdigit():
        return _warn(
            cid,
            f"{user.name} reads {f.log.path} now, but auditd.conf log_group "
            f"= {group}: new files after rotation will be unreadable",
            f"set log_group = adm in auditd.conf (or adduser {user.name} {group})",
        )
    return _pass(cid, f"{user.name} can read {f.log.path}")


def _check_format(f: Facts) -> Check:
    cid = "log-format"
    if f.auditd_conf is None:
        return _warn(
            cid,
            f"cannot read {f.auditd_conf_path or 'auditd.conf'}",
            "run as root or pass --auditd-conf PATH",
        )
    conf = f.auditd_conf
    if conf.get("write_logs", "yes").lower() == "no":
        return _fail(
            cid,
            "auditd writes no log (write_logs = no)",
            "set write_logs = yes in auditd.conf and restart auditd",
        )
    fmt = conf.get("log_format", "ENRICHED").upper()
    if fmt == "NOLOG":
        return _fail(
            cid,
            "auditd writes no log (log_format = NOLOG)",
            "set log_format = ENRICHED in auditd.conf and restart auditd",
        )
    if fmt not in ("RAW", "ENRICHED"):
        return _warn(
            cid, f"unknown log_format = {fmt}", "set log_format = ENRICHED (or RAW) in auditd.conf"
        )
    node = conf.get("name_format", "NONE").upper()
    extra = "" if node == "NONE" else f"; records carry a node= prefix (name_format = {node})"
    return _pass(cid, f"log_format = {fmt}{extra}")


def _check_backlog(f: Facts) -> Check:
    cid = "audit-backlog"
    st = f.status
    if st is None or st.backlog_limit is None:
        return _warn(cid, f"unknown: {f.status_error or 'no backlog_limit line'}", _AS_ROOT)
    raise_it = "add -b 8192 to /etc/audit/rules.d/audit.rules and run augenrules --load"
    if st.lost:
        return _warn(
            cid,
            f"the kernel lost {st.lost} audit records since boot "
            f"(backlog_limit {st.backlog_limit}): kexec events may be missing",
            raise_it,
        )
    if st.rate_limit:
        return _warn(
            cid,
            f"rate_limit {st.rate_limit}/s: the kernel drops records above it",
            "auditctl -r 0, and remove -r from the rules",
        )
    if st.backlog_limit < MIN_BACKLOG_LIMIT:
        return _warn(
            cid, f"backlog_limit {st.backlog_limit} is small for auditing every exec", raise_it
        )
    return _pass(cid, f"backlog_limit {st.backlog_limit}, lost 0, backlog {st.backlog or 0}")


def _check_kexec_disabled(f: Facts) -> Check:
    cid = "kexec-load-disabled"
    value = f.kexec_load_disabled
    if value is None:
        return _pass(cid, "kexec not built in (no /proc/sys/kernel/kexec_load_disabled)")
    if value.strip() == "1":
        return _pass(cid, "kernel.kexec_load_disabled = 1: no kernel can be loaded until reboot")
    return _pass(
        cid,
        "kernel.kexec_load_disabled = 0: kexec loading is allowed",
        "optional: sysctl kernel.kexec_load_disabled=1 (one-way; breaks kdump reloads)",
    )


def _check_lockdown(f: Facts) -> Check:
    cid = "lockdown"
    if f.lockdown is None:
        return _pass(cid, "no lockdown LSM (/sys/kernel/security/lockdown absent)")
    words = f.lockdown.split()
    mode = next((w.strip("[]") for w in words if w.startswith("[")), f.lockdown.strip())
    if mode == "none":
        return _pass(
            cid,
            "lockdown none: unsigned kernels can be loaded with kexec_load",
            "optional: boot with lockdown=integrity to allow only signed kernels",
        )
    return _pass(cid, f"lockdown {mode}: only signed kernels load (kexec_file_load)")


def _check_staged(cid: str, value: str | None, what: str, fix: str) -> Check:
    name = cid.replace("-", "_")
    if value is None:
        return _pass(cid, f"/sys/kernel/{name} absent (kexec not built in)")
    if value.strip() == "1":
        return _warn(cid, f"!!! {what} is loaded right now (/sys/kernel/{name} = 1)", fix)
    return _pass(cid, f"no {what} loaded")


def _check_service(f: Facts) -> Check:
    cid = "service"
    svc = f.service
    if svc.systemd:
        if svc.active == "active":
            return _pass(cid, "kexecwatch.service is active (systemd)")
        return _warn(
            cid,
            f"kexecwatch.service is {svc.active or 'unknown'} (systemd)",
            "systemctl enable --now kexecwatch; journalctl -u kexecwatch",
        )
    if svc.pids:
        pids = ", ".join(str(p) for p in svc.pids)
        return _pass(cid, f"systemd is not running; found a kexecwatch run process: {pids}")
    return _warn(
        cid,
        "systemd is not running and no kexecwatch run process was found",
        "start it: kexecwatch run --config /etc/kexecwatch/kexecwatch.toml",
    )


def _check_scanner(f: Facts) -> Check:
    """Which scanner reads the log: never a problem for detection, only for speed."""
    cid = "scanner"
    if f.scanner.startswith("native"):
        return _pass(cid, f"{f.scanner}: the native bulk path reads the log")
    reason = f.scanner.partition(": ")[2] or f.scanner or "unknown"
    return _pass(
        cid,
        f"python (same detections, slower on large logs): {reason}",
        "build the native library: install cargo and reinstall kexecwatch",
    )


def _check_checkpoint(f: Facts) -> Check:
    cid = "checkpoint"
    cp = f.checkpoint
    if not cp.exists:
        return _warn(
            cid,
            f"no checkpoint at {cp.path}: the daemon has not saved progress",
            "start the service; the state directory must be writable by it",
        )
    if cp.content is None or cp.age_s is None:
        return _warn(
            cid,
            f"{cp.path} is unreadable: {cp.error or 'not a JSON object'}",
            "stop the service, move the file away and start it again",
        )
    age = int(cp.age_s)
    # The daemon nests its resume point under "position"; flat files are accepted too.
    nested = cp.content.get("position")
    where = nested if isinstance(nested, dict) else cp.content
    shown = ", ".join(f"{k}={where[k]}" for k in ("path", "offset") if k in where)
    shown = shown or "keys " + ", ".join(sorted(cp.content)[:5])
    if cp.age_s > f.max_checkpoint_age_s:
        return _warn(
            cid,
            f"checkpoint is {age}s old ({shown}): the daemon may be stopped or stuck",
            "check the service and its log; restart it",
        )
    return _pass(cid, f"checkpoint saved {age}s ago ({shown})")


def assess(facts: Facts) -> Report:
    """Judge every check on ``facts``; see the module docstring for what each effect means."""
    checks = (
        _check_auditd(facts),
        _check_enabled(facts),
        _check_rules(facts),
        _check_log(facts),
        _check_format(facts),
        _check_backlog(facts),
        _check_kexec_disabled(facts),
        _check_lockdown(facts),
        _check_staged(
            "kexec-loaded",
            facts.kexec_loaded,
            "a kernel staged for kexec",
            "if nobody expected it: ausearch -k kexecwatch-kexec; kexec -u",
        ),
        _check_staged(
            "kexec-crash-loaded",
            facts.kexec_crash_loaded,
            "a crash kernel",
            "expected only with kdump (kdump-config show); else kexec -p -u",
        ),
        _check_service(facts),
        _check_checkpoint(facts),
        _check_scanner(facts),
    )
    return Report(checks)
