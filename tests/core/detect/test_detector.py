import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kexecwatch.core.audit.assembler import EventsLost
from kexecwatch.core.audit.linebuffer import LineBuffer, Region
from kexecwatch.core.audit.record import ParseIssue
from kexecwatch.core.detect.alerts import Alert, AlertsSuppressed, to_json_line
from kexecwatch.core.detect.detector import Detector, DetectorOptions
from kexecwatch.core.process.events import ProcessEvent
from kexecwatch.core.scan.prefilter import Prefilter
from kexecwatch.errors import KexecwatchError
from tests.builders import exec_lines, join
from tests.core.simple_rule import SimpleRule, kexec_like

LOG = join(
    exec_lines(1, pid=10, ppid=1, comm="bash", exe="/usr/bin/bash", args=("bash",))
    + exec_lines(2, pid=11, ppid=10)
    + [b"garbage line"]
    + exec_lines(3, pid=12, ppid=10, comm="ls", exe="/usr/bin/ls", args=("ls", "-l"))
    + exec_lines(6, pid=13, ppid=10, t="1700000009.000")
)


def run(data: bytes, *, events: bool = True, chunks: list[int] | None = None) -> list[object]:
    det = Detector(
        [SimpleRule(kexec_like)], host_name="h", options=DetectorOptions(emit_events=events)
    )
    out: list[object] = []
    pos = 0
    for cut in chunks or []:
        out.extend(det.feed(data[pos:cut]))
        pos = cut
    out.extend(det.feed(data[pos:]))
    out.extend(det.flush())
    return out


def fingerprint(out: list[object]) -> list[str]:
    keys = []
    for item in out:
        if isinstance(item, Alert):
            keys.append("alert " + to_json_line(item.to_document()).decode())
        elif isinstance(item, ProcessEvent):
            keys.append("event " + to_json_line(item.to_document()).decode())
        else:
            keys.append(repr(item))
    return keys


def test_pipeline_outputs_alerts_events_issues_and_gaps() -> None:
    out = run(LOG)
    alerts = [o for o in out if isinstance(o, Alert)]
    assert [a.event.pid for a in alerts] == [11, 13]
    assert alerts[0].to_document()["process"]["parent"]["name"] == "bash"
    assert alerts[0].id == "test-rule:-:1700000000.000:2"
    assert len([o for o in out if isinstance(o, ProcessEvent)]) == 4
    [issue] = [o for o in out if isinstance(o, ParseIssue)]
    assert issue.line_no == 11
    [lost] = [o for o in out if isinstance(o, EventsLost)]
    assert (lost.first_serial, lost.last_serial) == (4, 5)


def test_partial_last_line_waits_for_its_newline() -> None:
    det = Detector([SimpleRule(kexec_like)], host_name="h")
    lines = exec_lines(1)
    data = join(lines)
    assert det.feed(data[:-1]) == []  # PROCTITLE without its newline yet
    [alert] = det.feed(b"\n")
    assert isinstance(alert, Alert)


def test_missing_newline_at_end_is_reported_not_parsed() -> None:
    det = Detector([], host_name="h")
    det.feed(b"type=SYSCALL msg=audit(1.000:1): pid=1")
    [issue] = det.flush()
    assert isinstance(issue, ParseIssue)
    assert "without newline" in issue.reason


def test_limiter_caps_alerts_per_window_and_reports_the_rest() -> None:
    lines = []
    for serial in range(1, 8):
        lines += exec_lines(serial, pid=100 + serial)
    det = Detector([SimpleRule(kexec_like, max_signals=3)], host_name="h")
    out = det.feed(join(lines)) + det.flush()
    assert len([o for o in out if isinstance(o, Alert)]) == 3
    [sup] = [o for o in out if isinstance(o, AlertsSuppressed)]
    assert sup.count == 4
    assert det.stats.suppressed == 4


def test_since_until_filter_but_table_still_learns() -> None:
    data = join(
        exec_lines(1, t="1700000000.000", pid=10, comm="kdumpctl", args=("kdumpctl",))
        + exec_lines(2, t="1700000100.000", pid=11, ppid=10)
    )
    det = Detector(
        [SimpleRule(kexec_like)],
        host_name="h",
        options=DetectorOptions(since_ms=1700000050000),
    )
    [alert] = [o for o in det.feed(data) + det.flush() if isinstance(o, Alert)]
    assert alert.to_document()["process"]["parent"]["name"] == "kdumpctl"


def test_json_line_is_lossless_and_valid_utf8() -> None:
    lines = exec_lines(1)
    lines[1] = (
        b'type=EXECVE msg=audit(1700000000.000:1): argc=3 a0="kexec" a1="-l" a2=FF1B5D303B78070A'
    )
    [alert] = [o for o in run(join(lines)) if isinstance(o, Alert)]
    raw = to_json_line(alert.to_document())
    raw.decode("utf-8")  # valid UTF-8
    assert b"\x1b" not in raw and b"\x07" not in raw
    arg = json.loads(raw)["process"]["args"][2]
    assert arg.encode("utf-8", "surrogateescape") == b"\xff\x1b]0;x\x07\n"


def test_state_roundtrip_resumes_without_duplicates() -> None:
    data = join(exec_lines(1, pid=10) + exec_lines(2, pid=11, proctitle=False))
    det = Detector([SimpleRule(kexec_like)], host_name="h")
    first = [o for o in det.feed(data) if isinstance(o, Alert)]
    assert [a.event.pid for a in first] == [10]
    source, offset = det.resume_position
    state = json.loads(json.dumps(det.to_state()))
    again = Detector([SimpleRule(kexec_like)], host_name="h")
    again.restore(state)
    again.switch_source(source, offset)
    rest = data[offset:] + join([exec_lines(2, pid=11)[-1]])
    second = [o for o in again.feed(rest) + again.flush() if isinstance(o, Alert)]
    assert [a.event.pid for a in second] == [11]
    assert [o for o in again.flush() if isinstance(o, ParseIssue)] == []


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(LOG)), max_size=12))
def test_any_split_of_the_input_gives_the_same_outputs(cuts: list[int]) -> None:
    assert fingerprint(run(LOG, chunks=sorted(cuts))) == fingerprint(run(LOG))


def test_byte_by_byte_gives_the_same_outputs() -> None:
    assert fingerprint(run(LOG, chunks=list(range(1, len(LOG))))) == fingerprint(run(LOG))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=80), st.sampled_from(LOG.split(b"\n"))), max_size=30))
def test_arbitrary_bytes_never_escape_the_core(parts: list[bytes]) -> None:
    data = b"\n".join(parts)
    try:
        run(data)
    except KexecwatchError:
        pass


def test_a_late_eoe_leaves_nothing_to_resume_from() -> None:
    det = Detector([], host_name="h")
    data = b""
    for serial in (1, 2, 3):
        data += join(
            exec_lines(serial) + [f"type=EOE msg=audit(1700000000.000:{serial}): ".encode()]
        )
    det.feed(data)
    assert det.resume_position == (None, len(data))
    assert det._starts == {}


def test_each_source_counts_its_own_lines_and_names_itself() -> None:
    det = Detector([], host_name="h")
    a, b = (join(exec_lines(s, comm="ls", exe="/usr/bin/ls", args=("ls",))) for s in (1, 2))
    n = a.count(b"\n")
    out: list[object] = []
    for name, data in (("a.log", a + b"bad a\n" + b"tail a"), ("b.log", b + b"bad b\n")):
        out += det.switch_source(name)
        out += det.feed(data)
    out += det.flush()
    issues = [o for o in out if isinstance(o, ParseIssue)]
    assert [(str(i.where), i.length) for i in issues] == [
        (f"a.log:{n + 1}", 5),
        (f"a.log:{n + 2}", 6),  # reported on the switch, still named after a.log
        (f"b.log:{n + 1}", 5),
    ]
    assert all(i.snippet == b"" for i in issues)  # not audit-shaped: nothing kept to quote
    assert str(det.locate(3)) == "b.log:3"


def test_a_parse_issue_knows_the_whole_length_of_its_line() -> None:
    det = Detector([], host_name="h")
    [issue] = det.feed(b"type=" + b"x" * 4995 + b"\n")
    assert isinstance(issue, ParseIssue)
    assert (len(issue.snippet), issue.length) == (120, 5000)


def test_a_reason_that_names_input_is_shortened_too() -> None:
    det = Detector([], host_name="h")
    long_type = b"X" * 5000
    line = b"type=" + long_type + b" msg=audit(1700000000.000:7): a=1\n"
    out = det.feed(line + b"type=EOE msg=audit(1700000000.000:7): \n" + line)
    [issue] = [o for o in out if isinstance(o, ParseIssue)]
    assert "late XXX" in issue.reason
    text = issue.describe()
    assert len(text) < 600 and text.endswith(" bytes)")


def test_limiter_window_of_a_clock_stepped_back_is_a_new_window() -> None:
    # A full window, then the clock steps back a day: the next alerts are not counted
    # against the window of the future (README, "Time policy").
    lines = []
    for serial in range(1, 4):
        lines += exec_lines(serial, pid=100 + serial, t="1700086400.000")
    for serial in range(4, 7):
        lines += exec_lines(serial, pid=100 + serial, t="1700000000.000")
    det = Detector([SimpleRule(kexec_like, max_signals=3)], host_name="h")
    out = det.feed(join(lines)) + det.flush()
    assert [a.event.id.serial for a in out if isinstance(a, Alert)] == [1, 2, 3, 4, 5, 6]
    assert det.stats.suppressed == 0


class CountingKexecRule(SimpleRule):
    """kexec_like, stating that it needs only events whose comm is ``kexec``; counts calls."""

    def prefilters(self) -> list[Prefilter]:
        return [Prefilter(comms=frozenset({b"kexec"}))]

    def matches(self, document: dict[str, Any]) -> bool:
        CALLS.append(document["process"]["pid"])
        return super().matches(document)


CALLS: list[int] = []


def test_events_mode_shows_the_rules_only_the_events_they_need() -> None:
    # --events builds every process event, but a rule's document is built and read only
    # for the events its prefilters accept: the same alerts, without the work.
    def alerts_and_calls(events: bool) -> tuple[list[str], list[int]]:
        CALLS.clear()
        det = Detector(
            [CountingKexecRule(kexec_like)],
            host_name="h",
            options=DetectorOptions(emit_events=events),
        )
        out = det.feed(LOG) + det.flush()
        return [a.id for a in out if isinstance(a, Alert)], list(CALLS)

    quiet_alerts, _ = alerts_and_calls(events=False)
    event_alerts, calls = alerts_and_calls(events=True)
    assert event_alerts == quiet_alerts == [
        "test-rule:-:1700000000.000:2",
        "test-rule:-:1700000009.000:6",
    ]
    assert calls == [11, 13]  # not bash (10) nor ls (12)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, len(LOG)), max_size=6))
def test_the_scanner_says_where_each_block_ended_so_lines_are_not_counted_twice(
    cuts: list[int],
) -> None:
    # Whichever scanner runs (KEXECWATCH_SCANNER), its count of each block's lines is
    # the line buffer's line number: one pass over the bytes fewer, and still exact.
    said: list[tuple[int, int]] = []
    numbered = LineBuffer.numbered

    def spy(self: LineBuffer, region: Region, next_line_no: int) -> None:
        said.append((next_line_no, region.line_no + region.framed.count(b"\n") - 1))
        numbered(self, region, next_line_no)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(LineBuffer, "numbered", spy)
        run(LOG, chunks=sorted(cuts))
    assert said
    assert all(told == counted for told, counted in said), said
