"""Alert outputs: stdout (JSON or text), an NDJSON file, syslog (local, UDP, TCP).

Each output is a small object whose :meth:`Sink.send` either delivers one record or
raises ``OSError``; retrying, queueing and backoff live in :mod:`kexecwatch.adapters.hub`
so a failing output never blocks the others or the reader.

Output specs (``--output`` / ``outputs``), parsed strictly by :func:`parse_output_spec`:

=========================  ===========================================================
``stdout``                 one JSON document per line on standard output
``stdout:text``            one human-readable line per alert on standard output
``json:PATH``              NDJSON appended to PATH, fsynced per alert, reopened on SIGHUP
``syslog``                 RFC 5424 datagrams to ``/dev/log``
``syslog://HOST:PORT``     RFC 5424 over UDP
``syslog+tcp://HOST:PORT`` RFC 5424 over TCP with octet counting (RFC 6587)
=========================  ===========================================================
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from kexecwatch.adapters import fileio
from kexecwatch.adapters.statefiles import append_private
from kexecwatch.core import jsontext
from kexecwatch.errors import ConfigError

__all__ = [
    "SYSLOG_MAX_BYTES",
    "JsonFileSink",
    "OutputSpec",
    "Sink",
    "SinkRecord",
    "StdoutSink",
    "SyslogSink",
    "Undeliverable",
    "make_sink",
    "parse_output_spec",
]

DEV_LOG = "/dev/log"
FACILITY_AUTHPRIV = 10  # alerts carry command lines: keep them out of world-readable logs
SEVERITY_WARNING = 4
#: The longest syslog message sent, header included: rsyslog's default ``maxMessageSize``,
#: well below what UDP (65,507 bytes) and ``/dev/log`` (about 212 KB) carry at all.
SYSLOG_MAX_BYTES = 8192


class Undeliverable(OSError):
    """An output can never deliver this record (the transport refuses its size).

    Retrying would block every later record, so the hub drops it, logs and counts it.
    """


@dataclass(frozen=True, slots=True)
class SinkRecord:
    """One alert as the outputs see it: already serialised, so every output agrees."""

    alert_id: str
    json_line: str  # one JSON document, no newline
    text_line: str  # terminal-safe, no newline
    msgid: str = "alert"
    severity: int = SEVERITY_WARNING

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form for the journal and the checkpoint."""
        return {
            "id": self.alert_id,
            "json": self.json_line,
            "text": self.text_line,
            "msgid": self.msgid,
            "severity": str(self.severity),
        }

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> SinkRecord:
        """Inverse of :meth:`to_dict`; raises ``KeyError``/``ValueError``."""
        return cls(
            str(data["id"]),
            str(data["json"]),
            str(data["text"]),
            str(data.get("msgid", "alert")),
            int(data.get("severity", SEVERITY_WARNING)),
        )


class Sink(Protocol):
    """An output. ``send`` delivers one record or raises ``OSError``."""

    spec: str

    def send(self, record: SinkRecord) -> None: ...  # pragma: no cover

    def reopen(self) -> None: ...  # pragma: no cover

    def close(self) -> None: ...  # pragma: no cover


@dataclass(frozen=True, slots=True)
class OutputSpec:
    """A parsed ``--output`` value."""

    spec: str
    kind: str  # stdout | json | syslog
    text: bool = False
    path: str = ""
    host: str = ""
    port: int = 0
    transport: str = ""  # unix | udp | tcp


_REMOTE = re.compile(r"syslog(?:\+(udp|tcp))?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):([0-9]{1,5})")


def parse_output_spec(spec: str) -> OutputSpec:
    """Parse one output spec.

    Raises:
        ConfigError: naming the spec and what is accepted.
    """
    if spec in ("stdout", "stdout:json"):
        return OutputSpec(spec, "stdout")
    if spec == "stdout:text":
        return OutputSpec(spec, "stdout", text=True)
    if spec.startswith("json:") and len(spec) > len("json:"):
        return OutputSpec(spec, "json", path=spec[len("json:") :])
    if spec == "syslog":
        return OutputSpec(spec, "syslog", path=DEV_LOG, transport="unix")
    m = _REMOTE.fullmatch(spec)
    if m and 1 <= int(m.group(3)) <= 65535:
        return OutputSpec(
            spec,
            "syslog",
            host=m.group(2).strip("[]"),
            port=int(m.group(3)),
            transport=m.group(1) or "udp",
        )
    raise ConfigError(
        f"bad output {spec!r}: expected stdout, stdout:text, json:PATH, syslog, "
        "syslog://HOST:PORT or syslog+tcp://HOST:PORT"
    )


class StdoutSink:
    """Writes each record as one line to file descriptor 1."""

    def __init__(self, spec: str, *, text: bool, fd: int = 1) -> None:
        self.spec = spec
        self._text = text
        self._fd = fd

    def send(self, record: SinkRecord) -> None:
        """Write one line (JSON or text)."""
        line = record.text_line if self._text else record.json_line
        fileio.write_all(self._fd, jsontext.encode(line) + b"\n")

    def reopen(self) -> None:
        """Nothing to reopen."""

    def close(self) -> None:
        """Standard output stays open."""


class JsonFileSink:
    """Appends NDJSON to a file and fsyncs each record; reopens by name on request.

    The file only ever holds whole lines: a write that fails part-way (disk full) is
    cut back to the length before it, and a line torn by a crash is cut off when the
    file is opened, so the retry never glues two records into one line.

    A path that is a symlink, or a file not the daemon's own, is refused at every open
    (``UnsafeFile``, an ``OSError``: logged and retried like any failed write).
    """

    def __init__(self, spec: str, path: str) -> None:
        self.spec = spec
        self.path = path
        self._fd: int | None = None
        self._reopen = False

    def send(self, record: SinkRecord) -> None:
        """Append one line and fsync it; on failure nothing of the line stays."""
        if self._reopen:
            self.close()
            self._reopen = False
        if self._fd is None:
            fd = append_private(self.path, readable=True)  # never through a link
            try:
                fileio.cut_torn_tail(fd, self.path)
            except OSError:
                os.close(fd)
                raise
            self._fd = fd
        start = os.fstat(self._fd).st_size
        try:
            fileio.write_all(self._fd, jsontext.encode(record.json_line) + b"\n")
            os.fsync(self._fd)
        except OSError:
            try:
                os.ftruncate(self._fd, start)
            finally:  # if even that failed, the next open cuts the torn line
                self.close()
            raise

    def reopen(self) -> None:
        """Reopen by name before the next write (after logrotate moved the file)."""
        self._reopen = True

    def already_written(self, records: Iterable[SinkRecord], tail: int = 1 << 20) -> set[str]:
        """Ids of ``records`` whose exact line is among the file's last ``tail`` bytes.

        A crash after a line was written but before its delivery was journalled leaves
        the line in the file; a restart must not append it a second time.
        """
        try:
            with open(self.path, "rb") as fh:
                start = max(0, fh.seek(0, os.SEEK_END) - tail)
                # From the byte before the tail: what precedes its first newline is
                # the end of an earlier line (or nothing), never a whole line.
                fh.seek(max(0, start - 1))
                lines = fh.read().split(b"\n")
        except OSError:
            return set()
        present = set(lines[1:] if start else lines)
        return {r.alert_id for r in records if jsontext.encode(r.json_line) in present}

    def close(self) -> None:
        """Close the file."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


class SyslogSink:
    """RFC 5424 messages to ``/dev/log`` (unix datagram), UDP, or TCP (octet counting).

    A message longer than ``max_bytes`` carries a shortened document (long strings and
    lists cut with a visible ``…(+N bytes)`` / ``…(+N items)``); the JSON outputs keep
    the whole one. A message the transport still refuses raises :class:`Undeliverable`.
    """

    def __init__(
        self,
        spec: OutputSpec,
        *,
        host_name: str,
        timeout: float = 5.0,
        max_bytes: int = SYSLOG_MAX_BYTES,
    ) -> None:
        self.spec = spec.spec
        self._target = spec
        self._host = _header_token(host_name)
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._sock: socket.socket | None = None

    def format(self, record: SinkRecord, now: dt.datetime | None = None) -> bytes:
        """The RFC 5424 message for ``record`` (without TCP framing), within ``max_bytes``.

        Raises:
            Undeliverable: not even the shortened document fits.
        """
        when = (now or dt.datetime.now(dt.UTC)).isoformat(timespec="microseconds")
        pri = FACILITY_AUTHPRIV * 8 + record.severity
        head = (
            f"<{pri}>1 {when.replace('+00:00', 'Z')} {self._host} kexecwatch "
            f"{os.getpid()} {_header_token(record.msgid)} - "
        ).encode("ascii") + b"\xef\xbb\xbf"
        body = jsontext.encode(record.json_line)
        budget = self._max_bytes - len(head)
        if len(body) > budget:
            try:
                short = jsontext.dumps_within(json.loads(record.json_line), budget)
            except ValueError:
                short = None
            if short is None:
                raise Undeliverable(
                    errno.EMSGSIZE, f"alert {record.alert_id} does not fit {self._max_bytes} bytes"
                )
            body = jsontext.encode(short)
        return head + body

    def _connect(self) -> socket.socket:
        t = self._target
        if t.transport == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.settimeout(self._timeout)
            sock.connect(t.path)
            return sock
        infos = socket.getaddrinfo(
            t.host, t.port, type=socket.SOCK_STREAM if t.transport == "tcp" else socket.SOCK_DGRAM
        )
        family, kind, proto, _, addr = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.settimeout(self._timeout)
        try:
            sock.connect(addr)
        except OSError:
            sock.close()
            raise
        return sock

    def send(self, record: SinkRecord) -> None:
        """Send one message, connecting (again) as needed."""
        msg = self.format(record)
        if self._target.transport == "tcp":
            msg = str(len(msg)).encode("ascii") + b" " + msg
        if self._sock is None:
            self._sock = self._connect()
        try:
            if self._target.transport == "tcp":
                self._sock.sendall(msg)
            else:
                try:
                    self._sock.send(msg)
                except OSError as exc:
                    if exc.errno == errno.EMSGSIZE:  # final for this message, not the socket
                        raise Undeliverable(exc.errno, exc.strerror) from exc
                    raise
                # UDP loss is silent; a refusal on loopback is reported by the time send
                # returns, so at least a local collector that is down counts as a failure.
                err = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    raise OSError(err, os.strerror(err))
        except Undeliverable:
            raise
        except OSError:
            self.close()
            raise

    def reopen(self) -> None:
        """Reconnect before the next message."""
        self.close()

    def close(self) -> None:
        """Close the socket."""
        if self._sock is not None:
            sock, self._sock = self._sock, None
            sock.close()


def _header_token(value: str) -> str:
    """An RFC 5424 header field: printable US-ASCII without spaces, or ``-``."""
    token = "".join(c for c in value if "!" <= c <= "~")[:255]
    return token or "-"


def make_sink(spec: str, *, host_name: str) -> Sink:
    """Build the output for a spec (no I/O happens until the first send)."""
    parsed = parse_output_spec(spec)
    if parsed.kind == "stdout":
        return StdoutSink(spec, text=parsed.text)
    if parsed.kind == "json":
        return JsonFileSink(spec, parsed.path)
    return SyslogSink(parsed, host_name=host_name)
