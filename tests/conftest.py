"""Shared pytest options: ``--update-golden`` rewrites golden files.

The scanner every in-process ``Detector`` uses is chosen here once, from
``KEXECWATCH_SCANNER`` as the command line chooses it (``python``, ``native``, or unset:
native when the library loads), so that one run of the suite exercises one scanner and
``scripts/test`` runs it once per scanner. The header of the run says which.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest
from hypothesis import settings

# No per-example time limit: hypothesis's default deadline (200 ms) is a timing check, and
# timing belongs in the benchmark scripts; on a loaded machine it failed examples that were
# right (tests/core/audit/test_fields.py at 217 ms and 378 ms). A hang is still caught by
# the tests' own give-up limits.
settings.register_profile("kexecwatch", deadline=None)
settings.load_profile("kexecwatch")


def pytest_configure(config: pytest.Config) -> None:
    from kexecwatch.errors import KexecwatchError
    from kexecwatch.native.choice import install

    try:
        config.stash[_SCANNER] = install().describe()
    except KexecwatchError as exc:  # KEXECWATCH_SCANNER=native, library missing
        raise pytest.UsageError(str(exc)) from exc


def pytest_report_header(config: pytest.Config) -> str:
    return f"kexecwatch scanner: {config.stash.get(_SCANNER, '?')}"


_SCANNER = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite golden files from the current output instead of comparing",
    )


@pytest.fixture(scope="session", autouse=True)
def _rule_cache_of_the_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every kexecwatch the tests start keeps its rule cache in this run's temporary
    directory, never in the user's ``~/.cache``. One cache serves the whole run, so most
    rule loads after the first are warm: the cache's sameness is exercised throughout."""
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if before is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = before


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
        from kexecwatch.adapters.daemon.daemonlog import LogFormatter

        caplog: pytest.LogCaptureFixture = request.getfixturevalue("caplog")
        caplog.handler.setFormatter(LogFormatter())
