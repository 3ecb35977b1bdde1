"""Line buffer: turns chunks of bytes into complete lines with their positions.

Rule 1: a line is only returned once its newline has arrived; the partial tail
waits for the next chunk. Rule 2: a line longer than ``max_line`` is not kept
in memory: it is reported once and skipped up to its newline.
Rule 3 (speed): a block of lines (:meth:`LineBuffer.feed_region`) is built with one copy,
with a newline in front (:attr:`Region.framed`), and its lines are not counted until
someone asks: the reader of the block says where it ended (:meth:`LineBuffer.numbered`),
which spares a pass over every byte.
"""

from __future__ import annotations

from collections.abc import Hashable

from kexecwatch.core.text.frozen import Frozen, set_field

__all__ = ["DEFAULT_MAX_LINE", "Line", "LineBuffer", "Region"]

#: auditd cuts records at 8970 bytes; anything far longer is not a record.
DEFAULT_MAX_LINE = 1 << 20
_NL = ord("\n")


class Line(Frozen):
    """A complete line (without its newline) and where it started."""

    __slots__ = (  # noqa: RUF023 - the fields, in order
        "data",
        "line_no",
        "source",
        "offset",
        "overlong",
    )

    data: bytes
    line_no: int
    source: Hashable
    offset: int
    overlong: bool

    def __init__(
        self,
        data: bytes,
        line_no: int,
        source: Hashable,
        offset: int,
        overlong: bool = False,
    ) -> None:
        set_field(self, "data", data)
        set_field(self, "line_no", line_no)
        set_field(self, "source", source)
        set_field(self, "offset", offset)
        set_field(self, "overlong", overlong)


class Region(Frozen):
    """Complete lines in one block, behind a newline.

    Attributes:
        framed: a newline, then the lines, each with its newline: every line, the
            first too, follows a newline, so a reader can search for a line start
            (``b"\ntype=SYSCALL"``) in one call without copying the block first.
            The lines start at index 1.
        line_no: the line number of the first line.
        source: where the lines come from.
        offset: the source offset of the first line's first byte (``framed[1]``).
    """

    __slots__ = ("framed", "line_no", "source", "offset")  # noqa: RUF023 - the fields, in order

    framed: bytes
    line_no: int
    source: Hashable
    offset: int

    def __init__(self, framed: bytes, line_no: int, source: Hashable, offset: int) -> None:
        set_field(self, "framed", framed)
        set_field(self, "line_no", line_no)
        set_field(self, "source", source)
        set_field(self, "offset", offset)

    @property
    def data(self) -> bytes:
        """The lines without the newline in front (a copy)."""
        return self.framed[1:]


class LineBuffer:
    """Collects bytes; returns complete lines.

    Args:
        max_line: the longest line kept; longer ones are reported and skipped.
    """

    def __init__(self, *, max_line: int = DEFAULT_MAX_LINE) -> None:
        self.max_line = max_line
        self._line_no = 0
        self._unnumbered = b""  # the last block returned, while its lines are uncounted
        self.source: Hashable = None
        self.offset = 0  # source offset of the first byte not yet returned
        self._tail = b""
        self._skipping = False
        self.overlong = 0

    @property
    def line_no(self) -> int:
        """The number of the last complete line returned (0: none yet)."""
        if self._unnumbered:
            # Nobody said where the last block ended: count its lines (not the newline
            # in front).
            self._line_no += self._unnumbered.count(b"\n", 1)
            self._unnumbered = b""
        return self._line_no

    @line_no.setter
    def line_no(self, value: int) -> None:
        self._unnumbered = b""
        self._line_no = value

    def numbered(self, region: Region, next_line_no: int) -> None:
        """The reader of ``region`` (the last block returned) read all of it and the
        line after it would be number ``next_line_no``: :attr:`line_no` need not count.
        Said of any other block, it is ignored."""
        if region.framed is self._unnumbered:
            self._unnumbered = b""
            self._line_no = next_line_no - 1

    @property
    def pending(self) -> bytes:
        """The partial last line held back, waiting for its newline."""
        return self._tail

    def switch(self, source: Hashable, offset: int = 0) -> bytes:
        """Start reading another source; return any partial line left behind.

        Line numbers start again at 1: they count from where reading of the
        source started (its first line when ``offset`` is 0).
        """
        left = self._tail
        self._tail = b""
        self.line_no = 0
        self._skipping = False
        self.source = source
        self.offset = offset
        return left

    def feed(self, data: bytes) -> list[Line]:
        """Add ``data``; return the lines it completes."""
        overlong, region = self.feed_region(data)
        lines: list[Line] = [overlong] if overlong is not None else []
        if region is not None:
            buf = region.framed
            source = region.source
            base = region.offset - 1
            line_no = region.line_no
            start = 1
            find = buf.find
            while start < len(buf):
                nl = find(b"\n", start)
                lines.append(Line(buf[start:nl], line_no, source, base + start))
                line_no += 1
                start = nl + 1
            self.numbered(region, line_no)
        return lines

    def feed_region(
        self, data: bytes, *, framed: bool = False
    ) -> tuple[Line | None, Region | None]:
        """Add ``data``; return what it completes as one block of bytes.

        The same lines :meth:`feed` returns, without a :class:`Line` per line: an
        overlong line being skipped (when its newline arrives) and then one
        :class:`Region` of complete lines, so that a reader can scan many lines
        per call instead of one.

        ``framed``: ``data`` is a newline that is not part of the input, then the
        input's next bytes. When those end with a newline and no partial line waits,
        ``data`` is the block itself, not copied.
        """
        if framed:
            if not self._tail and not self._skipping and len(data) > 1 and data[-1] == _NL:
                whole = Region(data, self.line_no + 1, self.source, self.offset)
                self._unnumbered = data
                self.offset += len(data) - 1
                return None, whole
            data = data[1:]
        if not data:
            return None, None
        size = len(data)
        tail = self._tail
        base = self.offset - len(tail)
        if self._skipping and tail:
            # The tail is part of the overlong line: read from where it began.
            data, tail = tail + data, b""
        overlong: Line | None = None
        region: Region | None = None
        last = data.rfind(b"\n")
        if last < 0:
            rest = tail + data
        else:
            start = 0
            if self._skipping:
                self._skipping = False
                self.line_no += 1
                overlong = Line(b"", self.line_no, self.source, base, overlong=True)
                start = data.find(b"\n") + 1
            if last + 1 > start:
                # One copy: the block is made from the newline, the tail and the chunk.
                block = b"".join((b"\n", tail, memoryview(data)[start : last + 1]))
                region = Region(block, self.line_no + 1, self.source, base + start)
                self._unnumbered = block
            rest = data[last + 1 :]
        if len(rest) > self.max_line:
            if not self._skipping:
                self.overlong += 1
            self._skipping = True
            rest = b""
        self._tail = rest
        self.offset += size
        return overlong, region

    @property
    def boundary(self) -> int:
        """Source offset just past the last complete line returned."""
        return self.offset - len(self._tail) if not self._skipping else self.offset
