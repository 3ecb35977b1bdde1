"""Standard streams that never fail on undecodable text."""

from __future__ import annotations

import io
import sys
from typing import TextIO

__all__ = ["stderr_text"]


def stderr_text() -> TextIO:
    """stderr with ``backslashreplace`` errors, so a stray surrogate never raises."""
    stream = sys.stderr
    if isinstance(stream, io.TextIOWrapper) and stream.errors != "backslashreplace":
        stream.reconfigure(errors="backslashreplace")
    return stream
