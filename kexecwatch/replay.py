"""``kexecwatch replay``: run the detector over recorded audit logs.

A thin shell: it opens the sources, feeds their bytes through one
:class:`~kexecwatch.core.detector.Detector` as one stream, writes alerts (or
process events) to stdout, and diagnostics and a summary to stderr.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from kexecwatch.core.alerts import Alert, AlertsSuppressed, to_json_line, to_text_line
from kexecwatch.core.assembler import EventsLost
from kexecwatch.core.detector import DetectionRule, Detector, DetectorOptions, Output
from kexecwatch.core.process import ProcessEvent
from kexecwatch.core.record import ParseIssue
from kexecwatch.core.textsafe import escape_text
from kexecwatch.sources import Source, read_chunks

__all__ = ["ReplayResult", "replay"]

#: How many diagnostics are printed one by one before only being counted.
MAX_SHOWN_DIAGNOSTICS = 20


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What a replay found."""

    alerts: int
    detector: Detector
    seconds: float
    bytes_read: int


def replay(
    sources: Sequence[Source],
    rules: Sequence[DetectionRule],
    *,
    host_name: str,
    options: DetectorOptions,
    out_format: str,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    progress: bool = False,
) -> ReplayResult:
    """Replay ``sources`` through the rules; write outputs; return the counts.

    Raises:
        InputError: when a source cannot be read.
    """
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    detector = Detector(rules, host_name=host_name, options=options)
    shown = 0
    total_bytes = 0
    started = time.monotonic()
    binary_out = getattr(out, "buffer", None)

    def emit(outputs: list[Output], source_name: str) -> None:
        nonlocal shown
        for item in outputs:
            if isinstance(item, Alert | ProcessEvent):
                if isinstance(item, Alert) == options.emit_events:
                    continue  # --events prints process events instead of alerts
                doc = item.to_document()
                if out_format == "json":
                    line = to_json_line(doc)
                    if binary_out is not None:
                        binary_out.write(line)
                    else:
                        out.write(line.decode("utf-8"))
                else:
                    out.write(to_text_line(doc) + "\n")
            else:
                if shown < MAX_SHOWN_DIAGNOSTICS:
                    err.write(_describe(item, source_name) + "\n")
                elif shown == MAX_SHOWN_DIAGNOSTICS:
                    err.write("kexecwatch: further diagnostics are only counted\n")
                shown += 1

    bar = _Progress(sources, err) if progress else None
    for source in sources:
        emit(detector.switch_source(source.name), source.name)
        for chunk in read_chunks(source):
            total_bytes += len(chunk)
            emit(detector.feed(chunk), source.name)
            if bar is not None:
                bar.advance(len(chunk))
        if bar is not None:
            bar.next_file()
    emit(detector.flush(), sources[-1].name if sources else "-")
    if bar is not None:
        bar.close()
    if binary_out is not None:
        binary_out.flush()
    out.flush()
    return ReplayResult(detector.stats.alerts, detector, time.monotonic() - started, total_bytes)


def _describe(item: Output, source_name: str) -> str:
    where = escape_text(source_name)
    if isinstance(item, ParseIssue):
        snippet = (
            f": {escape_text(item.snippet.decode('utf-8', 'surrogateescape'))[:80]}"
            if item.snippet
            else ""
        )
        return f"kexecwatch: {where}:{item.line_no}: parse issue: {item.reason}{snippet}"
    if isinstance(item, EventsLost):
        node = f" on node {escape_text(item.node)}" if item.node else ""
        return (
            f"kexecwatch: {where}: {item.count} event(s) lost{node}: serials "
            f"{item.first_serial}-{item.last_serial} missing before {item.before}"
        )
    if isinstance(item, AlertsSuppressed):
        return f"kexecwatch: {item.describe()}"
    return f"kexecwatch: {where}: {item!r}"  # pragma: no cover - all kinds handled


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
