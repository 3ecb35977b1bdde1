"""The audit rules kexecwatch needs, shipped inside the package.

``etc/audit.rules`` and ``etc/audit-lowvolume.rules`` in a checkout are links to these
files and the Debian package installs them from here, so a pip install, a checkout and the
package all carry the same rules. ``kexecwatch audit-rules`` prints them.
"""

from __future__ import annotations

from importlib import resources

__all__ = ["FULL", "LOW_VOLUME", "read_audit_rules"]

#: Every execve and execveat, plus the kexec system calls (recommended).
FULL = "audit.rules"
#: Only execs of /usr/sbin/kexec and /sbin/kexec, plus the kexec system calls.
LOW_VOLUME = "audit-lowvolume.rules"


def read_audit_rules(*, low_volume: bool = False) -> str:
    """The text of the full (default) or low-volume audit rules file."""
    name = LOW_VOLUME if low_volume else FULL
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
