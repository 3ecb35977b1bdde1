from hypothesis import given
from hypothesis import strategies as st

from kexecwatch.core.audit.record import AuditRecord, EventId, ParseIssue, parse_record


def test_plain_syscall_header() -> None:
    rec = parse_record(b"type=SYSCALL msg=audit(1796011798.750:10): arch=c000003e syscall=59", 7)
    assert isinstance(rec, AuditRecord)
    assert rec.node is None
    assert rec.type == "SYSCALL"
    assert rec.id == EventId(1796011798, 750, 10)
    assert str(rec.id) == "1796011798.750:10"
    assert rec.body == b"arch=c000003e syscall=59"
    assert rec.enriched == b""
    assert rec.line_no == 7


def test_node_prefix_and_enriched_tail() -> None:
    line = (
        b'node=kxlab-node type=SYSCALL msg=audit(1.002:3): comm="kexec" key=(null)'
        b"\x1dARCH=x86_64 SYSCALL=execve SADDR={ saddr_fam=inet laddr=0.0.0.0 }"
    )
    rec = parse_record(line)
    assert isinstance(rec, AuditRecord)
    assert rec.node == "kxlab-node"
    assert rec.id == EventId(1, 2, 3)
    assert rec.body == b'comm="kexec" key=(null)'
    assert rec.enriched.startswith(b"ARCH=x86_64")


def test_unknown_type_and_empty_eoe_body() -> None:
    rec = parse_record(b"type=UNKNOWN[1334] msg=audit(5.000:1): prog-id=3")
    assert isinstance(rec, AuditRecord)
    assert rec.type == "UNKNOWN[1334]"
    eoe = parse_record(b"type=EOE msg=audit(5.000:1): ")
    assert isinstance(eoe, AuditRecord)
    assert eoe.body == b""


def test_eventid_roundtrip_and_order() -> None:
    a = EventId.from_str("10.005:7")
    assert a == EventId(10, 5, 7)
    assert a.time_ms == 10005
    assert EventId(1, 0, 9) < EventId(1, 1, 0)


def test_malformed_lines_become_issues_with_line_numbers() -> None:
    cases = {
        b"garbage": "no type= field",
        b"type=SYSCALL msg=audit(12:3): x=1": "malformed header",
        b"type=SYSCALL arch=c000003e": "no msg=audit( header",
        b"type=SYSCALL msg=audit(1.2:3)\x00": "NUL byte",
        b"   ": "empty line",
    }
    for line, reason in cases.items():
        issue = parse_record(line, 42)
        assert isinstance(issue, ParseIssue), line
        assert issue.line_no == 42
        assert reason in issue.reason
        # Only an audit-shaped line (it names a type=) is kept for quoting.
        assert issue.snippet == (line[:120] if b"type=" in line else b"")


def test_crlf_is_tolerated() -> None:
    rec = parse_record(b'type=CWD msg=audit(1.000:1): cwd="/srv"\r')
    assert isinstance(rec, AuditRecord)
    assert rec.body == b'cwd="/srv"'


@given(st.binary(max_size=400), st.integers(min_value=0, max_value=10**6))
def test_parse_record_never_raises(data: bytes, line_no: int) -> None:
    result = parse_record(data, line_no)
    assert isinstance(result, AuditRecord | ParseIssue)


@given(st.binary(max_size=200))
def test_any_body_after_a_good_header_parses(body: bytes) -> None:
    line = b"type=PATH msg=audit(1.000:1): " + body.replace(b"\n", b" ").replace(b"\0", b" ")
    assert isinstance(parse_record(line), AuditRecord)


def test_a_nul_byte_anywhere_makes_the_line_an_issue() -> None:
    # The kernel hex-encodes every byte below 0x21, so a NUL is corruption (a NUL
    # hole after a crash or a truncation), never a value to parse.
    issue = parse_record(b'type=EXECVE msg=audit(1.000:1): argc=2 a0="kexec" a1="-\0l"', 3)
    assert isinstance(issue, ParseIssue)
    assert issue.reason == "NUL byte in line"


def test_old_daemon_records_without_the_colon() -> None:
    rec = parse_record(b"type=DAEMON_CONFIG msg=audit(1490239800.477:34) config changed, auid=0")
    assert isinstance(rec, AuditRecord)
    assert rec.type == "DAEMON_CONFIG"
    assert rec.body == b"config changed, auid=0"


def test_records_read_one_after_another_keep_their_own_ids() -> None:
    # The id of consecutive records of one event is read once; any other is read anew.
    lines = [
        b"type=SYSCALL msg=audit(1700000000.123:7): a=1",
        b"type=PATH msg=audit(1700000000.123:7): a=2",
        b"type=PATH msg=audit(1700000000.1234:7): a=3",
        b"type=CWD msg=audit(1700000000.123:8): a=4",
        b"type=CWD msg=audit(1700000001.123:8): a=5",
    ]
    ids = []
    for line in lines:
        record = parse_record(line)
        assert isinstance(record, AuditRecord)
        ids.append(str(record.id))
    assert ids == [
        "1700000000.123:7",
        "1700000000.123:7",
        "1700000000.123:7",
        "1700000000.123:8",
        "1700000001.123:8",
    ]
