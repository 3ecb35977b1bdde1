"""Full events, made cheaper: each shortcut gives the very outputs of the slow path.

- A fast-path run a rule prefilter needs is read straight from its bytes
  (``process_event_of_run``), without records or an assembled event in between.
- The rule index remembers its candidates by the values of the indexed fields.
- A pattern leaf's search for a few needles tries each with ``in``, not a regex.
- Documents: PATH items written out, the audit id written once.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kexecwatch.core.detect import detector as detector_module
from kexecwatch.core.detect import ruleindex
from kexecwatch.core.detect.detector import Detector, DetectorOptions
from kexecwatch.core.detect.rule import compile_query, evaluate
from kexecwatch.core.detect.rule.ast import Comparison, Field, Op
from kexecwatch.core.process.events import PathItem, _path_doc, _put, text
from kexecwatch.core.process.identity import entity_id
from tests.builders import join
from tests.core.detect.test_detector import fingerprint
from tests.core.detect.test_ruleindex import HANDWRITTEN, _Query
from tests.core.process.test_run_events import both, kernel_exec, runs, runs_of
from tests.core.simple_rule import SimpleRule, kexec_like


def _every(doc: dict[str, Any]) -> bool:
    return True


def _outputs(data: bytes, rules: list[SimpleRule], *, chunk: int | None = None) -> list[str]:
    det = Detector(rules, host_name="h", options=DetectorOptions(emit_events=False))
    out: list[object] = []
    step = chunk or len(data) or 1
    for pos in range(0, len(data), step):
        out += det.feed(data[pos : pos + step])
    out += det.flush()
    return fingerprint(out)


def _slow(data: bytes, rules: list[SimpleRule], **kw: Any) -> list[str]:
    """The outputs with every run built the reference way (records, then the event)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(detector_module, "process_event_of_run", lambda *a, **k: None)
        return _outputs(data, rules, **kw)


LOG = join(
    kernel_exec(1, ("bash", "-c", "x"))
    + kernel_exec(2, ("kexec", "-l", "vmlinuz"))
    + kernel_exec(3, ("kexec", "-e"))
)


def test_a_run_a_rule_needs_is_read_without_records() -> None:
    # Fails on the old code: it built every such run from its records.
    built: list[object] = []
    reference = detector_module.process_event_from

    def counting(*args: Any, **kwargs: Any) -> Any:
        built.append(args[0])
        return reference(*args, **kwargs)

    rules = [SimpleRule(kexec_like)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(detector_module, "process_event_from", counting)
        fast = _outputs(LOG, rules)
    assert built == []
    assert fast == _slow(LOG, rules)
    assert sum(line.startswith("alert ") for line in fast) == 3


@settings(max_examples=150, deadline=None)
@given(st.lists(runs(), min_size=1, max_size=5), st.integers(1, 400))
def test_runs_read_straight_give_the_reference_outputs(parts: list[bytes], chunk: int) -> None:
    data = b"".join(parts)
    rules = [SimpleRule(_every), SimpleRule(kexec_like, rule_id="kexec")]
    assert _outputs(data, rules, chunk=chunk) == _slow(data, rules, chunk=chunk)


# -- the rule index remembers its candidates -----------------------------------------


def _candidates_of_old(index: ruleindex.RuleIndex[Any], document: dict[str, Any]) -> list[Any]:
    """The index's candidates as they were found before they were remembered."""
    found = set(index._always)
    for tables in index._fields:
        value: Any = document
        for key in tables.path:
            value = value.get(key) if type(value) is dict else None
        if value is None:
            continue
        for item in value if type(value) is list else (value,):
            if type(item) is str:
                tables.lookup(item, found)
    return [index.rules[i] for i in sorted(found)]


QUERIES = [
    *HANDWRITTEN,
    'process where process.name like~ ("py*", "PERL") and user.id != "0"',
    'process where process.parent.executable : "/usr/*" and process.args : "-C"',
]
_TEXT = st.sampled_from(["nc", "NC", "ncat", "sh", "-e", "b", "a", "python3", "c1", "x", "kexec"])
_VALUE = st.recursive(
    st.one_of(_TEXT, st.none(), st.integers(0, 2), st.booleans()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner, inner),
        st.dictionaries(st.sampled_from(["name", "args"]), inner, max_size=2),
    ),
    max_leaves=6,
)


@st.composite
def _documents(draw: st.DrawFn) -> dict[str, Any]:
    process: dict[str, Any] = {}
    for name in ("name", "args", "executable", "command_line"):
        if draw(st.booleans()):
            process[name] = draw(_VALUE)
    if draw(st.booleans()):
        process["parent"] = draw(
            st.one_of(
                st.dictionaries(st.sampled_from(["name", "args", "executable"]), _VALUE),
                _VALUE,
            )
        )
    doc: dict[str, Any] = {"event": {"category": ["process"]}, "process": process}
    if draw(st.booleans()):
        doc["event"]["action"] = draw(st.sampled_from(["kexec_load", "exec", ["kexec_load"]]))
    return doc


@settings(max_examples=400, deadline=None)
@given(st.lists(_documents(), min_size=1, max_size=6))
def test_remembered_candidates_are_those_found(documents: list[dict[str, Any]]) -> None:
    index = ruleindex.RuleIndex([_Query(q) for q in QUERIES])
    for doc in [*documents, *documents]:  # the second time from what is remembered
        assert index.candidates(doc) == _candidates_of_old(index, doc), doc


def test_candidates_of_the_same_values_are_not_looked_up_again() -> None:
    # Fails on the old code: each document's values were looked up in the tables again.
    index = ruleindex.RuleIndex([_Query(q) for q in QUERIES])
    doc = {"event": {"category": ["process"]}, "process": {"name": "nc", "args": ["nc", "-e"]}}
    first = index.candidates(doc)
    assert [r.text for r in first][:2] == QUERIES[:2]

    def lookup(*args: Any) -> None:
        raise AssertionError("looked up again")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ruleindex._FieldTables, "lookup", lookup)
        again = {
            "event": {"category": ["process"]},
            "process": {"name": "nc", "args": ["nc", "-e"]},
        }
        assert index.candidates(again) == first
        assert index.candidates(again) is not index.candidates(again)  # each its own list


# -- a few needles, each tried with in -----------------------------------------------

_PIECE = st.text(st.sampled_from("ab/\\\0.Σ"), min_size=1, max_size=4)


@settings(max_examples=600, deadline=None)
@given(st.lists(_PIECE, min_size=1, max_size=40), st.text(st.sampled_from("ab/.Σx"), max_size=30))
def test_the_needle_search_finds_what_the_alternation_finds(pieces: list[str], text: str) -> None:
    values = tuple(f"*{p}*" for p in pieces)
    cmp = Comparison(Op.LIKE, Field(("process", "args"), False, 0), values, (0,) * len(values), 0)
    search = evaluate._needle_search(cmp)
    assert search is not None
    needles = {
        max((t for t in v.replace("?", "*").split("*") if t), key=lambda t: (len(t), t))
        for v in values
    }
    alternation = re.compile("|".join(re.escape(t) for t in needles)).search
    assert (search(text) is None) == (alternation(text) is None)


def test_a_few_needles_are_searched_without_a_regex() -> None:
    # Fails on the old code: every needle search was a compiled alternation's search.
    query = compile_query('process where process.args like~ ("*/dev/tcp/*", "*zsh/net/*")')
    [cmp] = [query.condition]
    assert isinstance(cmp, Comparison)
    search = evaluate._needle_search(cmp)
    assert search is not None
    assert not isinstance(getattr(search, "__self__", None), re.Pattern)
    assert search("x\0/dev/tcp/1") is not None
    assert search("/dev/udp/") is None
    many = tuple(f"*n{i:02d}*" for i in range(evaluate._FEW_NEEDLES + 1))
    big = Comparison(Op.LIKE, Field(("process", "args"), False, 0), many, (0,) * len(many), 0)
    assert isinstance(getattr(evaluate._needle_search(big), "__self__", None), re.Pattern)


# -- documents: the PATH items written out -------------------------------------------


def _path_doc_old(p: PathItem) -> dict[str, Any]:
    """``_path_doc`` as it was: one ``_put`` per field."""
    doc: dict[str, Any] = {}
    _put(doc, "item", p.item)
    _put(doc, "name", text(p.name))
    _put(doc, "inode", p.inode)
    _put(doc, "dev", p.dev)
    _put(doc, "mode", p.mode)
    _put(doc, "nametype", p.nametype)
    return doc


_MAYBE_TEXT = st.one_of(st.none(), st.text(max_size=4))


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(st.none(), st.integers(-1, 9)),
    st.one_of(st.none(), st.binary(max_size=6)),
    st.one_of(st.none(), st.integers(0, 99)),
    _MAYBE_TEXT,
    _MAYBE_TEXT,
    _MAYBE_TEXT,
)
def test_a_path_item_is_written_as_before(
    item: int | None,
    name: bytes | None,
    inode: int | None,
    dev: str | None,
    mode: str | None,
    nametype: str | None,
) -> None:
    p = PathItem(item, name, inode, dev, mode, nametype)
    new, old = _path_doc(p), _path_doc_old(p)
    assert new == old
    assert list(new) == list(old)  # the same order of keys: the same JSON


def test_documents_of_runs_are_written_as_before() -> None:
    # The entity id and the audit id from one str(id): the same document as the
    # reference path's process event gives (recorded fixtures and a generated log).
    data = join(kernel_exec(1) + kernel_exec(2, ("bash", "-c", "x")))
    for run, event_id in runs_of(data):
        reference, lane = both(run, event_id)
        assert reference is not None
        assert lane is not None
        doc = lane.to_document()
        assert doc == reference.to_document()
        assert doc["auditd"]["id"] == str(event_id)
        assert doc["process"]["entity_id"] == entity_id("h", lane.pid, str(event_id))
