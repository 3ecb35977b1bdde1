"""syslog+tls:// against a real TLS listener (Python's ssl server side) on 127.0.0.1,
with certificates made by the openssl command."""

from __future__ import annotations

import json
import re
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kexecwatch.adapters.daemon.sinks import (
    SinkRecord,
    SyslogSink,
    TlsRejected,
    TlsSettings,
    parse_output_spec,
)
from kexecwatch.errors import ConfigError
from tests.tlscerts import Pki, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


class Collector:
    """Accepts TLS connections and keeps the bytes each one sent."""

    def __init__(self, cert: Path, *, client_ca: Path | None = None) -> None:
        self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ctx.load_cert_chain(cert, Pki.key(cert))
        if client_ca is not None:
            self.ctx.load_verify_locations(client_ca)
            self.ctx.verify_mode = ssl.CERT_REQUIRED
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.port = self.srv.getsockname()[1]
        self.conns: list[bytes] = []
        self.close_next = False  # close each connection after its first message
        self.lock = threading.Lock()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                raw, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self._conn, args=(raw,), daemon=True).start()

    def _conn(self, raw: socket.socket) -> None:
        raw.settimeout(10)
        try:
            conn = self.ctx.wrap_socket(raw, server_side=True)
        except OSError:
            raw.close()
            return
        with self.lock:
            self.conns.append(b"")
            n = len(self.conns) - 1
        try:
            while chunk := conn.recv(65536):
                with self.lock:
                    self.conns[n] += chunk
                if self.close_next and b"}" in self.conns[n]:
                    break
        except OSError:
            pass
        conn.close()

    def messages(self, want: int, timeout: float = 10.0) -> list[bytes]:
        """The octet-counted frames received so far, waiting for ``want`` of them."""
        stop = threading.Event()
        for _ in range(int(timeout / 0.05)):
            with self.lock:
                frames = [f for c in self.conns for f in _frames(c)]
            if len(frames) >= want:
                return frames
            stop.wait(0.05)
        return frames

    def close(self) -> None:
        self.srv.close()


def _frames(data: bytes) -> list[bytes]:
    out = []
    while data:
        length, _, rest = data.partition(b" ")
        if len(rest) < int(length):
            break
        out.append(rest[: int(length)])
        data = rest[int(length) :]
    return out


@pytest.fixture
def collector(pki: Pki) -> Iterator[Collector]:
    c = Collector(pki.server)
    yield c
    c.close()


def record(n: int) -> SinkRecord:
    return SinkRecord(f"rule:-:{n}.000:{n}", json.dumps({"n": n}), f"alert {n}")


def tls_sink(port: int, **settings: str) -> SyslogSink:
    spec = parse_output_spec(f"syslog+tls://127.0.0.1:{port}")
    return SyslogSink(spec, host_name="web-1", tls=TlsSettings(**settings))


def test_tls_delivers_octet_counted_rfc5424_with_the_alert_id(
    pki: Pki, collector: Collector
) -> None:
    sink = tls_sink(collector.port, ca=str(pki.ca))
    sink.send(record(1))
    sink.send(record(2))
    frames = collector.messages(2)
    sink.close()
    assert len(frames) == 2
    for n, frame in enumerate(frames, 1):
        head, body = frame.split(b"\xef\xbb\xbf", 1)
        assert head.startswith(b"<84>1 ")
        assert b" web-1 kexecwatch " in head
        assert head.endswith(f' alert [kexecwatch@32473 id="rule:-:{n}.000:{n}"] '.encode())
        assert json.loads(body) == {"n": n}


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"ca": "other_ca"}, "unable to get local issuer certificate"),
        ({"ca": "ca", "server_name": "collector.example"}, "Hostname mismatch"),
    ],
)
def test_tls_verification_failure_names_the_problem_and_sends_nothing(
    pki: Pki, collector: Collector, settings: dict[str, str], problem: str
) -> None:
    paths = {k: str(getattr(pki, v)) if k == "ca" else v for k, v in settings.items()}
    sink = tls_sink(collector.port, **paths)
    with pytest.raises(TlsRejected, match=f"TLS certificate verify failed: {problem}"):
        sink.send(record(1))
    assert collector.messages(1, timeout=0.3) == []


def test_tls_expired_server_certificate_is_refused(pki: Pki) -> None:
    c = Collector(pki.expired_server)
    try:
        sink = tls_sink(c.port, ca=str(pki.ca))
        with pytest.raises(TlsRejected, match="certificate has expired"):
            sink.send(record(1))
        assert c.messages(1, timeout=0.3) == []
    finally:
        c.close()


def test_mutual_tls_needs_the_client_certificate(pki: Pki) -> None:
    c = Collector(pki.server, client_ca=pki.ca)
    try:
        without = tls_sink(c.port, ca=str(pki.ca))
        # TLS 1.3 refuses a missing client certificate only after the handshake: the
        # sink must notice that rather than report the first message as sent.
        with pytest.raises(TlsRejected, match="certificate required"):
            without.send(record(1))
        with_cert = tls_sink(
            c.port, ca=str(pki.ca), cert=str(pki.client), key=str(Pki.key(pki.client))
        )
        with_cert.send(record(2))
        frames = c.messages(1)
        with_cert.close()
        assert [json.loads(f.split(b"\xef\xbb\xbf", 1)[1])["n"] for f in frames] == [2]
    finally:
        c.close()


def test_connection_closed_by_the_collector_loses_no_message(
    pki: Pki, collector: Collector
) -> None:
    collector.close_next = True  # the collector hangs up after each message
    sink = tls_sink(collector.port, ca=str(pki.ca))
    for n in range(1, 5):
        sink.send(record(n))
        collector.messages(n)  # the collector has read it and hung up
        threading.Event().wait(0.1)
    frames = collector.messages(4)
    sink.close()
    assert [json.loads(f.split(b"\xef\xbb\xbf", 1)[1])["n"] for f in frames] == [1, 2, 3, 4]


def test_unusable_certificate_files_are_one_line_config_errors(pki: Pki, tmp_path: Path) -> None:
    spec = parse_output_spec("syslog+tls://127.0.0.1:6514")
    with pytest.raises(ConfigError, match=r"^tls-ca /nonexistent\.pem: No such file"):
        SyslogSink(spec, host_name="h", tls=TlsSettings(ca="/nonexistent.pem"))
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match=re.escape(f"tls-cert {junk}: ")) as info:
        SyslogSink(spec, host_name="h", tls=TlsSettings(ca=str(pki.ca), cert=str(junk)))
    assert "\n" not in str(info.value)
