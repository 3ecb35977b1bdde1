"""Differential tests: the fast path and the full parse of every record agree.

The reference is ``DetectorOptions(fast_path=False)``: every line parsed, every event
built in full. Both must give the same outputs, in the same order, with the same
counters, on the shared corpus, on recorded fixtures, and on generated logs cut at
arbitrary points, with the shipped rule, with rules whose literals make a narrow
prefilter, and with a rule that has none.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.generate import Generator, generate
from kexecwatch.core.detect.detector import DetectionRule, Detector, DetectorOptions
from kexecwatch.core.detect.rule import compile_query
from kexecwatch.core.scan.prefilter import Prefilter, prefilter_from_values
from kexecwatch.rules import load_builtin_rules
from tests.builders import exec_lines, feed_in_pieces, join
from tests.core.detect.test_detector import fingerprint
from tests.core.simple_rule import SimpleRule, kexec_like

ROOT = Path(__file__).resolve().parents[3]
# ../shared/corpus from the main checkout; worktrees live one level deeper.
CORPUS = next(
    (
        p
        for p in (ROOT.parent / "shared" / "corpus", ROOT.parent.parent / "shared" / "corpus")
        if p.is_dir()
    ),
    ROOT.parent / "shared" / "corpus",
)
FIXTURES = ROOT / "fixtures" / "audit"


def corpus_files() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(
        p for p in CORPUS.iterdir() if p.suffix in (".log", ".txt") and p.name != "SOURCES.txt"
    )


def fixture_files() -> list[Path]:
    return sorted(FIXTURES.rglob("*.log")) if FIXTURES.is_dir() else []


def run(
    data: bytes,
    rules: Sequence[DetectionRule],
    *,
    fast: bool,
    cuts: Sequence[int] = (),
    **options: object,
) -> tuple[list[str], dict[str, int]]:
    # Fresh rule instances: detections learn (kexec inodes, removal bursts), and one
    # run must not teach the next.
    det = Detector(
        copy.deepcopy(list(rules)),
        host_name="h",
        options=DetectorOptions(fast_path=fast, **options),  # type: ignore[arg-type]
    )
    out = feed_in_pieces(det, data, cuts)
    return fingerprint(out), det.stats.as_dict()


def assert_same(
    data: bytes, rules: Sequence[DetectionRule], cuts: Sequence[int] = (), **options: object
) -> list[str]:
    reference = run(data, rules, fast=False, **options)
    fast = run(data, rules, fast=True, cuts=cuts, **options)
    assert fast[0] == reference[0]
    assert fast[1] == reference[1]
    return reference[0]


BUILTIN = load_builtin_rules("upstream")
ALL_RULES = load_builtin_rules("all")


class _QueryRule(SimpleRule):
    """A SimpleRule whose predicate is an EQL query, with the query exposed like Rule's."""

    def __init__(self, text: str) -> None:
        self.query = compile_query(text)
        super().__init__(self.query.matches)


NO_LITERALS = _QueryRule('process where process.args_count > 2 and process.parent.name != "x"')
BY_EXE = _QueryRule('process where process.executable in ("/usr/bin/git", "/usr/bin/ls")')


@pytest.mark.parametrize("path", corpus_files() or [None], ids=lambda p: p.name if p else "absent")
def test_corpus_samples_agree(path: Path | None) -> None:
    if path is None:
        pytest.skip(f"shared corpus absent ({CORPUS})")
    data = path.read_bytes()
    for rules in (BUILTIN, ALL_RULES, [SimpleRule(kexec_like)], [NO_LITERALS]):
        assert_same(data, rules)
    assert_same(data, BUILTIN, emit_events=True)


@pytest.mark.parametrize("path", fixture_files() or [None], ids=lambda p: p.name if p else "absent")
def test_recorded_fixtures_agree(path: Path | None) -> None:
    if path is None:
        pytest.fail(f"no recorded fixtures in {FIXTURES}")
    data = path.read_bytes()
    assert_same(data, BUILTIN)
    assert_same(data, ALL_RULES)
    assert_same(data, BUILTIN, emit_events=True)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[int, bytes]:
    out = {}
    for seed in (1, 2, 3):
        path = tmp_path_factory.mktemp("gen") / f"seed{seed}.log"
        generate(path, 400_000, seed=seed, kexec_every=150, lose_every=300, interleave=0.1)
        out[seed] = path.read_bytes()
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_generated_logs_agree_and_raise_the_expected_alerts(
    generated: dict[int, bytes], seed: int
) -> None:
    data = generated[seed]
    keys = assert_same(data, BUILTIN)
    alerts = [k for k in keys if k.startswith("alert ")]
    assert alerts, "the generated log should hold alerting kexec runs"
    for rules in ([NO_LITERALS], [BY_EXE], [*BUILTIN, NO_LITERALS], ALL_RULES):
        assert_same(data, rules)
    assert_same(data, BUILTIN, emit_events=True)
    assert_same(data, BUILTIN, since_ms=1_717_000_000_000 + 10**6, window_ms=0)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_chunking_agrees(generated: dict[int, bytes], data: st.DataObject) -> None:
    log = generated[data.draw(st.sampled_from([1, 2, 3]))][:120_000]
    cuts = data.draw(st.lists(st.integers(0, len(log)), max_size=12))
    assert_same(log, BUILTIN, cuts)


def _eoe_of(line: bytes) -> bytes:
    head, _, _ = line.partition(b"): ")
    return b"type=EOE " + head[head.find(b"msg=audit(") :] + b"):"


_LINE_EDITS = st.tuples(
    st.sampled_from(["dup", "eoe", "swap", "drop", "bytes"]),
    st.integers(0, 10**9),
    st.integers(0, 10**9),
    st.sampled_from([b"\n", b" ", b"\x1d", b'"', b"x"]),
)


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    edits=st.lists(_LINE_EDITS, max_size=8),
    window_ms=st.sampled_from([0, 3, 5_000]),
)
def test_damaged_generated_logs_agree(
    seed: int, edits: list[tuple[str, int, int, bytes]], window_ms: int
) -> None:
    gen = Generator(seed=seed, kexec_every=20, interleave=0.2, lose_every=50)
    lines = [line.encode() for _, line in zip(range(300), gen.lines(), strict=False)]
    for kind, a, b, junk in edits:
        # Mostly near the line edited: inside or right after its own event.
        i = a % len(lines)
        j = min(i + 1 + b % 4, len(lines) - 1) if b % 5 else b % len(lines)
        if kind == "dup":  # a record read twice, or a late one
            lines.insert(j, lines[i])
        elif kind == "eoe":  # EOE lines, in place or late
            lines.insert(j, _eoe_of(lines[i]))
        elif kind == "swap":
            lines[i], lines[j] = lines[j], lines[i]
        elif kind == "drop" and len(lines) > 1:
            del lines[i]
        else:
            line = lines[i]
            at = b % (len(line) + 1)
            lines[i] = line[:at] + junk + line[at:]
    log = b"".join(line + b"\n" for line in lines)
    assert_same(log, [*BUILTIN, BY_EXE], [len(log) // 3], window_ms=window_ms, max_inflight=8)
    assert_same(log, ALL_RULES, window_ms=window_ms, max_inflight=8)


def test_prefilter_from_the_shipped_rule_is_narrow() -> None:
    [rule] = BUILTIN
    prefilter = prefilter_from_values(rule.query.required_values())
    assert prefilter is not None
    assert prefilter.comms == frozenset({b"kexec"})
    assert prefilter.success is True
    assert prefilter.accepts("execve", True, b"kexec", b"/x", host="h")
    assert not prefilter.accepts("execve", True, b"bash", b"/x", host="h")
    assert not prefilter.accepts("kexec_load", True, b"kexec", b"/x", host="h")


def test_prefilter_of_a_rule_that_cannot_match_process_events() -> None:
    assert prefilter_from_values({"event.category": frozenset({"network"})}) is None
    assert prefilter_from_values({"event.type": frozenset({"creation"})}) is None


def test_added_prefilter_reaches_the_hook() -> None:
    gen = Generator(seed=5, kexec_every=30)
    log = b"".join(line.encode() + b"\n" for _, line in zip(range(2000), gen.lines(), strict=False))
    seen: list[str] = []

    class Spy(Detector):
        def _on_event(self, event, out):  # type: ignore[no-untyped-def]
            if any(r.type == "SYSCALL" and b"syscall=320" in r.body for r in event.records):
                seen.append(str(event.id))
            super()._on_event(event, out)

    det = Spy([], host_name="h")
    det.add_prefilter(Prefilter(syscalls=frozenset({"kexec_file_load"})))
    det.feed(log)
    det.flush()
    assert seen, "kexec_file_load events must reach _on_event once a prefilter asks"
    assert seen == sorted(set(seen), key=seen.index)


def _disguise_log() -> bytes:
    """kexec run by its own name (its inode learned), then through a hard link, a
    symlink, the dynamic loader and a copy outside the system directories, among
    ordinary execs; every event a whole canonical run."""
    lines: list[bytes] = []
    serial = 0

    def add(**kw: object) -> None:
        nonlocal serial
        serial += 1
        event = exec_lines(serial, t=f"1700000000.{serial:03d}", pid=100 + serial, **kw)  # type: ignore[arg-type]
        # The kernel's full SYSCALL layout, so that the fast path takes the run whole.
        event[0] = event[0].replace(b" items=", b" a0=1 a1=2 a2=3 a3=4 items=")
        lines.extend(event)

    add(comm="bash", exe="/usr/bin/bash", args=("bash",), inode=11)
    add(comm="kexec", exe="/usr/sbin/kexec", args=("kexec", "-l", "vmlinuz"), inode=4242)
    add(comm="ls", exe="/usr/bin/ls", args=("ls",), inode=12)
    add(comm="kx", exe="/usr/local/bin/kx", args=("kx", "-e"), inode=4242)  # hard link
    add(comm="kx", exe="/usr/local/bin/kx", args=("kx", "-e"), inode=4243)  # other inode
    add(comm="kx", exe="/usr/sbin/KEXEC", args=("kx", "-e"), inode=77)  # symlink, any case
    add(
        comm="ld-linux-x86-64",
        exe="/usr/lib64/ld-linux-x86-64.so.2",
        args=("/lib64/ld-linux-x86-64.so.2", "/usr/sbin/kexec", "-e"),
        inode=78,
    )
    add(comm="kexec", exe="/tmp/kexec", args=("kexec", "-u"), inode=79)
    add(comm="cat", exe="/usr/bin/cat", args=("cat",), inode=13)
    return join(lines)


def test_native_rules_keep_their_alerts_on_the_fast_path() -> None:
    data = _disguise_log()
    skimmed = Detector(ALL_RULES, host_name="h")
    skimmed.feed(data)
    assert skimmed._scanner.verdicts, "the runs should be taken whole (fast path)"
    keys = assert_same(data, ALL_RULES)
    docs = [json.loads(k.removeprefix("alert ")) for k in keys if k.startswith("alert ")]
    disguised = {
        d["auditd"]["sequence"]
        for d in docs
        if d["rule"]["name"].startswith("Kexec Binary Run Under")
    }
    # The hard link (serial 4), the symlink (6), the loader (7), the copy in /tmp (8).
    assert disguised == {4, 6, 7, 8}, [(d["auditd"]["sequence"], d["rule"]["name"]) for d in docs]


def test_the_default_rules_parse_only_the_events_they_may_need(
    generated: dict[int, bytes],
) -> None:
    def parsed_with(rules: Sequence[DetectionRule]) -> tuple[int, int]:
        parsed: list[str] = []

        class Spy(Detector):
            def _on_event(self, event, out):  # type: ignore[no-untyped-def]
                parsed.append(str(event.id))
                super()._on_event(event, out)

        det = Spy(rules, host_name="h")
        det.feed(generated[1])
        det.flush()
        return len(parsed), det.stats.events

    upstream, events = parsed_with(BUILTIN)
    everything, _ = parsed_with(ALL_RULES)
    # Single records and interleaved events always take the reference path; whole
    # runs only when a prefilter may want them: the native rules add the kexec runs
    # (one scenario in 150 events), not the ordinary execs.
    assert upstream < events * 0.3, (upstream, events)
    assert everything - upstream < events * 0.03, (everything, upstream, events)
