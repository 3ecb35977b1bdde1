"""systemd notification protocol (``sd_notify``) without a dependency.

A message is one datagram of ``KEY=VALUE`` lines sent to the unix socket named by
``NOTIFY_SOCKET``; a name starting with ``@`` is in the abstract namespace. Watchdog
pings (``WATCHDOG=1``) are due at half of ``WATCHDOG_USEC``.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping

from kexecwatch.adapters.daemon.daemonlog import kv

__all__ = ["Notifier"]

log = logging.getLogger(__name__)


class Notifier:
    """Sends READY/STATUS/STOPPING/WATCHDOG when run under systemd; a no-op otherwise.

    Args:
        environ: where ``NOTIFY_SOCKET`` and ``WATCHDOG_USEC`` are read.
        clock: monotonic clock.
    """

    def __init__(
        self, environ: Mapping[str, str] | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        env = os.environ if environ is None else environ
        name = env.get("NOTIFY_SOCKET", "")
        self._addr: str | bytes | None = None
        if name.startswith("@"):
            self._addr = b"\0" + name[1:].encode()
        elif name.startswith("/"):
            self._addr = name
        self._clock = clock
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        watchdog_ok = usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid()))
        self.watchdog_interval = int(usec) / 2e6 if watchdog_ok else None
        self._next_ping = 0.0

    @property
    def enabled(self) -> bool:
        """True when a notification socket was given."""
        return self._addr is not None

    def send(self, **fields: str) -> bool:
        """Send ``KEY=VALUE`` lines (keyword names are upper-cased). False on failure."""
        if self._addr is None:
            return False
        msg = "\n".join(f"{k.upper()}={v}" for k, v in fields.items()).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(msg, self._addr)
        except OSError as exc:
            log.warning("notify_failed", extra=kv(error=exc.strerror or str(exc)))
            return False
        return True

    def ready(self, status: str) -> None:
        """Tell systemd start-up is complete."""
        self.send(ready="1", status=status)

    def status(self, status: str) -> None:
        """Update the one-line status shown by ``systemctl status``."""
        self.send(status=status)

    def stopping(self) -> None:
        """Tell systemd we are shutting down."""
        self.send(stopping="1")

    @property
    def next_ping(self) -> float | None:
        """When the next ``WATCHDOG=1`` is due (the clock's time), or ``None`` without one."""
        return None if self.watchdog_interval is None else self._next_ping

    def maybe_ping(self) -> None:
        """Send ``WATCHDOG=1`` if half the watchdog interval has passed since the last one."""
        if self.watchdog_interval is None:
            return
        now = self._clock()
        if now >= self._next_ping:
            self.send(watchdog="1")
            self._next_ping = now + self.watchdog_interval
