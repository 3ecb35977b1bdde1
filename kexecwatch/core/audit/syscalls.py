"""Syscall numbers per audit architecture, for the few calls kexecwatch reads."""

from __future__ import annotations

__all__ = [
    "ARCH_NAMES",
    "CRED_SYSCALLS",
    "EXEC_SYSCALLS",
    "EXIT_SYSCALLS",
    "FORK_SYSCALLS",
    "GROUP_SYSCALLS",
    "KEXEC_SYSCALLS",
    "KILL_SYSCALLS",
    "MODULE_SYSCALLS",
    "PROCESS_SYSCALLS",
    "SESSION_SYSCALLS",
    "syscall_name",
]

#: ``arch=`` values (AUDIT_ARCH_*) and their names.
ARCH_NAMES: dict[str, str] = {
    "c000003e": "x86_64",
    "40000003": "i386",
    "c00000b7": "aarch64",
    "40000028": "armeb",
    "c0000028": "arm",
}

_TABLES: dict[str, dict[int, str]] = {
    "x86_64": {
        56: "clone",
        57: "fork",
        58: "vfork",
        59: "execve",
        246: "kexec_load",
        320: "kexec_file_load",
        322: "execveat",
        435: "clone3",
        60: "exit",
        62: "kill",
        105: "setuid",
        106: "setgid",
        109: "setpgid",
        112: "setsid",
        113: "setreuid",
        114: "setregid",
        117: "setresuid",
        119: "setresgid",
        122: "setfsuid",
        123: "setfsgid",
        126: "capset",
        157: "prctl",
        175: "init_module",
        200: "tkill",
        231: "exit_group",
        234: "tgkill",
        313: "finit_module",
    },
    "i386": {
        2: "fork",
        11: "execve",
        57: "setpgid",
        66: "setsid",
        120: "clone",
        190: "vfork",
        283: "kexec_load",
        358: "execveat",
        435: "clone3",
    },
    "aarch64": {
        220: "clone",
        221: "execve",
        104: "kexec_load",
        294: "kexec_file_load",
        281: "execveat",
        435: "clone3",
        # asm-generic/unistd.h
        91: "capset",
        93: "exit",
        94: "exit_group",
        105: "init_module",
        129: "kill",
        130: "tkill",
        131: "tgkill",
        143: "setregid",
        144: "setgid",
        145: "setreuid",
        146: "setuid",
        147: "setresuid",
        149: "setresgid",
        151: "setfsuid",
        152: "setfsgid",
        154: "setpgid",
        157: "setsid",
        167: "prctl",
        273: "finit_module",
    },
    "arm": {
        2: "fork",
        11: "execve",
        120: "clone",
        190: "vfork",
        347: "kexec_load",
        387: "execveat",
        401: "kexec_file_load",
        435: "clone3",
    },
}

EXEC_SYSCALLS = frozenset(("execve", "execveat"))
FORK_SYSCALLS = frozenset(("clone", "fork", "vfork", "clone3"))
KEXEC_SYSCALLS = frozenset(("kexec_load", "kexec_file_load"))
#: A process's credentials set: the ``uid_change``/``gid_change`` of Elastic Defend.
CRED_SYSCALLS = frozenset(
    ("setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setfsuid", "setfsgid")
)
#: A new session: the ``session_id_change`` of Elastic Defend.
SESSION_SYSCALLS = frozenset(("setsid",))
#: A process's session or process group set: what the process table's session and group
#: leaders are learned from (:mod:`kexecwatch.core.process.groups`).
GROUP_SYSCALLS = SESSION_SYSCALLS | {"setpgid"}
EXIT_SYSCALLS = frozenset(("exit", "exit_group"))
KILL_SYSCALLS = frozenset(("kill", "tkill", "tgkill"))
MODULE_SYSCALLS = frozenset(("init_module", "finit_module"))
#: Syscalls other than execs and kexec calls that become process events when audited:
#: what rules ask of a process besides its exec (a process end, a module load, ...).
PROCESS_SYSCALLS = (
    CRED_SYSCALLS
    | EXIT_SYSCALLS
    | KILL_SYSCALLS
    | MODULE_SYSCALLS
    | SESSION_SYSCALLS
    | {"prctl", "capset"}
)


def syscall_name(arch: str | None, number: int | None) -> str | None:
    """The name of syscall ``number`` on audit architecture ``arch`` (hex ``arch=``)."""
    if arch is None or number is None:
        return None
    table = _TABLES.get(ARCH_NAMES.get(arch.lower(), ""))
    return table.get(number) if table else None
