"""Pure readers for what the audit tools print: ``auditctl -s``, ``auditctl -l``, rules files
and ``auditd.conf``.

Rule 1: this module only turns text into values and compares values; running the tools and
reading the files is the caller's job (see :mod:`kexecwatch.adapters.doctor`).

Theory of operation: ``auditctl -l`` does not echo a rules file back verbatim. It rewrites
``-k KEY`` as ``-F key=KEY``, merges ``-S a -S b`` into ``-S a,b``, and prints numeric
syscalls by name (``-S 283`` for ``arch=b32`` comes back as ``sys_kexec_load``). So both
sides are parsed into :class:`AuditRule` values that forget those spellings, and an
expected rule counts as loaded when some loaded rule has the same list and action, the
same fields and the same syscalls. A numeric syscall cannot be named without the
per-arch table, so it matches any one leftover name of the loaded rule.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AuditRule",
    "AuditStatus",
    "missing_rules",
    "parse_auditd_conf",
    "parse_rules",
    "parse_status",
    "rule_matches",
]


@dataclass(frozen=True, slots=True)
class AuditStatus:
    """The kernel's audit status, from ``auditctl -s`` (``None`` where a line is missing).

    Attributes:
        enabled: 0 disabled, 1 enabled, 2 enabled and immutable (locked until reboot).
        pid: pid of the process the kernel sends records to (auditd); 0 when none.
        backlog_limit: how many records the kernel queues before it waits, then drops.
        lost: records the kernel dropped since boot.
        backlog: records queued right now.
        rate_limit: messages per second above which the kernel drops; 0 is unlimited.
    """

    enabled: int | None = None
    pid: int | None = None
    backlog_limit: int | None = None
    lost: int | None = None
    backlog: int | None = None
    rate_limit: int | None = None


def parse_status(text: str) -> AuditStatus:
    """Read the ``name value`` lines of ``auditctl -s``; unknown or odd lines are ignored."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].lstrip("-").isdigit():
            values[parts[0]] = int(parts[1])
    return AuditStatus(
        enabled=values.get("enabled"),
        pid=values.get("pid"),
        backlog_limit=values.get("backlog_limit"),
        lost=values.get("lost"),
        backlog=values.get("backlog"),
        rate_limit=values.get("rate_limit"),
    )


@dataclass(frozen=True, slots=True)
class AuditRule:
    """One audit rule, with the spelling differences of auditctl forgotten.

    Attributes:
        text: the line as written, for messages.
        list_action: ``"always,exit"`` style, parts sorted; ``"watch"`` for ``-w`` rules.
        fields: ``name<op>value`` strings, ``key=…`` included (from ``-k`` or ``-F key=``);
            a watch keeps its path as ``path=…`` and permissions as ``perm=…``.
        syscalls: syscall names or numbers, with auditctl's ``sys_`` prefix removed.
    """

    text: str
    list_action: str
    fields: frozenset[str]
    syscalls: frozenset[str]

    @property
    def key(self) -> str | None:
        """The rule's key, if it has one."""
        for field in self.fields:
            if field.startswith("key="):
                return field[4:]
        return None


def _canonical_syscall(name: str) -> str:
    # auditctl 3.0.9 names i386's kexec_load "sys_kexec_load"; no real syscall name
    # starts with "sys_", so dropping the prefix is safe.
    return name.removeprefix("sys_")


def _parse_rule(line: str) -> AuditRule | None:
    tokens = line.split()
    list_action: str | None = None
    fields: set[str] = set()
    syscalls: set[str] = set()
    i = 0
    while i < len(tokens):
        option = tokens[i]
        value = tokens[i + 1] if i + 1 < len(tokens) else ""
        i += 2
        if option in ("-a", "-A"):
            list_action = ",".join(sorted(value.split(",")))
        elif option == "-w":
            list_action = "watch"
            fields.add(f"path={value}")
        elif option == "-p":
            fields.add(f"perm={''.join(sorted(value))}")
        elif option == "-S":
            syscalls.update(_canonical_syscall(s) for s in value.split(",") if s)
        elif option == "-F":
            fields.add(value)
        elif option == "-k":
            fields.add(f"key={value}")
        else:
            # Control options (-D, -b, -e, -f, -r, --backlog_wait_time ...) are not rules.
            return None
    if list_action is None:
        return None
    return AuditRule(line, list_action, frozenset(fields), frozenset(syscalls))


def parse_rules(text: str) -> tuple[AuditRule, ...]:
    """Parse a rules file or ``auditctl -l`` output into rules.

    Comments, blank lines, ``No rules`` and control lines (``-D``, ``-b``, ``-e`` ...)
    are skipped, so the result holds only ``-a``/``-A`` syscall rules and ``-w`` watches.
    """
    rules: list[AuditRule] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line.startswith("-"):
            continue
        rule = _parse_rule(line)
        if rule is not None:
            rules.append(rule)
    return tuple(rules)


def rule_matches(expected: AuditRule, loaded: AuditRule) -> bool:
    """Whether ``loaded`` is the kernel's form of ``expected`` (see the module docstring)."""
    if expected.list_action != loaded.list_action or expected.fields != loaded.fields:
        return False
    named = {s for s in expected.syscalls if not s.isdigit()}
    numbered = len(expected.syscalls) - len(named)
    if not named <= loaded.syscalls:
        return False
    return len(loaded.syscalls - named) == numbered


def missing_rules(
    expected: tuple[AuditRule, ...], loaded: tuple[AuditRule, ...]
) -> tuple[AuditRule, ...]:
    """The expected rules that no loaded rule matches, in file order."""
    return tuple(e for e in expected if not any(rule_matches(e, rule) for rule in loaded))


def parse_auditd_conf(text: str) -> dict[str, str]:
    """Read ``auditd.conf``: ``name = value`` lines, names lower-cased, ``#`` comments skipped."""
    conf: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.partition("=")
        conf[name.strip().lower()] = value.strip()
    return conf
