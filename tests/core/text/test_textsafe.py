"""Terminal-safe text: shortening long values visibly."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kexecwatch.core.text.textsafe import QUOTE_LIMIT, clip, quote_input


def test_short_values_are_kept_whole() -> None:
    assert clip("kexec -l vmlinuz", 16) == "kexec -l vmlinuz"


def test_a_long_value_ends_with_the_bytes_left_out() -> None:
    assert clip("a" * 100, 10) == "a" * 10 + "…(+90 bytes)"


def test_cut_counts_utf8_bytes_and_never_splits_a_character() -> None:
    # "é" is two bytes: 5 of them fit in 10 bytes, the other 5 (10 bytes) are left out.
    assert clip("é" * 10, 11) == "é" * 5 + "…(+10 bytes)"


@given(st.text(), st.integers(min_value=0, max_value=50))
def test_clip_is_a_prefix_plus_an_honest_count(value: str, limit: int) -> None:
    out = clip(value, limit)
    raw = value.encode("utf-8", "surrogatepass")
    if len(raw) <= limit:
        assert out == value
        return
    kept, _, tail = out.rpartition("…(+")
    assert value.startswith(kept)
    assert len(kept.encode("utf-8", "surrogatepass")) <= limit
    assert tail == f"{len(raw) - len(kept.encode('utf-8', 'surrogatepass'))} bytes)"



def test_short_input_is_quoted_whole() -> None:
    assert quote_input(b"hello") == "hello"


def test_long_input_is_cut_at_the_limit_and_counts_the_rest() -> None:
    text = quote_input(b"a" * 100, 5000)
    assert text == "a" * QUOTE_LIMIT + f"…(+{5000 - QUOTE_LIMIT} bytes)"


def test_escapes_count_towards_the_limit_and_are_never_cut() -> None:
    text = quote_input(b"\x1b" * 30, limit=10)
    assert text == "\\x1b\\x1b…(+28 bytes)"


def test_multibyte_characters_count_their_bytes() -> None:
    assert quote_input("é".encode() * 5, limit=2) == "éé…(+6 bytes)"
