"""``kexec-syscall``: a ``kexec_load`` or ``kexec_file_load`` system call, by anyone.

Whatever the program is called and however it was launched, loading or
unloading a kernel ends in one of two system calls (x86_64 246/320, i386 283,
aarch64 104/294, arm 347/401). The audit rules in ``etc/audit.rules`` log
both, successful or not: a failed attempt is news too. Only the kdump
service flows are excluded (see :mod:`kexecwatch.core.detect.detections.common`).

Arguments as logged: ``kexec_load(entry, nr_segments, segments, flags)``:
``a1`` 0 means unload, ``a3 & 0x1`` (``KEXEC_ON_CRASH``) a panic kernel;
``kexec_file_load(kernel_fd, initrd_fd, cmdline_len, cmdline, flags)``: the
flags are the fifth argument, which the record does not hold, so the caller's
own argv decides (the call is made by the kexec process itself), and only when
the caller is kexec (by name or executable).
"""

from __future__ import annotations

from typing import Any

from kexecwatch.core.audit.syscalls import KEXEC_SYSCALLS
from kexecwatch.core.detect.detections.common import (
    basename,
    kdump_tool,
    kexec_command,
    parent_summary,
    shown_command,
)
from kexecwatch.core.detect.detections.kexec_cmdline import KexecCommand
from kexecwatch.core.scan.prefilter import Prefilter

__all__ = ["KexecSyscall"]

KEXEC_ON_CRASH = 0x1

_ERRNO = {
    1: "EPERM",
    2: "ENOENT",
    9: "EBADF",
    12: "ENOMEM",
    14: "EFAULT",
    16: "EBUSY",
    22: "EINVAL",
    38: "ENOSYS",
    61: "ENODATA",
    74: "EBADMSG",
    95: "EOPNOTSUPP",
    129: "EKEYREJECTED",
}


def _hex(value: Any) -> int | None:
    try:
        return int(str(value), 16)
    except ValueError:
        return None


class KexecSyscall:
    """Matches kexec system call records that are not a kdump service flow."""

    applies_to = "process"

    def prefilters(self) -> list[Prefilter]:
        """``kexec_load`` and ``kexec_file_load`` calls, by anyone, failed or not."""
        return [Prefilter(syscalls=KEXEC_SYSCALLS)]

    def matches(self, document: dict[str, Any]) -> bool:
        """Whether this is a kexec system call outside the kdump flows."""
        if document.get("event", {}).get("action") not in KEXEC_SYSCALLS:
            return False
        return self._kdump(document) is None

    def reason(self, document: dict[str, Any]) -> str:
        """What was called, by whom, with what outcome."""
        process = document.get("process", {})
        auditd = document.get("auditd", {})
        call = str(document["event"]["action"])
        what = self._what(document)
        exe = process.get("executable", "?")
        who = f"{process.get('name', '?')} ({exe}, pid {process.get('pid', '?')})"
        exit_code = auditd.get("exit")
        if auditd.get("success"):
            outcome = "succeeded"
        elif isinstance(exit_code, int) and exit_code < 0:
            outcome = f"failed with {_ERRNO.get(-exit_code, str(exit_code))}"
        else:
            outcome = "failed"
        return f"{call}{what} by {who} {outcome}; {parent_summary(document)}"

    @staticmethod
    def _what(document: dict[str, Any]) -> str:
        data = document.get("auditd", {}).get("data", {})
        if document["event"]["action"] == "kexec_load":
            flags = _hex(data.get("a3"))
            segments = _hex(data.get("a1"))
            kind = "unload" if segments == 0 else "load"
            crash = ", on-crash" if flags is not None and flags & KEXEC_ON_CRASH else ""
            return f" ({kind}{crash})" if flags is not None else ""
        command = _caller_kexec_command(document)
        if command is not None:
            return f" (kexec asked for {' then '.join(command.actions) or 'no action'})"
        args = document.get("process", {}).get("args")
        return f" (caller: {shown_command(args)})" if args else ""

    @staticmethod
    def _kdump(document: dict[str, Any]) -> str | None:
        tool = kdump_tool(document)
        if tool is None:
            return None
        if document["event"]["action"] == "kexec_load":
            flags = _hex(document.get("auditd", {}).get("data", {}).get("a3"))
            return tool if flags is not None and flags & KEXEC_ON_CRASH else None
        command = _caller_kexec_command(document)
        return tool if command is not None and command.is_panic_only else None


def _caller_kexec_command(document: dict[str, Any]) -> KexecCommand | None:
    """The caller's argv read as kexec's, when the caller is kexec (by name or exe)."""
    process = document.get("process", {})
    if process.get("name") != "kexec" and basename(str(process.get("executable", ""))) != "kexec":
        return None
    return kexec_command(document)
