"""LineBuffer: the lines of any chunking, with their numbers and offsets, and an overlong
line skipped and reported once, whatever the chunks (feed_region builds each block with
at most one copy)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kexecwatch.core.audit.linebuffer import Line, LineBuffer, Region

lines_strategy = st.lists(st.binary(max_size=12).map(lambda b: b.replace(b"\n", b"")), max_size=30)


def fed(data: bytes, cuts: list[int], max_line: int = 1 << 20) -> list[Line]:
    buffer = LineBuffer(max_line=max_line)
    buffer.switch("s")
    out: list[Line] = []
    pos = 0
    for cut in sorted(set(cuts)):
        out += buffer.feed(data[pos:cut])
        pos = cut
    out += buffer.feed(data[pos:])
    return out


@settings(max_examples=300, deadline=None)
@given(lines_strategy, st.lists(st.integers(0, 400), max_size=12), st.booleans())
def test_every_chunking_gives_each_line_once_with_its_number_and_offset(
    lines: list[bytes], cuts: list[int], unended: bool
) -> None:
    data = b"".join(line + b"\n" for line in lines) + (b"partial" if unended else b"")
    expected = []
    offset = 0
    for number, line in enumerate(lines, 1):
        expected.append(Line(line, number, "s", offset))
        offset += len(line) + 1
    assert fed(data, [c for c in cuts if c <= len(data)]) == expected


@settings(max_examples=400, deadline=None)
@given(st.lists(st.integers(1, 60), min_size=1, max_size=8))
def test_an_overlong_line_is_reported_once_and_the_next_lines_keep_their_place(
    steps: list[int],
) -> None:
    long_line = b"x" * 40
    data = b"a\n" + long_line + b"\nb\nc\n"
    cuts, pos = [], 0
    for step in steps:
        pos += step
        cuts.append(min(pos, len(data)))
    out = fed(data, cuts, max_line=10)
    assert out[0] == Line(b"a", 1, "s", 0)
    assert out[-2:] == [Line(b"b", 3, "s", 43), Line(b"c", 4, "s", 45)]
    middle = out[1:-2]
    # Reported once as overlong when its tail waited beyond max_line (at the offset of
    # the chunk its newline came in), else read whole.
    assert len(middle) == 1
    if middle[0].overlong:
        assert (middle[0].data, middle[0].line_no) == (b"", 2)
    else:
        assert middle[0] == Line(long_line, 2, "s", 2)


def regions(
    data: bytes, cuts: list[int], say_where: bool, framed: bool = False
) -> tuple[list[Region], LineBuffer]:
    """feed_region over the chunks; ``say_where``: the reader tells where each block ended
    (as the scanners do), else the buffer counts when asked; ``framed``: each chunk is fed
    behind a newline of its own (as replay does)."""
    buffer = LineBuffer()
    buffer.switch("s")
    out: list[Region] = []
    pos = 0
    for cut in [*sorted(set(cuts)), len(data)]:
        chunk = data[pos:cut]
        if framed:
            fed = b"\n" + chunk
            overlong, region = buffer.feed_region(fed, framed=True)
            if region is not None and chunk.endswith(b"\n") and region.offset == pos:
                assert region.framed is fed  # whole lines, nothing waiting: not copied
        else:
            overlong, region = buffer.feed_region(chunk)
        assert overlong is None
        pos = cut
        if region is not None:
            out.append(region)
            if say_where:
                buffer.numbered(region, region.line_no + region.framed.count(b"\n") - 1)
    return out, buffer


@settings(max_examples=300, deadline=None)
@given(lines_strategy, st.lists(st.integers(0, 400), max_size=12), st.booleans(), st.booleans())
def test_blocks_come_behind_a_newline_and_are_numbered_whoever_counts(
    lines: list[bytes], cuts: list[int], say_where: bool, framed: bool
) -> None:
    data = b"".join(line + b"\n" for line in lines) + b"partial"
    out, buffer = regions(data, [c for c in cuts if c <= len(data)], say_where, framed)
    assert all(r.framed.startswith(b"\n") and r.framed.endswith(b"\n") for r in out)
    assert b"".join(r.data for r in out) == data[: len(data) - len(b"partial")]
    number, offset = 1, 0
    for region in out:
        assert (region.line_no, region.offset) == (number, offset)
        number += region.framed.count(b"\n") - 1
        offset += len(region.framed) - 1
    assert buffer.line_no == len(lines)
    assert buffer.pending == b"partial"


def test_a_count_said_of_an_older_block_is_ignored() -> None:
    buffer = LineBuffer()
    _, first = buffer.feed_region(b"a\nb\n")
    _, second = buffer.feed_region(b"c\n")
    assert first is not None and second is not None
    buffer.numbered(first, 99)  # not the last block: the buffer counts itself
    assert buffer.line_no == 3
    buffer.numbered(second, 50)  # already counted
    assert buffer.line_no == 3
