from hypothesis import given
from hypothesis import strategies as st

from kexecwatch.core.audit.assembler import Assembler, AuditEvent
from kexecwatch.core.audit.fields import decode_untrusted, parse_fields
from kexecwatch.core.audit.record import AuditRecord, parse_record
from kexecwatch.core.process.events import Parent, PathItem, process_event_from
from kexecwatch.core.process.table import LiveProcess, ProcessTable
from tests.builders import exec_lines


def event_of(lines: list[bytes]) -> AuditEvent:
    asm = Assembler()
    out = []
    for i, line in enumerate(lines, 1):
        rec = parse_record(line, i)
        assert isinstance(rec, AuditRecord)
        out.extend(asm.push(rec))
    out.extend(asm.flush())
    [event] = [o for o in out if isinstance(o, AuditEvent)]
    return event


def test_exec_becomes_an_ecs_process_start() -> None:
    pe = process_event_from(event_of(exec_lines(9, pid=42, ppid=7)), "host-a")
    assert pe is not None
    doc = pe.to_document()
    assert doc["event"]["category"] == ["process"]
    assert doc["event"]["type"] == ["start"]
    assert doc["event"]["action"] == "executed"
    assert doc["event"]["outcome"] == "success"
    assert doc["host"] == {"name": "host-a", "os": {"type": "linux"}}
    assert doc["@timestamp"] == "2023-11-14T22:13:20.000Z"
    p = doc["process"]
    assert (p["pid"], p["name"], p["executable"]) == (42, "kexec", "/usr/sbin/kexec")
    assert p["args"] == ["kexec", "-l", "vmlinuz"]
    assert p["args_count"] == 3
    assert p["command_line"] == "kexec -l vmlinuz"
    assert p["title"] == "kexec\x00-l\x00vmlinuz"
    assert p["working_directory"] == "/srv"
    assert p["parent"] == {"pid": 7}
    assert doc["user"]["id"] == "1000"
    assert doc["auditd"]["id"] == "1700000000.000:9"
    assert doc["auditd"]["keys"] == ["exec"]
    assert doc["auditd"]["parent_source"] == "unknown"


def test_node_names_the_host() -> None:
    pe = process_event_from(event_of(exec_lines(1, node="n1")), "fallback")
    assert pe is not None
    assert pe.to_document()["host"]["name"] == "n1"


def test_failed_exec_is_kept_but_is_not_a_start() -> None:
    pe = process_event_from(event_of(exec_lines(1, success=False, comm="bash")), "h")
    assert pe is not None
    doc = pe.to_document()
    assert doc["event"]["outcome"] == "failure"
    assert doc["event"]["type"] == ["info"]
    assert "args" not in doc["process"]
    assert not pe.is_process_start


def test_key_list_is_split_on_0x01() -> None:
    lines = exec_lines(1)
    lines[0] = lines[0].replace(b'key="exec"', b"key=65786563013634626974")
    pe = process_event_from(event_of(lines), "h")
    assert pe is not None
    assert pe.keys == ("exec", "64bit")


def test_parent_is_the_latest_exec_before_the_child() -> None:
    table = ProcessTable()
    shell = process_event_from(event_of(exec_lines(1, pid=7, comm="bash", args=("bash",))), "h")
    script = process_event_from(
        event_of(exec_lines(2, pid=7, comm="kdumpctl", args=("/bin/bash", "kdumpctl"))), "h"
    )
    child = process_event_from(event_of(exec_lines(3, pid=8, ppid=7)), "h")
    assert shell and script and child
    table.observe(shell)
    table.observe(script)
    parent = table.parent_of(child)
    assert parent is not None
    assert (parent.name, parent.args, parent.source) == (
        b"kdumpctl",
        (b"/bin/bash", b"kdumpctl"),
        "event",
    )
    doc = child.with_parent(parent).to_document()
    assert doc["process"]["parent"]["name"] == "kdumpctl"
    assert doc["process"]["parent"]["args_count"] == 2
    assert doc["auditd"]["parent_exec_id"] == "1700000000.000:2"


def test_a_late_child_still_finds_the_parent_it_had() -> None:
    table = ProcessTable()
    old = process_event_from(event_of(exec_lines(1, t="1700000000.000", pid=7, comm="bash")), "h")
    new = process_event_from(event_of(exec_lines(3, t="1700000002.000", pid=7, comm="sleep")), "h")
    child = process_event_from(event_of(exec_lines(2, t="1700000001.000", pid=8, ppid=7)), "h")
    assert old and new and child
    table.observe(old)
    table.observe(new)
    parent = table.parent_of(child)
    assert parent is not None and parent.name == b"bash"


def test_pid_reuse_replaces_the_entry() -> None:
    table = ProcessTable()
    first = process_event_from(event_of(exec_lines(1, pid=7, ppid=1, comm="kdumpctl")), "h")
    reused = process_event_from(event_of(exec_lines(2, pid=7, ppid=500, comm="evil")), "h")
    child = process_event_from(event_of(exec_lines(3, pid=9, ppid=7)), "h")
    assert first and reused and child
    table.observe(first)
    table.observe(reused)
    parent = table.parent_of(child)
    assert parent is not None and parent.name == b"evil"


def test_unknown_parent_has_no_name_and_table_is_bounded() -> None:
    table = ProcessTable(max_entries=5)
    for serial in range(1, 21):
        pe = process_event_from(event_of(exec_lines(serial, pid=1000 + serial)), "h")
        assert pe
        table.observe(pe)
    assert len(table) == 5
    orphan = process_event_from(event_of(exec_lines(99, pid=5, ppid=1001)), "h")
    assert orphan
    assert table.parent_of(orphan) is None


def test_live_lookup_rejects_a_parent_younger_than_the_child() -> None:
    child = process_event_from(event_of(exec_lines(1, t="1700000000.000", pid=8, ppid=7)), "h")
    assert child
    young = LiveProcess(7, 1, b"imposter", b"/x", (b"x",), start_ms=1700000005000)
    table = ProcessTable(lookup=lambda pid: young)
    assert table.parent_of(child) is None
    old = LiveProcess(7, 1, b"kdumpctl", b"/usr/bin/bash", (b"bash",), start_ms=1699999990000)
    table = ProcessTable(lookup=lambda pid: old)
    parent = table.parent_of(child)
    assert parent == Parent(
        7, b"kdumpctl", b"/usr/bin/bash", (b"bash",), "procfs", None, 1, since_ms=1699999990000
    )


def test_table_state_roundtrip_is_byte_exact() -> None:
    table = ProcessTable()
    pe = process_event_from(event_of(exec_lines(1, pid=7, args=("x",))), "h")
    assert pe
    table.observe(pe.with_parent(None))
    again = ProcessTable()
    again.restore(table.to_state())
    child = process_event_from(event_of(exec_lines(2, pid=8, ppid=7)), "h")
    assert child
    assert again.parent_of(child) == table.parent_of(child)


def _observe_all(table: ProcessTable, *specs: dict[str, object]) -> None:
    for serial, spec in enumerate(specs, 1):
        pe = process_event_from(event_of(exec_lines(serial, **spec)), "h")  # type: ignore[arg-type]
        assert pe
        table.observe(pe)


def test_ancestry_walks_ppid_links_nearest_first() -> None:
    table = ProcessTable()
    _observe_all(
        table,
        {"pid": 1, "ppid": 0, "comm": "systemd", "t": "1700000000.000"},
        {"pid": 50, "ppid": 1, "comm": "sshd", "t": "1700000001.000"},
        {"pid": 60, "ppid": 50, "comm": "bash", "t": "1700000002.000"},
    )
    chain = table.ancestry(60, 1700000003000)
    assert [p.name for p in chain] == [b"bash", b"sshd", b"systemd"]
    assert [p.pid for p in chain] == [60, 50, 1]
    assert [p.name for p in table.ancestry(60, 1700000003000, depth=2)] == [b"bash", b"sshd"]
    assert table.ancestry(999, 1700000003000) == []


def test_ancestry_ignores_what_was_learned_after_the_time() -> None:
    table = ProcessTable()
    _observe_all(
        table,
        {"pid": 60, "ppid": 1, "comm": "bash", "t": "1700000002.000"},
        {"pid": 60, "ppid": 1, "comm": "sleep", "t": "1700000009.000"},
    )
    assert [p.name for p in table.ancestry(60, 1700000005000)] == [b"bash"]
    assert [p.name for p in table.ancestry(60, 1700000009000)] == [b"sleep"]
    assert table.ancestry(60, 1700000001000) == []


def test_ancestry_stops_on_a_pid_loop() -> None:
    table = ProcessTable()
    # pid reuse can make a loop: 7's parent is 8 and 8's parent is 7
    _observe_all(table, {"pid": 7, "ppid": 8, "comm": "a"}, {"pid": 8, "ppid": 7, "comm": "b"})
    assert [p.pid for p in table.ancestry(7, 1700000000000)] == [7, 8]


# PATH bodies: the kernel's layout (read by one regex) and odd ones (read field by field)
# must give the very PathItem the field-by-field reading gives.
path_names = st.sampled_from(
    [b'"/usr/sbin/kexec"', b'"/a b/inode=5 c"', b"2F746D702F6B65786563", b"(null)", b'""']
    + [b'"/x', b"/plain", b"2f6b"]
)
caps = st.sampled_from(
    [
        b"",
        b" cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0",
        b" cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0",
        b" cap_fp=1 cap_fi=2",
        b" obj=system_u:object_r:bin_t:s0",
    ]
)


@st.composite
def path_bodies(draw: st.DrawFn) -> bytes:
    item = draw(st.sampled_from([b"0", b"1", b"12", b"x", b"-1"]))
    inode = draw(st.sampled_from([b"", b"inode=493117 ", b"inode=007 ", b"inode=-3 ", b"inode=x "]))
    rest = b""
    if inode:
        dev = draw(st.sampled_from([b"fe:01", b"(none)", b"08:1"]))
        mode = draw(st.sampled_from([b"0100755", b"0120777", b"?", b"0x1"]))
        rest = b"dev=" + dev + b" mode=" + mode + b" ouid=0 ogid=0 rdev=00:00 "
    nametype = draw(st.sampled_from([b"NORMAL", b"UNKNOWN", b"PARENT", b"(null)", b"x y"]))
    body = (
        b"item="
        + item
        + b" name="
        + draw(path_names)
        + b" "
        + inode
        + rest
        + b"nametype="
        + nametype
        + draw(caps)
    )
    return draw(st.sampled_from([body, body + b" item=7", b"name=/a " + body, body + b" junk"]))


def reference_path(body: bytes) -> PathItem:
    """The PathItem of a PATH body read field by field, as process events were built."""
    fields, _ = parse_fields(body)

    def number(name: str) -> int | None:
        try:
            return int(fields[name])
        except (KeyError, ValueError):
            return None

    def plain(name: str) -> str | None:
        raw = fields.get(name)
        if raw is None or raw in (b"(none)", b"(null)", b"?"):
            return None
        return raw.decode("utf-8", "surrogateescape")

    return PathItem(
        number("item"),
        decode_untrusted(fields.get("name")),
        number("inode"),
        plain("dev"),
        plain("mode"),
        plain("nametype"),
    )


@st.composite
def kernel_path_bodies(draw: st.DrawFn) -> bytes:
    """PATH bodies in the kernel's own layout, which the one-regex reading takes."""
    name = draw(st.sampled_from([b'"/usr/sbin/kexec"', b'"/a b/inode=5"', b"2F6B", b"(null)"]))
    inode = draw(st.integers(0, 10**12))
    dev, mode = draw(st.sampled_from([(b"fe:01", b"0100755"), (b"08:11", b"0120777")]))
    found = b"inode=%d dev=%s mode=%s ouid=0 ogid=0 rdev=00:00 " % (inode, dev, mode)
    return (
        b"item=%d name=%s " % (draw(st.integers(0, 9)), name)
        + draw(st.sampled_from([found, b""]))
        + b"nametype="
        + draw(st.sampled_from([b"NORMAL", b"UNKNOWN", b"PARENT"]))
        + draw(st.sampled_from([b"", b" cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0"]))
    )


@given(st.lists(path_bodies() | kernel_path_bodies(), min_size=1, max_size=3))
def test_path_records_read_as_field_by_field(bodies: list[bytes]) -> None:
    lines = exec_lines(1)
    head = b"type=PATH msg=audit(1700000000.000:1): "
    lines = [line for line in lines if not line.startswith(b"type=PATH")]
    lines[-1:-1] = [head + body for body in bodies]
    process = process_event_from(event_of(lines), "h")
    assert process is not None
    assert process.paths == tuple(reference_path(body) for body in bodies)


# SYSCALL record bodies that share the text from " auid=" on (what process events remember
# per text) but differ before it: the kernel's head, and heads that carry fields of the
# remembered part themselves (then the remembered reading must not be used).
_SHARED_TAIL = b'auid=1000 uid=1000 gid=1000 euid=1000 comm="ls" exe="/usr/bin/ls" key="k"'
_HEADS = [
    b"arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=1 ppid=7 pid=8",
    b"arch=c000003e syscall=59 success=no exit=-2 a0=1 a1=2 a2=3 a3=4 items=0 ppid=7 pid=9",
    b"arch=c000003e syscall=59 success=yes exit=0 ppid=7 pid=8 ses=5 tty=pts3",
    b'arch=c000003e syscall=322 success=yes exit=0 ppid=7 pid=8 euid=0 egid=0 comm="sh"',
    b"arch=c00000b7 syscall=221 per=400000 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=1 "
    b"ppid=7 pid=8",
]


def _reference_who(body: bytes) -> tuple[object, ...]:
    """What a SYSCALL body says of the caller, read from its whole fields."""
    fields, _ = parse_fields(body)
    tty = fields.get("tty")
    key = decode_untrusted(fields.get("key"))
    plain = {n: v.decode() for n, v in fields.items() if v not in (b"(none)", b"(null)", b"?")}
    ids = ("uid", "gid", "euid", "suid", "fsuid", "egid", "sgid", "fsgid", "auid")
    return (
        tuple((n, plain[n]) for n in ids if n in plain),
        plain.get("tty"),
        plain.get("ses"),
        None if tty is None else tty not in (b"(none)", b"?", b""),
        decode_untrusted(fields.get("comm")),
        decode_untrusted(fields.get("exe")),
        tuple(key.decode().split("\x01")) if key else (),
    )


@given(st.lists(st.sampled_from(_HEADS), min_size=1, max_size=6))
def test_the_caller_part_read_once_per_text_reads_as_each_whole_body(heads: list[bytes]) -> None:
    # Before the remembered reading, every body was read whole; a body whose head holds
    # fields of the shared part (tty=, ses=, euid=, comm=) must still read them from there.
    for serial, head in enumerate(heads, 1):
        body = head + b" " + _SHARED_TAIL
        line = b"type=SYSCALL msg=audit(1700000000.000:%d): %s" % (serial, body)
        process = process_event_from(event_of([line]), "h")
        assert process is not None
        who = (
            process.ids,
            process.tty,
            process.session,
            process.interactive,
            process.comm,
            process.exe,
            process.keys,
        )
        assert who == _reference_who(body)
        fields, _ = parse_fields(body)
        assert process.pid == int(fields["pid"])
        assert process.exit_code == int(fields["exit"])
        assert process.success is (fields["success"] == b"yes")


@given(
    st.lists(
        st.tuples(st.sampled_from(["0", "1000", "4294967295", "9" * 3000]), st.booleans()),
        min_size=1,
        max_size=5,
    )
)
def test_user_and_group_documents_follow_each_event_s_own_ids(
    users: list[tuple[str, bool]],
) -> None:
    # The user/group objects are remembered per (ids, names): each event still gets its own.
    for serial, (uid, named) in enumerate(users, 1):
        line = exec_lines(serial, uid=int(uid))[0]
        if named:
            line += b'\x1dUID="u%s" EUID="e" GID="g" AUID="a" FSUID="f"' % uid.encode()
        process = process_event_from(event_of([line]), "h")
        assert process is not None
        doc = process.to_document()
        user = {"id": uid, **({"name": f"u{uid}"} if named else {})}
        effective = {"id": uid, **({"name": "e"} if named else {})}
        assert doc["user"] == {**user, "effective": effective}
        assert doc["group"] == {"id": "1000", **({"name": "g"} if named else {})}
        assert doc["auditd"]["login_user"] == {"id": uid, **({"name": "a"} if named else {})}
        assert doc["auditd"]["filesystem_user"] == {"id": uid, **({"name": "f"} if named else {})}
