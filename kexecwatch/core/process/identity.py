"""Who a process is: its entity id, its credentials and its terminal, in ECS terms.

Theory of operation: a ``SYSCALL`` record says, between ``auid=`` and ``comm=``, under
which ids the calling process ran (``auid uid gid euid suid fsuid egid sgid fsgid``), on
which terminal (``tty``) and in which audit session (``ses``). The process table keeps
that text, as written, with each entry (its ``extra``), so that an event's *parent* can
be described the same way as the process itself; this module reads it, only when a
document is built.

ECS's mapping, as Elastic Defend fills it: ``process.user`` is the *effective* user
(``euid``), ``process.real_user`` the real one (``uid``), ``process.saved_user`` the saved
one (``suid``); the same for groups (``egid``, ``gid``, ``sgid``).

:func:`entity_id` names one process instance stably, from facts the log itself holds, so
that a replay of a log and the daemon that followed it give the same ids (README, "The
fields of a process event").
"""

from __future__ import annotations

import base64
import re
from functools import lru_cache
from typing import Any

from kexecwatch.core.audit.fieldmemo import MAX_BODY, Memo
from kexecwatch.core.audit.fields import parse_fields

__all__ = [
    "CREDENTIALS",
    "credential_change",
    "credentials_of",
    "entity_id",
    "extra_of",
    "identity_of",
    "interactive_of",
    "parent_identity_of",
    "tty_device",
    "tty_name",
    "user_doc",
]

#: ECS object -> (audit id field, ENRICHED name field), in ECS's mapping (see above).
CREDENTIALS: tuple[tuple[str, str, str], ...] = (
    ("user", "euid", "EUID"),
    ("real_user", "uid", "UID"),
    ("saved_user", "suid", "SUID"),
    ("group", "egid", "EGID"),
    ("real_group", "gid", "GID"),
    ("saved_group", "sgid", "SGID"),
)

_EXTRA_START = b" auid="
_EXTRA_END = b" comm="


def extra_of(syscall_body: bytes) -> bytes | None:
    """The credentials text of a ``SYSCALL`` record body: from ``auid=`` up to ``comm=``.

    What the process table stores as an entry's ``extra`` (the native table learns the
    same slice by itself). ``None`` when the body lacks either field, in that order.
    """
    start = syscall_body.find(_EXTRA_START)
    if start < 0:
        return None
    end = syscall_body.find(_EXTRA_END, start)
    if end < 0:
        return None
    return syscall_body[start + 1 : end]


_CREDENTIALS_OF: Memo[bytes, dict[str, str]] = Memo()


def credentials_of(extra: bytes | None) -> dict[str, str]:
    """The ``key=value`` fields of an ``extra`` text, as text (empty for ``None``).

    Remembered (a few users' credentials recur in every parent); callers only read it.
    """
    if not extra:
        return {}
    known = _CREDENTIALS_OF.get(extra)
    if known is not None:
        return known
    fields, _ = parse_fields(extra)
    found = {k: v.decode("utf-8", "surrogateescape") for k, v in fields.items()}
    return _CREDENTIALS_OF.put(extra, found) if len(extra) <= MAX_BODY else found


_UID_FIELDS = ("uid", "euid", "suid", "fsuid")
_GID_FIELDS = ("gid", "egid", "sgid", "fsgid")


def credential_change(before: bytes | None, after: bytes | None) -> str | None:
    """``uid`` or ``gid``: which of a process's ids differ between two ``extra`` texts
    (``uid`` when both do); ``None`` when neither does or either text is unknown."""
    if not before or not after:
        return None
    old, new = credentials_of(before), credentials_of(after)
    if any(old.get(k) != new.get(k) for k in _UID_FIELDS):
        return "uid"
    if any(old.get(k) != new.get(k) for k in _GID_FIELDS):
        return "gid"
    return None


def user_doc(ids: dict[str, str], names: dict[str, str], raw: str, enriched: str) -> dict[str, Any]:
    """``{"id": ..., "name": ...}`` of one audit id field and its ENRICHED name, if any."""
    out: dict[str, Any] = {}
    value = ids.get(raw)
    if value is not None:
        out["id"] = value
    name = names.get(enriched)
    if name is not None:
        out["name"] = name
    return out


_IDENTITIES: Memo[Any, dict[str, Any]] = Memo()


def identity_of(
    ids: tuple[tuple[str, str], ...],
    names: tuple[tuple[str, str], ...],
    interactive: bool | None,
    tty: str | None,
) -> dict[str, Any]:
    """A process's ECS credentials (:data:`CREDENTIALS`), ``interactive`` and ``tty``, to
    merge into its ``process`` object: from the audit ids and ENRICHED names (``(field,
    value)`` pairs), whether it has a terminal and the terminal's name.

    Remembered (a few users and terminals recur): the nested objects are shared between
    documents, which their readers never change.
    """
    key = (ids, names, interactive, tty)
    known = _IDENTITIES.get(key)
    if known is not None:
        return known
    out: dict[str, Any] = {}
    by_id, by_name = dict(ids), dict(names)
    for ecs_name, raw, enriched in CREDENTIALS:
        found = user_doc(by_id, by_name, raw, enriched)
        if found:
            out[ecs_name] = found
    if interactive is not None:
        out["interactive"] = interactive
    device = tty_device(tty)
    if device is not None:
        out["tty"] = {"char_device": {"major": device[0], "minor": device[1]}}
    return _IDENTITIES.put(key, out)


def parent_identity_of(extra: bytes) -> dict[str, Any]:
    """:func:`identity_of` for a parent, from the credentials text its table entry keeps
    (ids only: the table keeps no names). Shared like :func:`identity_of`'s."""
    known = _IDENTITIES.get(extra)
    if known is not None:
        return known
    creds = credentials_of(extra)
    tty = creds.get("tty")
    found = identity_of(
        tuple(creds.items()), (), interactive_of(tty), None if tty == "(none)" else tty
    )
    return _IDENTITIES.put(extra, found) if len(extra) <= MAX_BODY else found


def interactive_of(tty: str | None) -> bool | None:
    """Whether a process with this ``tty=`` value has a controlling terminal.

    ``(none)`` means none; ``None`` (no ``tty=`` field at all) means unknown.
    """
    if tty is None:
        return None
    return tty not in ("(none)", "?", "")


_PTS = re.compile(r"pts([0-9]{1,7})")
_VT = re.compile(r"tty([0-9]{1,2})")
_SERIAL = re.compile(r"ttyS([0-9]{1,3})")


def tty_device(tty: str | None) -> tuple[int, int] | None:
    """The (major, minor) numbers of the terminal auditd names ``tty``, where Linux fixes them.

    Linux's registered device numbers (``Documentation/admin-guide/devices.txt``):
    ``ptsN`` is Unix98 pty slave N (majors 136-143, 256 minors each), ``ttyN`` virtual
    console N (major 4, minor N, N < 64), ``ttySN`` serial port N (major 4, minor 64 + N,
    N < 192), ``console`` 5:1. Any other name (a driver with dynamic numbers): ``None``.
    """
    if tty is None:
        return None
    if tty == "console":
        return 5, 1
    m = _PTS.fullmatch(tty)
    if m is not None:
        n = int(m.group(1))
        return (136 + n // 256, n % 256) if n < 2048 else None
    m = _VT.fullmatch(tty)
    if m is not None and int(m.group(1)) < 64:
        return 4, int(m.group(1))
    m = _SERIAL.fullmatch(tty)
    if m is not None and int(m.group(1)) < 192:
        return 4, 64 + int(m.group(1))
    return None


def tty_name(major: int, minor: int) -> str | None:
    """The name auditd gives the terminal ``major:minor`` (:func:`tty_device`'s inverse):
    ``(none)`` for 0:0, ``None`` for a device whose name is not fixed by its numbers."""
    if major == 0 and minor == 0:
        return "(none)"
    if 136 <= major <= 143 and minor < 256:
        return f"pts{(major - 136) * 256 + minor}"
    if major == 4 and minor < 64:
        return f"tty{minor}"
    if major == 4 and minor < 256:
        return f"ttyS{minor - 64}"
    if (major, minor) == (5, 1):
        return "console"
    return None


@lru_cache(maxsize=4096)  # a parent's id recurs for each of its children
def entity_id(host: str, pid: int, instance: str) -> str:
    """The ``entity_id`` of process ``pid`` on ``host``, in the instance named ``instance``.

    ``base64url(sha256(host NUL pid NUL instance)[:18])``: 24 characters. ``host`` is the
    document's ``host.id`` (or its ``host.name`` when it has no id), ``instance`` what
    started this process image: the audit id of its exec (``sec.mmm:serial``), or, for an
    entry learned otherwise, ``<source>:<time_ms>`` (see :meth:`Parent.instance`).
    """
    # Loaded here: the OpenSSL behind hashlib is a tenth of a replay's start-up, and a
    # replay that renders no document never needs it (tests/test_startup_imports.py).
    import hashlib

    digest = hashlib.sha256(
        f"{host}\x00{pid}\x00{instance}".encode("utf-8", "surrogateescape")
    ).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode("ascii")
