"""Public audit logs from other projects and distributions (../shared/corpus).

They are read in place, never copied into the project; when the corpus is absent the
tests skip with a visible reason. Each must parse without an exception escaping and
give the process events stated here (counted and checked by hand against the files).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kexecwatch.core.audit.record import ParseIssue
from kexecwatch.core.detect.detector import Detector, DetectorOptions
from kexecwatch.core.process.events import ProcessEvent
from kexecwatch.rules import load_builtin_rules

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"

# file -> (process events, parse issues, [(pid, process.name, args or None)] spot checks)
EXPECTED: dict[str, tuple[int, int, list[tuple[int, str, list[str] | None]]]] = {
    "audit-userspace__auparse-test3.log": (0, 0, []),
    "audit-userspace__auparse-test4.log": (2, 0, [(105183, "ld", None)]),
    # Records sorted by type: one EXECVE arrives 9 years of record time after its
    # event, long past the window, so it is an incomplete event of its own (counted);
    # a garbage record with no header and a last line without its newline are reported.
    # Its finit_module (modprobe) and kill (bash) syscalls are process events since
    # kexecwatch reads module loads and signals for Elastic's rules (README, "Auditing
    # more than execs").
    "go-libaudit__audit-rhel7.log": (2, 2, [(391, "modprobe", None), (8158, "bash", None)]),
    "laurel__proc-trace-dpkg-l.txt": (11, 0, []),
    "laurel__record-execve-long.txt": (1, 0, [(8832, "echo", None)]),
    "laurel__record-execve.txt": (1, 0, [(10884, "whoami", ["whoami"])]),
    "laurel__shell-proc-trace-confusion.txt": (5, 0, []),
    "laurel__shell-proc-trace-reordered.txt": (4, 0, [(71505, "test-script.sh", None)]),
}


def run(path: Path) -> tuple[list[ProcessEvent], list[ParseIssue]]:
    det = Detector(
        load_builtin_rules(), host_name="corpus", options=DetectorOptions(emit_events=True)
    )
    out = det.feed(path.read_bytes()) + det.flush()
    return (
        [o for o in out if isinstance(o, ProcessEvent)],
        [o for o in out if isinstance(o, ParseIssue)],
    )


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_sample(name: str) -> None:
    path = CORPUS / name
    if not path.exists():
        pytest.skip(f"corpus sample {path} is not present")
    events, issues = run(path)
    n_events, n_issues, checks = EXPECTED[name]
    assert len(events) == n_events
    assert len(issues) == n_issues, [i.reason for i in issues]
    by_pid = {e.pid: e.to_document() for e in events}
    for pid, pname, args in checks:
        assert by_pid[pid]["process"]["name"] == pname
        if args is not None:
            assert by_pid[pid]["process"]["args"] == args


def test_long_execve_argument_is_rebuilt_from_three_records() -> None:
    path = CORPUS / "laurel__record-execve-long.txt"
    if not path.exists():
        pytest.skip(f"corpus sample {path} is not present")
    [event], _ = run(path)
    args = event.to_document()["process"]["args"]
    assert args[0] == "/bin/echo"
    assert len(args[1]) == 8192  # a1_len=16384 hex digits
    assert args[1].startswith("baaa")
    assert event.argc == 2


def test_every_corpus_file_is_covered() -> None:
    if not CORPUS.exists():
        pytest.skip(f"corpus {CORPUS} is not present")
    present = {p.name for p in CORPUS.iterdir() if p.suffix in (".log", ".txt")}
    present.discard("SOURCES.txt")
    assert present == set(EXPECTED)
