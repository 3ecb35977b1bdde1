"""Quoting input text in diagnostics: short, escaped, and honest about what it left out."""

from kexecwatch.core.textsafe import QUOTE_LIMIT, quote_input


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
