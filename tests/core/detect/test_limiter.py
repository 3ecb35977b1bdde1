"""The alert limit per rule and per user (issue 16: one user's flood never silences another)."""

from __future__ import annotations

from kexecwatch.core.detect.alerts import Alert, AlertLimiter, AlertsSuppressed
from kexecwatch.core.detect.detector import Detector
from tests.builders import exec_lines, join
from tests.core.simple_rule import SimpleRule, kexec_like

UNSET = 4294967295


def flood(count: int, *, uid: int = 1000, first: int = 1, auid: int | None = None) -> list[bytes]:
    lines: list[bytes] = []
    for serial in range(first, first + count):
        lines += exec_lines(serial, pid=100 + serial, uid=uid, auid=auid)
    return lines


def outputs(data: bytes, *, max_signals: int = 100) -> tuple[Detector, list[object]]:
    det = Detector([SimpleRule(kexec_like, max_signals=max_signals)], host_name="h")
    return det, det.feed(data) + det.flush()


def test_a_users_flood_does_not_suppress_roots_alert_in_the_same_window() -> None:
    root = exec_lines(200, pid=5000, uid=0, t="1700000060.000")
    det, out = outputs(join(flood(150) + root))
    alerts = [o for o in out if isinstance(o, Alert)]
    assert len(alerts) == 101
    assert alerts[-1].event.id.serial == 200
    [sup] = [o for o in out if isinstance(o, AlertsSuppressed)]
    assert (sup.count, sup.user) == (50, "1000")
    assert "user 1000" in sup.describe()
    assert det.stats.suppressed == 50


def test_the_login_uid_names_the_user_when_set_else_the_uid() -> None:
    # Root by su from user 1000 shares 1000's window; a daemon (auid unset) has root's.
    lines = flood(3) + exec_lines(10, pid=10, uid=0, auid=1000)
    lines += exec_lines(11, pid=11, uid=0, auid=UNSET)
    _, out = outputs(join(lines), max_signals=3)
    assert [a.event.id.serial for a in out if isinstance(a, Alert)] == [1, 2, 3, 11]
    [sup] = [o for o in out if isinstance(o, AlertsSuppressed)]
    assert (sup.count, sup.user) == (1, "1000")


def test_beyond_the_tracked_users_alerts_share_one_window_per_rule() -> None:
    limiter = AlertLimiter(max_users=2)
    det = Detector([SimpleRule(kexec_like, max_signals=1)], host_name="h")
    det._limiter = limiter  # a small cap makes the fallback visible
    lines: list[bytes] = []
    for uid in range(5):
        lines += exec_lines(uid + 1, pid=100 + uid, uid=uid)
    out = det.feed(join(lines)) + det.flush()
    # users 0 and 1 have their own window; 2, 3 and 4 share the rule's window of one alert.
    assert [a.event.id.serial for a in out if isinstance(a, Alert)] == [1, 2, 3]
    [sup] = [o for o in out if isinstance(o, AlertsSuppressed)]
    assert (sup.count, sup.user) == (2, None)


def test_state_round_trip_keeps_each_users_window() -> None:
    det, _ = outputs(join(flood(3) + exec_lines(10, pid=10, uid=0)), max_signals=3)
    again = Detector([SimpleRule(kexec_like, max_signals=3)], host_name="h")
    again.restore(det.to_state())
    out = again.feed(join(flood(1, first=20) + exec_lines(21, pid=21, uid=0)))
    out += again.flush()
    assert [a.event.id.serial for a in out if isinstance(a, Alert)] == [21]
    [sup] = [o for o in out if isinstance(o, AlertsSuppressed)]
    assert (sup.count, sup.user) == (1, "1000")


def test_a_checkpoint_of_the_old_per_rule_shape_still_loads() -> None:
    # Before issue 16 an entry was [rule_id, start, emitted, suppressed, name, interval].
    limiter = AlertLimiter()
    limiter.restore([["test-rule", 1699999800000, 100, 4, "Test rule", 300000]])
    [sup] = limiter.flush()
    assert (sup.rule_id, sup.count, sup.window_start_ms, sup.user) == (
        "test-rule",
        4,
        1699999800000,
        None,
    )
    det = Detector([SimpleRule(kexec_like, max_signals=100)], host_name="h")
    state = det.to_state()
    state["limiter"] = [["test-rule", 1699999800000, 100, 0, "Test rule", 300000]]
    det.restore(state)
    # The old window counted everyone's alerts; it is the rule's shared window now, and
    # a user's own window starts empty.
    [alert] = [o for o in det.feed(join(exec_lines(1, uid=0))) if isinstance(o, Alert)]
    assert alert.event.id.serial == 1
