"""Draw a :class:`~kexecwatch.adapters.live.state.DashboardState` with rich.

Rule 1: pure. :func:`render_dashboard` reads the state and returns a renderable of
exactly ``height`` lines no wider than ``width``; it never writes, sleeps or reads a clock.
Rule 2: text from the log (and from rule files) is passed through
:func:`~kexecwatch.core.text.textsafe.escape_text` and only ever placed in
:class:`rich.text.Text` objects, never in markup strings. So ``[bold]`` shows as typed,
and escape sequences (clear screen, set title, OSC 8 links) show as ``\\x1b...``
instead of reaching the terminal. Every line is cut with an ellipsis, never wrapped,
except in the alert's JSON view, which folds long lines so that nothing is hidden.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple

from rich import box
from rich.cells import cell_len, chop_cells
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.text import Text

from kexecwatch.adapters.live.state import (
    HEADER_LINES,
    ActivityRow,
    AlertRow,
    DashboardState,
    alerts_panel_height,
    is_compact,
)
from kexecwatch.core import MAX_TIME_MS, document_alert_id, escape_json_text, escape_text, jsontext

__all__ = ["HEADER_LINES", "RESPONDER_FIRST", "render_dashboard", "responder_order", "sparkline"]

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
        compact = is_compact(state, height)
        alerts_h = alerts_panel_height(body, compact)
        lines.append(_alerts_panel(state, width, alerts_h, compact))
        lines.append(_activity_panel(state, width, body - alerts_h))
    elif body >= 3:
        lines.append(_alerts_panel(state, width, body, is_compact(state, height)))
    else:
        lines.extend(Text("") for _ in range(body))
    lines.append(_footer(state, width, height))
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


class _Widths(NamedTuple):
    """Column widths of the alert list; ``why`` and ``chain`` only in the compact list."""

    host: int
    user: int
    why: int = 0
    chain: int = 0


def _alerts_panel(state: DashboardState, width: int, height: int, compact: bool) -> RenderableType:
    inner_w, inner_h = width - 4, height - 2
    rows = state.alert_rows
    lines: list[Text] = []
    widths = _Widths(4, 4)
    if not rows:
        lines.append(Text("no alerts", style="dim"))
    else:
        host_w = min(16, max(4, *(cell_len(escape_text(r.process.host)) for r in rows)))
        if compact and len({r.process.host for r in rows}) == 1:
            host_w = 0  # one host: its column would only take room from the reason
        user_w = min(12, max(4, *(cell_len(escape_text(r.process.user)) for r in rows)))
        widths = _Widths(host_w, user_w)
        if compact:  # one line per alert and no header: the columns speak for themselves
            widths = _compact_widths(rows, widths, inner_w)
        else:
            lines.append(
                _columns(
                    inner_w,
                    (" time", 9, "dim"),
                    ("severity", 8, "dim"),
                    *((("host", host_w, "dim"),) if host_w else ()),
                    ("user", user_w, "dim"),
                    ("pid", 7, "dim"),
                    ("why  /  parents → process $ command │ rule", 0, "dim"),
                )
            )
        capacity = max(1, inner_h if compact else (inner_h - 1) // 2)
        newest = len(rows) - 1
        selected = newest if state.selected is None else state.selected
        position = newest - selected  # 0 = top of the list
        first = max(0, position - capacity + 1)
        for pos in range(first, min(first + capacity, len(rows))):
            index = newest - pos
            lines.extend(
                _alert_lines(
                    rows[index], inner_w, widths, selected=index == selected, compact=compact
                )
            )
    title = f" Alerts ({len(rows)}) "
    if rows and not widths.host:
        title += f"on {escape_text(rows[-1].process.host)} "
    if state.selected is not None and rows:
        title += f"— selected {len(rows) - state.selected}/{len(rows)}, Enter opens "
    return _panel(lines, title, height, "red" if rows else "blue")


def _compact_widths(rows: list[AlertRow], widths: _Widths, inner_w: int) -> _Widths:
    """Why gets up to two fifths of the line after the fixed columns, the parents one
    fifth, the command the rest; what the command does not need goes to the parents,
    then to why."""
    # The fixed columns and their spaces, the spaces after why and the parents, and the
    # ellipsis that stands for a rule name cut off after the command.
    rest = inner_w - (9 + 8 + widths.user + 7 + 4) - (widths.host + 1 if widths.host else 0) - 3
    why_need = max(cell_len(escape_text(r.reason or r.rule)) for r in rows)
    chain_need = max(cell_len(escape_text(_parents(r))) for r in rows)
    command_need = max(cell_len(escape_text("$ " + r.process.command)) for r in rows)
    why = min(why_need, max(12, rest * 2 // 5))
    chain = min(chain_need, max(8, rest // 5))
    spare = max(0, rest - why - chain - command_need)
    grow = min(spare, chain_need - chain)
    chain, spare = chain + grow, spare - grow
    return widths._replace(why=why + min(spare, why_need - why), chain=chain)


def _parents(row: AlertRow) -> str:
    """The parent chain without the process itself (the command names it)."""
    return " → ".join(row.process.chain[:-1])


def _alert_lines(
    row: AlertRow, width: int, widths: _Widths, *, selected: bool, compact: bool
) -> list[Text]:
    """An alert as the responder reads it: who and when, then why, the parents and the
    command; the rule's name comes last, so a narrow screen cuts it first."""
    marker = "▶" if selected else " "
    p = row.process
    fixed = (
        (f"{marker}{_clock(p.time_ms)}", 9, ""),
        (row.severity.upper(), 8, SEVERITY_STYLES.get(row.severity, "bold")),
        *(((p.host, widths.host, ""),) if widths.host else ()),
        (p.user, widths.user, "bold" if p.user in ("root", "0") else ""),
        (str(p.pid), 7, ""),
    )
    why = row.reason or row.rule
    chain = " → ".join(p.chain)
    rule = (row.rule, "dim") if row.reason else None  # else it already stands for the why
    if compact:
        lines = [
            _columns(
                width,
                *fixed,
                (why, widths.why, "bold"),
                (_parents(row), -widths.chain, "cyan"),  # cut on the left: the nearest matter
                ("$ " + p.command, 0, ""),
                then=rule,
            )
        ]
    else:
        lines = [
            _columns(width, *fixed, (why, 0, "bold")),
            _columns(width, ("", 9, ""), (chain, 0, "cyan"), ("$ " + p.command, 0, ""), then=rule),
        ]
    if selected:  # the ▶ marks it without colour; the background helps with colour
        for line in lines:
            line.stylize(_SELECTED)
    return lines


def _activity_panel(state: DashboardState, width: int, height: int) -> RenderableType:
    inner_w, inner_h = width - 4, height - 2
    rows = state.activity[::-1][: max(0, inner_h - 1)]
    lines: list[Text] = []
    if not rows:
        lines.append(Text("no kexec execution seen", style="dim"))
    else:
        reason_w, chain_w = _activity_widths(rows, inner_w)
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


def _activity_widths(rows: list[ActivityRow], inner_w: int) -> tuple[int, int]:
    """Widths of the why and parents columns. Why comes first but gets at most two
    fifths of the line (at least 40 cells while 20 are left), the parents up to a third
    of what remains, the command the rest; what the command does not need goes back to
    why. So one long why (a rule that alerted and one that excluded) does not cut
    every command short."""
    rest = inner_w - 8 - 6 - 2  # the time, the ALERT mark and the spaces around them
    why_need = max(cell_len(escape_text(r.reason)) for r in rows)
    chain_need = max(cell_len(escape_text(" → ".join(r.process.chain))) for r in rows)
    command_need = max(cell_len(escape_text("$ " + r.process.command)) for r in rows)
    why = min(why_need, max(16, min(rest - 20, max(40, rest * 2 // 5))))
    chain = min(chain_need, max(8, (rest - why - 2) // 3))
    spare = max(0, rest - why - chain - 2 - command_need)
    grow = min(spare, chain_need - chain)
    chain, spare = chain + grow, spare - grow
    return why + min(spare, why_need - why), chain


def _activity_line(row: ActivityRow, width: int, reason_w: int, chain_w: int) -> Text:
    p = row.process
    return _columns(
        width,
        (_clock(p.time_ms), 8, ""),
        ("ALERT" if row.alerted else "  -", 6, "bold red" if row.alerted else "dim"),
        (row.reason, reason_w, "red" if row.alerted else "yellow"),
        (" → ".join(p.chain), -chain_w, "cyan"),  # the nearest parents matter most
        ("$ " + p.command, 0, ""),
    )


def _detail_panel(state: DashboardState, row: AlertRow, width: int, height: int) -> RenderableType:
    inner_w, inner_h = width - 4, max(0, height - 2)
    dump = jsontext.dumps(responder_order(row.document), indent=2, sort_keys=False)
    folded: list[str] = []
    for raw in dump.splitlines():
        folded.extend(chop_cells(escape_json_text(raw), max(1, inner_w)) or [""])
    top = min(state.detail_scroll, max(0, len(folded) - inner_h))
    shown = folded[top : top + inner_h]
    lines = [Text(line, no_wrap=True, overflow="crop") for line in shown]
    end = top + len(shown)
    title = f" Alert {escape_text(str(document_alert_id(row.document)))} "
    subtitle = f" lines {top + 1}-{end} of {len(folded)} "
    return _panel(lines, title, height, "magenta", subtitle=subtitle)


#: The JSON view opens on these, in this order; the rest follows, sorted.
RESPONDER_FIRST = ("@timestamp", "rule", "event", "process", "user", "host")


def responder_order(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with :data:`RESPONDER_FIRST` first, ``event.reason`` and
    ``rule.name`` first in theirs, ``process.parent`` right after the process's own
    fields, and every other key sorted."""
    rest = sorted(k for k in document if k not in RESPONDER_FIRST)
    keys = [k for k in RESPONDER_FIRST if k in document] + rest
    return {
        k: _ordered(document[k], _LEADS.get(k, ""), "parent" if k == "process" else "")
        for k in keys
    }


_LEADS = {"event": "reason", "rule": "name"}


def _ordered(value: Any, lead: str = "", last: str = "") -> Any:
    """``value`` with dict keys sorted, ``lead`` first and ``last`` last (top level only)."""
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (k != lead, k == last, k))
        return {k: _ordered(value[k]) for k in keys}
    if isinstance(value, list):
        return [_ordered(v) for v in value]
    return value


def _footer(state: DashboardState, width: int, height: int) -> Text:
    keys = (
        " Esc/q back  ↑↓ jk scroll  PgUp/PgDn "
        if state.detail is not None
        else " q quit  p pause  ↑↓ jk select  Enter JSON  "
        + ("c two lines " if is_compact(state, height) else "c compact ")
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


def _columns(width: int, *cells: tuple[str, int, str], then: tuple[str, str] | None = None) -> Text:
    """A line of fixed-width cells; a width of 0 takes the rest, a negative width keeps
    the end of the value (cut on the left). ``then`` follows after a separator, so it is
    the first thing a narrow line loses. Values are escaped here."""
    line = Text(no_wrap=True, overflow="ellipsis")
    for i, (value, cell_width, style) in enumerate(cells):
        shown = escape_text(value)
        if cell_width < 0 and cell_len(shown) > -cell_width:
            shown = "…" + _last_cells(shown, -cell_width - 1)
        cell = Text(shown, style=style)
        if cell_width:
            cell.truncate(abs(cell_width), overflow="ellipsis", pad=True)
        line.append_text(cell)
        if i < len(cells) - 1:
            line.append(" ")
    if then is not None:
        line.append(*_SEP)
        line.append(escape_text(then[0]), then[1])
    line.truncate(width, overflow="ellipsis")
    return line


def _last_cells(text: str, cells: int) -> str:
    """The longest end of ``text`` that fits in ``cells`` terminal cells."""
    start = len(text)
    while start > 0 and cell_len(text[start - 1 :]) <= cells:
        start -= 1
    return text[start:]


def _clock(time_ms: int, *, seconds: bool = False) -> str:
    # A time beyond year 9999 is no date: shown as the last one (README, "Time policy").
    stamp = datetime.fromtimestamp(min(time_ms, MAX_TIME_MS - 1) / 1000, tz=UTC)
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
