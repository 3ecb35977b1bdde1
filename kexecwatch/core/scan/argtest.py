"""The argument test: what a rule requires of a process's name, executable and arguments.

Theory of operation: many rules require nothing of the program's name alone, only of its
arguments (``process.args : ("history", "-c")``, ``process.command_line : "*hostfwd=*"``),
or of either (``process.name == "swapon" or process.command_line like "*swappiness*"``).
Without a test on the arguments, the prefilter (:mod:`kexecwatch.core.scan.prefilter`) must
parse every exec in full for them. An :class:`ArgsTest` is the rule's condition reduced
to what can be tested before the document is built
(:func:`kexecwatch.core.detect.ruleindex.args_test` derives it):

* a comparison on ``process.args`` or ``process.command_line`` becomes a set of
  *needles*, literal text of which one occurs in ``process.command_line`` whenever the
  comparison holds (an element of ``process.args`` is inside the command line, the
  arguments joined by spaces, so one test serves both fields);
* a comparison on ``process.name``, ``process.executable`` or
  ``process.working_directory`` stays what it is (its answer per value is remembered:
  names, executables and directories repeat);
* the same for the parent (``process.parent.*``), read from the process table as the
  document would be (:class:`Facts`);
* a comparison (``==``, ``in``, ``!=``) of a process's own user or group id
  (``process.user.id``, ``process.real_group.id``, ``user.effective.id``, ...) with text
  becomes a test on the ids its ``SYSCALL`` record states (:class:`CredTest`): the
  document's id is that record's field, as written;
* a positive comparison on the process's capability sets
  (``process.thread.capabilities.*``) becomes a test that the event has a record
  stating them (:class:`CapsTest`): no other event's document holds them;
* a comparison on a field that process documents never hold, or with an ``event.*``
  value they never have in either vocabulary, is false;
* ``and`` and ``or`` stay; anything else (``not``, functions, other fields) is taken as
  true.

Each part holds whenever the part of the rule it stands for holds, and ``and``/``or``
keep that, so every document the rule matches passes (Rule 1 of
:mod:`kexecwatch.core.scan.prefilter`: a test may accept too much, never too little).

A needle is case-sensitive (``==``, ``in``, ``like``) or not (``:``, ``in~``, ``like~``:
the rule lower-cases the value with ``str.lower``, so the needle is looked for in the
lower-cased command line, exactly as the rule compares). The test runs on the decoded
arguments (:func:`command_line_of`), never on the raw record text, so quoted and
hex-encoded arguments and arguments split over several records all read as the
document reads them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from dataclasses import field as dataclass_field

from kexecwatch.core.process.identity import credentials_of

__all__ = [
    "CREDENTIAL_FIELDS",
    "NOTHING_READ",
    "AllOf",
    "AnyOf",
    "ArgsTest",
    "CapsTest",
    "CredTest",
    "Facts",
    "Known",
    "Needle",
    "NeedleGate",
    "Needles",
    "Part",
    "Reads",
    "ValueTest",
    "command_line_of",
    "either",
    "known_of",
    "own_needles",
    "reads_command_lines",
    "reads_of",
]

#: What a test reads of :class:`Facts` besides command lines (:func:`reads_of`): the
#: parent's name or executable, the working directory, the ids, the capabilities.
Reads = tuple[bool, bool, bool, bool]
#: It reads none of them.
NOTHING_READ: Reads = (False, False, False, False)
#: One needle: its text, and whether it is looked for in the lower-cased command line.
Needle = tuple[str, bool]
#: Values remembered per name or executable test (then forgotten all at once).
_MAX_SEEN = 4096


#: What the test knows of a process: name, executable and command line (``None``: the
#: command line is not known; the test then takes any).
Known = tuple[str, str, str | None]


#: Document fields of a process's own ids -> the ``SYSCALL`` record field each is, as
#: written (:data:`kexecwatch.core.process.identity.CREDENTIALS` and the ``user``/``group``
#: objects of a document).
CREDENTIAL_FIELDS = {
    "process.user.id": "euid",
    "process.real_user.id": "uid",
    "process.saved_user.id": "suid",
    "process.group.id": "egid",
    "process.real_group.id": "gid",
    "process.saved_group.id": "sgid",
    "user.id": "uid",
    "user.effective.id": "euid",
    "group.id": "gid",
}


class Facts:
    """What a test reads of one event: the process's own :data:`Known`, its parent's
    on demand (``parent`` gives ``None`` when the table knows no parent; without
    ``parent``, nothing is known of it and every test on it holds), and its ids: the
    ``SYSCALL`` record's text from ``auid=`` to ``comm=`` in the canonical layout
    (``extra``; ``None``: not known, every test on them holds), its working directory
    as the document holds it (``cwd``: ``None`` when the event states none, ``True`` when
    not known: every test on it holds), and whether the event has a record stating its
    capability sets (``capabilities``; ``None``: not known)."""

    __slots__ = ("_lowered", "_parent", "_parent_known", "capabilities", "cwd", "extra", "own")

    def __init__(
        self,
        own: Known,
        parent: Callable[[], Known | None] | None = None,
        extra: bytes | None = None,
        cwd: str | bool | None = True,
        *,
        capabilities: bool | None = None,
    ) -> None:
        self.own = own
        self.extra = extra
        self.cwd = cwd
        self.capabilities = capabilities
        self._parent = parent
        self._parent_known: list[Known | None] = []
        self._lowered: dict[int, str] = {}

    def of(self, parent: bool) -> Known | bool | None:
        """The process's own facts, or its parent's (``True``: not known)."""
        if not parent:
            return self.own
        if self._parent is None:
            return True
        if not self._parent_known:
            self._parent_known.append(self._parent())
        return self._parent_known[0]

    def key(self, reads: Reads) -> tuple[object, ...]:
        """What parts which read no command line read of these facts (besides the
        process's own name and executable), as :func:`reads_of` gives it: the parent's name
        and executable (or whether it is unknown or absent), the working directory, the ids
        and whether the capability sets are stated; ``None`` for what they do not read
        (the parent is then not looked up)."""
        parent = self.of(True) if reads[0] else None
        return (
            parent[:2] if isinstance(parent, tuple) else parent,
            self.cwd if reads[1] else None,
            self.extra if reads[2] else None,
            self.capabilities if reads[3] else None,
        )

    def lowered(self, parent: bool, line: str) -> str:
        """``line`` lower-cased, once."""
        found = self._lowered.get(parent)
        if found is None:
            found = self._lowered[parent] = line.lower()
        return found


@dataclass(frozen=True, slots=True)
class Needles:
    """One of ``needles`` is in the command line (the parent's, with ``parent``)."""

    needles: frozenset[Needle]
    parent: bool = False

    def given(self, name: str, executable: str) -> Part | bool:
        return self

    def holds(self, facts: Facts) -> bool:
        known = facts.of(self.parent)
        if known is True:
            return True
        if known is None or known is False:
            return False  # no parent: no parent.args, no parent.command_line
        line = known[2]
        if line is None:
            return not self.parent  # own arguments from elsewhere: any; a parent's: none
        for text, nocase in self.needles:
            if text in (facts.lowered(self.parent, line) if nocase else line):
                return True
        return False


@dataclass(frozen=True, slots=True)
class ValueTest:
    """``test`` holds on a name or executable: ``field`` 0 ``process.name``, 1
    ``process.executable``, 2 and 3 the parent's, 4 ``process.working_directory``."""

    field: int
    test: Callable[[str], bool] = dataclass_field(compare=False)
    seen: dict[str, bool] = dataclass_field(default_factory=dict, compare=False)

    def given(self, name: str, executable: str) -> Part | bool:
        if self.field >= 2:
            return self
        return self.test(executable if self.field else name)

    def holds(self, facts: Facts) -> bool:
        value: str
        if self.field == 4:
            cwd = facts.cwd
            if cwd is True:
                return True
            if cwd is None or cwd is False:
                return False
            value = cwd
        else:
            known = facts.of(self.field >= 2)
            if known is True:
                return True
            if known is None or known is False:
                return False
            value = known[1] if self.field & 1 else known[0]
        found = self.seen.get(value)
        if found is None:
            if len(self.seen) >= _MAX_SEEN:
                self.seen.clear()
            found = self.seen[value] = self.test(value)
        return found


@dataclass(frozen=True, slots=True)
class CredTest:
    """The process's own id ``key`` (``uid``, ``euid``, ...) is one of ``values``, or with
    ``negate`` is none of them (``!=``: a document without the id matches too)."""

    key: str
    values: frozenset[str]
    negate: bool = False

    def given(self, name: str, executable: str) -> Part | bool:
        return self

    def holds(self, facts: Facts) -> bool:
        extra = facts.extra
        if extra is None:
            return True
        value = credentials_of(extra).get(self.key)
        if value is None:
            return True
        return (value in self.values) is not self.negate


@dataclass(frozen=True, slots=True)
class CapsTest:
    """The event has a record stating the process's capability sets
    (:data:`~kexecwatch.core.process.capabilities.CAPABILITY_RECORDS`): a positive
    comparison on ``process.thread.capabilities.*`` can hold only then."""

    def given(self, name: str, executable: str) -> Part | bool:
        return self

    def holds(self, facts: Facts) -> bool:
        return facts.capabilities is not False


@dataclass(frozen=True, slots=True)
class AllOf:
    """Every part holds."""

    parts: tuple[Part, ...]

    def given(self, name: str, executable: str) -> Part | bool:
        return _given(self.parts, name, executable, stop=False)

    def holds(self, facts: Facts) -> bool:
        return all(p.holds(facts) for p in self.parts)


@dataclass(frozen=True, slots=True)
class AnyOf:
    """Some part holds."""

    parts: tuple[Part, ...]

    def given(self, name: str, executable: str) -> Part | bool:
        return _given(self.parts, name, executable, stop=True)

    def holds(self, facts: Facts) -> bool:
        return any(p.holds(facts) for p in self.parts)


Part = Needles | ValueTest | CredTest | CapsTest | AllOf | AnyOf


def _given(parts: tuple[Part, ...], name: str, executable: str, *, stop: bool) -> Part | bool:
    """``AllOf`` (``stop`` False) or ``AnyOf`` (``stop`` True) of ``parts`` once the
    process's own name and executable are known."""
    left: list[Part] = []
    for part in parts:
        found = part.given(name, executable)
        if found is stop:
            return stop
        if not isinstance(found, bool):
            left.append(found)
    if not left:
        return not stop
    if len(left) == 1:
        return left[0]
    return AnyOf(tuple(left)) if stop else AllOf(tuple(left))


@dataclass(frozen=True, slots=True)
class ArgsTest:
    """A rule's condition reduced to its name, executable and argument tests."""

    root: Part
    _given: dict[tuple[str, str], Part | bool] = dataclass_field(
        default_factory=dict, compare=False
    )

    def given(self, name: str, executable: str) -> Part | bool:
        """What is left of the test once ``process.name`` and ``process.executable`` are
        known (``True``/``False``: the whole answer); remembered."""
        key = (name, executable)
        found = self._given.get(key)
        if found is None:
            if len(self._given) >= _MAX_SEEN:
                self._given.clear()
            found = self._given[key] = self.root.given(name, executable)
        return found

    def accepts(self, facts: Facts) -> bool:
        """Whether a document with these facts may match."""
        left = self.given(facts.own[0], facts.own[1])
        return left if isinstance(left, bool) else left.holds(facts)

    def needles(self) -> frozenset[Needle]:
        """Every needle of the test (the parent's too)."""
        found: set[Needle] = set()
        stack: list[Part] = [self.root]
        while stack:
            part = stack.pop()
            if isinstance(part, Needles):
                found |= part.needles
            elif isinstance(part, AllOf | AnyOf):
                stack += part.parts
        return frozenset(found)

    @property
    def reads_parent(self) -> bool:
        """Whether a part tests the parent."""
        return any(
            part.parent if isinstance(part, Needles) else part.field in (2, 3)
            for part in self._leaves()
            if isinstance(part, Needles | ValueTest)
        )

    @property
    def reads_event(self) -> bool:
        """Whether a part tests more than the process's own name and executable (which
        the prefilter decides once per name)."""
        return any(not isinstance(p, ValueTest) or p.field >= 2 for p in self._leaves())

    def _leaves(self) -> list[Needles | ValueTest | CredTest | CapsTest]:
        found: list[Needles | ValueTest | CredTest | CapsTest] = []
        stack: list[Part] = [self.root]
        while stack:
            part = stack.pop()
            if isinstance(part, AllOf | AnyOf):
                stack += part.parts
            else:
                found.append(part)
        return found


def own_needles(part: Part | bool) -> frozenset[Needle] | None:
    """Needles of which one is in the process's own command line whenever ``part`` (what
    :meth:`ArgsTest.given` left) holds on a known command line; ``None`` when ``part``
    may hold without any."""
    if isinstance(part, Needles):
        return None if part.parent else part.needles
    if isinstance(part, AllOf):
        found = [n for n in map(own_needles, part.parts) if n is not None]
        return min(found, key=len) if found else None
    if isinstance(part, AnyOf):
        union: set[Needle] = set()
        for item in part.parts:
            needles = own_needles(item)
            if needles is None:
                return None
            union |= needles
        return frozenset(union)
    return None


def reads_of(part: Part | bool) -> Reads:
    """What ``part``, which reads no command line (:func:`reads_command_lines`), reads
    of the facts: the parent's name or executable, the working directory, the ids,
    whether the capability sets are stated (:meth:`Facts.key`)."""
    if isinstance(part, ValueTest):
        return (part.field in (2, 3), part.field == 4, False, False)
    if isinstance(part, CredTest):
        return (False, False, True, False)
    if isinstance(part, CapsTest):
        return (False, False, False, True)
    if isinstance(part, AllOf | AnyOf):
        return either(*map(reads_of, part.parts))
    return NOTHING_READ


def either(*reads: Reads) -> Reads:
    """What any of ``reads`` reads."""
    return (
        any(r[0] for r in reads),
        any(r[1] for r in reads),
        any(r[2] for r in reads),
        any(r[3] for r in reads),
    )


def reads_command_lines(part: Part | bool) -> bool:
    """Whether ``part`` reads a command line (the process's or its parent's): if not, it
    depends only on the parent's name and executable, the working directory and the ids
    (:meth:`Facts.key`)."""
    if isinstance(part, Needles):
        return True
    if isinstance(part, AllOf | AnyOf):
        return any(reads_command_lines(p) for p in part.parts)
    return False


class NeedleGate:
    """One look for the needles of many argument tests at once: when none of them is in
    a known command line, none of the tests holds (:func:`own_needles`)."""

    __slots__ = ("_exact", "_folded")

    def __init__(self, needles: Iterable[Needle]) -> None:
        found = set(needles)
        self._exact = tuple(sorted(t for t, nocase in found if not nocase))
        self._folded = tuple(sorted(t for t, nocase in found if nocase))

    def shut(self, facts: Facts) -> bool:
        """Whether no needle is in the process's own command line (known)."""
        line = facts.own[2]
        if line is None:
            return False
        for text in self._exact:
            if text in line:
                return False
        if self._folded:
            lowered = facts.lowered(False, line)
            for text in self._folded:
                if text in lowered:
                    return False
        return True


def command_line_of(args: Iterable[bytes]) -> str:
    """``process.command_line`` of decoded arguments, as the document builds it."""
    return " ".join(a.decode("utf-8", "surrogateescape") for a in args)


def known_of(name: bytes | None, executable: bytes | None, args: Iterable[bytes] | None) -> Known:
    """The :data:`Known` of a process with these decoded values (``args`` ``None``: its
    arguments are not known)."""
    return (
        "" if name is None else name.decode("utf-8", "surrogateescape"),
        "" if executable is None else executable.decode("utf-8", "surrogateescape"),
        None if args is None else command_line_of(args),
    )
