"""``kexecwatch replay``: run the detector over recorded audit logs.

A thin shell: it opens the sources, feeds their bytes through one
:class:`~kexecwatch.adapters.session.Session` as one stream, writes alerts (or
process events) to stdout, and diagnostics and a summary to stderr.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any, TextIO

from kexecwatch.adapters.session import Diagnostic, Session
from kexecwatch.adapters.sources import Source, read_chunks
from kexecwatch.core import (
    Alert,
    DetectionRule,
    Detector,
    DetectorOptions,
    EventLines,
    Frozen,
    Output,
    ParseIssue,
    ProcessEvent,
    Stats,
    Verdict,
    escape_text,
    set_field,
    to_json_line,
    to_text_line,
)
from kexecwatch.errors import InputError

__all__ = [
    "MAX_SHOWN_DIAGNOSTICS",
    "ReplayResult",
    "format_document",
    "replay",
    "summary",
    "whole_events",
]

#: How many diagnostics are printed one by one before only being counted.
MAX_SHOWN_DIAGNOSTICS = 20


class ReplayResult(Frozen):
    """What a replay found.

    Attributes:
        without_records: the sources that held bytes but not one audit record,
            with the number of bytes read from each.
    """

    __slots__ = (  # noqa: RUF023 - the fields, in order
        "alerts",
        "detector",
        "seconds",
        "bytes_read",
        "sources",
        "without_records",
    )

    alerts: int
    detector: Detector
    seconds: float
    bytes_read: int
    sources: int
    without_records: tuple[tuple[str, int], ...]

    def __init__(  # noqa: PLR0917 - a dataclass's positional fields
        self,
        alerts: int,
        detector: Detector,
        seconds: float,
        bytes_read: int,
        sources: int = 0,
        without_records: tuple[tuple[str, int], ...] = (),
    ) -> None:
        set_field(self, "alerts", alerts)
        set_field(self, "detector", detector)
        set_field(self, "seconds", seconds)
        set_field(self, "bytes_read", bytes_read)
        set_field(self, "sources", sources)
        set_field(self, "without_records", without_records)

    def input_error(self) -> InputError | None:
        """The error to report when the input was not an audit log: a source with
        bytes but no audit record, or no audit record in the whole input."""
        if self.without_records:
            name, size = self.without_records[0]
            more = len(self.without_records) - 1
            others = f"; {more} other source(s) hold none either" if more else ""
            return InputError(f"{_shown(name)}: no audit record in it ({size} bytes read){others}")
        if self.detector.stats.records:
            return None
        if self.sources == 1:
            return InputError(f"{_shown(str(self.detector.source))}: no audit record in it (empty)")
        return InputError(f"no audit record in any of the {self.sources} sources (all empty)")


def replay(
    sources: Sequence[Source],
    rules: Sequence[DetectionRule],
    *,
    host_name: str,
    options: DetectorOptions,
    out_format: str,
    host_id: str | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    progress: bool = False,
    sink: Callable[[dict[str, Any]], None] | None = None,
    label: str = "",
) -> ReplayResult:
    """Replay ``sources`` through the rules; write outputs; return the counts.

    Parse issues of a source are held back until it yields its first audit
    record, so that a file that is not an audit log is never echoed: see
    :meth:`ReplayResult.input_error`.

    Args:
        sink: when given, each output document goes to it instead of ``stdout``.
        label: put before each diagnostic (``host web-1: ``), to say whose it is.
        host_id: ``host.id`` for records without ``node=`` (``--host-id``).

    Raises:
        InputError: when a source cannot be read.
    """
    out = stdout or sys.stdout
    if options.emit_events and out_format == "json" and sink is None:
        # Plain execs' lines may come written by the native library (EventLines).
        options = replace(options, event_lines=True)
    session = Session(rules, host_name=host_name, options=options, host_id=host_id)
    detector = session.detector
    diagnostics = _Diagnostics(detector, stderr or sys.stderr, label)
    writer = _Writer(out, out_format, options.emit_events, sink, diagnostics)
    total_bytes = 0
    started = time.monotonic()

    bar = _Progress(sources, diagnostics.err) if progress else None
    for source in sources:
        # What the previous source left unended.
        writer.write(session, detector.switch_source(source.name))
        diagnostics.end_source(next_source=source.name)
        for chunk in whole_events(read_chunks(source)):
            size = len(chunk) - 1  # the frame is not the source's
            total_bytes += size
            diagnostics.source_bytes += size
            writer.write(session, session.feed(chunk, framed=True))
            if bar is not None:
                bar.advance(size)
        if bar is not None:
            bar.next_file()
    writer.write(session, detector.flush())
    diagnostics.end_source()
    if bar is not None:
        bar.close()
    writer.flush()
    return ReplayResult(
        detector.stats.alerts,
        detector,
        time.monotonic() - started,
        total_bytes,
        len(sources),
        tuple(diagnostics.without_records),
    )


#: The start of a syscall event's first record, newline included.
_EVENT_START = b"\ntype=SYSCALL msg=audit("


def whole_events(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The same bytes, framed (a newline in front that is not part of them: see
    :meth:`~kexecwatch.core.detect.detector.Detector.feed`), in chunks that end between
    two events: each chunk is cut just before the last syscall record that starts in
    it, and the rest goes in front of the next one (a chunk where none starts goes on
    whole). One copy each: the frame, what was held and the chunk's head, joined.

    The detector gives the same outputs for any chunking; this one spares it the event
    that a chunk would otherwise end in the middle of. Such an event waits, incomplete,
    in the assembler, which the native scanner never fills: the Python scanner reads it
    and then the lines after it, record by record, with the full parser.
    """
    held = b""
    for chunk in chunks:
        cut = chunk.rfind(_EVENT_START) + 1
        if cut <= 0:
            yield b"".join((b"\n", held, chunk))
            held = b""
            continue
        yield b"".join((b"\n", held, memoryview(chunk)[:cut]))
        held = chunk[cut:]
    if held:
        yield b"\n" + held


def format_document(doc: dict[str, Any], out_format: str) -> bytes:
    """One output line for ``doc``: NDJSON for ``json``, a safe line for ``text``."""
    if out_format == "json":
        return to_json_line(doc)
    return (to_text_line(doc) + "\n").encode("utf-8")


def summary(stats: Stats, sources: int, bytes_read: int) -> str:
    """The counts of the summary line, up to its unclosed ``(N source(s), X MB``."""
    s = stats
    return (
        f"{s.records} records, {s.events} events, {s.process_events} process "
        f"events, {s.alerts} alerts, {s.suppressed} suppressed, {s.parse_issues} parse "
        f"issues, {s.lost_events} lost events, {s.incomplete_events} incomplete events, "
        f"{s.event_errors} event errors ({sources} source(s), {bytes_read / 1e6:.1f} MB"
    )


class _Writer:
    """The replay's :class:`~kexecwatch.adapters.session.OutputSink`: alerts (or, with
    ``--events``, process events instead) to stdout or ``sink``, diagnostics to stderr."""

    def __init__(
        self,
        out: TextIO,
        out_format: str,
        events: bool,
        sink: Callable[[dict[str, Any]], None] | None,
        diagnostics: _Diagnostics,
    ) -> None:
        self._out = out
        self._binary = getattr(out, "buffer", None)
        self._format = out_format
        self._events = events
        self._sink = sink
        self._diagnostics = diagnostics
        self._lines: list[bytes] = []

    def write(self, session: Session, outputs: list[Output]) -> None:
        """Deliver what one chunk produced, in one write (not one per document)."""
        if any(isinstance(item, EventLines) for item in outputs):
            for item in outputs:
                if isinstance(item, EventLines):
                    self._lines.append(item.data)
                else:
                    session.deliver([item], self)
        else:
            session.deliver(outputs, self)
        if not self._lines:
            return
        data = b"".join(self._lines)
        self._lines.clear()
        if self._binary is not None:
            self._binary.write(data)
        else:
            self._out.write(data.decode("utf-8"))

    def _document(self, document: dict[str, Any]) -> None:
        if self._sink is not None:
            self._sink(document)
        else:
            self._lines.append(format_document(document, self._format))

    def alert(self, alert: Alert, document: dict[str, Any]) -> None:
        """An alert: shown unless ``--events`` shows process events instead."""
        if not self._events:
            self._document(document)

    def process(self, event: ProcessEvent, document: dict[str, Any]) -> None:
        """A process event (only asked for with ``--events``)."""
        self._document(document)

    def diagnostic(self, item: Diagnostic, text: str) -> None:
        """A diagnostic: to stderr, as :class:`_Diagnostics` decides."""
        self._diagnostics.add(item, text)

    def verdict(self, verdict: Verdict, document: dict[str, Any]) -> None:
        """Verdicts are not asked for by ``replay``."""

    def flush(self) -> None:
        """Flush stdout."""
        if self._binary is not None:
            self._binary.flush()
        self._out.flush()


class _Diagnostics:
    """Diagnostics to stderr, one line each: the first ones shown, the rest counted.

    A source's parse issues wait until the source has yielded an audit record;
    when it ends without one, they are dropped and the source is noted instead.
    """

    def __init__(self, detector: Detector, err: TextIO, label: str) -> None:
        self._detector = detector
        self.err = err
        self._head = f"kexecwatch: {label}"
        self._shown = 0
        self._held: list[str] = []
        self._records_before = 0
        self._source: str | None = None  # the detector's is already the next one's at the end
        self.source_bytes = 0
        self.without_records: list[tuple[str, int]] = []

    def add(self, item: Diagnostic, text: str) -> None:
        if isinstance(item, ParseIssue) and not self._has_records():
            if len(self._held) < MAX_SHOWN_DIAGNOSTICS:
                self._held.append(text)
            return
        self._release()
        self._write(text)

    def end_source(self, next_source: str | None = None) -> None:
        """The source being read is done; the detector moves on to ``next_source``."""
        if self._has_records():
            self._release()
        elif self.source_bytes and self._source is not None:
            self.without_records.append((self._source, self.source_bytes))
        self._source = next_source
        self._held.clear()
        self._records_before = self._detector.stats.records
        self.source_bytes = 0

    def _has_records(self) -> bool:
        return self._detector.stats.records > self._records_before

    def _release(self) -> None:
        held, self._held = self._held, []
        for item in held:
            self._write(item)

    def _write(self, text: str) -> None:
        if self._shown < MAX_SHOWN_DIAGNOSTICS:
            self.err.write(self._head + text + "\n")
        elif self._shown == MAX_SHOWN_DIAGNOSTICS:
            self.err.write(self._head + "further diagnostics are only counted\n")
        self._shown += 1


def _shown(name: str) -> str:
    return "standard input" if name == "-" else escape_text(name)


class _Progress:
    """A rich progress bar over the total size, for an interactive stderr."""

    def __init__(self, sources: Sequence[Source], err: TextIO) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

        total = sum(s.size or 0 for s in sources) or None
        self._progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            console=Console(file=err),
            transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task("replay", total=total)

    def advance(self, n: int) -> None:
        self._progress.advance(self._task, n)

    def next_file(self) -> None:
        self._progress.refresh()

    def close(self) -> None:
        self._progress.stop()
