"""Explicit test hooks, read from the environment by the shells (never by the core).

``KEXECWATCH_TEST_FAULT=TEXT``: handling any event whose records contain ``TEXT`` raises
:class:`~kexecwatch.core.detect.detector.InjectedFault`, so that tests drive the isolation of
one bad event through a real ``replay`` or ``run`` process (README, "One bad event").
Unset, as in production, it changes nothing.
"""

from __future__ import annotations

import os

__all__ = ["FAULT_ENV", "fault_marker"]

FAULT_ENV = "KEXECWATCH_TEST_FAULT"


def fault_marker() -> bytes | None:
    """The bytes that make handling an event fail, or ``None`` (the normal case)."""
    text = os.environ.get(FAULT_ENV)
    return os.fsencode(text) if text else None
