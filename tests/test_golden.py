"""Golden files: recorded audit logs -> assembled events, process events, alerts.

For every ``fixtures/audit/<format>/<name>.log`` the whole pipeline runs with
the built-in rules and a fixed host name, and three renderings are compared
with ``fixtures/golden/<format>/<name>.{assembly,events,alerts}.jsonl``:

* ``assembly``: each assembled event's id, node, record types and how it ended
  (the assembler's output);
* ``events``: every process event document (parser + assembler + process
  table);
* ``alerts``: every alert document, and every diagnostic.

Run ``pytest tests/test_golden.py --update-golden`` to rewrite them after a
deliberate change, and review the diff. A mismatch names ``fixture:line``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kexecwatch.core.audit.assembler import Assembler, AuditEvent, EventsLost
from kexecwatch.core.audit.record import AuditRecord, ParseIssue, parse_record
from kexecwatch.core.detect.alerts import Alert, AlertsSuppressed
from kexecwatch.core.detect.detector import Detector, DetectorOptions
from kexecwatch.core.process.events import ProcessEvent
from kexecwatch.rules import load_builtin_rules

ROOT = Path(__file__).resolve().parent.parent
AUDIT = ROOT / "fixtures" / "audit"
GOLDEN = ROOT / "fixtures" / "golden"
HOST = "fixture-host"
LOGS = sorted(AUDIT.glob("*/*.log")) + sorted(AUDIT.glob("malformed-*.log"))


def assembly_lines(data: bytes) -> list[dict[str, Any]]:
    asm = Assembler()
    out: list[object] = []
    for no, line in enumerate(data.split(b"\n")[:-1], 1):
        if not line or line.startswith(b"#"):
            continue
        rec = parse_record(line, no)
        if isinstance(rec, AuditRecord):
            out.extend(asm.push(rec))
        else:
            out.append(rec)
    out.extend(asm.flush())
    rows: list[dict[str, Any]] = []
    for item in out:
        if isinstance(item, AuditEvent):
            rows.append(
                {
                    "id": str(item.id),
                    "node": item.node,
                    "ended_by": item.ended_by,
                    "records": [r.type for r in item.records],
                    "lines": [r.line_no for r in item.records],
                }
            )
        else:
            rows.append(diagnostic(item))
    return rows


def diagnostic(item: object) -> dict[str, Any]:
    if isinstance(item, ParseIssue):
        return {"parse_issue": item.reason, "line": item.line_no}
    if isinstance(item, EventsLost):
        return {"lost": [item.first_serial, item.last_serial], "node": item.node}
    if isinstance(item, AlertsSuppressed):
        return {"suppressed": item.count, "rule": item.rule_id}
    raise AssertionError(f"unexpected output {item!r}")


def pipeline_lines(data: bytes) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    det = Detector(load_builtin_rules(), host_name=HOST, options=DetectorOptions(emit_events=True))
    outputs = det.feed(data) + det.flush()
    events = [o.to_document() for o in outputs if isinstance(o, ProcessEvent)]
    alerts = [
        o.to_document() if isinstance(o, Alert) else diagnostic(o)
        for o in outputs
        if not isinstance(o, ProcessEvent)
    ]
    return events, alerts


def compare(kind: str, log: Path, rows: list[dict[str, Any]], update: bool) -> None:
    rel = log.relative_to(AUDIT)
    golden = GOLDEN / rel.parent / f"{log.stem}.{kind}.jsonl"
    rendered = [json.dumps(r, sort_keys=True, ensure_ascii=True) for r in rows]
    if update:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text("".join(x + "\n" for x in rendered), encoding="utf-8")
        return
    assert golden.exists(), f"{golden} missing: run pytest --update-golden"
    expected = golden.read_text(encoding="utf-8").splitlines()
    for no, (want, got) in enumerate(zip(expected, rendered, strict=False), 1):
        assert got == want, f"{golden.relative_to(ROOT)}:{no}: differs\n got: {got}\nwant: {want}"
    assert len(rendered) == len(expected), (
        f"{golden.relative_to(ROOT)}: {len(rendered)} lines, golden has {len(expected)}"
    )


def test_there_are_fixtures() -> None:
    assert len(LOGS) >= 10, "fixtures/audit holds the recorded logs"


@pytest.mark.parametrize("log", LOGS, ids=[str(p.relative_to(AUDIT)) for p in LOGS])
def test_golden(log: Path, update_golden: bool) -> None:
    data = log.read_bytes()
    compare("assembly", log, assembly_lines(data), update_golden)
    events, alerts = pipeline_lines(data)
    compare("events", log, events, update_golden)
    compare("alerts", log, alerts, update_golden)
