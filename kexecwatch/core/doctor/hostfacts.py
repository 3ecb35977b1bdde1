"""What ``kexecwatch doctor`` knows about a host: plain values, collected by the adapter.

Rule 1: nothing here looks at the host; :mod:`kexecwatch.adapters.doctor` fills these in
and :func:`kexecwatch.core.doctor.posture.assess` judges them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kexecwatch.core.doctor.auditctl import AuditStatus

__all__ = ["CheckpointFacts", "Facts", "FileFacts", "ServiceFacts", "UserFacts"]


@dataclass(frozen=True, slots=True)
class FileFacts:
    """``stat`` of one path; ``exists`` False leaves the rest at 0."""

    path: str
    exists: bool
    uid: int = 0
    gid: int = 0
    mode: int = 0
    is_dir: bool = False


@dataclass(frozen=True, slots=True)
class UserFacts:
    """The service user: uid and every group it belongs to (primary and supplementary)."""

    name: str
    exists: bool
    uid: int = -1
    gids: frozenset[int] = frozenset()
    group_names: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class ServiceFacts:
    """How the daemon runs: ``systemd`` True means PID 1 is systemd and ``active`` is
    ``systemctl is-active``; otherwise ``pids`` lists ``kexecwatch run`` processes."""

    systemd: bool
    active: str | None = None
    pids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class CheckpointFacts:
    """The daemon's checkpoint file: its age in seconds and its decoded JSON, if any."""

    path: str
    exists: bool
    age_s: float | None = None
    content: dict[str, object] | None = None
    error: str = ""


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything :func:`assess` looks at. ``None`` means "could not be read", and the
    matching ``*_error`` says why."""

    status: AuditStatus | None
    status_error: str = ""
    audit_pid_comm: str | None = None
    auditd_pids: tuple[int, ...] = ()
    loaded_rules: str | None = None
    loaded_rules_error: str = ""
    expected_rules: str | None = None
    expected_rules_path: str = ""
    auditd_conf: dict[str, str] | None = None
    auditd_conf_path: str = ""
    log: FileFacts = field(default_factory=lambda: FileFacts("", exists=False))
    log_dirs: tuple[FileFacts, ...] = ()
    user: UserFacts = field(default_factory=lambda: UserFacts("kexecwatch", exists=False))
    kexec_load_disabled: str | None = None
    lockdown: str | None = None
    kexec_loaded: str | None = None
    kexec_crash_loaded: str | None = None
    service: ServiceFacts = field(default_factory=lambda: ServiceFacts(systemd=False))
    checkpoint: CheckpointFacts = field(default_factory=lambda: CheckpointFacts("", False))
    max_checkpoint_age_s: float = 900.0
    #: The scanner in use: ``native 0.1.0``, or ``python: <why>`` (empty: not known).
    scanner: str = ""
