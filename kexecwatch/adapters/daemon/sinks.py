"""Alert outputs: stdout (JSON or text), an NDJSON file, syslog (local, UDP, TCP, TLS).

Each output is a small object whose :meth:`Sink.send` either delivers one record or
raises ``OSError``; retrying, queueing and backoff live in :mod:`kexecwatch.adapters.daemon.fanout`
so a failing output never blocks the others or the reader.

Output specs (``--output`` / ``outputs``), parsed strictly by :func:`parse_output_spec`:

=========================  ===========================================================
``stdout``                 one JSON document per line on standard output
``stdout:text``            one human-readable line per alert on standard output
``json:PATH``              NDJSON appended to PATH, fsynced per alert, reopened on SIGHUP
``syslog``                 RFC 5424 datagrams to ``/dev/log``
``syslog://HOST:PORT``     RFC 5424 over UDP
``syslog+tcp://HOST:PORT`` RFC 5424 over TCP with octet counting (RFC 6587)
``syslog+tls://HOST:PORT`` RFC 5424 over TLS with octet counting (RFC 5425), the
                           server's certificate and name verified (:class:`TlsSettings`)
=========================  ===========================================================
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import re
import select
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from kexecwatch.adapters.daemon import fileio
from kexecwatch.adapters.daemon.statefiles import append_private
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
    "TlsSettings",
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
#: The structured-data element of every message: the alert's id, for a collector to drop
#: a repeated delivery. 32473 is the private enterprise number RFC 5612 sets aside for
#: examples; kexecwatch has none of its own.
SD_ID = "kexecwatch@32473"


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
    transport: str = ""  # unix | udp | tcp | tls


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """How a ``syslog+tls://`` output verifies the collector and shows itself.

    Attributes:
        ca: PEM file of the certificate authorities trusted for the collector's
            certificate; empty means the system's trust store.
        cert: PEM client certificate for mutual TLS (may hold the key too); empty: none.
        key: PEM private key of ``cert`` when it is a separate file.
        server_name: the name the collector's certificate must carry; empty means the
            output's HOST.
    """

    ca: str = ""
    cert: str = ""
    key: str = ""
    server_name: str = ""

    def context(self) -> ssl.SSLContext:
        """A client context that verifies the certificate chain and the server's name.

        Raises:
            ConfigError: a file that cannot be read or is not a usable certificate/key.
        """
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            if self.ca:
                ctx.load_verify_locations(cafile=self.ca)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"tls-ca {self.ca}: {_ssl_problem(exc)}") from None
        try:
            if self.cert:
                ctx.load_cert_chain(self.cert, self.key or None)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"tls-cert {self.cert}{f' / tls-key {self.key}' if self.key else ''}: "
                f"{_ssl_problem(exc)}"
            ) from None
        return ctx


class TlsRejected(OSError):
    """The TLS handshake failed: the collector's certificate or name did not verify, or it
    refused ours. Like any failed send it is logged and retried; never sent in clear."""


def _ssl_problem(exc: OSError) -> str:
    """One line naming what is wrong with a certificate, key or handshake."""
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return str(exc.verify_message)
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).lower().replace("_", " ")
    return exc.strerror or str(exc)


_REMOTE = re.compile(
    r"syslog(?:\+(udp|tcp|tls))?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):([0-9]{1,5})"
)


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
        "syslog://HOST:PORT, syslog+tcp://HOST:PORT or syslog+tls://HOST:PORT"
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
    """RFC 5424 messages to ``/dev/log`` (unix datagram), UDP, or TCP/TLS (octet counting).

    Each message carries the alert's id as structured data (``[kexecwatch@32473
    id="..."]``). Over TCP and TLS a connection the collector closed is noticed before
    the next send (which would otherwise vanish into a dead socket) and made again.

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
        tls: TlsSettings | None = None,
    ) -> None:
        self.spec = spec.spec
        self._target = spec
        self._tls: ssl.SSLContext | None = None
        self._server_name = spec.host
        if spec.transport == "tls":
            tls = tls or TlsSettings()
            self._tls = tls.context()
            self._server_name = tls.server_name or spec.host
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
            f"{os.getpid()} {_header_token(record.msgid)} "
        ).encode("ascii")
        head += _structured_data(record.alert_id) + b" \xef\xbb\xbf"
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
            t.host, t.port, type=socket.SOCK_DGRAM if t.transport == "udp" else socket.SOCK_STREAM
        )
        family, kind, proto, _, addr = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.settimeout(self._timeout)
        try:
            sock.connect(addr)
        except OSError:
            sock.close()
            raise
        if self._tls is None:
            return sock
        try:
            tls = self._tls.wrap_socket(sock, server_hostname=self._server_name)
            # TLS 1.3 tells a client that its certificate was refused only after the
            # handshake: wait briefly for that verdict rather than lose the first message.
            wait = min(1.0, self._timeout) if tls.version() == "TLSv1.3" else 0.0
            refused = self._peer_gone(tls, wait)
            if refused is not None:
                tls.close()
                if isinstance(refused, ssl.SSLError):
                    raise refused
                raise TlsRejected(
                    errno.ECONNRESET,
                    "TLS: the collector closed the connection right after the handshake "
                    "(does it require a client certificate? see tls-cert)",
                )
            return tls
        except ssl.SSLError as exc:
            sock.close()
            what = (
                "certificate verify failed"
                if isinstance(exc, ssl.SSLCertVerificationError)
                else "handshake failed"
            )
            raise TlsRejected(
                errno.EPROTO, f"TLS {what}: {_ssl_problem(exc)} (server name {self._server_name})"
            ) from None
        except OSError:
            sock.close()
            raise

    def _peer_gone(self, sock: socket.socket, wait: float) -> OSError | None:
        """Why the collector's end of the connection is gone, or ``None`` while it stands.

        A collector sends nothing over syslog/TCP or TLS, so a readable socket means end
        of stream, a reset, a TLS alert, or TLS housekeeping (a session ticket, read and
        kept). Checked before each send: a message written to a connection the collector
        already closed would vanish without an error.
        """
        try:
            if not select.select([sock], [], [], wait)[0]:
                return None
            sock.setblocking(False)
            try:
                while sock.recv(4096):
                    pass
                return ConnectionResetError(errno.ECONNRESET, "connection closed by the collector")
            except (ssl.SSLWantReadError, BlockingIOError):
                return None
            finally:
                sock.settimeout(self._timeout)
        except OSError as exc:
            return exc

    def send(self, record: SinkRecord) -> None:
        """Send one message, connecting (again) as needed."""
        msg = self.format(record)
        stream = self._target.transport in ("tcp", "tls")
        if stream:
            msg = str(len(msg)).encode("ascii") + b" " + msg
            if self._sock is not None and self._peer_gone(self._sock, 0) is not None:
                self.close()
        if self._sock is None:
            self._sock = self._connect()
        try:
            if stream:
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


def _structured_data(alert_id: str) -> bytes:
    """The message's one SD element, the alert id escaped as RFC 5424 section 6.3.3 says."""
    value = re.sub(r'(["\\\]])', r"\\\1", alert_id)
    return f'[{SD_ID} id="{value}"]'.encode()


def _header_token(value: str) -> str:
    """An RFC 5424 header field: printable US-ASCII without spaces, or ``-``."""
    token = "".join(c for c in value if "!" <= c <= "~")[:255]
    return token or "-"


def make_sink(spec: str, *, host_name: str, tls: TlsSettings | None = None) -> Sink:
    """Build the output for a spec (no network I/O happens until the first send).

    Raises:
        ConfigError: a ``syslog+tls://`` output whose certificate files are unusable.
    """
    parsed = parse_output_spec(spec)
    if parsed.kind == "stdout":
        return StdoutSink(spec, text=parsed.text)
    if parsed.kind == "json":
        return JsonFileSink(spec, parsed.path)
    return SyslogSink(parsed, host_name=host_name, tls=tls)
