"""Records: one audit log line, parsed into its header and its raw fields.

Theory of operation: :func:`parse_record` reads only the header of a line
(``[node=NAME ]type=TYPE msg=audit(SEC.MMM:SERIAL):``) and keeps the rest as
bytes. Fields are split later, and only for the records that need them
(:mod:`kexecwatch.core.audit.fields`), because most records of a busy log never
matter to a rule.

Rule 1: nothing here raises on input. A line that is not a record becomes a
:class:`ParseIssue` that carries its line number and the reason.
Rule 2: values stay bytes. Decoding happens per field at the edge.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from kexecwatch.core.text.textsafe import VALUE_BYTES, clip, escape_text, quote_input
from kexecwatch.errors import SourceLocation

__all__ = [
    "MAX_TIME_MS",
    "AuditRecord",
    "EventId",
    "ParseIssue",
    "TimeJump",
    "line_time_ms",
    "parse_record",
    "quotable",
    "record_times",
    "where_text",
]

ENRICHED_SEPARATOR = b"\x1d"

#: The first record time (ms since the epoch) that is no date: year 10000. A record
#: dated so is read, but its time is never used (README, "Time policy").
MAX_TIME_MS = 253_402_300_800_000

_HEADER = re.compile(
    rb"(?:node=(?P<node>[^ \x1d]*) )?type=(?P<type>[A-Za-z0-9_\[\]]+) "
    rb"msg=audit\((?P<sec>[0-9]{1,20})\.(?P<ms>[0-9]{1,6}):(?P<serial>[0-9]{1,20})\):?"
)
_SNIPPET = 120
# A record header's time anywhere in a chunk, read as parse_record reads it.
_TIME = re.compile(rb"msg=audit\(([0-9]{1,20})\.([0-9]{1,6}):")
_HEAD = 160  # where a line's header ends at the latest; node= names are short


class EventId(NamedTuple):
    """The kernel's id of one event: seconds, milliseconds and serial.

    Records with the same node and ``EventId`` form one event. ``str()`` gives
    the familiar ``sec.mmm:serial`` spelling. A named tuple rather than a
    dataclass because it keys every dict of the assembler: hashing and
    comparing happen in C, which the fast path measurably needs.
    """

    sec: int
    msec: int
    serial: int

    @property
    def time_ms(self) -> int:
        """Milliseconds since the epoch: the syscall's entry time."""
        return self.sec * 1000 + self.msec

    def __str__(self) -> str:
        return f"{self.sec}.{self.msec:03d}:{self.serial}"

    @classmethod
    def from_str(cls, text: str) -> EventId:
        """Parse ``sec.mmm:serial``; raises ``ValueError`` on anything else."""
        stamp, _, serial = text.partition(":")
        sec, _, msec = stamp.partition(".")
        return cls(int(sec), int(msec), int(serial))


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One line of the audit log.

    Attributes:
        node: the ``node=`` name auditd prefixed, or ``None``.
        type: the record type name as written (``SYSCALL``, ``UNKNOWN[1334]``).
        id: the event id from ``msg=audit(...)``.
        body: the raw fields after the header, up to the ENRICHED separator.
        enriched: what follows the 0x1d separator (auditd's interpretations).
        line_no: 1-based line number in its stream.
    """

    node: str | None
    type: str
    id: EventId
    body: bytes
    enriched: bytes
    line_no: int


@dataclass(frozen=True, slots=True)
class ParseIssue:
    """A line that could not be read as a record, or a record with a problem.

    Attributes:
        line_no: 1-based line number in its source (0 when not tied to a line).
        reason: a short sentence naming the problem.
        snippet: the start of the offending line, for the operator; show it only
            through :func:`~kexecwatch.core.text.textsafe.quote_input`.
        length: the length of the whole offending line in bytes (0 when unknown).
        source: the source the line came from, as given to the detector
            (``None`` when not known yet).
    """

    line_no: int
    reason: str
    snippet: bytes = b""
    length: int = 0
    source: Hashable = None

    @property
    def where(self) -> SourceLocation:
        """``source:line`` of the offending line (the line left out when unknown)."""
        return SourceLocation(str(self.source), self.line_no or None)

    def describe(self) -> str:
        """One terminal-safe line: where, the reason, and a short quote of the line."""
        where = where_text(self.source, self.line_no)
        if self.snippet:
            quoted = f": {quote_input(self.snippet, self.length)}"
        else:
            quoted = f" ({self.length} bytes, not shown)" if self.length else ""
        reason = escape_text(clip(self.reason, VALUE_BYTES))  # it may name input: a record type
        return f"{where}: parse issue: {reason}{quoted}"


@dataclass(frozen=True, slots=True)
class TimeJump:
    """A record dated a window or more away from its node's present: one misdated
    record, or a clock stepped back (README, "Time policy"). The record was read as
    usual; only its time was not taken as the present.

    Attributes:
        line_no: 1-based line number, in its source, of the record that jumped.
        reason: a short sentence naming the jump and what was made of it.
        source: the source the line came from (``None`` when not known yet).
    """

    line_no: int
    reason: str
    source: Hashable = None

    def describe(self) -> str:
        """One terminal-safe line: where, and the jump."""
        return f"{where_text(self.source, self.line_no)}: time: {escape_text(self.reason)}"


def where_text(source: Hashable, line_no: int) -> str:
    """Where a diagnostic's line is, terminal-safe: ``source:line`` (the line left out
    when unknown), or ``line N`` while the source is not known yet."""
    if source is None:
        return f"line {line_no}"
    return escape_text(str(SourceLocation(str(source), line_no or None)))


def parse_record(line: bytes, line_no: int = 0) -> AuditRecord | ParseIssue:
    """Parse one line (without its newline) into a record.

    Args:
        line: the bytes of one line; a trailing ``\\r`` is tolerated.
        line_no: its 1-based line number, carried into the result.

    Returns:
        An :class:`AuditRecord`, or a :class:`ParseIssue` naming why not.
        Never raises.
    """
    match = _HEADER.match(line)
    if match is None or b"\x00" in line:
        return ParseIssue(line_no, _why_not_a_record(line), quotable(line[:_SNIPPET]), len(line))
    node_raw, type_raw, sec, ms_digits, serial = match.groups()
    node = node_raw.decode("utf-8", "surrogateescape") if node_raw is not None else None
    # The records of one event follow each other: their id is read once.
    raw_id = (sec, ms_digits, serial)
    last_raw, event_id = _LAST_ID[0]
    if last_raw != raw_id:
        event_id = EventId(
            int(sec), int(ms_digits) if len(ms_digits) <= 3 else int(ms_digits[:3]), int(serial)
        )
        _LAST_ID[0] = raw_id, event_id
    rest = line[match.end() :]
    if rest.endswith(b"\r"):
        rest = rest[:-1]
    body, sep, enriched = rest.partition(ENRICHED_SEPARATOR)
    return AuditRecord(
        node=node,
        type=_TYPES.get(type_raw) or _type_name(type_raw),
        id=event_id,
        body=body.strip(b" "),
        enriched=enriched if sep else b"",
        line_no=line_no,
    )


def record_times(data: bytes, end: int | None = None) -> Iterator[tuple[int, int]]:
    """``(offset, epoch ms)`` of each record header in ``data[:end]``, in order.

    The one reading of record time outside the detector, for shells that pace or
    bucket bytes by it (the live view's replay and its sparkline).
    """
    for m in _TIME.finditer(data, 0, len(data) if end is None else end):
        sec, ms = m.groups()
        yield m.start(), int(sec) * 1000 + (int(ms) if len(ms) <= 3 else int(ms[:3]))


def line_time_ms(line: bytes) -> int | None:
    """The record time of one audit line in epoch milliseconds, or ``None``."""
    return next((t for _, t in record_times(line, min(len(line), _HEAD))), None)


# The last id read, as written and as read (one slot).
_LAST_ID: list[tuple[tuple[bytes, bytes, bytes], EventId]] = [((b"", b"", b""), EventId(0, 0, 0))]
# Record type names as text: a few dozen recur on every line.
_TYPES: dict[bytes, str] = {}


def _type_name(raw: bytes) -> str:
    name = raw.decode("ascii")
    if len(_TYPES) < 1024:
        _TYPES[raw] = name
    return name


def quotable(start: bytes) -> bytes:
    """What of a bad line's start a diagnostic may quote: nothing unless it is audit-shaped.

    A line without ``type=`` is not an audit record gone wrong but some other file's
    text (a password file piped in by mistake), so not one byte of it is kept.
    """
    return start if b"type=" in start else b""


def _why_not_a_record(line: bytes) -> str:
    if not line.strip():
        return "empty line"
    if b"\x00" in line:
        return "NUL byte in line"
    if b"type=" not in line:
        return "no type= field"
    if b"msg=audit(" not in line:
        return "no msg=audit( header"
    return "malformed header: expected type=TYPE msg=audit(SEC.MMM:SERIAL):"
