"""Every built-in rule is total: hostile records never make a detection raise."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kexecwatch.core.detect.alerts import Alert, to_json_line, to_text_line
from kexecwatch.core.detect.detector import Detector
from kexecwatch.rules import load_builtin_rules
from tests.builders import join
from tests.core.detect.detections.lines import config_change, daemon, kexec, syscall

WORD = st.lists(
    st.sampled_from(
        [
            "k",
            "exec",
            "-",
            "--",
            "l",
            "u",
            "p",
            "s",
            "f",
            "t",
            "=",
            "/",
            "\\",
            '"',
            "'",
            " ",
            "\x1b",
            "\u202e",
            "é",
            "ld-linux.so",
            "kdumpctl",
        ]
    ),
    max_size=5,
).map("".join)


@st.composite
def records(draw: st.DrawFn) -> list[bytes]:
    kind = draw(st.sampled_from(["exec", "syscall", "config", "daemon", "bytes"]))
    serial = draw(st.integers(min_value=1, max_value=40))
    if kind == "exec":
        args = tuple(draw(st.lists(WORD, max_size=5)))
        comm = draw(st.sampled_from(["kexec", "kx", "KEXEC", "ld-linux-x86-64", "bash"]))
        exe = draw(st.sampled_from(["/usr/sbin/kexec", "/tmp/kexec", "/lib64/ld-2.so", ""]))
        return kexec(serial, serial + 100, draw(st.integers(0, 140)), *args, comm=comm, exe=exe)
    if kind == "syscall":
        number = draw(st.sampled_from([246, 320, 283, 104, 294, 59, 1]))
        a3 = draw(st.sampled_from(["0", "1", "3e0001", "zz", "ffffffffffffffff"]))
        return syscall(
            serial,
            serial + 100,
            draw(st.integers(0, 140)),
            number,
            a=("0", draw(st.sampled_from(["0", "1", "x"])), "0", a3),
        )
    if kind == "config":
        body = draw(
            st.sampled_from(
                [
                    "op=remove_rule key=(null) list=4 res=1",
                    'op="remove rule" res=0',
                    "audit_enabled=0 old=2 res=1",
                    "op=set audit_enabled=0",
                    "lost=x",
                    "lost=4 res=yes",
                    "op= key=",
                    "",
                ]
            )
        )
        return config_change(serial, body)
    if kind == "daemon":
        return [daemon(draw(st.sampled_from(["START", "END", "ABORT"])), serial)]
    return [draw(st.binary(max_size=60)).replace(b"\n", b" ")]


@settings(max_examples=300, deadline=None)
@given(st.lists(records(), max_size=12))
def test_builtin_rules_never_raise(parts: list[list[bytes]]) -> None:
    det = Detector(load_builtin_rules(), host_name="h")
    data = join([line for part in parts for line in part])
    for item in det.feed(data) + det.flush():
        if isinstance(item, Alert):
            assert item.reason
            doc = item.to_document()
            to_json_line(doc).decode("utf-8")
            assert "\n" not in to_text_line(doc)
