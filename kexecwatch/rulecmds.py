"""The rule commands: ``check-rule``, ``rules list``, ``rules check`` and ``audit-rules``.

``check-rule`` checks every file it is given and reports every problem of each (errors,
then warnings), one result per file, in text or as one JSON document. ``rules list`` shows
the built-in rules and what each needs from the audit rules, derived from the rules' own
prefilters and the shipped audit rules' syscalls and keys. ``rules check`` reports what
kexecwatch can do with a rule set (:mod:`kexecwatch.rulecheck`). ``audit-rules`` prints those
audit rules, so a pip install can write ``/etc/audit/rules.d/kexecwatch.rules``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from kexecwatch.core import AuditRule, Rule, RuleCheck, check_rule, escape_text, jsontext
from kexecwatch.errors import RuleError, SourceLocation
from kexecwatch.options import EXIT_ERROR, EXIT_OK, missing_subcommand
from kexecwatch.rules import RULESETS, read_rule_file

__all__ = ["configure_audit_rules", "configure_check_rule", "configure_rules"]


def configure_check_rule(check: argparse.ArgumentParser) -> None:
    """Set up ``check-rule``: its description, arguments and handler."""
    check.description = (
        "Check rule files (TOML, detection-rules format): TOML syntax, unknown "
        "and missing keys, types, the query; and warn about fields and event categories "
        "kexecwatch never produces, since such a rule can never fire. Every file gets its "
        "result. Exit 0 when every file is valid (warnings allowed unless --strict); 2 "
        "when any file has an error."
    )
    check.add_argument("files", nargs="+", metavar="FILE", help="rule files")
    check.add_argument("--strict", action="store_true", help="treat warnings as errors (exit 2)")
    _format_option(check, "json: one document listing every file's result")
    check.set_defaults(handler=_check_rule_command)


def configure_rules(rules: argparse.ArgumentParser) -> None:
    """Set up ``rules`` and its actions ``list`` and ``check``."""
    rules.description = "List kexecwatch's built-in rules, or check a rule set."
    rules_sub = rules.add_subparsers(dest="rules_command", metavar="ACTION")
    rules.set_defaults(handler=lambda _args: missing_subcommand(rules, "an ACTION"))
    listing = rules_sub.add_parser(
        "list",
        help="list the built-in rules and the audit rules each needs",
        description="List the built-in rules: id, name, severity, risk score, version, "
        "rule set, and what each needs from the audit rules (the kexecwatch-exec key for "
        "program executions, the kexecwatch-kexec key for the kexec system calls). Exit 0.",
    )
    listing.add_argument(
        "--ruleset",
        choices=RULESETS,
        default="all",
        help="which built-in rules to list (default all)",
    )
    _format_option(listing, "json: one document with every rule")
    listing.set_defaults(handler=_rules_list_command)

    checking = rules_sub.add_parser(
        "check",
        help="say, rule by rule, whether kexecwatch can run a rule set and why not",
        description="For every rule file under the PATHs (files, or directories read "
        "recursively, such as a detection-rules checkout): whether it is a Linux rule in a "
        "language kexecwatch runs, whether it loads, and whether it can fire on the events "
        "kexecwatch produces; if not, exactly why (an unsupported feature, a field "
        "kexecwatch never sets, an event.action, event.category or event.type value it "
        "never emits). Ends with the counts. Exit 0 when the report is written (whatever "
        "it says); 2 when a PATH is missing, unreadable or holds no rule file.",
    )
    checking.add_argument("paths", nargs="+", metavar="PATH", help="rule files or directories")
    _format_option(checking, "json: one document with the counts and every rule")
    from kexecwatch.options import add_events_as_option, add_rule_cache_option

    add_events_as_option(checking)
    add_rule_cache_option(checking)
    checking.set_defaults(handler=_rules_check_command)


def configure_audit_rules(audit: argparse.ArgumentParser) -> None:
    """Set up ``audit-rules``."""
    audit.description = (
        "Print the audit rules kexecwatch needs, for example: kexecwatch "
        "audit-rules > /etc/audit/rules.d/kexecwatch.rules && augenrules --load. "
        "Exit 0."
    )
    audit.add_argument(
        "--low-volume",
        action="store_true",
        help="only execs of kexec itself plus the kexec system calls (parents then come "
        "from /proc at run time)",
    )
    audit.set_defaults(handler=_audit_rules_command)


def _format_option(parser: argparse.ArgumentParser, json_help: str) -> None:
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        dest="out_format",
        help=f"text: one line per result (default); {json_help}",
    )


# -- check-rule ---------------------------------------------------------------------


def _check_rule_command(args: argparse.Namespace) -> int:
    results = [_check_file(path) for path in args.files]
    bad = [r for r in results if r.errors or (args.strict and r.warnings)]
    out = sys.stdout
    if args.out_format == "json":
        doc = {
            "format": 1,
            "ok": not bad,
            "strict": args.strict,
            "files": [_result_dict(r, strict=args.strict) for r in results],
        }
        out.write(jsontext.dumps(doc, indent=2, sort_keys=False) + "\n")
    else:
        for result in results:
            _write_result(out, result, strict=args.strict)
        if len(results) > 1:
            out.write(f"{len(results) - len(bad)} of {len(results)} rule files are valid\n")
    return EXIT_ERROR if bad else EXIT_OK


def _check_file(path: str) -> RuleCheck:
    try:
        text = read_rule_file(path)
    except RuleError as exc:
        return _unreadable(path, exc.message)
    return check_rule(text, path)


def _unreadable(path: str, message: str) -> RuleCheck:
    return RuleCheck(path, None, (RuleError(message, where=SourceLocation(path)),), ())


def _write_result(out: TextIO, result: RuleCheck, *, strict: bool) -> None:
    warning = "error" if strict else "warning"
    for label, problems in (("error", result.errors), (warning, result.warnings)):
        for problem in problems:
            where = problem.where or SourceLocation(result.source)
            out.write(escape_text(f"{where}: {label}: {problem.message}") + "\n")
            for line in problem.detail.splitlines():
                out.write(escape_text(line) + "\n")
    rule = result.rule
    if rule is None or (strict and result.warnings):
        return
    prefilter = ", ".join(
        f"{name} in ({', '.join(sorted(values))})"
        for name, values in sorted(rule.query.required_values().items())
    )
    warned = f" ({len(result.warnings)} warning(s))" if result.warnings else ""
    out.write(
        escape_text(
            f"{rule.source}: ok{warned}: {rule.name!r} id={rule.rule_id} "
            f"version={rule.version} severity={rule.severity} risk={rule.risk_score}; reads "
            f"{', '.join(sorted(rule.query.fields))}; prefilter: {prefilter or 'none'}"
        )
        + "\n"
    )


def _result_dict(result: RuleCheck, *, strict: bool) -> dict[str, Any]:
    rule = result.rule
    return {
        "path": result.source,
        "ok": not result.errors and not (strict and result.warnings),
        "errors": [_problem_dict(p) for p in result.errors],
        "warnings": [_problem_dict(p) for p in result.warnings],
        "rule": None
        if rule is None
        else {
            "id": rule.rule_id,
            "name": rule.name,
            "version": rule.version,
            "severity": rule.severity,
            "risk_score": rule.risk_score,
            "reads": sorted(rule.query.fields),
            "prefilter": {
                name: sorted(values)
                for name, values in sorted(rule.query.required_values().items())
            },
        },
    }


def _problem_dict(problem: RuleError) -> dict[str, Any]:
    where = problem.where
    return {
        "message": problem.message,
        "line": where.line if where else None,
        "column": where.column if where else None,
        "detail": problem.detail,
    }


# -- rules list ---------------------------------------------------------------------


def _rules_list_command(args: argparse.Namespace) -> int:
    from kexecwatch.auditrules import read_audit_rules
    from kexecwatch.core import parse_rules
    from kexecwatch.rules import UPSTREAM_RULE_FILES, load_builtin_rules

    shipped = parse_rules(read_audit_rules())  # once: every rule's needs are read from them
    upstream = {f"kexecwatch.rules/{n}" for n in UPSTREAM_RULE_FILES}
    entries: list[dict[str, Any]] = []
    for rule in load_builtin_rules(args.ruleset):
        source = str(getattr(rule, "source", ""))
        entries.append(
            {
                "id": rule.rule_id,
                "name": rule.name,
                "severity": rule.severity,
                "risk_score": rule.risk_score,
                "version": rule.version,
                "ruleset": "upstream" if source in upstream else "kexecwatch",
                "language": "eql" if isinstance(rule, Rule) else "kexecwatch",
                "license": rule.license,
                "needs": _needs(rule, shipped),
            }
        )
    out = sys.stdout
    if args.out_format == "json":
        out.write(jsontext.dumps({"format": 1, "rules": entries}, indent=2, sort_keys=False) + "\n")
        return EXIT_OK
    for e in entries:
        out.write(
            f"{e['id']}  {e['name']}\n"
            f"    severity {e['severity']}, risk {e['risk_score']}, version {e['version']}, "
            f"rule set {e['ruleset']}, licence {e['license'] or 'none'}\n"
            f"    needs: {'; '.join(n['text'] for n in e['needs'])}\n"
        )
    return EXIT_OK


def _needs(rule: object, shipped: Sequence[AuditRule]) -> list[dict[str, Any]]:
    """What ``rule`` needs from the ``shipped`` audit rules: their keys, or auditd itself."""
    from kexecwatch.core import EXEC_SYSCALLS, prefilters_of

    needs: list[dict[str, Any]] = []
    if getattr(rule, "applies_to", "process") == "telemetry":
        needs.append(
            {
                "key": None,
                "syscalls": [],
                "text": "no audit rule: auditd writes CONFIG_CHANGE and DAEMON_* records itself",
            }
        )
    for prefilter in prefilters_of(rule):
        if prefilter.record_types is not None and prefilter.syscalls is None:
            continue  # record types only: the telemetry need above
        wanted = prefilter.syscalls
        for key in _keys_for(shipped, wanted):
            calls = sorted(
                s
                for r in shipped
                if f"key={key}" in r.fields
                for s in r.syscalls
                if wanted is None or s in wanted
            )
            what = ", ".join(dict.fromkeys(calls))
            if EXEC_SYSCALLS & set(calls):
                names = sorted(n.decode("utf-8", "replace") for n in prefilter.comms or ())
                what += f" of {', '.join(names)}" if names else " of any program"
            need = {"key": key, "syscalls": list(dict.fromkeys(calls)), "text": f"{key} ({what})"}
            if need not in needs:
                needs.append(need)
    return needs


def _keys_for(shipped: Iterable[AuditRule], wanted: frozenset[str] | None) -> list[str]:
    """The keys of the audit rules that log any of ``wanted`` (any syscall when ``None``)."""
    keys: list[str] = []
    for audit_rule in shipped:
        if wanted is not None and not (audit_rule.syscalls & wanted):
            continue
        for item in audit_rule.fields:
            key = item.removeprefix("key=")
            if key != item and key not in keys:
                keys.append(key)
    return keys


# -- rules check --------------------------------------------------------------------


def _rules_check_command(args: argparse.Namespace) -> int:
    from kexecwatch.options import user_rule_cache
    from kexecwatch.rulecheck import check_paths, write_json, write_text

    report = check_paths(args.paths, args.events_as, user_rule_cache(args.rule_cache))
    (write_json if args.out_format == "json" else write_text)(sys.stdout, report)
    return EXIT_OK


# -- audit-rules --------------------------------------------------------------------


def _audit_rules_command(args: argparse.Namespace) -> int:
    from kexecwatch.auditrules import read_audit_rules

    sys.stdout.write(read_audit_rules(low_volume=args.low_volume))
    return EXIT_OK
