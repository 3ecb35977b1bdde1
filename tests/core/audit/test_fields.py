from hypothesis import given, settings
from hypothesis import strategies as st

from kexecwatch.core.audit.fields import (
    _PLAIN_BODY,
    MAX_ARGS,
    _split_into,
    argv_from_execve,
    decode_untrusted,
    decode_untrusted_text,
    is_bound_problem,
    parse_fields,
)


def test_quoted_hex_null_and_numbers() -> None:
    fields, problems = parse_fields(
        b'argc=4 a0="./kexec" a1="-l" a2=612062 a3=1B5B324A key=(null) tty=(none) exit=-2'
    )
    assert problems == []
    assert fields["argc"] == b"4"
    assert decode_untrusted(fields["a0"]) == b"./kexec"
    assert decode_untrusted(fields["a2"]) == b"a b"
    assert decode_untrusted(fields["a3"]) == b"\x1b[2J"
    assert decode_untrusted(fields["key"]) is None
    assert decode_untrusted(fields["tty"]) is None
    assert fields["exit"] == b"-2"


def test_quoted_null_argument_is_a_real_argument() -> None:
    assert decode_untrusted(b'"(null)"') == b"(null)"


def test_unquoted_non_hex_is_kept_raw() -> None:
    assert decode_untrusted(b"top") == b"top"
    assert decode_untrusted(b"ABC") == b"ABC"  # odd length: not hex


def test_invalid_utf8_is_lossless_as_text() -> None:
    text = decode_untrusted_text(b"FFFE41")
    assert text is not None
    assert text.encode("utf-8", "surrogateescape") == b"\xff\xfeA"


def test_nested_msg_payload_is_flattened_without_overwriting() -> None:
    body = (
        b"pid=2222 uid=0 auid=4294967295 ses=4294967295 msg='op=PAM:session_close "
        b'acct="kxw" exe="/usr/bin/su" uid=5 hostname=? addr=? terminal=? res=success\''
    )
    fields, problems = parse_fields(body)
    assert problems == []
    assert fields["pid"] == b"2222"
    assert fields["uid"] == b"0"  # the kernel's outer field wins
    assert fields["op"] == b"PAM:session_close"
    assert decode_untrusted(fields["acct"]) == b"kxw"
    assert fields["res"] == b"success"


def test_stray_tokens_and_unterminated_quotes_are_reported() -> None:
    fields, problems = parse_fields(b'user pid=3 comm="abc')
    assert fields["pid"] == b"3"
    assert any("stray token" in p for p in problems)
    assert any("unterminated quote in comm" in p for p in problems)


def test_argv_by_index_with_missing_empty_args() -> None:
    fields, _ = parse_fields(b'argc=3 a0="/bin/ls" a2="/etc"')
    argv, argc, problems = argv_from_execve([fields])
    assert argv == [b"/bin/ls", b"", b"/etc"]
    assert argc == 3
    assert problems == []


def test_argv_chunks_across_records_are_joined_then_decoded() -> None:
    arg = b"x" * 10 + b" y"
    hexed = arg.hex().upper().encode()
    first, _ = parse_fields(
        b'argc=3 a0="kexec" a1="-l" a2_len=' + str(len(hexed)).encode() + b" a2[0]=" + hexed[:8]
    )
    second, _ = parse_fields(b"a2[1]=" + hexed[8:])
    argv, argc, problems = argv_from_execve([first, second])
    assert argv == [b"kexec", b"-l", arg]
    assert argc == 3
    assert problems == []


def test_argv_missing_chunk_is_reported() -> None:
    fields, _ = parse_fields(b'argc=1 a0_len=4 a0[0]="ab" a0[2]="cd"')
    argv, _, problems = argv_from_execve([fields])
    assert argv == [b"abcd"]
    assert problems == ["argument a0 is missing chunks"]


@given(st.binary(max_size=300))
def test_parse_fields_never_raises(body: bytes) -> None:
    fields, problems = parse_fields(body)
    assert isinstance(fields, dict)
    assert isinstance(problems, list)
    argv_from_execve([fields])


def _loop_fields(body: bytes) -> tuple[dict[str, bytes], list[str]]:
    fields: dict[str, bytes] = {}
    problems: list[str] = []
    _split_into(body, fields, problems, nested=False)
    return fields, problems


@settings(max_examples=3000)
@given(
    st.lists(
        st.sampled_from(
            [b" ", b"  ", b"=", b'"', b"'", b"a", b"msg", b"x1", b"\t", b"\x1d", b"\xff"]
        ),
        max_size=16,
    )
)
def test_plain_body_shortcut_reads_like_the_loop(parts: list[bytes]) -> None:
    body = b"".join(parts)
    assert parse_fields(body) == _loop_fields(body)


def test_plain_body_shortcut_is_taken_for_kernel_records() -> None:
    body = b'item=0 name="/usr/sbin/kexec" inode=5 dev=fe:01 mode=0100755 nametype=NORMAL'
    assert _PLAIN_BODY.fullmatch(body)
    assert parse_fields(body) == _loop_fields(body)
    assert not _PLAIN_BODY.fullmatch(b"pid=1 msg='op=x res=success'")


def test_argument_index_beyond_argc_is_dropped_and_reported() -> None:
    # Issue 16 §3: one 15-byte field padded the table to 100 million entries.
    fields, _ = parse_fields(b'argc=3 a0="kexec" a1="-l" a2="vmlinuz" a99999999="x"')
    argv, argc, problems = argv_from_execve([fields])
    assert argv == [b"kexec", b"-l", b"vmlinuz"]
    assert argc == 3
    assert len(problems) == 1
    assert is_bound_problem(problems[0])
    assert "a99999999" in problems[0] and "argc=3" in problems[0]


def test_chunked_argument_beyond_argc_is_dropped() -> None:
    fields, _ = parse_fields(b'argc=1 a0="x" a99999999_len=2 a99999999[0]="y" a5[7]="z"')
    argv, _, problems = argv_from_execve([fields])
    assert argv == [b"x"]
    assert len(problems) == 1 and is_bound_problem(problems[0])
    assert "2 argument fields" in problems[0]


def test_without_argc_the_kernel_limit_bounds_the_table() -> None:
    fields, _ = parse_fields(b'a0="kexec" a99999999="x" a' + b"9" * 5000 + b'="y"')
    argv, argc, problems = argv_from_execve([fields])
    assert argc is None
    assert argv == [b"kexec"]
    assert len(problems) == 1 and is_bound_problem(problems[0])
    assert str(MAX_ARGS) in problems[0]


def test_argc_beyond_the_kernel_limit_is_not_believed() -> None:
    fields, _ = parse_fields(b'argc=99999999999 a0="kexec" a3="-l"')
    argv, argc, problems = argv_from_execve([fields])
    assert argc == 99999999999
    assert argv == [b"kexec", b"", b"", b"-l"]
    assert any(is_bound_problem(p) and "argc=99999999999" in p for p in problems)


def test_huge_argc_text_does_not_raise() -> None:
    fields, _ = parse_fields(b"argc=" + b"9" * 5000 + b' a0="kexec"')
    argv, argc, problems = argv_from_execve([fields])
    assert argv == [b"kexec"]
    assert argc is None
    assert problems == ["bad argc"]


@settings(max_examples=300)
@given(
    st.integers(min_value=0, max_value=10**12),
    st.lists(st.integers(min_value=0, max_value=10**12), max_size=6),
)
def test_argument_table_never_exceeds_what_the_record_justifies(
    argc: int, indices: list[int]
) -> None:
    body = f"argc={argc} " + " ".join(f'a{i}="v"' for i in indices)
    fields, _ = parse_fields(body.encode())
    argv, _, _ = argv_from_execve([fields])
    assert len(argv) <= min(argc, MAX_ARGS)


def test_negative_argc_is_not_believed() -> None:
    fields, _ = parse_fields(b'argc=-1 a0="kexec" a1="-l"')
    argv, argc, problems = argv_from_execve([fields])
    assert argc == -1
    assert argv == [b"kexec", b"-l"]
    assert problems == [
        f"argument table bounded: argc=-1 is outside the kernel's range 0 to {MAX_ARGS}"
    ]
