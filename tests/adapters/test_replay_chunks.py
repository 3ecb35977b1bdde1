"""Replay's read loop: chunks cut between events (``whole_events``). The bytes are the
same, in the same order; a chunk ends right before the last syscall event that starts in
it; and so, with the native scanner, no event is left half-read at a chunk's end for the
Python scanner to finish record by record."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bench.generate import Generator
from kexecwatch.adapters.replay import whole_events
from kexecwatch.core.detect.detector import Detector
from kexecwatch.rules import load_builtin_rules
from tests.nativelib import native_lib

START = b"\ntype=SYSCALL msg=audit("
RULES = load_builtin_rules("all")


def generated(n: int, seed: int) -> bytes:
    lines = Generator(seed=seed).lines()
    return b"".join((line + "\n").encode() for _, line in zip(range(n), lines, strict=False))


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    for pos in range(0, len(data), size):
        yield data[pos : pos + size]


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5000), st.integers(0, 3), st.integers(1, 400))
def test_the_same_bytes_in_chunks_that_end_before_an_event(
    size: int, seed: int, lines: int
) -> None:
    data = generated(lines, seed)
    framed = list(whole_events(chunked(data, size)))
    assert all(piece.startswith(b"\n") for piece in framed)
    pieces = [piece[1:] for piece in framed]
    assert b"".join(pieces) == data
    assert all(pieces)
    pos = 0
    for piece, read in zip(pieces, chunked(data, size), strict=False):
        pos += len(piece)
        if START in b"\n" + read[1:] and pos < len(data):
            # Cut at the last event start the read held, or at one it carried.
            assert data[pos - 1 : pos + len(START) - 1] == START, (pos, piece[-80:])


def test_a_chunk_without_an_event_start_goes_on_whole() -> None:
    reads = [b"type=SYSCALL msg=audit(1.000:1): x\n", b"type=PROCTITLE y\n", b"type=EOE z\n"]
    assert list(whole_events(reads)) == [b"\n" + read for read in reads]
    reads = [b"a\ntype=SYSCALL msg=audit(1.000:2): x\n", b"type=PROCTITLE y\n"]
    event = b"\ntype=SYSCALL msg=audit(1.000:2): x\ntype=PROCTITLE y\n"
    assert list(whole_events(reads)) == [b"\na\n", event]


def lines_read_by_python(chunks: Iterable[bytes]) -> int:
    """How many lines the native scanner's detector reads on the reference path."""
    det = Detector(copy.deepcopy(RULES), host_name="h", native=native_lib())
    host = det._scanner._host
    line = host.line
    lines: list[int] = []

    def counted(*args: Any) -> None:
        lines.append(1)
        line(*args)

    host.line = counted  # the scanner's way to the reference path, line by line
    for chunk in chunks:
        det.feed(chunk, framed=chunk.startswith(b"\n"))
    det.flush()
    return len(lines)


def test_with_the_native_scanner_no_event_is_left_for_python_at_a_chunk_end() -> None:
    data = generated(20_000, 5)
    split = lines_read_by_python(chunked(data, 8192))
    whole = lines_read_by_python(whole_events(chunked(data, 8192)))
    # Cut anywhere, every chunk end costs an event read record by record; cut between
    # events, only what native hands back for its own reasons (kexec events, for the
    # rules) is.
    assert whole < split // 4, (split, whole)
