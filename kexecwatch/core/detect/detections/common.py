"""What kexecwatch's own detections share: document access and the kdump flows.

The kdump service flows are the one benign way kexec runs on a normal host:
the distribution's kdump tool loads a *panic* kernel at boot and unloads it at
shutdown. They are excluded, exactly when all of these hold:

1. every action is a panic-kernel one: kexec's argv parses to ``panic-load``
   and/or ``panic-unload`` only (``-p``/``--load-panic``, e.g. ``-p -u``,
   ``-s -p -u``, ``-a -p -u``, ``-p --initrd=... KERNEL``); for a
   ``kexec_load`` system call, its flags (``a3``) carry ``KEXEC_ON_CRASH``
   (0x1); for ``kexec_file_load``, whose flags are not in the record, the
   calling process's own argv (from its exec) parses as above;
2. the parent is the packaged kdump tool: the parent's argv names one of
   :data:`KDUMP_TOOL_PATHS` as its first or second element (the script run
   directly, ``/bin/bash /usr/bin/kdumpctl stop``, or through an
   interpreter, ``bash /usr/bin/kdumpctl stop``).

A parent that is merely *named* ``kdumpctl``, ``unload.sh`` or
``kdump-config`` (a copy elsewhere, ``prctl(PR_SET_NAME)``), or whose argv
holds the path further on (``bash -c '...' /usr/bin/kdumpctl``), is not the
kdump service; nor is any load, exec or unload of a normal kernel.
"""

from __future__ import annotations

from typing import Any

from kexecwatch.core.detect.detections.kexec_cmdline import KexecCommand, parse_kexec_args

__all__ = [
    "KDUMP_TOOL_NAMES",
    "KDUMP_TOOL_PATHS",
    "SYSTEM_DIRS",
    "basename",
    "dirname",
    "is_process_start",
    "kdump_tool",
    "kexec_command",
    "parent_summary",
    "shown_command",
    "title_as_args",
]

#: The packaged kdump tools (RHEL/Fedora kdumpctl, SUSE unload.sh, Debian
#: kdump-config), with the /sbin, /bin and /lib spellings of merged-/usr hosts.
KDUMP_TOOL_PATHS = frozenset(
    (
        "/usr/bin/kdumpctl",
        "/bin/kdumpctl",
        "/usr/sbin/kdumpctl",
        "/sbin/kdumpctl",
        "/usr/lib/kdump/unload.sh",
        "/lib/kdump/unload.sh",
        "/usr/sbin/kdump-config",
        "/sbin/kdump-config",
    )
)
#: Their process names (``comm``), which a copy anywhere else also has.
KDUMP_TOOL_NAMES = frozenset(("kdumpctl", "unload.sh", "kdump-config"))
#: Where a packaged kexec lives.
SYSTEM_DIRS = frozenset(
    ("/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/sbin", "/usr/local/bin")
)


def basename(path: str) -> str:
    """The last component of a path."""
    return path.rstrip("/").rpartition("/")[2]


def dirname(path: str) -> str:
    """The directory of a path (``""`` for a bare name)."""
    head = path.rpartition("/")[0]
    return head or ("/" if path.startswith("/") else "")


def is_process_start(document: dict[str, Any]) -> bool:
    """Whether the document is a successful exec (a process start)."""
    return bool(document.get("event", {}).get("type") == ["start"])


def kexec_command(document: dict[str, Any]) -> KexecCommand | None:
    """The process's argv classified as kexec would read it, if it has one."""
    args = document.get("process", {}).get("args")
    if not isinstance(args, list) or not args:
        return None
    return parse_kexec_args([str(a) for a in args])


def kdump_tool(document: dict[str, Any]) -> str | None:
    """The packaged kdump tool path the parent's argv names first or second, if any."""
    args = document.get("process", {}).get("parent", {}).get("args")
    if not isinstance(args, list):
        return None
    for arg in args[:2]:
        if arg in KDUMP_TOOL_PATHS:
            return str(arg)
    return None


def shown_command(args: list[Any], limit: int = 80) -> str:
    """An argv as one short line (the reason's, not a shell quoting)."""
    line = " ".join(str(a) for a in args)
    return line if len(line) <= limit else line[: limit - 1] + "…"


def title_as_args(title: str) -> str:
    """A PROCTITLE (arguments separated by NUL bytes) as arguments separated by spaces."""
    return " ".join(title.rstrip("\x00").split("\x00"))


def parent_summary(document: dict[str, Any]) -> str:
    """``parent kdumpctl (/bin/bash /srv/kdumpctl)`` or ``unknown parent``."""
    parent = document.get("process", {}).get("parent", {})
    name = parent.get("name")
    if name is None:
        return f"unknown parent (pid {parent.get('pid', '?')})"
    args = parent.get("args")
    return f"parent {name} ({shown_command(args, 60)})" if args else f"parent {name}"
