"""Hostile record times, derived from the real recordings (issue 16 §1).

Each perturbation takes a bundled recording and either inserts ONE record whose time is
off (an outlier: ahead, behind, or beyond year 9999), or steps the clock: every event
from the first kexec run on is dated ``step`` seconds later (or earlier), as after an
NTP step or ``date -s``. These are malformed/hostile inputs built in the test; nothing
here is saved as a fixture.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECORDINGS = {
    kind: ROOT / "fixtures" / "audit" / kind / "all-scenarios.log" for kind in ("raw", "enriched")
}

#: Seconds of the first time that ``datetime`` cannot represent (year 10000).
YEAR_10000 = 253_402_300_800

_ID = re.compile(rb"^(node=\S+ )?type=(\S+) msg=audit\((\d+)\.(\d{3}):(\d+)\)")
_AUDIT_ID = re.compile(r"\d+\.\d{3}:(\d+)")

#: Inserted outliers: seconds ahead (negative: behind), or "year-10000".
OUTLIERS: list[int | str] = [1, 6, 60, 86_400, -6, -60, -86_400, "year-10000"]
#: Clock steps, in seconds (negative: back). Steps back shorter than the event window
#: (5 s) look like events completing out of order: see SHORT_STEPS_BACK.
STEPS = [1, 2, 6, 60, 86_400, -6, -60, -86_400]
#: Steps back within the window: the same alerts, but an event right after the step
#: may not name a parent that exec'd right before it (README, "Time policy").
SHORT_STEPS_BACK = [-1, -2]


def _first_kexec_line(lines: list[bytes]) -> int:
    for i, line in enumerate(lines):
        if b"type=SYSCALL" in line and b'comm="kexec"' in line:
            return i
    raise AssertionError("no kexec run in the recording")


def insert_outlier(data: bytes, shift: int | str, *, mid_event: bool = False) -> bytes:
    """One single-record event, dated ``shift`` seconds off, inserted into the log.

    It goes right before the first kexec run's SYSCALL record, or between that record
    and the next one of the same event (``mid_event``). It takes the serial of the
    event it precedes, so the kernel's serials show no gap.
    """
    lines = data.split(b"\n")
    at = _first_kexec_line(lines) + (1 if mid_event else 0)
    m = _ID.match(lines[at])
    assert m is not None
    node, _, sec, ms, serial = m.groups()
    new_sec = YEAR_10000 if shift == "year-10000" else int(sec) + int(shift)
    record = (node or b"") + (
        b"type=USER_AUTH msg=audit(%d.%s:%s): pid=1 uid=0 auid=0 ses=1 "
        b'msg=\'op=PAM:authentication acct="root" exe="/usr/bin/su" res=success\''
        % (new_sec, ms, serial)
    )
    lines.insert(at, record)
    return b"\n".join(lines)


def step_clock(data: bytes, step: int) -> bytes:
    """Every event from the first kexec run on dated ``step`` seconds off."""
    lines = data.split(b"\n")
    first = _ID.match(lines[_first_kexec_line(lines)])
    assert first is not None
    from_serial = int(first.group(5))
    out = []
    for line in lines:
        m = _ID.match(line)
        if m is None or int(m.group(5)) < from_serial or m.group(2).startswith(b"DAEMON_"):
            out.append(line)
            continue
        moved = b"%d.%s:%s" % (int(m.group(3)) + step, m.group(4), m.group(5))
        out.append(line[: m.start(3)] + moved + line[m.end(5) :])
    return b"\n".join(out)


def alert_set(ndjson: bytes | str) -> list[str]:
    """Alert documents, sorted, as canonical JSON: the full set, for equality."""
    text = ndjson.decode() if isinstance(ndjson, bytes) else ndjson
    return sorted(json.dumps(json.loads(x), sort_keys=True) for x in text.splitlines() if x.strip())


def timeless(docs: list[str]) -> list[str]:
    """The documents with every time removed (``@timestamp``, the time of audit ids, and
    the entity ids, which hash an exec's audit id, its time included).

    For clock steps: the alerts must be the same ones, only dated differently.
    """
    out = []
    for doc in docs:
        parsed = json.loads(doc)
        parsed.pop("@timestamp", None)
        process = parsed.get("process", {})
        for part in (process, process.get("parent", {})):
            if "entity_id" in part:
                part["entity_id"] = "T"
        out.append(_AUDIT_ID.sub(r"T:\1", json.dumps(parsed, sort_keys=True)))
    return sorted(out)
