"""Audit record type names and numbers, and the one place that knows their shapes.

Record-type heuristics live here and nowhere else (go-libaudit keeps them in one
place too): which types are events on their own, which end an event, and which
come from auditd itself rather than the kernel.
"""

from __future__ import annotations

__all__ = [
    "DAEMON_TYPES",
    "TELEMETRY_TYPES",
    "TYPE_NUMBERS",
    "ends_event",
    "is_daemon_record",
    "is_single_record",
    "type_number",
]

#: Names of the record types kexecwatch reads, with their numbers (linux/audit.h).
TYPE_NUMBERS: dict[str, int] = {
    "USER": 1005,
    "LOGIN": 1006,
    "DAEMON_START": 1200,
    "DAEMON_END": 1201,
    "DAEMON_ABORT": 1202,
    "DAEMON_CONFIG": 1203,
    "DAEMON_RECONFIG": 1204,
    "DAEMON_ROTATE": 1205,
    "DAEMON_RESUME": 1206,
    "DAEMON_ACCEPT": 1207,
    "DAEMON_CLOSE": 1208,
    "DAEMON_ERR": 1209,
    "SYSCALL": 1300,
    "PATH": 1302,
    "IPC": 1303,
    "SOCKETCALL": 1304,
    "CONFIG_CHANGE": 1305,
    "SOCKADDR": 1306,
    "CWD": 1307,
    "EXECVE": 1309,
    "IPC_SET_PERM": 1311,
    "MQ_OPEN": 1312,
    "MQ_SENDRECV": 1313,
    "MQ_NOTIFY": 1314,
    "MQ_GETSETATTR": 1315,
    "KERNEL_OTHER": 1316,
    "FD_PAIR": 1317,
    "OBJ_PID": 1318,
    "TTY": 1319,
    "EOE": 1320,
    "BPRM_FCAPS": 1321,
    "CAPSET": 1322,
    "MMAP": 1323,
    "NETFILTER_PKT": 1324,
    "NETFILTER_CFG": 1325,
    "SECCOMP": 1326,
    "PROCTITLE": 1327,
    "FEATURE_CHANGE": 1328,
    "REPLACE": 1329,
    "KERN_MODULE": 1330,
    "FANOTIFY": 1331,
    "TIME_INJOFFSET": 1332,
    "TIME_ADJNTPVAL": 1333,
    "BPF": 1334,
    "EVENT_LISTENER": 1335,
    "URINGOP": 1336,
    "OPENAT2": 1337,
    "DM_CTRL": 1338,
    "DM_EVENT": 1339,
}

#: Records auditd writes about itself. Their serials come from auditd's own
#: counter, unrelated to the kernel's, so they never take part in gap detection.
DAEMON_TYPES: frozenset[str] = frozenset(n for n, v in TYPE_NUMBERS.items() if 1200 <= v <= 1299)

#: Record types that may make a telemetry event (:mod:`kexecwatch.core.detect.telemetry`).
TELEMETRY_TYPES = frozenset(("CONFIG_CHANGE", "DAEMON_START", "DAEMON_END", "DAEMON_ABORT"))

_FIRST_EVENT = 1300
_FIRST_ANOM_LOGIN = 2100


def type_number(type_name: str) -> int | None:
    """The number of a record type, from its name or an ``UNKNOWN[n]`` spelling.

    Returns ``None`` for a name this table does not know.
    """
    number = TYPE_NUMBERS.get(type_name)
    if number is not None:
        return number
    if type_name.startswith("UNKNOWN[") and type_name.endswith("]"):
        digits = type_name[8:-1]
        if digits.isdigit():
            return int(digits)
    return None


def is_single_record(type_name: str) -> bool:
    """Whether records of this type are whole events on their own.

    Kernel syscall auxiliary records (1300-2099) belong to multi-record events;
    user-space and daemon messages below 1300 and the anomaly/integrity/AVC
    ranges from 2100 up arrive as one record each (go-libaudit and auparse
    agree on this split). Types we cannot number are treated as single records
    so that they never sit in flight waiting for an end that will not come.
    """
    number = type_number(type_name)
    if number is None:
        return True
    return number < _FIRST_EVENT or number >= _FIRST_ANOM_LOGIN


def ends_event(type_name: str) -> bool:
    """Whether a record of this type is the last one of its syscall event.

    ``EOE`` always is. The kernel writes ``PROCTITLE`` last, right before
    ``EOE`` (``audit_log_exit``), and auditd on Debian 12 does not write
    ``EOE`` to its log at all, so ``PROCTITLE`` ends an event too.
    """
    return type_name in ("EOE", "PROCTITLE")


#: Single records the kernel may write first in a syscall's own event: ``LOGIN`` (the
#: write to ``/proc/self/loginuid``) is followed by that syscall's ``SYSCALL``,
#: ``PROCTITLE`` and ``EOE`` under the same id when the task is audited, and stands
#: alone when it is not. See :meth:`~kexecwatch.core.audit.assembler.Assembler.push`.
LEADS_SYSCALL_EVENT = frozenset({"LOGIN"})


def is_daemon_record(type_name: str) -> bool:
    """Whether auditd itself wrote this record (``DAEMON_*``)."""
    return type_name in DAEMON_TYPES
