"""LiveModel, keys and selection: the live view without a terminal."""

from __future__ import annotations

import pytest

from kexecwatch.adapters.live.keys import handle_key, parse_keys
from kexecwatch.adapters.live.state import MAX_ALERT_ROWS, DashboardState, LiveModel
from kexecwatch.rules import load_builtin_rules
from tests.adapters.live.live_logs import HOSTILE_ARG, scenario_log
from tests.builders import exec_lines, join
from tests.core.detect.rule.test_sequence_detector import RULE, run_of


def fed_model(data: bytes) -> LiveModel:
    model = LiveModel(load_builtin_rules("upstream"), host_name="web1")
    model.feed(data)
    model.flush()
    model.tick(100.0)
    return model


def test_alerts_carry_rule_host_user_pid_chain_and_command() -> None:
    state = fed_model(scenario_log()).state
    assert [r.process.pid for r in state.alert_rows] == [51, 70, 71]
    first = state.alert_rows[0]
    assert (first.rule, first.severity, first.process.host, first.process.user) == (
        "Kernel Load or Unload via Kexec Detected",
        "medium",
        "web1",
        "1000",
    )
    assert first.process.chain == ("systemd", "bash", "kexec")
    assert first.process.command == "kexec -e"
    assert first.document["kexecwatch"]["rule"]["severity"] == "medium"
    assert state.alert_rows[1].process.command == f"kexec -l {HOSTILE_ARG}"


def test_activity_lists_excluded_runs_with_their_reason() -> None:
    state = fed_model(scenario_log()).state
    rows = {r.process.pid: r for r in state.activity}
    assert sorted(rows) == [51, 61, 62, 70, 71]
    assert rows[51].alerted and rows[51].reason == "Kernel Load or Unload via Kexec Detected"
    assert not rows[61].alerted
    assert rows[61].reason == "excluded: process.parent.name kdumpctl"
    assert rows[61].process.chain == ("systemd", "kdumpctl", "kexec")
    assert rows[62].reason == "process.args not in list"


def test_a_renamed_kexec_binary_is_listed_by_its_executable() -> None:
    log = join(exec_lines(1, comm="kx", exe="/usr/sbin/kexec", args=("kx", "-e")))
    [row] = fed_model(log).state.activity
    assert row.reason == "process.name is kx, not kexec"
    assert row.process.chain == ("pid 1", "kx")  # the parent is unknown: shown by pid


def test_other_programs_are_not_kexec_activity() -> None:
    log = join(exec_lines(1, comm="kexecwatch", exe="/usr/bin/kexecwatch", args=("kexecwatch",)))
    assert fed_model(log).state.activity == []


def test_counters_rates_and_the_per_second_history() -> None:
    model = LiveModel(load_builtin_rules("upstream"), host_name="h")
    model.tick(10.0)
    model.feed(scenario_log())  # eight events, one per second of log time
    model.flush()
    model.tick(12.0)
    state = model.state
    assert (state.records, state.events, state.alerts) == (40, 8, 3)
    assert state.records_per_s == pytest.approx(20.0)
    assert state.events_per_s == pytest.approx(4.0)
    assert state.uptime_s == pytest.approx(2.0)
    assert state.log_time_ms == 1_700_000_007_000
    assert len(state.rate_history) == 300
    # one chunk, yet each event is counted in its own second
    assert state.rate_history[-8:] == [1] * 8
    assert sum(state.rate_history) == 8


def test_parse_issues_and_lost_events_reach_the_status_line() -> None:
    model = fed_model(b"garbage line\n")
    assert model.state.parse_issues == 1
    assert "parse issue" in model.state.message


def test_alert_rows_are_bounded_and_the_selection_follows() -> None:
    state = DashboardState()
    model = LiveModel(load_builtin_rules("upstream"), host_name="h", state=state)
    lines: list[bytes] = []
    for serial in range(1, MAX_ALERT_ROWS + 11):
        # one per rule interval (5 min), so the rule's max_signals never holds one back
        t = f"{1_700_000_000 + serial * 300}.000"
        lines += exec_lines(serial, t=t, pid=serial + 10, args=("kexec", "-e"))
    model.feed(join(lines[: 5 * 20]))
    state.selected = 5
    model.feed(join(lines[5 * 20 :]))
    model.flush()
    assert len(state.alert_rows) == MAX_ALERT_ROWS
    assert state.selected == 0
    assert state.alert_rows[-1].process.pid == MAX_ALERT_ROWS + 20


@pytest.mark.parametrize(
    ("data", "keys"),
    [
        (b"q", ["q"]),
        (b"jk", ["down", "up"]),
        (b"\x1b[A\x1b[B\x1bOA", ["up", "down", "up"]),
        (b"\x1b", ["escape"]),
        (b"\x1bq", ["escape", "q"]),
        (b"\r\n", ["enter", "enter"]),
        (b"\x03", ["interrupt"]),
        (b"\x1b[5~\x1b[6~", ["pageup", "pagedown"]),
        (b"\x1b[1;5Cx\x1b[200~", []),  # unknown sequences and keys are ignored
        (b"pP", ["p", "p"]),
    ],
)
def test_parse_keys(data: bytes, keys: list[str]) -> None:
    assert parse_keys(data) == keys


def three_alerts() -> DashboardState:
    state = fed_model(scenario_log()).state
    assert len(state.alert_rows) == 3
    return state


def test_selection_moves_newest_first_and_is_clamped() -> None:
    state = three_alerts()
    assert state.selected is None  # following the newest
    handle_key(state, "down")
    assert state.selected == 1
    handle_key(state, "down")
    handle_key(state, "down")
    assert state.selected == 0
    handle_key(state, "up")
    assert state.selected == 1
    handle_key(state, "home")
    assert state.selected == 2
    handle_key(state, "escape")
    assert state.selected is None


def test_enter_opens_the_selection_and_q_or_escape_come_back() -> None:
    state = three_alerts()
    handle_key(state, "enter")
    assert state.detail == 2
    assert handle_key(state, "down") is False
    handle_key(state, "pagedown", page=10)
    assert state.detail_scroll == 11
    handle_key(state, "up")
    assert state.detail_scroll == 10
    assert handle_key(state, "q") is False  # q leaves the JSON, not the program
    assert state.detail is None
    handle_key(state, "down")
    handle_key(state, "enter")
    assert (state.detail, state.detail_scroll) == (1, 0)
    handle_key(state, "escape")
    assert state.detail is None


def test_quit_pause_and_interrupt() -> None:
    state = three_alerts()
    assert handle_key(state, "p") is False
    assert state.paused
    handle_key(state, "p")
    assert not state.paused
    assert handle_key(state, "q") is True
    state.detail = 0
    assert handle_key(state, "interrupt") is True


def test_keys_on_an_empty_list_do_nothing() -> None:
    state = DashboardState()
    for key in ("up", "down", "enter", "home"):
        assert handle_key(state, key) is False
    assert (state.selected, state.detail) == (None, None)


def test_version_grows_only_when_the_screen_may_change() -> None:
    model = LiveModel(load_builtin_rules("upstream"), host_name="h")
    v0 = model.version
    model.idle(1e9)  # nothing in flight: nothing to redraw
    assert model.version == v0
    model.feed(join(exec_lines(1)))
    v1 = model.version
    assert v1 > v0
    model.note("rotated")
    assert model.version > v1


def test_a_long_command_line_is_kept_short_with_the_bytes_left_out() -> None:
    log = join(exec_lines(1, args=("kexec", "-l", "y" * 9000, "--append", "z" * 9000)))
    state = fed_model(log).state
    for command in (state.alert_rows[0].process.command, state.activity[0].process.command):
        assert len(command.encode()) <= 1100
        assert command.startswith("kexec -l yyy") and command.endswith(" bytes)")
    assert state.alert_rows[0].document["process"]["args"][2] == "y" * 9000


def test_an_alerting_run_names_the_rule_that_alerted_and_the_one_that_excluded_it() -> None:
    # A parent posing as kdumpctl: the upstream rule excludes it, the masquerade rule alerts.
    lines = exec_lines(
        1, pid=60, ppid=1, comm="kdumpctl", exe="/usr/bin/bash", args=("/bin/bash", "/tmp/kdumpctl")
    )
    lines += exec_lines(2, t="1700000001.000", pid=61, ppid=60, args=("kexec", "-l", "/boot/x"))
    model = LiveModel(load_builtin_rules("all"), host_name="h")
    model.feed(join(lines))
    model.flush()
    [row] = model.state.activity
    assert row.alerted
    assert row.reason == (
        "Kexec Run by a Process Posing as the Kdump Service alerted; "
        "Kernel Load or Unload via Kexec Detected did not: excluded: process.parent.name kdumpctl"
    )


def test_c_toggles_the_compact_list_from_what_the_screen_shows() -> None:
    lines: list[bytes] = []
    for i in range(10):
        lines += exec_lines(i + 1, t=f"17000000{i:02d}.000", pid=100 + i, args=("kexec", "-e"))
    state = fed_model(join(lines)).state
    state.height = 24  # ten alerts do not fit two lines each: compact until c
    handle_key(state, parse_keys(b"c")[0])
    assert state.compact is False
    handle_key(state, "c")
    assert state.compact is True
    state.compact, state.height = None, 50  # they fit: two lines each until c
    handle_key(state, "c")
    assert state.compact is True
    assert DashboardState(height=24).compact is None  # automatic until c is pressed


def test_a_parse_issue_names_its_file_and_line() -> None:
    model = LiveModel(load_builtin_rules("upstream"), host_name="web1")
    model.switch_source("/logs/audit.log.1")
    model.feed(b"\n" * 4 + b"garbage \x1b[2J line\n")
    assert model.state.message == (
        "/logs/audit.log.1:5: parse issue: no type= field (17 bytes, not shown)"
    )


def test_a_sequence_alert_is_listed_by_its_last_event() -> None:
    model = LiveModel([RULE], host_name="web1")
    model.feed(join(run_of("id", 1, "1700000000.000") + run_of("whoami", 2, "1700000001.000")))
    model.flush()
    (row,) = model.state.alert_rows
    assert (row.rule, row.process.host, row.process.user, row.process.pid) == (
        RULE.name,
        "web1",
        "1000",
        100,
    )
    assert row.process.command == "whoami"
    assert len(row.document["kexecwatch"]["sequence"]["events"]) == 2


def test_activity_shows_the_detectors_verdict_limit_included() -> None:
    """A run whose alert the rule's limit held back is not shown as alerted: the activity
    panel shows the detector's own verdict, not the rules run again outside it."""
    lines: list[bytes] = []
    for i in range(101):  # one more than the rule's 100 alerts per 5 minutes
        t = f"{1_700_000_100 + i}.000"  # one 5-minute window
        lines += exec_lines(i + 1, t=t, pid=100 + i, args=("kexec", "-e"))
    model = LiveModel(load_builtin_rules("upstream"), host_name="h")
    model.feed(join(lines))
    model.flush()
    rows = model.state.activity
    assert len(model.state.alert_rows) == 100 == sum(row.alerted for row in rows)
    assert not rows[-1].alerted
    assert rows[-1].reason == "Kernel Load or Unload via Kexec Detected (held back by its limit)"
    assert rows[0].reason == "Kernel Load or Unload via Kexec Detected"
