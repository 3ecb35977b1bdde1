"""The entry leader of a process: where its session entered the system, from the process table.

Theory of operation: Elastic Defend's ``process.entry_leader`` is the first process of an
entry into the host: the shell ``sshd`` started for a login, the shell of a console login,
a service started by init, a container's first process. The audit trail does not record
it, but it leaves what is needed to find it in the process table: each entry's parent
link (``ppid``), name and executable, and its audit session (``ses=`` in the credentials
text the table keeps, see :mod:`kexecwatch.core.process.identity`), which ``pam_loginuid`` sets
anew at each login.

:func:`entry_leader` walks from the process up through its known ancestors and stops at
the first process ``C`` for which one of these holds, nearest first:

1. ``C``'s parent is pid 1 (or ``C`` has no parent, pid 0): type ``init``;
2. ``C``'s parent is an entry service (:data:`ENTRY_SERVICES`, by its name or its
   executable's base name, ``sshd`` -> ``sshd``, ``login`` -> ``terminal``, ...): that type;
3. ``C`` is in a login session (``ses`` set) and its parent is in another one: type
   ``unknown`` (entered otherwise: ``cron``, a ``pam`` service kexecwatch does not name).

Rule 1: never a guess. If the walk meets a parent the table does not know (or a loop, or
more than :data:`MAX_DEPTH` ancestors) before one of these holds, there is no entry leader.
So a replay of a log that does not show a session's start usually has none, and a daemon,
which seeds its table from ``/proc``, usually has one.
"""

from __future__ import annotations

from collections.abc import Sequence

from kexecwatch.core.process.events import EntryLeader, Parent
from kexecwatch.core.process.identity import credentials_of

__all__ = [
    "ENTRY_SERVICES",
    "MAX_DEPTH",
    "EntryLeader",
    "entry_leader",
    "entry_service",
    "login_session",
]

#: The most ancestors walked.
MAX_DEPTH = 32

#: Programs that start an entry into the host, by name, and Defend's ``entry_meta.type``.
ENTRY_SERVICES = {
    "sshd": "sshd",
    "sshd-session": "sshd",
    "login": "terminal",
    "agetty": "terminal",
    "getty": "terminal",
    "mingetty": "terminal",
    "amazon-ssm-agent": "ssm",
    "ssm-session-worker": "ssm",
    "teleport": "teleport",
    "kubelet": "kubelet",
    "containerd-shim": "container",
    "containerd-shim-runc-v2": "container",
    "runc": "container",
    "crun": "container",
    "conmon": "container",
}

_UNSET = "4294967295"


def entry_service(entry: Parent) -> str | None:
    """The ``entry_meta.type`` a child of ``entry`` enters with, if ``entry`` is an entry
    service (by its name or its executable's base name: rule 2)."""
    for raw in (entry.name, entry.executable):
        if raw:
            found = ENTRY_SERVICES.get(raw.rsplit(b"/", 1)[-1].decode("utf-8", "replace"))
            if found is not None:
                return found
    return None


def login_session(extra: bytes | None) -> str | None:
    """The audit login session (``ses``) of a credentials text, ``None`` when unset."""
    ses = credentials_of(extra).get("ses")
    return None if ses in (None, _UNSET) else ses


def entry_leader(ppid: int, extra: bytes | None, ancestors: Sequence[Parent]) -> EntryLeader | None:
    """The entry leader of a process (see the module docstring).

    Args:
        ppid: the process's parent pid.
        extra: the process's own credentials text (for its ``ses``).
        ancestors: what the table knows of its parent, grandparent, ... (nearest first,
            as :meth:`~kexecwatch.core.process.table.ProcessTable.ancestry` gives them).
    """
    current: Parent | None = None  # None: the event's own process
    current_ppid, current_ses = ppid, login_session(extra)
    for parent in (*ancestors[:MAX_DEPTH], None):
        if current_ppid in (0, 1):
            return EntryLeader(current, "init")
        if parent is None or parent.pid != current_ppid:
            return None  # an unknown parent: no guess
        service = entry_service(parent)
        if service is not None:
            return EntryLeader(current, service)
        parent_ses = login_session(parent.extra)
        if current_ses is not None:
            if parent.extra is None:
                return None  # the parent's session is not known: no guess
            if parent_ses != current_ses:
                return EntryLeader(current, "unknown")
        if parent.ppid is None:
            return None
        current, current_ppid, current_ses = parent, parent.ppid, parent_ses
    return None
