"""Two events whose records interleave, taken whole: split_pair and maybe_push_pair.

The fast path takes such a pair only when that changes nothing: these tests hold
``split_pair`` to pulling exactly the two events apart, and ``maybe_push_pair`` to the
state that pushing the records one by one, in log order, leaves behind.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from bench.generate import Generator
from kexecwatch.core.audit.assembler import Assembler, AuditEvent
from kexecwatch.core.audit.record import EventId
from kexecwatch.core.detect.detector import Detector, DetectorOptions
from kexecwatch.core.scan.fastpath import PAIR_MAX_LINES, SYSCALL_HEAD, run_end, split_pair
from kexecwatch.rules import load_builtin_rules
from tests.core.audit.test_assembler import records
from tests.core.scan.test_fast_path import assert_same


def whole_events(n: int, seed: int = 1) -> list[list[bytes]]:
    """``n`` whole exec events of the generator, each its lines (no newlines)."""
    gen = Generator(seed=seed, interleave=0.0, lose_every=0, kexec_every=0)
    out: list[list[bytes]] = []
    while len(out) < n:
        out.extend(
            [line.encode() for line in event]
            for event in gen.next_events()
            if event[0].startswith("type=SYSCALL") and len(event) >= 4
        )
    return out[:n]


def interleave(a: list[bytes], b: list[bytes], cut_a: int = 2, cut_b: int = 2) -> list[bytes]:
    """A[:cut_a], B[:cut_b], the rest of A, the rest of B: how concurrent events mix."""
    return a[:cut_a] + b[:cut_b] + a[cut_a:] + b[cut_b:]


def block(lines: list[bytes]) -> bytes:
    """Lines as the fast path reads a block: a newline in front, each line ended."""
    return b"\n" + b"".join(line + b"\n" for line in lines)


def split(lines: list[bytes]) -> tuple[bytes, bytes, int] | None:
    buf = block(lines)
    m = SYSCALL_HEAD.match(buf)
    assert m is not None
    return split_pair(buf, m)


@pytest.mark.parametrize(("cut_a", "cut_b"), [(1, 1), (2, 2), (1, 3), (3, 5), (5, 1)])
def test_split_pair_pulls_the_two_events_apart(cut_a: int, cut_b: int) -> None:
    a, b = whole_events(2)
    lines = interleave(a, b, cut_a, cut_b)
    result = split(lines)
    assert result is not None
    first, second, end = result
    assert first == block(a)
    assert second == block(b)
    assert end == len(block(lines))
    for part in (first, second):  # each is whole again: the plain fast path takes it
        m = SYSCALL_HEAD.match(part)
        assert m is not None
        assert run_end(part, m) is not None


def test_split_pair_refuses_what_is_not_one_such_pair() -> None:
    a, b, c = whole_events(3)
    user = b"type=USER_ACCT msg=audit(1717000140.915:1): pid=1 uid=0 msg='op=x res=success'"
    refused = {
        "B ends first": a[:2] + b + a[2:],
        "a third event": a[:2] + b[:2] + c[:1] + a[2:] + b[2:],
        "a foreign record": a[:2] + b[:2] + [user] + a[2:] + b[2:],
        "A record after A's end": a[:2] + b[:2] + a[2:] + [a[1]] + b[2:],
        "B never ends": a[:2] + b[:2] + a[2:] + b[2:-1],
        "a line without a header": a[:2] + b[:2] + [b"garbage"] + a[2:] + b[2:],
    }
    for why, lines in refused.items():
        assert split(lines) is None, why
    # Two whole events one after the other are a pair too (the first ends first).
    assert split(a + c) == (block(a), block(c), len(block(a + c)))
    # Too long to be worth it: the search gives up after PAIR_MAX_LINES lines.
    long_a = a[:1] + [a[1]] * PAIR_MAX_LINES + a[2:]
    assert split(interleave(long_a, b)) is None


def ids(lines: list[bytes]) -> tuple[EventId, EventId, int, int]:
    first, second = records([lines[0]])[0].id, None
    for record in records(lines):
        if record.id != first:
            second = record.id
            break
    assert second is not None
    return first, second, first.time_ms, second.time_ms


def warmed(seed_lines: list[bytes], **options: int) -> Assembler:
    asm = Assembler(**options)
    for record in records(seed_lines):
        asm.push(record)
    return asm


@pytest.mark.parametrize("serials", ["in order", "a gap before", "second lower", "fresh"])
def test_maybe_push_pair_equals_pushing_the_records(serials: str) -> None:
    before, a, b = whole_events(3)
    if serials == "a gap before":
        before = [line.replace(b":75617)", b":75610)") for line in before]
    if serials == "second lower":
        a, b = b, a
    lines = interleave(a, b)
    reference = warmed([] if serials == "fresh" else before)
    fast = copy.deepcopy(reference)
    pushed: list[object] = []
    for record in records(lines):
        pushed.extend(reference.push(record))
    first, second, first_ms, second_ms = ids(lines)
    taken = fast.maybe_push_pair(None, first, first_ms, second, second_ms)
    assert taken is not None
    done = [o for o in pushed if isinstance(o, AuditEvent)]
    assert [e.id for e in done] == [first, second]  # the first ends first
    assert taken == [o for o in pushed if not isinstance(o, AuditEvent)]
    assert fast.to_state() == reference.to_state()
    assert fast.inflight == reference.inflight == 0


def test_maybe_push_pair_refuses_what_pushing_would_do_otherwise() -> None:
    before, a, b = whole_events(3)
    first, second, first_ms, second_ms = ids(interleave(a, b))
    # Something else in flight: expiry and the in-flight cap would come into play.
    busy = warmed(before[:2])
    assert busy.maybe_push_pair(None, first, first_ms, second, second_ms) is None
    # Room for one event only: opening the second would evict the first.
    assert (
        warmed(before, max_inflight=1).maybe_push_pair(None, first, first_ms, second, second_ms)
        is None
    )
    # The first would expire once the second, much later, is read.
    asm = warmed(before, window_ms=1000)
    assert asm.maybe_push_pair(None, first, first_ms, second, first_ms + 1001) is None
    # The same event twice, or one already complete.
    assert asm.maybe_push_pair(None, first, first_ms, first, first_ms) is None
    done = records(before)[0].id
    assert asm.maybe_push_pair(None, done, done.time_ms, second, second_ms) is None
    # Refusals change nothing.
    assert asm.to_state() == warmed(before, window_ms=1000).to_state()


def test_the_detector_takes_interleaved_pairs_and_agrees_with_the_full_parse() -> None:
    gen = Generator(seed=7, interleave=0.3, lose_every=40, kexec_every=15)
    log = b"".join(
        (line + "\n").encode() for _, line in zip(range(3000), gen.lines(), strict=False)
    )
    rules = load_builtin_rules("all")

    taken = 0

    # The Python scanner's own pair path (the native scanner takes pairs itself).
    det = Detector(copy.deepcopy(rules), host_name="h", options=DetectorOptions(), native=None)
    scanner = det._scanner
    fast_pair = scanner.fast_pair

    def spy(buf: bytes, m: re.Match[bytes], out: list[Any]) -> int:
        nonlocal taken
        end = fast_pair(buf, m, out)
        taken += bool(end)
        return end

    scanner.fast_pair = spy  # type: ignore[method-assign]
    det.feed(log)
    det.flush()
    assert taken > 20, "the log's interleaved pairs should take the pair path"
    assert_same(log, rules)
    assert_same(log, rules, window_ms=0)
    assert_same(log, rules, max_inflight=1)


def eoe(event: list[bytes], tail: bytes = b" ") -> bytes:
    """The ``EOE`` line that ends ``event`` (auditd writes it after every event for
    audisp plugins and forwarders), with ``tail`` after the id."""
    first = event[0]
    return b"type=EOE" + first[first.index(b" msg=audit(") : first.index(b"):") + 2] + tail


def eoe_pair(a: list[bytes], b: list[bytes], cut_a: int = 2, cut_b: int = 2) -> list[bytes]:
    """:func:`interleave`, with A's EOE right after A's PROCTITLE and B's after B's."""
    return a[:cut_a] + b[:cut_b] + a[cut_a:] + [eoe(a)] + b[cut_b:] + [eoe(b)]


@pytest.mark.parametrize(("cut_a", "cut_b"), [(1, 1), (2, 2), (1, 3), (3, 5), (5, 1)])
def test_split_pair_skips_the_first_ones_eoe_once_it_is_closed(cut_a: int, cut_b: int) -> None:
    a, b = whole_events(2)
    lines = eoe_pair(a, b, cut_a, cut_b)
    # The pair ends at B's PROCTITLE; B's EOE after it is read as after a single run.
    assert split(lines) == (block(a), block(b), len(block(lines[:-1])))
    bare = [eoe(a, b"") if line == eoe(a) else line for line in lines]
    assert split(bare) == (block(a), block(b), len(block(bare[:-1])))


def whole(part: bytes) -> bool:
    """Whether one part of a pair is a whole event, as fast_pair checks it."""
    m = SYSCALL_HEAD.match(part)
    return m is not None and run_end(part, m) is not None


def test_split_pair_refuses_eoe_lines_the_reference_reads_otherwise() -> None:
    a, b = whole_events(2)
    refused = {
        "A's EOE before its PROCTITLE (it ends A)": a[:2]
        + b[:2]
        + a[2:-1]
        + [eoe(a)]
        + a[-1:]
        + b[2:],
        "B's EOE before its PROCTITLE (it ends B)": a[:2]
        + b[:2]
        + a[2:]
        + b[2:-1]
        + [eoe(b)]
        + b[-1:],
        "A's EOE twice": a[:2] + b[:2] + a[2:] + [eoe(a), eoe(a)] + b[2:],
        "A's EOE with a field": a[:2] + b[:2] + a[2:] + [eoe(a, b" x=1")] + b[2:],
        "A's EOE with a carriage return": a[:2] + b[:2] + a[2:] + [eoe(a, b"\r")] + b[2:],
    }
    for why, lines in refused.items():
        result = split(lines)
        # Pulled apart or not, never two whole events (which fast_pair would take).
        assert result is None or not all(map(whole, result[:2])), why
    # A's EOE after B's PROCTITLE: the pair ends before it (the reference absorbs it).
    late = a[:2] + b[:2] + a[2:] + b[2:] + [eoe(a)]
    assert split(late) == (block(a), block(b), len(block(late[:-1])))


def eoe_log(seed: int = 3) -> tuple[bytes, list[bytes]]:
    """Whole events, each with its EOE, then interleaved pairs with their EOEs in every
    place the tests care for; and the EOE lines after a run's or a pair's end (those
    the Python scanner reads line by line), in log order."""
    events = whole_events(14, seed=seed)
    lines: list[bytes] = []
    after: list[bytes] = []
    for event in events[:2]:
        lines += [*event, eoe(event)]
        after.append(eoe(event))
    for n, (cut_a, cut_b) in enumerate([(1, 1), (2, 2), (3, 5), (5, 1), (2, 3)]):
        a, b = events[2 + 2 * n], events[3 + 2 * n]
        lines += eoe_pair(a, b, cut_a, cut_b)
        after.append(eoe(b))
    a, b = events[12], events[13]
    lines += a[:2] + b[:2] + a[2:] + b[2:] + [eoe(a), eoe(b)]  # A's EOE after B's end
    after += [eoe(a), eoe(b)]
    return b"".join(line + b"\n" for line in lines), after


@pytest.mark.parametrize("options", [{}, {"window_ms": 0}, {"max_inflight": 1}])
def test_pairs_with_eoe_lines_agree_with_the_full_parse(options: dict[str, int]) -> None:
    log, _ = eoe_log()
    rules = load_builtin_rules("all")
    assert_same(log, rules, **options)
    assert_same(log, rules, cuts=[len(log) // 3, len(log) // 2], **options)
    odd = log.replace(b"): \ntype=PATH", b"): x=1\ntype=PATH")  # EOEs with a field
    assert odd != log
    assert_same(odd, rules, **options)


def reference_lines(native: Any, log: bytes) -> list[bytes]:
    """The lines a detector sends down the reference (line by line) path for ``log``."""
    det = Detector(
        copy.deepcopy(load_builtin_rules("all")),
        host_name="h",
        options=DetectorOptions(),
        native=native,
    )
    host = det._scanner._host
    line = host.line
    seen: list[bytes] = []

    def spy(raw: bytes, *rest: Any) -> None:
        seen.append(raw)
        line(raw, *rest)

    host.line = spy  # type: ignore[method-assign]
    det.feed(log)
    det.flush()
    assert det.stats.lines == det.stats.records == log.count(b"\n")
    return seen


def test_the_python_scanner_takes_a_pair_with_its_eoe_whole() -> None:
    log, after = eoe_log()
    # Only the EOE lines after a run's or a pair's end go line by line (absorbed).
    assert reference_lines(None, log) == after
