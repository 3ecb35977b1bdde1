"""LearnedItems (a detection's learned inodes as a prefilter's path_items) and the fast
path's inode search kept while their version holds."""

from __future__ import annotations

import pytest

from kexecwatch.core.detect.alerts import Alert
from kexecwatch.core.detect.detector import Detector, DetectorOptions
from kexecwatch.core.scan.fastpath import inode_search
from kexecwatch.core.scan.prefilter import LearnedItems
from kexecwatch.rules import load_builtin_rules
from tests.builders import exec_lines, join


def test_the_version_changes_with_the_items_only() -> None:
    items = LearnedItems(limit=2)
    assert (len(items), items.version, bool(items)) == (0, 0, False)
    items.learn((5, "fe:00"), "/usr/sbin/kexec")
    assert (list(items), items.version) == ([(5, "fe:00")], 1)
    items.learn((5, "fe:00"), "/sbin/kexec")  # learned again: the same items
    assert (items.version, items.text((5, "fe:00"))) == (1, "/sbin/kexec")
    items.learn((6, "fe:00"), "/usr/sbin/kexec")
    items.learn((5, "fe:00"), "/usr/sbin/kexec")  # now the most recent
    items.learn((7, "fe:00"), "/usr/sbin/kexec")  # the oldest, 6, goes
    assert list(items) == [(5, "fe:00"), (7, "fe:00")]
    assert (6, "fe:00") not in items
    assert items.text((6, "fe:00")) is None
    assert items.version == 3


def _exec(serial: int, *, comm: str, exe: str, inode: int) -> list[bytes]:
    lines = exec_lines(
        serial,
        t=f"1700000000.{serial:03d}",
        pid=100 + serial,
        comm=comm,
        exe=exe,
        inode=inode,
        args=(exe, "-l", "K"),
    )
    # The kernel's canonical SYSCALL layout, which the fast path takes.
    return [
        line.replace(b" exit=0 items=", b" exit=0 a0=1 a1=2 a2=3 a3=4 items=") for line in lines
    ]


@pytest.mark.parametrize("fast_path", [True, False])
def test_a_hard_link_is_found_by_an_inode_learned_in_the_same_chunk(fast_path: bool) -> None:
    """The fast path's inode search follows what the detection learns between two execs
    of one chunk: a search kept past a change would miss the second hard link."""
    lines = (
        _exec(1, comm="kexec", exe="/usr/sbin/kexec", inode=5)
        + _exec(2, comm="helper", exe="/srv/helper", inode=5)
        + _exec(3, comm="sh", exe="/bin/sh", inode=9)
        + _exec(4, comm="kexec", exe="/sbin/kexec", inode=6)
        + _exec(5, comm="tool", exe="/srv/tool", inode=6)
        + _exec(6, comm="sh", exe="/bin/sh", inode=7)
    )
    det = Detector(
        load_builtin_rules(), host_name="h", options=DetectorOptions(fast_path=fast_path)
    )
    out = det.feed(join(lines)) + det.flush()
    hard_links = [
        a.to_document()["process"]["pid"]
        for a in out
        if isinstance(a, Alert) and "hard link" in a.to_document()["event"]["reason"]
    ]
    assert hard_links == [102, 105]


def test_the_search_reads_every_learned_inode() -> None:
    items = LearnedItems(limit=8)
    for inode in (5, 17, 123):
        items.learn((inode, "fe:00"), "/usr/sbin/kexec")
    search = inode_search(tuple(items))
    assert search.search(b"inode=17 dev=fe:00")
    assert not search.search(b"inode=18 dev=fe:00")
