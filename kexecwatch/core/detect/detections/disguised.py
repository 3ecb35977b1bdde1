"""``kexec-disguised-binary``: kexec run under another name or from an odd place.

The upstream rule keys on ``process.name == "kexec"``, the kernel's ``comm``,
which is the basename of the *path that was executed* (a symlink's own name,
a copy's new name) cut at 15 bytes. This detection matches a process start
when:

1. the executed file is kexec but ``comm`` is not ``kexec``: ``exe``'s
   basename is ``kexec`` (any case: a symlink ``kx``, a copy ``KEXEC``), or
   ``PATH`` item 0 has the inode and device of a kexec binary seen earlier in
   the stream (a hard link under another name);
2. kexec is run through the dynamic loader: ``comm`` or ``exe`` is
   ``ld-linux*.so*``/``ld-*.so*`` and the program it is given is a kexec path;
3. ``comm`` is ``kexec`` but ``exe`` lies outside :data:`SYSTEM_DIRS`.

State: the (inode, device) pairs of kexec binaries, learned from process
starts whose ``exe`` is named kexec (at most 64; the oldest go first). A
renamed *copy* has a new inode and is not recognised this way; when it
loads a kernel its system call is (``kexec-syscall``).
"""

from __future__ import annotations

import re
from typing import Any

from kexecwatch.core.audit.syscalls import EXEC_SYSCALLS
from kexecwatch.core.detect.detections.common import (
    SYSTEM_DIRS,
    basename,
    dirname,
    is_process_start,
    kexec_command,
    shown_command,
)
from kexecwatch.core.detect.detections.kexec_cmdline import parse_kexec_args
from kexecwatch.core.scan.prefilter import LearnedItems, Prefilter

__all__ = ["DisguisedBinary", "may_be_disguised"]

_LOADER = re.compile(r"ld(-linux[^/]*)?[.-].*so.*|ld-linux.*", re.IGNORECASE)
# ld.so options that take a value (glibc rtld --help).
_LOADER_VALUE_OPTIONS = frozenset(
    (
        "--library-path",
        "--preload",
        "--audit",
        "--argv0",
        "--glibc-hwcaps-prepend",
        "--glibc-hwcaps-mask",
        "--inhibit-rpath",
    )
)
_MAX_KNOWN = 64


def _loader_program(args: list[Any]) -> int | None:
    """Where the program an ld.so command line runs is (its first operand)."""
    i = 1
    while i < len(args):
        arg = str(args[i])
        if arg in _LOADER_VALUE_OPTIONS:
            i += 2
        elif arg == "--":
            return i + 1 if i + 1 < len(args) else None
        elif arg.startswith("--"):
            i += 1
        else:
            return i
    return None


class DisguisedBinary:
    """kexec by another name, through ld.so, or outside the system directories."""

    applies_to = "process"

    def __init__(self) -> None:
        self._known = LearnedItems(_MAX_KNOWN)

    def prefilters(self) -> list[Prefilter]:
        """The process starts :meth:`matches` can match or learn from.

        Those whose name or executable passes :func:`may_be_disguised` (cases 1 to 3
        and the learning), and, once kexec inodes are known, those that may hold
        one in a ``PATH`` record (a hard link).
        """
        return [
            Prefilter(syscalls=EXEC_SYSCALLS, success=True, where=may_be_disguised),
            Prefilter(syscalls=EXEC_SYSCALLS, success=True, path_items=self._known),
        ]

    def matches(self, document: dict[str, Any]) -> bool:
        """See the module docstring. Learns kexec inodes as a side effect."""
        return bool(is_process_start(document) and self._why(document))

    def reason(self, document: dict[str, Any]) -> str:
        """Which of the three disguises, and what the argv asks kexec to do."""
        why = self._why(document, learn=False) or "kexec in disguise"
        args = document.get("process", {}).get("args") or []
        return f"{why}: {shown_command(args)}" if args else why

    def _why(self, document: dict[str, Any], *, learn: bool = True) -> str | None:
        process = document.get("process", {})
        comm = str(process.get("name", ""))
        exe = str(process.get("executable", ""))
        exe_name = basename(exe)
        if exe_name.lower() == "kexec":
            item0 = _item0(document)
            if learn and item0 is not None:
                self._learn(item0, exe)
            if comm != "kexec":
                return f"kexec run as {comm!r} (exe {exe}){_action(document)}"
            if dirname(exe) not in SYSTEM_DIRS:
                return f"kexec outside the system directories (exe {exe}){_action(document)}"
            return None
        if comm != "kexec" and self._known:
            item0 = _item0(document)
            known = None if item0 is None else self._known.text(item0)
            if known is not None:
                return (
                    f"kexec hard link run as {comm!r} (exe {exe} has the inode of "
                    f"{known}){_action(document)}"
                )
        # Cheap test first: this runs on every process start.
        if exe_name[:2].lower() == "ld" or comm.startswith("ld-"):
            reason = _through_loader(document, exe or comm)
            if reason is not None:
                return reason
        if comm == "kexec" and exe and dirname(exe) not in SYSTEM_DIRS:
            return f"kexec outside the system directories (exe {exe}){_action(document)}"
        return None

    def _learn(self, item0: tuple[int, str], exe: str) -> None:
        self._known.learn(item0, exe)


def may_be_disguised(comm: str, exe: str) -> bool:
    """Whether a process start may match or teach :class:`DisguisedBinary` by name alone.

    The gates of ``_why`` before any argv or inode test, widened never narrowed:
    ``exe`` named kexec (any case), ``comm`` kexec, or a dynamic-loader name.
    """
    exe_name = basename(exe)
    return (
        comm == "kexec"
        or exe_name.lower() == "kexec"
        or exe_name[:2].lower() == "ld"
        or comm.startswith("ld-")
    )


def _through_loader(document: dict[str, Any], loader: str) -> str | None:
    process = document.get("process", {})
    if not (
        _LOADER.fullmatch(basename(str(process.get("executable", ""))))
        or str(process.get("name", "")).lower().startswith("ld-linux")
    ):
        return None
    args = [str(a) for a in process.get("args") or []]
    at = _loader_program(args)
    if at is None or basename(args[at]).lower() != "kexec":
        return None
    what = " then ".join(parse_kexec_args(args[at:]).actions) or "no action"
    return f"kexec run through the dynamic loader {loader} as {what}"


def _item0(document: dict[str, Any]) -> tuple[int, str] | None:
    for path in document.get("auditd", {}).get("paths", ()):
        if path.get("item") == 0 and isinstance(path.get("inode"), int) and path.get("dev"):
            return path["inode"], str(path["dev"])
    return None


def _action(document: dict[str, Any]) -> str:
    command = kexec_command(document)
    if command is None:
        return ""
    return f" as {' then '.join(command.actions) or 'no action'}"
