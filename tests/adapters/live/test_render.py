"""The pure renderer on fixed states, drawn by rich's Console into a string at a fixed width
and height (no terminal, no colours unless a test asks for them), and compared as text."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.live import Live

from kexecwatch.adapters.live.render import render_dashboard, sparkline
from kexecwatch.adapters.live.state import (
    ActivityRow,
    AlertRow,
    DashboardState,
    ProcessSummary,
)
from tests.adapters.live.live_logs import HOSTILE_ARG

T = 1_700_000_002_000  # 2023-11-14 22:13:22 UTC


def alert(pid: int, command: str, *, user: str = "root", t: int = T) -> AlertRow:
    who = ProcessSummary(t, "web1", user, pid, ("systemd", "bash", "kexec"), command)
    document = {"event": {"id": f"r:-:{pid}"}, "process": {"pid": pid, "args": [command]}}
    return AlertRow("Kernel Load or Unload via Kexec Detected", "medium", who, document)


def run(pid: int, chain: tuple[str, ...], command: str, reason: str) -> ActivityRow:
    who = ProcessSummary(T, "web1", "root", pid, chain, command)
    return ActivityRow(who, reason == RULE, reason)


RULE = "Kernel Load or Unload via Kexec Detected"


def fixed_state() -> DashboardState:
    return DashboardState(
        source="replay",
        path="fixtures/audit/raw/kexec.log",
        status="replaying at 1x",
        offset=12_345,
        lag=0,
        records=1234,
        events=456,
        records_per_s=321.0,
        events_per_s=12.0,
        alerts=3,
        suppressed=1,
        lost_events=2,
        parse_issues=5,
        uptime_s=3723,
        log_time_ms=T,
        message="line 9: parse issue: no msg=audit(...) header",
        alert_rows=[
            alert(51, "kexec -e"),
            alert(52, "kexec -l /boot/vmlinuz", user="1000"),
            alert(70, f"kexec -l {HOSTILE_ARG}"),
        ],
        activity=[
            run(51, ("systemd", "bash", "kexec"), "kexec -e", RULE),
            run(
                61,
                ("systemd", "kdumpctl", "kexec"),
                "kexec -l x",
                "excluded: process.parent.name kdumpctl",
            ),
            run(62, ("bash", "kexec"), "kexec -p x", "process.args not in list"),
        ],
        rate_history=[0] * 290 + [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        compact=False,
    )


def render(state: DashboardState, width: int = 100, height: int = 30) -> str:
    console = Console(width=width, height=height, color_system=None, file=io.StringIO())
    console.print(render_dashboard(state, width, height))
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(out, str)
    return out


def test_header_shows_source_counts_and_rates() -> None:
    out = render(fixed_state())
    head = "\n".join(out.splitlines()[:4])
    assert "kexecwatch live │ replaying at 1x │ replay fixtures/audit/raw/kexec.log" in head
    assert "offset 12.1 KB  lag 0 B" in head
    assert "records 1,234 (321/s)" in head
    assert "events 456 (12/s)" in head
    assert "log 2023-11-14 22:13:22Z" in head
    assert "alerts 3 (+1 suppressed)" in head
    assert "lost events 2" in head
    assert "parse issues 5" in head
    assert "up 1:02:03" in head
    assert "peak 10/s" in head


def test_alert_rows_show_time_severity_host_user_pid_chain_and_command() -> None:
    lines = render(fixed_state()).splitlines()
    row = next(i for i, line in enumerate(lines) if " 52 " in line)
    assert "22:13:22 MEDIUM" in lines[row]
    assert "web1 1000" in lines[row]
    assert "Kernel Load or Unload via Kexec Detected" in lines[row]
    assert "systemd → bash → kexec $ kexec -l /boot/vmlinuz" in lines[row + 1]
    # newest first, and the newest is selected while nothing else is
    assert lines.index(next(x for x in lines if " 70 " in x)) < row
    assert any("▶22:13:22" in x and " 70 " in x for x in lines)


def test_activity_lists_every_kexec_run_with_its_reason() -> None:
    out = render(fixed_state())
    assert "kexec activity (3)" in out
    assert "ALERT  Kernel Load or Unload via Kexec Detected" in out
    assert "-    excluded: process.parent.name kdumpctl" in out
    assert "-    process.args not in list" in out
    assert "systemd → kdumpctl → kexec" in out


def test_hostile_text_is_shown_escaped_and_never_emitted() -> None:
    state = fixed_state()
    state.path = "[bold]x[/bold]\x1b]0;t\x07"
    out = render(state)
    assert "\x1b" not in out and "\x07" not in out
    assert r"\x1b[2J\x1b]0;pwned\x07" in out
    assert "[bold red]x[/]" not in out.replace(r"\x07", "")  # cut by the ellipsis here...
    state.selected = 2
    state.detail = 2
    detail = render(state, 200, 40)
    assert "\x1b" not in detail
    # ...and whole in the JSON view, where JSON itself escapes control characters
    assert r"\u001b]8;;http://x\u0007[bold red]x[/]" in detail
    assert r"[bold]x[/bold]\x1b]0;t\x07" in out


def test_markup_in_data_is_literal_in_colour_too() -> None:
    state = fixed_state()
    state.alert_rows = [alert(1, "[bold red]x[/] [link=http://e]y[/link]")]
    console = Console(width=100, height=30, color_system="truecolor", file=io.StringIO())
    console.print(render_dashboard(state, 100, 30))
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert "[bold red]x[/] [link=http://e]y[/link]" in out
    assert "\x1b]8" not in out  # no hyperlink was made


@pytest.mark.parametrize("compact", [False, True])
@pytest.mark.parametrize(("width", "height"), [(80, 24), (100, 30), (132, 50), (40, 12), (20, 5)])
def test_every_size_gives_exactly_the_screen(width: int, height: int, compact: bool) -> None:
    state = with_reasons(fixed_state(), 20)
    state.compact = compact
    state.alert_rows.append(alert(99, "kexec -l " + "A" * 500))
    lines = render(state, width, height).splitlines()
    assert len(lines) == height
    assert all(len(line) <= width for line in lines)


def test_long_arguments_are_cut_with_an_ellipsis_not_wrapped() -> None:
    state = fixed_state()
    state.alert_rows.append(alert(99, "kexec -l " + "A" * 500 + "END"))
    out = render(state, 80, 24)
    row = next(line for line in out.splitlines() if "$ kexec -l AAAA" in line)
    assert row.rstrip().endswith("… │")
    assert "END" not in out


def test_detail_view_shows_the_alert_as_json_and_scroll_is_clamped() -> None:
    state = fixed_state()
    state.detail = 0
    state.detail_scroll = 10_000
    out = render(state, 80, 24)
    assert "Alert r:-:51" in out
    assert "Esc/q back" in out
    lines = out.splitlines()
    assert any('"pid": 51' in x for x in lines)
    assert any("lines 1-" in x and "of 11" in x for x in lines)  # all 11 lines fit: top is 1


def test_no_data_yet() -> None:
    out = render(DashboardState(path="/var/log/audit/audit.log", status="following"), 80, 24)
    assert "no alerts" in out
    assert "no kexec execution seen" in out
    assert "lag ?" in out


def test_paused_and_finished_are_announced() -> None:
    state = fixed_state()
    state.finished = True
    assert "replay finished; q quits" in render(state)
    state.paused = True
    assert "PAUSED (p resumes)" in render(state)


def test_renders_through_live_without_auto_refresh() -> None:
    console = Console(
        width=80, height=24, color_system=None, file=io.StringIO(), force_terminal=True
    )
    with Live(console=console, auto_refresh=False, screen=False) as live:
        live.update(render_dashboard(fixed_state(), 80, 24), refresh=True)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert "alerts 3" in out
    assert "\x1b]" not in out  # rich's own codes are CSI cursor moves only; no OSC


def test_sparkline() -> None:
    assert sparkline([], 5) == "     "
    assert sparkline([0, 0, 0], 3) == "   "
    assert sparkline([1, 2, 4, 8], 4) == "▁▂▄█"
    assert sparkline([8, 8, 0, 0], 2) == "█ "  # buckets average, newest on the right
    assert sparkline([1] * 10, 20) == " " * 10 + "█" * 10
    assert len(sparkline(list(range(300)), 77)) == 77


def test_json_view_escapes_what_json_leaves_raw() -> None:
    state = fixed_state()
    odd = "\u202egnp.exe \x9b2J \udcff \U000e0041"
    state.alert_rows = [alert(1, odd)]
    state.alert_rows[0].document["process"]["args"] = [odd]
    state.detail = 0
    out = render(state, 200, 40)
    assert r'"\u202egnp.exe \u009b2J \udcff \udb40\udc41"' in out
    for raw in ("\u202e", "\x9b", "\U000e0041"):
        assert raw not in out


REASON = "kexec -l /boot/vmlinuz parsed as load"


def with_reasons(state: DashboardState, n: int = 0) -> DashboardState:
    rows = state.alert_rows + [alert(100 + i, f"kexec -l /boot/v{i}") for i in range(n)]
    state.alert_rows = [
        AlertRow(r.rule, r.severity, r.process, r.document, f"{REASON} pid {r.process.pid}")
        for r in rows
    ]
    return state


def test_two_line_rows_put_reason_chain_and_command_before_the_rule() -> None:
    state = with_reasons(fixed_state())
    state.compact = False
    lines = render(state, 100, 50).splitlines()
    row = next(i for i, line in enumerate(lines) if " 52 " in line)
    assert f"{REASON} pid 52" in lines[row] and RULE not in lines[row]
    second = lines[row + 1]
    assert second.index("systemd → bash → kexec") < second.index("$ kexec -l /boot/vmlinuz")
    assert second.index("$ kexec -l /boot/vmlinuz") < second.index("Kernel Load")


def test_at_80x24_the_list_is_compact_and_shows_at_least_8_alerts() -> None:
    state = with_reasons(fixed_state(), 12)
    state.compact = None  # automatic: a screen this short gets the compact list
    lines = render(state, 80, 24).splitlines()
    rows = [line for line in lines if "MEDIUM" in line]
    assert len(rows) >= 8
    for line in rows:  # one line each: the reason first, then the nearest parents, command
        assert REASON[:14] in line and "bash $ kexec -l /boot" in line
        assert line.index(REASON[:14]) < line.index("bash $ kexec")
    wide = render(state, 200, 24).splitlines()
    row = next(line for line in wide if " 111 " in line)
    assert f"{REASON} pid 111" in row and "systemd → bash $ kexec -l /boot/v11 │ " + RULE in row
    assert "c two lines" in lines[-1]
    state.compact = False
    two_line = render(state, 80, 24)
    assert sum("MEDIUM" in line for line in two_line.splitlines()) < 8
    assert "c compact" in two_line.splitlines()[-1]


def test_json_view_opens_on_what_a_responder_reads_first() -> None:
    state = fixed_state()
    state.alert_rows[0].document.update(
        {
            "agent": {"type": "kexecwatch"},
            "@timestamp": "2023-11-14T22:13:22.000Z",
            "kexecwatch": {"rule": {"severity": "medium"}},
            "auditd": {"sequence": 3},
            "user": {"name": "root"},
            "host": {"name": "web1"},
            "rule": {"name": RULE},
            "event": {"kind": "alert", "id": "r:-:51", "reason": "why"},
        }
    )
    state.alert_rows[0].document["process"]["parent"] = {"pid": 1}
    state.detail = 0
    lines = [line[2:] for line in render(state, 100, 60).splitlines() if line.startswith("│ ")]
    keys = [line.split('"')[1] for line in lines if line.lstrip().startswith('"')]
    assert keys[:5] == ["@timestamp", "rule", "name", "event", "reason"]
    top = [line.split('"')[1] for line in lines if line.startswith('  "')]
    assert top == ["@timestamp", "rule", "event", "process", "user", "host"] + [
        "agent",
        "auditd",
        "kexecwatch",
    ]


def test_a_time_beyond_year_9999_is_shown_as_its_last_second() -> None:
    # A misdated record (README, "Time policy") must not crash the live view.
    state = fixed_state()
    state.alert_rows = [alert(80, "kexec -e", t=253_402_300_800_000)]
    lines = render(state).splitlines()
    assert any("23:59:59" in x and " 80 " in x for x in lines)


def test_one_long_why_does_not_cut_every_command_in_the_activity_panel() -> None:
    state = fixed_state()
    both = (
        "Kexec Run by a Process Posing as the Kdump Service alerted; Kernel Load or Unload "
        "via Kexec Detected did not: excluded: process.parent.name unload.sh"
    )
    load = "kexec -l /boot/vmlinuz-6.1.0-13-amd64 --initrd=/boot/initrd.img-6.1.0-13-amd64"
    state.activity = [
        run(80, ("systemd", "bash", "kexec"), load, RULE),
        run(81, ("bash", "unload.sh", "kexec"), "/sbin/kexec -u", both),
    ]
    cuts = {
        120: ("$ kexec -l /boot/vmlinuz-6.1.0", "Kexec Run by a Process Posing as the Kd"),
        200: (f"$ {load}", "Kexec Run by a Process Posing as the Kdump Service alerted; "),
    }
    for width, (command, why) in cuts.items():  # before: "$ kexec -…" at either width
        lines = render(state, width, 40).split("kexec activity (2)")[1].splitlines()
        row = next(line for line in lines if "$ kexec -l" in line)
        assert command in row and "bash → kexec" in row, (width, row)
        assert why in next(line for line in lines if "unload.sh → kexec" in line), width
    assert both in render(state, 280, 40)  # the whole why when there is room for all
