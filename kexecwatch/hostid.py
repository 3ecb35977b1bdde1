"""``host.id``: the machine id of this host, and the check of an id given by hand.

A shell around the pure core: the core never reads ``/etc/machine-id`` itself, it is
handed the id (``Detector(host_id=...)``). Live (``run``, ``live``) the id is the machine
id unless one is configured; offline (``replay``) it is only what ``--host-id`` says, since
a log copied from another host is not this host's (README, "The fields of a process event").
"""

from __future__ import annotations

from pathlib import Path

from kexecwatch.errors import InputError

__all__ = ["MACHINE_ID_PATHS", "check_host_id", "machine_id"]

#: Where systemd (and before it, D-Bus) keeps the machine id, first found wins.
MACHINE_ID_PATHS = (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id"))
_MAX_ID = 256


def machine_id(paths: tuple[Path, ...] = MACHINE_ID_PATHS) -> str | None:
    """This host's machine id (32 lowercase hex digits), or ``None`` when none is readable.

    A file that is unreadable, empty or not a machine id (an image's ``uninitialized``)
    is skipped: a wrong id would join unrelated hosts, no id joins none.
    """
    for path in paths:
        try:
            text = path.read_text(encoding="ascii", errors="replace").strip()
        except OSError:
            continue
        if len(text) == 32 and all(c in "0123456789abcdef" for c in text):
            return text
    return None


def check_host_id(value: str, option: str = "--host-id") -> str:
    """``value`` if it can be a ``host.id``; raises :class:`InputError` naming ``option``.

    Any printable text without spaces, at most 256 characters (a machine id, a cloud
    instance id, a name), so that it is one token in every output.
    """
    if not value or len(value) > _MAX_ID or not value.isprintable() or " " in value:
        raise InputError(
            f"{option} must be 1 to {_MAX_ID} printable characters without spaces, "
            f"not {value[:40]!r}"
        )
    return value
