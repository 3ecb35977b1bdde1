"""Elastic Defend's ``already_running`` event: a process found running at start-up.

Theory of operation: when Elastic Defend starts, it reports every process already running
with ``event.action`` ``already_running`` (``event.type`` ``info``), so that rules can look
at what started before the agent did (a shell a boot script left running). The daemon's
start-up scan of ``/proc`` (which seeds the process table) gives the same facts; with
``--events-as defend`` each process it reads becomes such an event (README, "Elastic
Defend's event vocabulary"). Nothing here comes from the audit trail: the event's id is the
scan's time with the pid as its serial (unique per process), and the process instance is
the ``/proc`` entry's (``procfs:<start>``), as its children's ``process.parent.entity_id``
name it.
"""

from __future__ import annotations

from kexecwatch.core.audit.record import EventId
from kexecwatch.core.process.events import ProcessEvent
from kexecwatch.core.process.identity import credentials_of, interactive_of
from kexecwatch.core.process.table import LiveProcess

__all__ = ["ALREADY_RUNNING", "running_event"]

#: Elastic Defend's ``event.action`` for a process found running at start-up.
ALREADY_RUNNING = "already_running"

_ID_FIELDS = ("uid", "gid", "euid", "suid", "fsuid", "egid", "sgid", "fsgid", "auid")


def running_event(
    live: LiveProcess, now_ms: int, host_name: str, host_id: str | None
) -> ProcessEvent:
    """The ``already_running`` event of ``live``, read from ``/proc`` at ``now_ms``."""
    creds = credentials_of(live.extra)
    tty = creds.get("tty")
    session = creds.get("ses")
    return ProcessEvent(
        node=None,
        host_name=host_name,
        host_id=host_id,
        id=EventId(now_ms // 1000, now_ms % 1000, live.pid),
        syscall=None,
        arch=None,
        success=True,
        exit_code=None,
        pid=live.pid,
        ppid=live.ppid,
        comm=live.comm,
        exe=live.exe,
        args=live.args,
        argc=None if live.args is None else len(live.args),
        title=None,
        cwd=None,
        ids=tuple((n, creds[n]) for n in _ID_FIELDS if n in creds),
        names=(),
        keys=(),
        tty=None if tty in (None, "(none)") else tty,
        session=session,
        paths=(),
        complete=True,
        line_no=0,
        interactive=interactive_of(tty),
        extra=live.extra,
        events_as="defend",
        running=True,
    )
