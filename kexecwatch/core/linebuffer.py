"""Line buffer: turns chunks of bytes into complete lines with their positions.

Rule 1: a line is only returned once its newline has arrived; the partial tail
waits for the next chunk. Rule 2: a line longer than ``max_line`` is not kept
in memory: it is reported once and skipped up to its newline.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

__all__ = ["DEFAULT_MAX_LINE", "Line", "LineBuffer"]

#: auditd cuts records at 8970 bytes; anything far longer is not a record.
DEFAULT_MAX_LINE = 1 << 20


@dataclass(frozen=True, slots=True)
class Line:
    """A complete line (without its newline) and where it started."""

    data: bytes
    line_no: int
    source: Hashable
    offset: int
    overlong: bool = False


class LineBuffer:
    """Collects bytes; returns complete lines.

    Args:
        max_line: the longest line kept; longer ones are reported and skipped.
    """

    def __init__(self, *, max_line: int = DEFAULT_MAX_LINE) -> None:
        self.max_line = max_line
        self.line_no = 0
        self.source: Hashable = None
        self.offset = 0  # source offset of the first byte not yet returned
        self._tail = b""
        self._skipping = False
        self.overlong = 0

    @property
    def pending(self) -> bytes:
        """The partial last line held back, waiting for its newline."""
        return self._tail

    def switch(self, source: Hashable, offset: int = 0) -> bytes:
        """Start reading another source; return any partial line left behind."""
        left = self._tail
        self._tail = b""
        self._skipping = False
        self.source = source
        self.offset = offset
        return left

    def feed(self, data: bytes) -> list[Line]:
        """Add ``data``; return the lines it completes."""
        lines: list[Line] = []
        if not data:
            return lines
        buf = self._tail + data if self._tail else data
        start = 0
        base = self.offset - len(self._tail)
        source = self.source
        line_no = self.line_no
        find = buf.find
        while True:
            nl = find(b"\n", start)
            if nl < 0:
                break
            line_no += 1
            if self._skipping:
                self._skipping = False
                lines.append(Line(b"", line_no, source, base + start, overlong=True))
            else:
                lines.append(Line(buf[start:nl], line_no, source, base + start))
            start = nl + 1
        self.line_no = line_no
        rest = buf[start:]
        if len(rest) > self.max_line:
            if not self._skipping:
                self.overlong += 1
            self._skipping = True
            rest = b""
        self._tail = rest
        self.offset += len(data)
        return lines

    @property
    def boundary(self) -> int:
        """Source offset just past the last complete line returned."""
        return self.offset - len(self._tail) if not self._skipping else self.offset
