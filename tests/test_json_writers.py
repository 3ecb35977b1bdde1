"""orjson (the optional extra ``kexecwatch[fast]``) and the standard library write the
same bytes for every document: the fast writer changes speed, never output."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kexecwatch.core.text import jsontext

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = sorted((ROOT / "fixtures" / "golden").rglob("*.jsonl"))
LOG = ROOT / "fixtures" / "audit" / "enriched" / "all-scenarios.log"

pytest.importorskip("orjson", reason="the test extra installs orjson; without it only one writer")


@pytest.fixture
def stdlib_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsontext, "_orjson", None)


def both(obj: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[tuple[bytes, str], tuple[bytes, str]]:
    """``(line, compact unsorted dumps)`` by orjson, then by the standard library."""
    fast = jsontext.line(obj), jsontext.dumps(obj, sort_keys=False)
    with monkeypatch.context() as m:
        m.setattr(jsontext, "_orjson", None)
        slow = jsontext.line(obj), jsontext.dumps(obj, sort_keys=False)
    return fast, slow


def test_orjson_is_the_writer_when_installed() -> None:
    assert jsontext.writer() == "orjson"


def test_the_standard_library_is_the_fallback(stdlib_only: None) -> None:
    assert jsontext.writer() == "stdlib"
    assert jsontext.line({"b": 1, "a": "é\u2028"}) == '{"a":"é\\u2028","b":1}\n'.encode()


# Every character, lone surrogates (undecodable bytes) and line breaks included.
texts = st.text(st.characters(codec=None, exclude_categories=()), max_size=12) | st.sampled_from(
    ["\u0085", "\u2028", "\u2029", "\udc80", "a\x00b", "\x7f", '"\\/', "\U0001f600"]
)
values = st.recursive(
    st.none() | st.booleans() | st.integers() | texts,
    lambda inner: (
        st.lists(inner, max_size=6)
        | st.dictionaries(texts, inner, max_size=6)
        | st.tuples(inner, inner)
    ),
    max_leaves=40,
)


@given(values)
def test_both_writers_write_the_same_bytes(value: Any) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        fast, slow = both(value, monkeypatch)
    assert fast == slow
    assert not {"\u0085", "\u2028", "\u2029"} & set(fast[0].decode("utf-8"))
    assert fast[0].count(b"\n") == 1 and fast[0].endswith(b"\n")


@pytest.mark.parametrize("path", GOLDEN, ids=[p.name for p in GOLDEN])
def test_every_golden_document_is_written_the_same_by_both(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    for doc in docs:
        fast, slow = both(doc, monkeypatch)
        assert fast == slow


def test_values_json_refuses_are_refused_by_both(monkeypatch: pytest.MonkeyPatch) -> None:
    @dataclasses.dataclass
    class Point:
        x: int

    for bad in ({"p": Point(1)}, {"s": {1, 2}}, {"b": b"bytes"}):
        with pytest.raises(TypeError):
            jsontext.line(bad)
        monkeypatch.setattr(jsontext, "_orjson", None)
        with pytest.raises(TypeError):
            jsontext.line(bad)
        monkeypatch.undo()


def test_what_orjson_would_write_otherwise_goes_the_stdlib_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Text(str):
        pass

    odd = {
        "huge": 2**70,  # beyond orjson's 64 bits
        "keys": {1: "int key", 2: "int key"},  # json.dumps writes "1"
        "sub": Text("subclass"),
        "surrogate": "\udcff",  # an undecodable byte: written as \udcff
        "deep": nested(300),  # deeper than orjson goes
    }
    fast, slow = both(odd, monkeypatch)
    assert fast == slow
    assert b'"surrogate":"\\udcff"' in fast[0]


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def replay_events(*prefix: str) -> bytes:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            ";".join([*prefix, "from kexecwatch.cli import main", "sys.exit(main())"]),
            "replay",
            "--events",
            "--quiet",
            "--host-name",
            "fixture-host",
            str(LOG),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr.decode()
    return result.stdout


def test_replay_events_output_is_the_same_without_orjson() -> None:
    fast = replay_events("import sys")
    # A None in sys.modules makes "import orjson" fail as if it were not installed.
    slow = replay_events("import sys", "sys.modules['orjson'] = None")
    assert fast.count(b"\n") > 10
    assert fast == slow


def _stdlib_ascii(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True).encode("ascii")


@given(values)
def test_state_files_are_written_as_the_stdlib_writes_them_ascii(value: Any) -> None:
    """The checkpoint's writer: orjson's bytes only where they are the standard library's
    ``ensure_ascii`` bytes (keys unsorted); both writers agree on every value."""
    assert jsontext.ascii_compact(value) == _stdlib_ascii(value)
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(jsontext, "_orjson", None)
        assert jsontext.ascii_compact(value) == _stdlib_ascii(value)


def test_state_files_escape_what_ensure_ascii_escapes() -> None:
    # DEL is ASCII, yet ensure_ascii escapes it, and orjson does not.
    for text in ("\x7f", "é", "\u2028", "\udcff", "\U0001f600", "a\x00b"):
        assert jsontext.ascii_compact({"t": text, "n": 2**70}) == _stdlib_ascii(
            {"t": text, "n": 2**70}
        )
    assert jsontext.ascii_compact({"b": 1, "a": [None, True]}) == b'{"b":1,"a":[null,true]}'


def _in_pieces(text: bytes) -> jsontext.JsonText:
    """``text`` as pieces: bytes, then a view of the rest."""
    half = len(text) // 2
    return jsontext.JsonText(text[:half], memoryview(text)[half:])


def _as_text(value: Any, picks: list[bool]) -> Any:
    """``value`` with dict values (at any depth of dicts) swapped for their written text
    where ``picks`` says so, in turn."""
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        pick = picks.pop() if picks else False
        out[key] = _in_pieces(jsontext.ascii_compact(item)) if pick else _as_text(item, picks)
    return out


@given(st.dictionaries(texts, values, max_size=6), st.lists(st.booleans(), max_size=20))
def test_state_text_spliced_in_is_the_same_bytes(value: dict[str, Any], picks: list[bool]) -> None:
    """The checkpoint's process table comes as its text (``JsonText``, written natively):
    spliced in, the bytes are those of the whole written at once, by either writer."""
    spliced = _as_text(value, picks)
    assert jsontext.ascii_compact_with(spliced) == _stdlib_ascii(value)
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(jsontext, "_orjson", None)
        assert jsontext.ascii_compact_with(spliced) == _stdlib_ascii(value)
    assert jsontext.ascii_compact_with(jsontext.JsonText(b"[1]")) == b"[1]"
    with pytest.raises(TypeError):
        jsontext.ascii_compact_with({1: jsontext.JsonText(b"1")})
