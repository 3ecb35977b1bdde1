"""A process's capability sets, where the audit trail states them, as ECS names.

Theory of operation: the kernel writes a capability set in an audit record as one
hexadecimal bitmap (``audit_log_cap``: bit N is capability N, ``0`` for the empty set).
Two records state a process's *permitted* and *effective* sets exactly:

- ``BPRM_FCAPS``, in an exec's event when the exec raised the process's effective set
  (a file with capabilities, a set-user-ID-root program run by another user): ``pp`` and
  ``pe`` are the sets the new program starts with;
- ``CAPSET``, in a ``capset`` call's event (when audited): ``cap_pp`` and ``cap_pe`` are
  the sets the call set.

Nowhere else does the trail state them (an ordinary exec, a ``set*id`` call, a fork: the
kernel's rules would let them be derived only from facts the trail does not hold, such as
securebits and earlier unaudited calls), so only those events carry
``process.thread.capabilities.*`` (README, "Capabilities").

ECS writes each capability by its Linux name (``CAP_SYS_PTRACE``), or by its number when
Linux has none for it yet (ECS's pattern ``^(CAP_[A-Z_]+|\\d+)$``).
"""

from __future__ import annotations

import re

from kexecwatch.core.audit.fields import Fields

__all__ = [
    "CAPABILITY_NAMES",
    "CAPABILITY_RECORDS",
    "Capabilities",
    "capabilities_of",
    "capability_names",
]

#: The record types that state a process's capability sets (:func:`capabilities_of`):
#: an event without one has no ``process.thread.capabilities.*``.
CAPABILITY_RECORDS = frozenset(("BPRM_FCAPS", "CAPSET"))

#: Linux's capability names by number (``include/uapi/linux/capability.h``).
CAPABILITY_NAMES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)

#: (permitted, effective), each as ECS names in bit order.
Capabilities = tuple[tuple[str, ...], tuple[str, ...]]

# A set is at most 64 bits (two 32-bit words in the kernel).
_BITMAP = re.compile(rb"[0-9a-fA-F]{1,16}")
_KNOWN: dict[bytes, tuple[str, ...]] = {}


def capability_names(raw: bytes | None) -> tuple[str, ...] | None:
    """The ECS names of a capability bitmap as the kernel writes it (hex); ``None`` when
    it is not one (absent, empty, too long, not hex)."""
    if raw is None:
        return None
    known = _KNOWN.get(raw)
    if known is not None:
        return known
    if _BITMAP.fullmatch(raw) is None:
        return None
    bits = int(raw, 16)
    names = tuple(
        CAPABILITY_NAMES[n] if n < len(CAPABILITY_NAMES) else str(n)
        for n in range(bits.bit_length())
        if bits >> n & 1
    )
    if len(_KNOWN) >= 1024:
        _KNOWN.clear()
    _KNOWN[raw] = names
    return names


def capabilities_of(record_type: str, fields: Fields) -> Capabilities | None:
    """The permitted and effective sets a ``BPRM_FCAPS`` or ``CAPSET`` record states
    (see the module docstring); ``None`` for other records or unreadable values."""
    if record_type == "BPRM_FCAPS":
        keys = ("pp", "pe")
    elif record_type == "CAPSET":
        keys = ("cap_pp", "cap_pe")
    else:
        return None
    permitted = capability_names(fields.get(keys[0]))
    effective = capability_names(fields.get(keys[1]))
    if permitted is None or effective is None:
        return None
    return permitted, effective
