"""A fleet against a real collector: Debian's rsyslog with rsyslog-gnutls, over mutual TLS.

Three ``kexecwatch run`` daemons (hosts web-1, web-2, db-1), each with its own log, state
directory and ``--host-name``, ship alerts with ``syslog+tls://`` to one rsyslogd that the
test starts with the collector configuration shipped in
``examples/collector/rsyslog-kexecwatch.conf`` (the README quotes the same file) and stops
by pid. Recordings are appended to the logs while the collector runs, while it is stopped,
after db-1 was killed with SIGKILL and restarted (the collector still down), and after the
collector came back. Oracle: the collector's file holds, for each host, exactly the golden
alert ids of the recordings appended to that host's log, each once, in the order of the
host's own NDJSON output. Certificates come from ``openssl`` (tests/tlscerts.py).

About 30 s here (the backoff after the outage dominates).
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kexecwatch.core.detect.alerts import document_alert_id
from tests.daemon.harness import REPO, Daemon
from tests.tlscerts import Pki, make_pki

pytestmark = pytest.mark.slow

SNIPPET = REPO / "examples" / "collector" / "rsyslog-kexecwatch.conf"
FIXTURES = REPO / "fixtures" / "audit" / "raw"
GOLDEN = REPO / "fixtures" / "golden" / "raw"
HOSTS = ("web-1", "web-2", "db-1")
# Recordings in the order of their record times (the daemon's time policy sees one log).
BEFORE = "v7-excluded-parents"  # collector up
DURING = ("v7-other-parents", "v7-hostile-args")  # collector stopped
AFTER_KILL = "v7-wrappers"  # db-1 restarted after SIGKILL, collector still stopped
LAST = {"web-1": "evasion-args", "web-2": "evasion-unpackaged-path", "db-1": "evasion-syscalls"}

if shutil.which("rsyslogd") is None or not list(Path("/usr/lib").glob("*/rsyslog/lmnsd_gtls.so")):
    pytest.skip(
        "rsyslog and rsyslog-gnutls are not installed (./scripts/test installs them)",
        allow_module_level=True,
    )


def golden_ids(name: str) -> list[str]:
    lines = (GOLDEN / f"{name}.alerts.jsonl").read_text().splitlines()
    return [document_alert_id(json.loads(x)) for x in lines]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Collector:
    """An rsyslogd of our own (never the system's service): ``-n -f CONF -i PIDFILE``."""

    def __init__(self, tmp: Path, pki: Pki, *, cert: Path | None = None) -> None:
        tmp.mkdir(parents=True)
        self.port = free_port()
        self.out = tmp / "alerts.log"
        self.conf = tmp / "rsyslog.conf"
        self.pidfile = tmp / "rsyslogd.pid"
        self.stderr = tmp / "rsyslogd.stderr"
        work = tmp / "work"
        work.mkdir()
        cert = cert or pki.server
        text = SNIPPET.read_text()
        for old, new in (
            ("/etc/kexecwatch-collector/ca.pem", str(pki.ca)),
            ("/etc/kexecwatch-collector/collector.pem", str(cert)),
            ("/etc/kexecwatch-collector/collector.key", str(Pki.key(cert))),
            ("/var/log/kexecwatch-fleet/alerts.log", str(self.out)),
            ('port="6514"', f'port="{self.port}" address="127.0.0.1"'),
            ("global(", f'global(\n    workDirectory="{work}"'),
        ):
            assert old in text, old
            text = text.replace(old, new, 1)
        self.conf.write_text(text)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.stderr, "ab") as err:
            self.proc = subprocess.Popen(
                ["rsyslogd", "-n", "-f", str(self.conf), "-i", str(self.pidfile)],
                stdout=err,
                stderr=err,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.stderr.read_text()
            if self.pidfile.exists() and int(self.pidfile.read_text() or 0) == self.proc.pid:
                with socket.socket() as probe:
                    if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                        return
            time.sleep(0.1)
        raise AssertionError(f"rsyslogd did not listen:\n{self.stderr.read_text()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(20)
        self.proc = None

    def lines(self) -> list[tuple[str, str]]:
        """(host, alert id) of every line received so far, in file order."""
        if not self.out.exists():
            return []
        rows = []
        for line in self.out.read_text().splitlines():
            host, alert_id, doc = line.split(" ", 2)
            # the recordings have no node=, so the document names the daemon's host too
            assert json.loads(doc)["host"]["name"] == host, line
            rows.append((host, alert_id))
        return rows

    def wait_for(self, want: dict[str, list[str]], timeout: float = 90.0) -> None:
        """Wait until every host's ``want`` ids arrived from that host."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = set(self.lines())
            if all((host, i) in got for host, ids in want.items() for i in ids):
                return
            time.sleep(0.2)
        got = set(self.lines())
        missing = {h: sum((h, i) not in got for i in ids) for h, ids in want.items()}
        raise AssertionError(f"collector has {len(got)} lines; missing per host: {missing}")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def collectors() -> Iterator[list[Collector]]:
    started: list[Collector] = []
    yield started
    for c in started:  # stopped by pid even when the test failed
        c.stop()


def append(log: Path, recording: str) -> None:
    with open(log, "ab") as fh:
        fh.write((FIXTURES / f"{recording}.log").read_bytes())


def start_daemon(tmp: Path, host: str, port: int, *tls: str) -> Daemon:
    tmp.mkdir(exist_ok=True)
    log = tmp / "audit.log"
    log.touch()
    return Daemon(
        tmp,
        log,
        outputs=(f"syslog+tls://127.0.0.1:{port}",),
        host_name=host,
        extra_args=tls,
    )


def test_three_hosts_one_collector_exactly_once_through_outage_and_kill(
    tmp_path: Path, pki: Pki, collectors: list[Collector]
) -> None:
    began = time.monotonic()
    collector = Collector(tmp_path / "collector", pki)
    collectors.append(collector)
    collector.start()
    tls = ("--tls-ca", str(pki.ca), "--tls-cert", str(pki.client), "--tls-key",
           str(Pki.key(pki.client)))  # fmt: skip
    daemons = {h: start_daemon(tmp_path / h, h, collector.port, *tls) for h in HOSTS}
    expected: dict[str, list[str]] = {h: [] for h in HOSTS}

    def feed(host: str, recording: str) -> None:
        append(tmp_path / host / "audit.log", recording)
        expected[host] += golden_ids(recording)

    for h in HOSTS:
        feed(h, BEFORE)
    collector.wait_for(expected)

    collector.stop()
    for recording in DURING:
        for h in HOSTS:
            feed(h, recording)
    for h, d in daemons.items():
        d.wait_alerts(len(expected[h]))  # alerted (NDJSON) while the collector is down
        d.wait_log("event=output_failed")
    daemons["db-1"].kill()  # SIGKILL with alerts queued for the collector
    daemons["db-1"] = start_daemon(tmp_path / "db-1", "db-1", collector.port, *tls)
    feed("db-1", AFTER_KILL)
    for h in ("web-1", "web-2"):
        feed(h, AFTER_KILL)
    time.sleep(3)  # the collector stays down a few seconds in all
    collector.start()
    collector.wait_for(expected)
    for h in HOSTS:
        feed(h, LAST[h])
    for h, d in daemons.items():
        d.wait_alerts(len(expected[h]))
    time.sleep(2)  # alerts beyond the golden ones (a log of several recordings) too
    # Each host's NDJSON output is its exactly-once record (tests/daemon/test_reliability):
    # it holds the golden alerts of its recordings, and the collector must hold the same.
    own = {h: daemons[h].alert_ids() for h in HOSTS}
    collector.wait_for(own)
    time.sleep(1)  # a repeated delivery would arrive right behind
    for h, d in daemons.items():
        assert d.stop() == 0, d.stderr()[-2000:]
        assert d.alert_ids() == own[h]
    got = collector.lines()
    for h in HOSTS:
        assert len(set(own[h])) == len(own[h]), f"{h}: a repeated alert on NDJSON"
        assert set(expected[h]) <= set(own[h]), f"{h}: golden alerts missing from NDJSON"
        received = [i for host, i in got if host == h]
        # every alert exactly once, in the host's own order, nothing else
        assert received == own[h], f"{h}: {len(received)} received, {len(own[h])} expected"
    assert {host for host, _ in got} == set(HOSTS)
    print(
        f"fleet: {time.monotonic() - began:.1f} s; "
        + ", ".join(f"{h} {len(own[h])} expected ({len(expected[h])} golden) / "
                    f"{sum(host == h for host, _ in got)} received" for h in HOSTS)
    )  # fmt: skip


@pytest.mark.parametrize(
    ("case", "problem"),
    [
        ("wrong CA", "TLS certificate verify failed: unable to get local issuer certificate"),
        ("expired certificate", "TLS certificate verify failed: certificate has expired"),
        ("wrong server name", "TLS certificate verify failed: Hostname mismatch"),
    ],
)
def test_bad_certificates_fail_with_a_clear_message_and_nothing_in_clear(
    tmp_path: Path, pki: Pki, collectors: list[Collector], case: str, problem: str
) -> None:
    cert = pki.expired_server if case == "expired certificate" else pki.server
    collector = Collector(tmp_path / "collector", pki, cert=cert)
    collectors.append(collector)
    collector.start()
    ca = pki.other_ca if case == "wrong CA" else pki.ca
    tls = ["--tls-ca", str(ca), "--tls-cert", str(pki.client), "--tls-key",
           str(Pki.key(pki.client))]  # fmt: skip
    if case == "wrong server name":
        tls += ["--tls-server-name", "collector.example"]
    d = start_daemon(tmp_path / "host", "web-9", collector.port, *tls)
    append(tmp_path / "host" / "audit.log", BEFORE)
    d.wait_alerts(len(golden_ids(BEFORE)))
    d.wait_log(problem)
    assert d.stop() == 0
    assert collector.lines() == []
    assert f'error="{problem}' in d.stderr()
