"""The pure core: bytes and time in, values out; no I/O (``tests/test_core_is_pure.py``).

The stages, each a package that imports only the ones before it::

    text      terminal-safe text, one-line JSON, frozen values: for every stage
    audit     bytes -> lines -> records -> events          (record, assembler)
    process   events -> process events, the process table  (events, table, leaders)
    scan      blocks of lines -> events and table updates  (scanner, fast path, native)
    detect    process events -> rules -> alerts            (detector, rule, detections)
    doctor    facts about a host -> verdicts               (posture; apart from the rest)

The shells (``kexecwatch.adapters``, the command line, the native binding) import the names
below from here, not from the modules that define them. A name is loaded when it is first
used, so ``kexecwatch doctor`` never loads the detector, nor ``replay`` the doctor.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the names as mypy sees them; _HOME says the same for the runtime
    from kexecwatch.core.audit.assembler import DEFAULT_WINDOW_MS as DEFAULT_WINDOW_MS
    from kexecwatch.core.audit.assembler import EventsLost as EventsLost
    from kexecwatch.core.audit.nativeapi import STOP_END as STOP_END
    from kexecwatch.core.audit.nativeapi import STOP_HANDBACK as STOP_HANDBACK
    from kexecwatch.core.audit.nativeapi import STOP_LIVE as STOP_LIVE
    from kexecwatch.core.audit.nativeapi import STOP_VERDICT as STOP_VERDICT
    from kexecwatch.core.audit.nativeapi import NativeLib as NativeLib
    from kexecwatch.core.audit.nativeapi import NeedleBytes as NeedleBytes
    from kexecwatch.core.audit.nativeapi import QuietState as QuietState
    from kexecwatch.core.audit.nativeapi import RawEntry as RawEntry
    from kexecwatch.core.audit.nativeapi import ScanResult as ScanResult
    from kexecwatch.core.audit.record import MAX_TIME_MS as MAX_TIME_MS
    from kexecwatch.core.audit.record import ParseIssue as ParseIssue
    from kexecwatch.core.audit.record import TimeJump as TimeJump
    from kexecwatch.core.audit.record import line_time_ms as line_time_ms
    from kexecwatch.core.audit.record import record_times as record_times
    from kexecwatch.core.audit.syscalls import EXEC_SYSCALLS as EXEC_SYSCALLS
    from kexecwatch.core.detect.alerts import Alert as Alert
    from kexecwatch.core.detect.alerts import AlertsSuppressed as AlertsSuppressed
    from kexecwatch.core.detect.alerts import command_text as command_text
    from kexecwatch.core.detect.alerts import document_alert_id as document_alert_id
    from kexecwatch.core.detect.alerts import to_json_line as to_json_line
    from kexecwatch.core.detect.alerts import to_text_line as to_text_line
    from kexecwatch.core.detect.detections import NativeRule as NativeRule
    from kexecwatch.core.detect.detections import load_native_rule as load_native_rule
    from kexecwatch.core.detect.detections import (
        load_parsed_native_rule as load_parsed_native_rule,
    )
    from kexecwatch.core.detect.detector import DetectionRule as DetectionRule
    from kexecwatch.core.detect.detector import Detector as Detector
    from kexecwatch.core.detect.detector import DetectorOptions as DetectorOptions
    from kexecwatch.core.detect.detector import EventError as EventError
    from kexecwatch.core.detect.detector import Output as Output
    from kexecwatch.core.detect.detector import Stats as Stats
    from kexecwatch.core.detect.detector import Verdict as Verdict
    from kexecwatch.core.detect.rule import CompiledQuery as CompiledQuery
    from kexecwatch.core.detect.rule import Rule as Rule
    from kexecwatch.core.detect.rule import astjson as astjson
    from kexecwatch.core.detect.rule import load_rule as load_rule
    from kexecwatch.core.detect.rule.ast import Statement as Statement
    from kexecwatch.core.detect.rule.coverage import Blocker as Blocker
    from kexecwatch.core.detect.rule.coverage import coverage as coverage
    from kexecwatch.core.detect.rule.lexer import QuerySource as QuerySource
    from kexecwatch.core.detect.rule.parser import parse_statement as parse_statement
    from kexecwatch.core.detect.rule.query import compile_statement as compile_statement
    from kexecwatch.core.detect.rule.ruleset import QueryCompiler as QueryCompiler
    from kexecwatch.core.detect.rule.ruleset import RuleCheck as RuleCheck
    from kexecwatch.core.detect.rule.ruleset import check_rule as check_rule
    from kexecwatch.core.detect.rule.ruleset import load_parsed_rule as load_parsed_rule
    from kexecwatch.core.detect.rule.ruleset import parse_toml as parse_toml
    from kexecwatch.core.detect.rule.sequence import CompiledSequence as CompiledSequence
    from kexecwatch.core.detect.rule.sequence_state import MatchedSequence as MatchedSequence
    from kexecwatch.core.detect.ruleindex import prefilters_of as prefilters_of
    from kexecwatch.core.detect.telemetry import TelemetryEvent as TelemetryEvent
    from kexecwatch.core.doctor.auditctl import AuditRule as AuditRule
    from kexecwatch.core.doctor.auditctl import parse_auditd_conf as parse_auditd_conf
    from kexecwatch.core.doctor.auditctl import parse_rules as parse_rules
    from kexecwatch.core.doctor.auditctl import parse_status as parse_status
    from kexecwatch.core.doctor.hostfacts import CheckpointFacts as CheckpointFacts
    from kexecwatch.core.doctor.hostfacts import Facts as Facts
    from kexecwatch.core.doctor.hostfacts import FileFacts as FileFacts
    from kexecwatch.core.doctor.hostfacts import ServiceFacts as ServiceFacts
    from kexecwatch.core.doctor.hostfacts import UserFacts as UserFacts
    from kexecwatch.core.doctor.posture import Report as Report
    from kexecwatch.core.doctor.posture import Status as Status
    from kexecwatch.core.doctor.posture import assess as assess
    from kexecwatch.core.process.eventlines import EventLines as EventLines
    from kexecwatch.core.process.events import EVENTS_AS as EVENTS_AS
    from kexecwatch.core.process.events import ProcessEvent as ProcessEvent
    from kexecwatch.core.process.identity import tty_name as tty_name
    from kexecwatch.core.process.table import LiveProcess as LiveProcess
    from kexecwatch.core.process.table import ProcessTableLike as ProcessTableLike
    from kexecwatch.core.process.table import ProcLookup as ProcLookup
    from kexecwatch.core.scan.nativescan import set_default_native as set_default_native
    from kexecwatch.core.text import jsontext as jsontext
    from kexecwatch.core.text.frozen import Frozen as Frozen
    from kexecwatch.core.text.frozen import set_field as set_field
    from kexecwatch.core.text.textsafe import escape_json_text as escape_json_text
    from kexecwatch.core.text.textsafe import escape_text as escape_text
    from kexecwatch.core.text.textsafe import quote_input as quote_input

#: Each public name and the module that defines it (a module itself: its own path).
_HOME = {
    "DEFAULT_WINDOW_MS": "audit.assembler",
    "EventsLost": "audit.assembler",
    "STOP_END": "audit.nativeapi",
    "STOP_HANDBACK": "audit.nativeapi",
    "STOP_LIVE": "audit.nativeapi",
    "STOP_VERDICT": "audit.nativeapi",
    "NativeLib": "audit.nativeapi",
    "NeedleBytes": "audit.nativeapi",
    "QuietState": "audit.nativeapi",
    "RawEntry": "audit.nativeapi",
    "ScanResult": "audit.nativeapi",
    "MAX_TIME_MS": "audit.record",
    "ParseIssue": "audit.record",
    "TimeJump": "audit.record",
    "line_time_ms": "audit.record",
    "record_times": "audit.record",
    "EXEC_SYSCALLS": "audit.syscalls",
    "Alert": "detect.alerts",
    "AlertsSuppressed": "detect.alerts",
    "command_text": "detect.alerts",
    "document_alert_id": "detect.alerts",
    "to_json_line": "detect.alerts",
    "to_text_line": "detect.alerts",
    "NativeRule": "detect.detections",
    "load_native_rule": "detect.detections",
    "load_parsed_native_rule": "detect.detections",
    "DetectionRule": "detect.detector",
    "Detector": "detect.detector",
    "DetectorOptions": "detect.detector",
    "EventError": "detect.detector",
    "Output": "detect.detector",
    "Stats": "detect.detector",
    "Verdict": "detect.detector",
    "CompiledQuery": "detect.rule",
    "Rule": "detect.rule",
    "load_rule": "detect.rule",
    "astjson": "detect.rule.astjson",
    "Statement": "detect.rule.ast",
    "Blocker": "detect.rule.coverage",
    "coverage": "detect.rule.coverage",
    "QuerySource": "detect.rule.lexer",
    "parse_statement": "detect.rule.parser",
    "compile_statement": "detect.rule.query",
    "QueryCompiler": "detect.rule.ruleset",
    "RuleCheck": "detect.rule.ruleset",
    "check_rule": "detect.rule.ruleset",
    "load_parsed_rule": "detect.rule.ruleset",
    "parse_toml": "detect.rule.ruleset",
    "CompiledSequence": "detect.rule.sequence",
    "MatchedSequence": "detect.rule.sequence_state",
    "TelemetryEvent": "detect.telemetry",
    "Frozen": "text.frozen",
    "set_field": "text.frozen",
    "AuditRule": "doctor.auditctl",
    "parse_auditd_conf": "doctor.auditctl",
    "parse_rules": "doctor.auditctl",
    "parse_status": "doctor.auditctl",
    "CheckpointFacts": "doctor.hostfacts",
    "Facts": "doctor.hostfacts",
    "FileFacts": "doctor.hostfacts",
    "ServiceFacts": "doctor.hostfacts",
    "UserFacts": "doctor.hostfacts",
    "Report": "doctor.posture",
    "Status": "doctor.posture",
    "assess": "doctor.posture",
    "EVENTS_AS": "process.events",
    "ProcessEvent": "process.events",
    "EventLines": "process.eventlines",
    "tty_name": "process.identity",
    "LiveProcess": "process.table",
    "ProcLookup": "process.table",
    "ProcessTableLike": "process.table",
    "set_default_native": "scan.nativescan",
    "prefilters_of": "detect.ruleindex",
    "jsontext": "text.jsontext",
    "escape_json_text": "text.textsafe",
    "escape_text": "text.textsafe",
    "quote_input": "text.textsafe",
}
#: The public names that are modules.
_MODULES = frozenset({"astjson", "jsontext"})


def __getattr__(name: str) -> object:
    """Load a public name from its module the first time it is asked for."""
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = import_module(f"{__name__}.{home}")
    value = module if name in _MODULES else getattr(module, name)
    globals()[name] = value
    return value
