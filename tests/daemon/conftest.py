"""No daemon outlives its test, even a failed one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.daemon.harness import RUNNING


@pytest.fixture(autouse=True)
def _reap_daemons() -> Iterator[None]:
    yield
    while RUNNING:
        proc = RUNNING.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
