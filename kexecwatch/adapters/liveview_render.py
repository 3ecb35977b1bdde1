"""Draw a :class:`~kexecwatch.adapters.liveview_state.DashboardState` with rich.

Rule 1: pure. :func:`render_dashboard` reads the state and returns a renderable of
exactly ``height`` lines no wider than ``width``; it never writes, sleeps or reads a clock.
Rule 2: text from the log (and from rule files) is passed through
:func:`~kexecwatch.core.textsafe.escape_text` and only ever placed in
:class:`rich.text.Text` objects, never in markup strings. So ``[bold]`` shows as typed,
and escape sequences (clear screen, set title, OSC 8 links) show as ``\\x1b...``
instead of reaching the terminal. Every line is cut with an ellipsis, never wrapped,
except in the alert's JSON view, which folds long lines so that nothing is hidden.
"""

from __future__ import annotations

from datetime import UTC, datetime

from rich import box
from rich.cells import cell_len, chop_cells
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.text import Text

from kexecwatch.adapters.liveview_state import ActivityRow, AlertRow, DashboardState
from kexecwatch.core import jsontext
from kexecwatch.core.textsafe import escape_json_text, escape_text

__all__ = ["HEADER_LINES", "render_dashboard", "sparkline"]

HEADER_LINES = 4
SEVERITY_STYLES = {
    "low": "green",
    "medium": "bold yellow",
    "high": "bold red",
    "critical": "bold white on red",
}
_BARS = " ▁▂▃▄▅▆▇█"
_SEP = (" │ ", "dim")
_SELECTED = "on grey23"


def render_dashboard(state: DashboardState, width: int, height: int) -> RenderableType:
    """The whole screen for ``state`` at ``width`` x ``height`` cells.

    Layout, top to bottom: a title bar, two lines of counters, the events-per-second
    sparkline, the alerts panel and the kexec activity panel (or, when an alert is
    open, its JSON), and a footer with the keys and the latest diagnostic.
    """
    width = max(width, 20)
    height = max(height, HEADER_LINES + 1)
    lines: list[RenderableType] = _header(state, width)
    body = height - HEADER_LINES - 1
    if state.detail is not None and 0 <= state.detail < len(state.alert_rows):
        lines.append(_detail_panel(state, state.alert_rows[state.detail], width, body))
    elif body >= 6:
        alerts_h = max(3, body * 11 // 20)
        lines.append(_alerts_panel(state, width, alerts_h))
        lines.append(_activity_panel(state, width, body - alerts_h))
    elif body >= 3:
        lines.append(_alerts_panel(state, width, body))
    else:
        lines.extend(Text("") for _ in range(body))
    lines.append(_footer(state, width))
    return Group(*lines)


# -- header ---------------------------------------------------------------------------


def _header(state: DashboardState, width: int) -> list[RenderableType]:
    if state.paused:
        status = "PAUSED (p resumes)"
    elif state.finished:
        status = "replay finished; q quits"
    else:
        status = state.status
    # The path goes last: it is the part that may be long, and the cut falls on it.
    title = _line(
        width,
        (" kexecwatch live │ ", "bold"),
        (f"{escape_text(status)} │ " if status else "", "bold yellow" if state.paused else ""),
        (f"{state.source} ", ""),
        (escape_text(state.path), "bold"),
        style="reverse",
        pad=True,
    )
    lag = "?" if state.lag is None else _size(state.lag)
    reading = _line(
        width,
        (f"offset {_size(state.offset)}  lag {lag}", ""),
        _SEP,
        (f"records {state.records:,} ({state.records_per_s:,.0f}/s)", ""),
        _SEP,
        (f"events {state.events:,} ({state.events_per_s:,.0f}/s)", ""),
        _SEP,
        (f"log {_clock(state.log_time_ms, seconds=True)}Z" if state.log_time_ms else "", "dim"),
    )
    counts = _line(
        width,
        (f"alerts {state.alerts}", "bold red" if state.alerts else "bold"),
        (f" (+{state.suppressed} suppressed)" if state.suppressed else "", "red"),
        _SEP,
        (f"lost events {state.lost_events}", "bold red" if state.lost_events else ""),
        _SEP,
        (f"parse issues {state.parse_issues}", "yellow" if state.parse_issues else ""),
        _SEP,
        (f"up {_duration(state.uptime_s)}", ""),
    )
    label = "events/s "
    suffix = f" peak {max(state.rate_history, default=0)}/s, 5 min"
    bar_width = max(1, width - len(label) - len(suffix))
    spark = _line(
        width,
        (label, "dim"),
        (sparkline(state.rate_history, bar_width), "cyan"),
        (suffix, "dim"),
    )
    return [title, reading, counts, spark]


def sparkline(values: list[int], width: int) -> str:
    """``values`` (oldest first) as ``width`` bar characters, newest on the right.

    Each character averages an equal share of the values; an empty history is blank.
    """
    if width <= 0:
        return ""
    if not values:
        return " " * width
    per = -(-len(values) // width)  # ceil: characters never outnumber values
    buckets = [values[max(0, end - per) : end] for end in range(len(values), 0, -per)][::-1]
    means = [sum(b) / len(b) for b in buckets]
    peak = max(means)
    top = len(_BARS) - 1
    bars = "".join(
        _BARS[0] if m <= 0 or peak <= 0 else _BARS[max(1, round(m / peak * top))] for m in means
    )
    return bars.rjust(width)


# -- panels -----------------------------------------------------------------------------


def _alerts_panel(state: DashboardState, width: int, height: int) -> RenderableType:
    inner_w, inner_h = width - 4, height - 2
    rows = state.alert_rows
    lines: list[Text] = []
    if not rows:
        lines.append(Text("no alerts", style="dim"))
    else:
        host_w = min(16, max(4, *(cell_len(escape_text(r.process.host)) for r in rows)))
        user_w = min(12, max(4, *(cell_len(escape_text(r.process.user)) for r in rows)))
        lines.append(
            _columns(
                inner_w,
                (" time", 9, "dim"),
                ("severity", 8, "dim"),
                ("host", host_w, "dim"),
                ("user", user_w, "dim"),
                ("pid", 7, "dim"),
                ("rule  /  parents → process  $ command", 0, "dim"),
            )
        )
        capacity = max(1, (inner_h - 1) // 2)
        newest = len(rows) - 1
        selected = newest if state.selected is None else state.selected
        position = newest - selected  # 0 = top of the list
        first = max(0, position - capacity + 1)
        for pos in range(first, min(first + capacity, len(rows))):
            index = newest - pos
            lines.extend(_alert_lines(rows[index], inner_w, host_w, user_w, index == selected))
    title = f" Alerts ({len(rows)}) "
    if state.selected is not None and rows:
        title += f"— selected {len(rows) - state.selected}/{len(rows)}, Enter opens "
    return _panel(lines, title, height, "red" if rows else "blue")


def _alert_lines(row: AlertRow, width: int, host_w: int, user_w: int, selected: bool) -> list[Text]:
    marker = "▶" if selected else " "
    p = row.process
    first = _columns(
        width,
        (f"{marker}{_clock(p.time_ms)}", 9, ""),
        (row.severity.upper(), 8, SEVERITY_STYLES.get(row.severity, "bold")),
        (p.host, host_w, ""),
        (p.user, user_w, "bold" if p.user in ("root", "0") else ""),
        (str(p.pid), 7, ""),
        (f"{row.rule}: {row.reason}" if row.reason else row.rule, 0, "bold"),
    )
    chain_w = min(cell_len(escape_text(" → ".join(p.chain))), max(12, width * 2 // 5))
    second = _columns(
        width,
        ("", 9, ""),
        (" → ".join(p.chain), chain_w, "cyan"),
        ("$ " + p.command, 0, ""),
    )
    if selected:  # the ▶ marks it without colour; the background helps with colour
        first.stylize(_SELECTED)
        second.stylize(_SELECTED)
    return [first, second]


def _activity_panel(state: DashboardState, width: int, height: int) -> RenderableType:
    inner_w, inner_h = width - 4, height - 2
    rows = state.activity[::-1][: max(0, inner_h - 1)]
    lines: list[Text] = []
    if not rows:
        lines.append(Text("no kexec execution seen", style="dim"))
    else:
        rest = inner_w - 8 - 6 - 2
        reason_w = min(max(cell_len(escape_text(r.reason)) for r in rows), max(16, rest - 20))
        # The reason matters most, then the parents; the command takes what is left.
        chain_w = min(
            max(cell_len(escape_text(" → ".join(r.process.chain))) for r in rows),
            max(8, rest - reason_w - 2 - 12),
        )
        lines.append(
            _columns(
                inner_w,
                ("time", 8, "dim"),
                ("", 6, ""),
                ("why", reason_w, "dim"),
                ("parents", chain_w, "dim"),
                ("$ command", 0, "dim"),
            )
        )
        lines.extend(_activity_line(r, inner_w, reason_w, chain_w) for r in rows)
    return _panel(lines, f" kexec activity ({len(state.activity)}) ", height, "blue")


def _activity_line(row: ActivityRow, width: int, reason_w: int, chain_w: int) -> Text:
    p = row.process
    return _columns(
        width,
        (_clock(p.time_ms), 8, ""),
        ("ALERT" if row.alerted else "  -", 6, "bold red" if row.alerted else "dim"),
        (row.reason, reason_w, "red" if row.alerted else "yellow"),
        (" → ".join(p.chain), chain_w, "cyan"),
        ("$ " + p.command, 0, ""),
    )


def _detail_panel(state: DashboardState, row: AlertRow, width: int, height: int) -> RenderableType:
    inner_w, inner_h = width - 4, max(0, height - 2)
    dump = jsontext.dumps(row.document, indent=2)
    folded: list[str] = []
    for raw in dump.splitlines():
        folded.extend(chop_cells(escape_json_text(raw), max(1, inner_w)) or [""])
    top = min(state.detail_scroll, max(0, len(folded) - inner_h))
    shown = folded[top : top + inner_h]
    lines = [Text(line, no_wrap=True, overflow="crop") for line in shown]
    end = top + len(shown)
    title = f" Alert {escape_text(str(row.document.get('alert', {}).get('id', '')))} "
    subtitle = f" lines {top + 1}-{end} of {len(folded)} "
    return _panel(lines, title, height, "magenta", subtitle=subtitle)


def _footer(state: DashboardState, width: int) -> Text:
    keys = (
        " Esc/q back  ↑↓ jk scroll  PgUp/PgDn "
        if state.detail is not None
        else " q quit  p pause  ↑↓ jk select  Enter JSON "
    )
    message = f" ⚠ {escape_text(state.message)}" if state.message else ""
    return _line(width, (keys, "reverse"), (message, "yellow"))


# -- building blocks ------------------------------------------------------------------------


def _panel(
    lines: list[Text], title: str, height: int, colour: str, subtitle: str | None = None
) -> Panel:
    return Panel(
        Group(*lines[: max(0, height - 2)]),
        title=Text(title, style="bold"),
        title_align="left",
        subtitle=Text(subtitle, style="dim") if subtitle else None,
        subtitle_align="right",
        box=box.ROUNDED,
        border_style=colour,
        height=height,
        padding=(0, 1),
    )


def _line(width: int, *parts: tuple[str, str], style: str = "", pad: bool = False) -> Text:
    """One line from (already safe) parts, cut to ``width`` with an ellipsis."""
    line = Text(style=style, no_wrap=True, overflow="ellipsis")
    for value, part_style in parts:
        line.append(value, part_style)
    line.truncate(width, overflow="ellipsis", pad=pad)
    return line


def _columns(width: int, *cells: tuple[str, int, str]) -> Text:
    """A line of fixed-width cells; a width of 0 takes the rest. Values are escaped here."""
    line = Text(no_wrap=True, overflow="ellipsis")
    for i, (value, cell_width, style) in enumerate(cells):
        cell = Text(escape_text(value), style=style)
        if cell_width:
            cell.truncate(cell_width, overflow="ellipsis", pad=True)
        line.append_text(cell)
        if i < len(cells) - 1:
            line.append(" ")
    line.truncate(width, overflow="ellipsis")
    return line


def _clock(time_ms: int, *, seconds: bool = False) -> str:
    stamp = datetime.fromtimestamp(time_ms / 1000, tz=UTC)
    return stamp.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%H:%M:%S")


def _duration(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover - the loop always returns
