"""``event.action`` and ``event.type`` of a process event, in each event vocabulary.

Auditbeat (the default) names a syscall event after its syscall, except an exec
(``executed``) and a signal sent with ``kill``/``tkill``/``tgkill`` (``killed-pid``, as
Auditbeat normalises them). Elastic Defend (``--events-as defend``) names an exec ``exec``,
a process's exit ``end``, a kernel module loaded ``load_module``, a new session
(``setsid``) ``session_id_change`` and a ``set*id`` call that changed the process's ids
``uid_change``/``gid_change`` (the detector compares them with what the process table
knew: ``changed``). ``event.type`` is ECS's: ``start`` for a successful exec (and, as
Defend has it, a module loaded), ``end`` for ``exit``/``exit_group``, Defend's ``change``
for its three changes, ``info`` otherwise. :func:`syscalls_of_actions` and
:func:`syscalls_of_types` invert these for the rules' prefilters, over both vocabularies.
"""

from __future__ import annotations

from collections.abc import Iterable

from kexecwatch.core.audit.syscalls import (
    CRED_SYSCALLS,
    EXEC_SYSCALLS,
    EXIT_SYSCALLS,
    KILL_SYSCALLS,
    MODULE_SYSCALLS,
    SESSION_SYSCALLS,
)

__all__ = [
    "EXEC_ACTIONS",
    "event_action",
    "event_type",
    "syscalls_of_actions",
    "syscalls_of_types",
]

#: ``event.action`` of an exec in each vocabulary (``--events-as``).
EXEC_ACTIONS = {"auditbeat": "executed", "defend": "exec"}

# Syscalls whose action is not their own name whatever their outcome, per vocabulary.
_RENAMED: dict[str, dict[str, str]] = {
    "auditbeat": {
        **dict.fromkeys(EXEC_SYSCALLS, "executed"),
        **dict.fromkeys(KILL_SYSCALLS, "killed-pid"),
    },
    "defend": {**dict.fromkeys(EXEC_SYSCALLS, "exec"), **dict.fromkeys(EXIT_SYSCALLS, "end")},
}
# Defend's actions for what a successful call did, and the syscalls that can do it.
_DEFEND_DONE = {
    "load_module": MODULE_SYSCALLS,
    "session_id_change": SESSION_SYSCALLS,
    "uid_change": CRED_SYSCALLS,
    "gid_change": CRED_SYSCALLS,
}
_CHANGES = frozenset(("session_id_change", "uid_change", "gid_change"))


def _defend_done(syscall: str, changed: str | None) -> str | None:
    if syscall in MODULE_SYSCALLS:
        return "load_module"
    if syscall in SESSION_SYSCALLS:
        return "session_id_change"
    if changed is not None and syscall in CRED_SYSCALLS:
        return f"{changed}_change"
    return None


def event_action(
    syscall: str | None, success: bool, events_as: str, changed: str | None = None
) -> str:
    """``event.action`` of a ``syscall`` event in the vocabulary ``events_as``;
    ``changed`` is ``uid``/``gid`` when a ``set*id`` call changed those ids."""
    if syscall is None:
        return "unknown"
    if success and events_as == "defend":
        done = _defend_done(syscall, changed)
        if done is not None:  # Defend reports what happened, not a refused attempt
            return done
    return _RENAMED[events_as].get(syscall, syscall)


def event_type(
    syscall: str | None, success: bool, events_as: str, changed: str | None = None
) -> str:
    """``event.type`` of a ``syscall`` event in the vocabulary ``events_as``."""
    if syscall in EXIT_SYSCALLS:
        return "end"
    if not success or syscall is None:
        return "info"
    if syscall in EXEC_SYSCALLS:
        return "start"
    if events_as == "defend":
        done = _defend_done(syscall, changed)
        if done is not None:
            return "change" if done in _CHANGES else "start"
    return "info"


def syscalls_of_actions(actions: Iterable[str]) -> frozenset[str]:
    """The syscalls whose events can carry one of ``actions``, in either vocabulary
    (``unknown`` and the syscall names no vocabulary uses as an action, such as
    ``execve``, give none)."""
    renamed = {a for table in _RENAMED.values() for a in table.values()}
    names: set[str] = set()
    for action in actions:
        names.update(s for table in _RENAMED.values() for s, a in table.items() if a == action)
        if action in _DEFEND_DONE:
            names |= _DEFEND_DONE[action]
        elif action not in renamed and action != "unknown" and action not in EXEC_SYSCALLS:
            names.add(action)  # the syscall's own name
    return frozenset(names)


def syscalls_of_types(types: Iterable[str]) -> tuple[frozenset[str], bool | None] | None:
    """The syscalls whose events can carry one of ``types`` and the success they need
    (``None``: either); ``None`` for any syscall (``info``). Empty: no event has them."""
    wanted = set(types)
    if "info" in wanted:
        return None
    names: set[str] = set()
    if "start" in wanted:
        names |= EXEC_SYSCALLS | MODULE_SYSCALLS
    if "change" in wanted:
        names |= CRED_SYSCALLS | SESSION_SYSCALLS
    if "end" in wanted:
        names |= EXIT_SYSCALLS
    return frozenset(names), (True if "end" not in wanted else None)
