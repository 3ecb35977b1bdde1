"""Shared pytest options: ``--update-golden`` rewrites golden files."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite golden files from the current output instead of comparing",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture
def udp_server() -> Iterator[socket.socket]:
    """A real UDP socket bound on 127.0.0.1 (a syslog collector); ``recv`` waits up to 20 s."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind(("127.0.0.1", 0))
    srv.settimeout(20)
    yield srv
    srv.close()


@pytest.fixture(autouse=True)
def _caplog_as_the_daemon_writes(request: pytest.FixtureRequest) -> None:
    """``caplog.text`` shows records as the daemon's stderr does (logfmt, with fields)."""
    if "caplog" in request.fixturenames:
        from kexecwatch.adapters.daemonlog import LogFormatter

        caplog: pytest.LogCaptureFixture = request.getfixturevalue("caplog")
        caplog.handler.setFormatter(LogFormatter())
