"""``kexec-args-evasion`` and ``kexec-parent-masquerade``: what the v7 rule lets through.

Both read a kexec process start's argv the way kexec does
(:mod:`kexecwatch.core.detect.detections.kexec_cmdline`) and never fire where the upstream rule
already does, so an event gets one alert, not two:

* **args evasion**: ``process.name`` is ``kexec``, the argv loads, executes or
  unloads a kernel (panic kernels too), the upstream argument test fails
  (``--unl``, ``-sl``, ``-le``, ``-f``, a bare ``kexec KERNEL``, ``-p``, ...),
  and it is not a kdump service flow;
* **parent masquerade**: the upstream rule would have alerted but for its
  parent-name exclusion (the parent is *named* ``kdumpctl`` or ``unload.sh``),
  and the event is not a kdump service flow: the parent is not the packaged
  tool, or the action is not a panic-kernel load or unload.
"""

from __future__ import annotations

from typing import Any

from kexecwatch.core.audit.syscalls import EXEC_SYSCALLS
from kexecwatch.core.detect.detections.common import (
    is_process_start,
    kdump_tool,
    kexec_command,
    parent_summary,
)
from kexecwatch.core.detect.detections.kexec_cmdline import explain, upstream_matches
from kexecwatch.core.scan.prefilter import Prefilter

__all__ = ["ArgsEvasion", "ParentMasquerade"]

#: The v7 rule's excluded parent names.
UPSTREAM_EXCLUDED_PARENTS = frozenset(("kdumpctl", "unload.sh"))


def _kexec_start_args(document: dict[str, Any]) -> list[Any] | None:
    """The argv of a process start named ``kexec``, else ``None``."""
    process = document.get("process", {})
    if process.get("name") != "kexec" or not is_process_start(document):
        return None
    args = process.get("args")
    return args if isinstance(args, list) and args else None


#: Both detections read only process starts named ``kexec`` (``_kexec_start_args``).
_KEXEC_STARTS = Prefilter(syscalls=EXEC_SYSCALLS, success=True, comms=frozenset({b"kexec"}))


def _is_kdump_flow(document: dict[str, Any]) -> bool:
    command = kexec_command(document)
    return command is not None and command.is_panic_only and kdump_tool(document) is not None


class ArgsEvasion:
    """A kexec run that changes the kernel with arguments the v7 rule does not list."""

    applies_to = "process"

    def prefilters(self) -> list[Prefilter]:
        """Process starts named ``kexec``."""
        return [_KEXEC_STARTS]

    def matches(self, document: dict[str, Any]) -> bool:
        """See the module docstring."""
        args = _kexec_start_args(document)
        if args is None or upstream_matches(args):
            return False
        command = kexec_command(document)
        if command is None or not command.changes_kernel_state:
            return False
        return not _is_kdump_flow(document)

    def reason(self, document: dict[str, Any]) -> str:
        """The argv as kexec reads it, and why v7 misses it."""
        command = kexec_command(document)
        name = str(document.get("process", {}).get("name", "kexec"))
        if command is None:  # pragma: no cover - matches() needs an argv
            return "kexec run"
        return explain(name, command)


class ParentMasquerade:
    """A kexec run v7 excludes by its parent's name, without the kdump service behind it."""

    applies_to = "process"

    def prefilters(self) -> list[Prefilter]:
        """Process starts named ``kexec``."""
        return [_KEXEC_STARTS]

    def matches(self, document: dict[str, Any]) -> bool:
        """See the module docstring."""
        args = _kexec_start_args(document)
        if args is None or not upstream_matches(args):
            return False
        parent = document["process"].get("parent", {})
        return parent.get("name") in UPSTREAM_EXCLUDED_PARENTS and not _is_kdump_flow(document)

    def reason(self, document: dict[str, Any]) -> str:
        """Why the parent is not the kdump service."""
        command = kexec_command(document)
        name = str(document.get("process", {}).get("name", "kexec"))
        parsed = explain(name, command) if command is not None else "kexec run"
        why = (
            "not a panic-kernel load or unload"
            if kdump_tool(document) is not None
            else "the parent is not a packaged kdump tool"
        )
        return f"{parsed}; {parent_summary(document)}: {why}; upstream rule excludes it by name"
