"""Syscall numbers per audit architecture, for the few calls kexecwatch reads."""

from __future__ import annotations

__all__ = ["ARCH_NAMES", "EXEC_SYSCALLS", "FORK_SYSCALLS", "KEXEC_SYSCALLS", "syscall_name"]

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
    },
    "i386": {
        2: "fork",
        11: "execve",
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


def syscall_name(arch: str | None, number: int | None) -> str | None:
    """The name of syscall ``number`` on audit architecture ``arch`` (hex ``arch=``)."""
    if arch is None or number is None:
        return None
    table = _TABLES.get(ARCH_NAMES.get(arch.lower(), ""))
    return table.get(number) if table else None
