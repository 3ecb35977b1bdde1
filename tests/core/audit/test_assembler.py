import pytest

import kexecwatch.core.audit.assembler as assembler_module
from kexecwatch.core.audit.assembler import Assembler, AuditEvent, EventsLost
from kexecwatch.core.audit.record import AuditRecord, ParseIssue, TimeJump, parse_record
from tests.builders import exec_lines, user_line


def records(lines: list[bytes]) -> list[AuditRecord]:
    out = []
    for i, line in enumerate(lines, 1):
        rec = parse_record(line, i)
        assert isinstance(rec, AuditRecord)
        out.append(rec)
    return out


def push_all(asm: Assembler, recs: list[AuditRecord]) -> list[object]:
    out: list[object] = []
    for r in recs:
        out.extend(asm.push(r))
    return out


def events(outputs: list[object]) -> list[AuditEvent]:
    return [o for o in outputs if isinstance(o, AuditEvent)]


def test_proctitle_completes_an_event_at_once() -> None:
    asm = Assembler()
    out = push_all(asm, records(exec_lines(1)))
    [event] = events(out)
    assert event.ended_by == "proctitle"
    assert event.complete
    assert [r.type for r in event.records] == ["SYSCALL", "EXECVE", "CWD", "PATH", "PROCTITLE"]
    assert asm.inflight == 0


def test_eoe_completes_and_late_eoe_is_absorbed() -> None:
    asm = Assembler()
    lines = exec_lines(1, proctitle=False) + [b"type=EOE msg=audit(1700000000.000:1): "]
    out = push_all(asm, records(lines))
    [event] = events(out)
    assert event.ended_by == "eoe"
    assert "EOE" not in [r.type for r in event.records]
    # An EOE after PROCTITLE (both written) must not start a new event.
    out = push_all(asm, records(exec_lines(2) + [b"type=EOE msg=audit(1700000000.000:2): "]))
    assert len(events(out)) == 1
    assert not [o for o in out if isinstance(o, ParseIssue)]


def test_single_record_types_are_events_on_their_own() -> None:
    asm = Assembler()
    [event] = events(push_all(asm, records([user_line(1)])))
    assert event.ended_by == "single"
    assert event.records[0].type == "USER_START"


def test_interleaved_events_are_kept_apart_by_node_and_id() -> None:
    a = exec_lines(1, pid=10, node="a")
    b = exec_lines(1, pid=20, node="b")
    c = exec_lines(2, pid=30)
    mixed = [x for trio in zip(a, b, c, strict=True) for x in trio]
    out = events(push_all(Assembler(), records(mixed)))
    assert sorted((e.node or "", e.id.serial, len(e.records)) for e in out) == [
        ("", 2, 5),
        ("a", 1, 5),
        ("b", 1, 5),
    ]


def test_incomplete_event_expires_by_record_time_not_wall_clock() -> None:
    asm = Assembler(window_ms=2000)
    first = exec_lines(1, t="1700000000.000", proctitle=False)
    out = push_all(asm, records(first))
    assert events(out) == [] and asm.inflight == 1
    # 1.5 s later in record time: still waiting.
    out = push_all(asm, records(exec_lines(2, t="1700000001.500")))
    assert [e.id.serial for e in events(out)] == [2]
    # 3 s later: the first one is expired, flagged incomplete.
    out = push_all(asm, records(exec_lines(3, t="1700000003.000")))
    got = {e.id.serial: e.ended_by for e in events(out)}
    assert got == {1: "expired", 3: "proctitle"}


def test_expire_with_passed_time() -> None:
    asm = Assembler(window_ms=1000)
    push_all(asm, records(exec_lines(1, t="1700000000.000", proctitle=False)))
    assert events(asm.expire(1700000000500)) == []
    [event] = events(asm.expire(1700000001500))
    assert event.ended_by == "expired"
    assert not event.complete


def test_inflight_is_bounded_by_eviction() -> None:
    asm = Assembler(max_inflight=3)
    lines = []
    for serial in range(1, 11):
        lines.append(exec_lines(serial, proctitle=False)[0])  # a lone SYSCALL each
    out = push_all(asm, records(lines))
    assert asm.inflight == 3
    evicted = events(out)
    assert [e.id.serial for e in evicted] == list(range(1, 8))
    assert all(e.ended_by == "evicted" for e in evicted)
    assert len(events(asm.flush())) == 3


def test_serial_gap_is_reported_as_lost_events() -> None:
    asm = Assembler(window_ms=1000)
    out = push_all(asm, records(exec_lines(1) + exec_lines(5) + exec_lines(6, t="1700000005.000")))
    lost = [o for o in out if isinstance(o, EventsLost)]
    assert len(lost) == 1
    assert (lost[0].first_serial, lost[0].last_serial, lost[0].count) == (2, 4, 3)
    assert lost[0].before.serial == 5


def test_out_of_order_serials_inside_the_window_are_not_a_gap() -> None:
    asm = Assembler()
    order = [1, 3, 2, 5, 4, 6]
    lines = [line for s in order for line in exec_lines(s)]
    out = push_all(asm, records(lines)) + asm.flush()
    assert not [o for o in out if isinstance(o, EventsLost)]
    assert len(events(out)) == 6


def test_serial_restart_at_boot_is_not_a_huge_gap() -> None:
    asm = Assembler()
    before = [line for s in (90000, 90001) for line in exec_lines(s, t="1700000000.000")]
    after = [line for s in (1, 2, 3) for line in exec_lines(s, t="1700000060.000")]
    out = push_all(asm, records(before + after)) + asm.flush()
    assert not [o for o in out if isinstance(o, EventsLost)]
    assert len(events(out)) == 5


def test_gap_at_end_of_stream_is_reported_on_flush() -> None:
    asm = Assembler()
    push_all(asm, records(exec_lines(1) + exec_lines(4)))
    lost = [o for o in asm.flush() if isinstance(o, EventsLost)]
    assert [(x.first_serial, x.last_serial) for x in lost] == [(2, 3)]


def test_daemon_records_do_not_take_part_in_gaps() -> None:
    asm = Assembler()
    daemon = b"type=DAEMON_START msg=audit(1700000000.000:7777): op=start ver=3.0.9 res=success"
    out = push_all(asm, records(exec_lines(1) + [daemon] + exec_lines(2))) + asm.flush()
    assert not [o for o in out if isinstance(o, EventsLost)]


def test_late_record_of_a_completed_event_is_reported() -> None:
    asm = Assembler()
    lines = exec_lines(1)
    out = push_all(asm, records(lines + [lines[3]]))
    issues = [o for o in out if isinstance(o, ParseIssue)]
    assert len(issues) == 1
    assert "late PATH record" in issues[0].reason


def test_state_roundtrip_keeps_done_and_gap_baseline() -> None:
    asm = Assembler()
    push_all(asm, records(exec_lines(1) + exec_lines(2)))
    restored = Assembler()
    restored.restore(asm.to_state())
    # Re-reading event 2 is quiet; event 3 continues the sequence without a gap.
    out = push_all(restored, records(exec_lines(2) + exec_lines(3))) + restored.flush()
    assert [e.id.serial for e in events(out)] == [3]
    assert not [o for o in out if isinstance(o, EventsLost | ParseIssue)]


def test_expire_with_a_clock_does_not_make_later_records_late() -> None:
    # The daemon passes "last record time + idle time"; records that come next may
    # carry earlier times (a host clock behind, a synthetic writer): still whole.
    asm = Assembler(window_ms=1000)
    push_all(asm, records(exec_lines(1, t="1700000000.000", proctitle=False)))
    [expired] = events(asm.expire(1700000060000))
    assert expired.ended_by == "expired"
    out = push_all(asm, records(exec_lines(2, t="1700000000.500")))
    [event] = events(out)
    assert event.ended_by == "proctitle"
    assert len(event.records) == 5


def test_nodes_beyond_the_limit_forget_the_first_seen_and_say_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(assembler_module, "MAX_NODES", 2)
    asm = Assembler()
    lines = [
        b"node=a " + user_line(1),
        b"node=a " + user_line(3),  # serial 2 is missing, but may still come
        b"node=b " + user_line(1),
        b"node=c " + user_line(1),
    ]
    out = push_all(asm, records(lines))
    assert len(events(out)) == 4
    lost = [o for o in out if isinstance(o, EventsLost)]
    assert [(x.node, x.first_serial, x.last_serial) for x in lost] == [("a", 2, 2)]
    [issue] = [o for o in out if isinstance(o, ParseIssue)]
    assert issue.line_no == 4
    assert "more than 2 nodes: node a forgotten" in issue.reason
    # Node a comes back as a new node: its serials start afresh, with no false gap.
    out = push_all(asm, records([b"node=a " + user_line(9)]))
    assert not [o for o in out if isinstance(o, EventsLost)]


# -- time policy (README "Time policy"; issue 16 §1) --------------------------------


def test_one_record_dated_ahead_does_not_expire_an_open_event() -> None:
    asm = Assembler(window_ms=1000)
    syscall, *rest = exec_lines(1, t="1700000000.000")
    out = asm.push(records([syscall])[0])
    out += asm.push(records([user_line(2, t="1700000006.000")])[0])
    out += push_all(asm, records(rest + exec_lines(3, t="1700000000.100")))
    got = {e.id.serial: (e.ended_by, len(e.records)) for e in events(out)}
    assert got == {1: ("proctitle", 5), 2: ("single", 1), 3: ("proctitle", 5)}
    [jump] = [o for o in out if isinstance(o, TimeJump)]
    assert "record dated 6.000 s ahead of the stream" in jump.reason
    assert jump.line_no == 1  # the user record's own line, in records()' numbering
    assert not [o for o in out if isinstance(o, ParseIssue)]


def test_a_clock_stepped_back_does_not_expire_later_events() -> None:
    asm = Assembler(window_ms=1000)
    out = push_all(asm, records(exec_lines(1, t="1700000100.000")))
    later = exec_lines(2, t="1700000000.000") + exec_lines(3, t="1700000000.200")
    out += push_all(asm, records(later))
    assert [(e.id.serial, e.ended_by, len(e.records)) for e in events(out)] == [
        (1, "proctitle", 5),
        (2, "proctitle", 5),
        (3, "proctitle", 5),
    ]
    [jump] = [o for o in out if isinstance(o, TimeJump)]
    assert "steps back 100.000 s" in jump.reason


def test_a_time_beyond_year_9999_is_reported_and_never_kept() -> None:
    asm = Assembler()
    out = push_all(asm, records(exec_lines(1, t="253402300800.000")))
    assert [e.ended_by for e in events(out)] == ["proctitle"]
    assert ["beyond year 9999" in o.reason for o in out if isinstance(o, ParseIssue)] == [True]
    out = push_all(asm, records(exec_lines(2)))
    assert [len(e.records) for e in events(out)] == [5]
    assert all(t < 253402300800000 for _, t in asm.to_state()["watermark"])


def test_a_restored_watermark_beyond_year_9999_is_dropped() -> None:
    # An older version could persist one; it must not make every later event expire.
    asm = Assembler()
    push_all(asm, records(exec_lines(1)))
    state = asm.to_state()
    state["watermark"] = [[None, 253402300800000]]
    restored = Assembler()
    restored.restore(state)
    out = push_all(restored, records(exec_lines(2, t="1700000001.000")))
    assert [(e.ended_by, len(e.records)) for e in events(out)] == [("proctitle", 5)]


def test_many_events_expiring_at_once_are_reported() -> None:
    asm = Assembler(window_ms=1000)
    lone = [exec_lines(s, t="1700000000.000", proctitle=False)[0] for s in range(1, 11)]
    out = push_all(asm, records(lone))
    out += push_all(asm, records(exec_lines(11, t="1700000000.900")))
    out += push_all(asm, records(exec_lines(12, t="1700000001.800")))
    assert [e.id.serial for e in events(out) if e.ended_by == "expired"] == list(range(1, 11))
    [issue] = [o for o in out if isinstance(o, ParseIssue)]
    assert issue.reason.startswith("10 events in flight expired at once")


def test_idle_time_ages_what_waits_without_moving_the_clock() -> None:
    asm = Assembler(window_ms=1000)
    push_all(asm, records(exec_lines(1, t="1700000000.000", proctitle=False)))
    assert events(asm.expire_idle(500)) == []
    [expired] = events(asm.expire_idle(1500))
    assert expired.ended_by == "expired"
    # The idle time was not record time: the next event, dated earlier, is whole.
    out = push_all(asm, records(exec_lines(2, t="1699999999.900")))
    assert [(e.ended_by, len(e.records)) for e in events(out)] == [("proctitle", 5)]


LOGIN_EVENT = [
    b"type=LOGIN msg=audit(1700000000.000:7): pid=2083 uid=0 subj=unconfined old-auid=4294967295"
    b" auid=0 tty=(none) old-ses=4294967295 ses=2 res=1",
    b"type=SYSCALL msg=audit(1700000000.000:7): arch=c000003e syscall=1 success=yes exit=4"
    b" a0=3 a1=4d7ddb8ae021 a2=4 a3=0 items=0 ppid=598 pid=2083 auid=0 uid=0 gid=0 euid=0"
    b' suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=2 comm="cron" exe="/usr/sbin/cron"'
    b" key=(null)",
    b"type=PROCTITLE msg=audit(1700000000.000:7): proctitle=2F7573722F7362696E2F63726F6E002D66",
    b"type=EOE msg=audit(1700000000.000:7): ",
]


def test_login_then_its_audited_syscall_is_no_late_record() -> None:
    # The kernel writes LOGIN (the write to /proc/self/loginuid) first in that syscall's
    # own event when the task is audited: the syscall's records follow under the same id.
    # Before, they were reported as late records of a complete event and the syscall lost.
    out = push_all(Assembler(), records(LOGIN_EVENT))
    assert not [o for o in out if isinstance(o, ParseIssue)]
    login, syscall = events(out)
    assert [r.type for r in login.records] == ["LOGIN"]
    assert [r.type for r in syscall.records] == ["SYSCALL", "PROCTITLE"]


def test_a_lone_login_is_still_an_event_on_its_own() -> None:
    # Unaudited tasks write LOGIN alone (go-libaudit's RHEL 7 corpus has one).
    out = push_all(Assembler(), records(LOGIN_EVENT[:1] + [user_line(8)]))
    assert [e.records[0].type for e in events(out)] == ["LOGIN", "USER_START"]
    # A second LOGIN under the same id is a late record, as any other.
    again = push_all(Assembler(), records(LOGIN_EVENT[:1] * 2))
    assert [o for o in again if isinstance(o, ParseIssue)]


def test_a_login_waits_for_its_syscall_while_it_is_done_however_many_logins_follow() -> None:
    # A lead is kept as long as its event is in the done set, not only for the last
    # 4,096 LOGINs: what LOGIN records came between cannot change what the syscall's
    # records are (the native scan takes a LOGIN with its syscall at once, and must be
    # able to leave the leads alone). Before: 5,000 lone LOGINs in a second made the
    # first one's syscall records two "late record" parse issues, and the syscall lost.
    first, syscall, proctitle = LOGIN_EVENT[:3]
    lone = [
        first.replace(b"000:7)", b"%03d:%d)" % (n % 1000, 8 + n)) for n in range(5000)
    ]
    out = push_all(Assembler(), records([first, *lone, syscall, proctitle]))
    assert not [o for o in out if isinstance(o, ParseIssue)]
    assert [r.type for r in events(out)[-1].records] == ["SYSCALL", "PROCTITLE"]
    # Once the done set forgets the LOGIN (four windows later), the next LOGIN drops its
    # lead; the syscall's records still open an event of their own.
    asm = Assembler(window_ms=1000)
    later = [
        first.replace(b"0.000:7)", b"%d.%03d:%d)" % (n // 2, n % 2 * 500, 8 + n))
        for n in range(1, 21)
    ]
    push_all(asm, records([first, *later]))
    # Pruned with the done set (as it was before the last record): the first and those
    # from more than 4 windows before the one before the last are gone.
    assert [key[1].serial for key in asm._leads] == list(range(19, 29))
    out = push_all(asm, records([syscall, proctitle]))
    assert not [o for o in out if isinstance(o, ParseIssue)]
    assert [r.type for r in events(out)[-1].records] == ["SYSCALL", "PROCTITLE"]
