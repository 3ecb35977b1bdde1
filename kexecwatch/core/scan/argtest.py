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

import re
from binascii import unhexlify
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from kexecwatch.core.process.identity import credentials_of

__all__ = [
    "CREDENTIAL_FIELDS",
    "MAX_RAW_LOOK",
    "NOTHING_READ",
    "AllOf",
    "AnyOf",
    "ArgsTest",
    "CapsTest",
    "CredTest",
    "Facts",
    "Known",
    "LineSearch",
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

#: What a test reads of :class:`Facts` besides the process's own command line
#: (:func:`reads_of`): the parent's name or executable, the working directory, the ids,
#: the capabilities, the parent's command line.
Reads = tuple[bool, bool, bool, bool, bool]
#: It reads none of them.
NOTHING_READ: Reads = (False, False, False, False, False)
#: A parent's command line longer than this is not kept as part of a key
#: (:meth:`Facts.key`): what is remembered per key stays small.
MAX_KEY_LINE = 1024
#: One needle: its text, and whether it is looked for in the lower-cased command line.
Needle = tuple[str, bool]
#: The longest EXECVE bodies :meth:`NeedleGate.shut` looks at raw before decoding them.
MAX_RAW_LOOK = 1024
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
    capability sets (``capabilities``; ``None``: not known).

    Whatever costs work to make is made when first read, and only then: ``line`` gives
    the own command line in place of ``own[2]``, and ``cwd`` and ``capabilities`` may be
    such functions too (most events are decided on names alone). ``raw_args``: the
    EXECVE record bodies the own command line is decoded from (joined by newlines, as
    :func:`~kexecwatch.core.scan.fastpath.execve_bodies` gives them), so that a
    :class:`NeedleGate` can often tell from them alone that no needle is in it."""

    __slots__ = (
        "_capabilities",
        "_cwd",
        "_line",
        "_lowered",
        "_own",
        "_parent",
        "_parent_known",
        "executable",
        "extra",
        "name",
        "raw_args",
    )

    def __init__(
        self,
        own: Known,
        parent: Callable[[], Known | None] | None = None,
        extra: bytes | None = None,
        cwd: str | bool | Callable[[], str | None] | None = True,
        *,
        capabilities: bool | Callable[[], bool] | None = None,
        line: Callable[[], str | None] | None = None,
        raw_args: bytes | None = None,
    ) -> None:
        self.name = own[0]
        self.executable = own[1]
        self._own: Known | None = None if line is not None else own
        self._line = line
        self.extra = extra
        self._cwd = cwd
        self._capabilities = capabilities
        self.raw_args = raw_args
        self._parent = parent
        self._parent_known: list[Known | None] = []
        self._lowered: dict[int, str] = {}

    @property
    def own(self) -> Known:
        """The process's own name, executable and command line."""
        own = self._own
        if own is None:
            assert self._line is not None
            own = self._own = (self.name, self.executable, self._line())
        return own

    @property
    def cwd(self) -> str | bool | None:
        """The working directory (``True``: not known)."""
        cwd = self._cwd
        if callable(cwd):
            cwd = self._cwd = cwd()
        return cwd

    @property
    def capabilities(self) -> bool | None:
        """Whether a record states the capability sets (``None``: not known)."""
        stated = self._capabilities
        if callable(stated):
            stated = self._capabilities = stated()
        return stated

    def of(self, parent: bool) -> Known | bool | None:
        """The process's own facts, or its parent's (``True``: not known)."""
        if not parent:
            return self.own
        if self._parent is None:
            return True
        if not self._parent_known:
            self._parent_known.append(self._parent())
        return self._parent_known[0]

    def key(self, reads: Reads) -> tuple[object, ...] | None:
        """What parts which do not read the process's own command line read of these facts
        (besides the process's own name and executable), as :func:`reads_of` gives it: the
        parent's name and executable, and its command line if read (or whether the parent
        is unknown or absent), the working directory, the ids and whether the capability
        sets are stated; ``None`` in each place for what they do not read (the parent is
        then not looked up). ``None`` for the whole when the parent's command line is
        read and longer than :data:`MAX_KEY_LINE`."""
        parent: object = self.of(True) if reads[0] or reads[4] else None
        if isinstance(parent, tuple):
            if not reads[4]:
                parent = parent[:2]
            elif parent[2] is not None and len(parent[2]) > MAX_KEY_LINE:
                return None
        return (
            parent,
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
    #: The search for the needles, made once when first needed.
    _search: list[LineSearch] = dataclass_field(default_factory=list, compare=False, repr=False)

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
        if not self._search:
            self._search.append(LineSearch(self.needles))
        return self._search[0].found(facts, self.parent, line)


class LineSearch:
    """Whether one of some needles is in a decoded command line: with more than a few
    needles, one trie search per case (:func:`_one_of_text`) instead of a look for each
    (a rule's ``[0-9].[0-9]`` row has a hundred); with a few, a look for each."""

    __slots__ = ("_exact", "_folded")

    def __init__(self, needles: Iterable[Needle]) -> None:
        exact, folded = _texts_of(needles)
        self._exact = _finder(exact)
        self._folded = _finder(folded)

    def found(self, facts: Facts, parent: bool, line: str) -> bool:
        """Whether a needle is in ``line``, the command line of ``facts`` (the parent's
        with ``parent``), the folded ones in its lower-cased form."""
        exact, folded = self._exact, self._folded
        if exact is not None and exact(line):
            return True
        return folded is not None and folded(facts.lowered(parent, line))


#: The most needles looked for one by one; beyond, and up to this length, one search.
_FEW_NEEDLES = 3
_MAX_TRIE_NEEDLE = 256


def _finder(texts: tuple[str, ...]) -> Callable[[str], bool] | None:
    """Whether one of ``texts`` is in a text (``None``: there are none).

    A text longer than :data:`_LONG_LINE` (a JVM's class path) is searched with each
    branch of the trie's root on its own (:func:`_root_searches`), not with the trie:
    the regex engine tries every branch at every place (a class path's 17,000 places cost
    the trie of c30's needles about 1 ms), while a search that starts with a literal skips
    to the places where it is, in C."""
    if not texts:
        return None
    if len(texts) > _FEW_NEEDLES and all(len(t) <= _MAX_TRIE_NEEDLE for t in texts):
        later = _Later(lambda: _one_of_text(texts))
        roots: list[Callable[[str], re.Match[str] | None]] = []

        def found(line: str) -> bool:
            if len(line) <= _LONG_LINE:
                return later.search(line) is not None
            if not roots:
                roots.extend(_root_searches(texts))
            return any(search(line) is not None for search in roots)

        return found
    return lambda line: any(text in line for text in texts)


#: The longest text searched with one trie (:func:`_finder`).
_LONG_LINE = 2048


def _root_searches(words: Iterable[str]) -> list[Callable[[str], re.Match[str] | None]]:
    """One search per branch of the root of the trie of ``words`` (at least one), which
    together find what the trie finds. A branch that starts with a class of characters
    (``[0-9]\\.[0-9]``) starts with the literal after it, the class looked behind
    (``\\.(?<=[0-9]\\.)[0-9]``): a search that starts with a literal is a scan in C."""
    trie = _trie_of(words)
    if "" in trie:
        return [re.compile("").search]  # the empty word is in every text
    by_rest: dict[str, list[str]] = {}
    for char in sorted(trie):
        by_rest.setdefault(_trie_pattern(trie[char]), []).append(char)
    sources = []
    for rest, chars in by_rest.items():
        if len(chars) == 1:
            sources.append(_ESCAPED[chars[0]] + rest)
            continue
        head = "[" + "".join(map(_ESCAPED.__getitem__, chars)) + "]"
        literal = _first_literal(rest)
        if literal:
            sources.append(literal + "(?<=" + head + literal + ")" + rest[len(literal) :])
        else:
            sources.append(head + rest)
    return [re.compile(source).search for source in sources]


def _first_literal(source: str) -> str:
    """The first character of a trie pattern's source as it stands there (escaped), when
    it is a literal one; else ``""`` (a class, a group, or nothing)."""
    if not source or source[0] in "([":
        return ""
    return source[:2] if source[0] == "\\" else source[0]


def _texts_of(needles: Iterable[Needle]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The texts of the case-sensitive ``needles`` and those of the folded ones, each
    without those holding another of the same case (:func:`_fewest`); remembered per
    needle set (the rules' sets recur: c30 asks 97 sets 193 times), at most
    :data:`_MAX_GATE_PARTS`."""
    found = frozenset(needles)
    texts = _TEXTS.get(found)
    if texts is None:
        texts = (
            _fewest(t for t, nocase in found if not nocase),
            _fewest(t for t, nocase in found if nocase),
        )
        if len(_TEXTS) >= _MAX_GATE_PARTS:
            _TEXTS.clear()
        _TEXTS[found] = texts
    return texts


_TEXTS: dict[frozenset[Needle], tuple[tuple[str, ...], tuple[str, ...]]] = {}


def _fewest(texts: Iterable[str]) -> tuple[str, ...]:
    """``texts`` without each that holds another (sorted): a text holding ``x`` is in a
    line only where ``x`` is, so whether one of them is there is whether one of the
    others is (``/root/.bash_history`` and ``.bash_history``: one needle; a rule's ``*``
    patterns repeat the paths of other rows). So too for the raw look
    (:class:`NeedleGate`): each piece of a text lies inside one piece of a text holding
    it, so wherever the longer one's pieces all are, the shorter one's are too.
    Fewer needles make a smaller trie, searched faster."""
    kept: list[str] = []
    # The texts kept, by their first character: only those starting with one of a
    # text's characters can be in it (a rule's hundred ``0.0``...``9.9`` needles are
    # not tried on a path without digits).
    by_first: dict[str, list[str]] = {}
    for text in sorted(set(texts), key=lambda t: (len(t), t)):
        if not text:
            return ("",)  # in every line
        if not any(other in text for char in set(text) for other in by_first.get(char, ())):
            kept.append(text)
            by_first.setdefault(text[0], []).append(text)
    return tuple(sorted(kept))


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
        elif self.field < 2:
            value = facts.executable if self.field else facts.name
        else:
            known = facts.of(True)
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
        left = self.given(facts.name, facts.executable)
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


def own_needles(part: Part | bool, *, rare: bool = False) -> frozenset[Needle] | None:
    """Needles of which one is in the process's own command line whenever ``part`` (what
    :meth:`ArgsTest.given` left) holds on a known command line; ``None`` when ``part``
    may hold without any.

    Of the needle sets of an ``AllOf``'s parts, any one would do: the fewest needles are
    taken, or with ``rare`` the set whose shortest needle is the longest (then the
    fewest): a rule's ``[0-9]`` and ``[0-9]:[0-9]`` rows both hold, but nearly every
    command line has a digit, and few have a digit, a colon and a digit in a row."""
    if isinstance(part, Needles):
        return None if part.parent else part.needles
    if isinstance(part, AllOf):
        found = [n for n in (own_needles(p, rare=rare) for p in part.parts) if n is not None]
        if not found:
            return None
        return min(found, key=_rarity if rare else len)
    if isinstance(part, AnyOf):
        union: set[Needle] = set()
        for item in part.parts:
            needles = own_needles(item, rare=rare)
            if needles is None:
                return None
            union |= needles
        return frozenset(union)
    return None


def _rarity(needles: frozenset[Needle]) -> tuple[int, int]:
    """How often a set of needles is likely to be found: more often for a shorter
    shortest needle, then for more needles."""
    return -min((len(text) for text, _ in needles), default=0), len(needles)


def reads_of(part: Part | bool) -> Reads:
    """What ``part``, which does not read the process's own command line
    (:func:`reads_command_lines`), reads of the facts: the parent's name or executable,
    the working directory, the ids, whether the capability sets are stated, the parent's
    command line (:meth:`Facts.key`)."""
    if isinstance(part, ValueTest):
        return (part.field in (2, 3), part.field == 4, False, False, False)
    if isinstance(part, CredTest):
        return (False, False, True, False, False)
    if isinstance(part, CapsTest):
        return (False, False, False, True, False)
    if isinstance(part, Needles):
        return (False, False, False, False, part.parent)
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
        any(r[4] for r in reads),
    )


def reads_command_lines(part: Part | bool, *, own: bool = False) -> bool:
    """Whether ``part`` reads a command line (the process's or its parent's; with
    ``own``, the process's own): if not, it depends only on what :meth:`Facts.key`
    holds."""
    if isinstance(part, Needles):
        return not (own and part.parent)
    if isinstance(part, AllOf | AnyOf):
        return any(reads_command_lines(p, own=own) for p in part.parts)
    return False


class NeedleGate:
    """One look for the needles of many argument tests at once: when none of them is in
    a known command line, none of the tests holds (:func:`own_needles`).

    Most command lines hold none, so the look is made on the raw EXECVE bodies first
    (:attr:`Facts.raw_args`), which then need no full decoding. Where every argument is
    written whole, quoted (``aN="..."``) or in upper-case hex, the bytes of each
    argument are read at once (a regex, ``unhexlify``) and joined by spaces. A needle's
    pieces between spaces each lie inside one argument, so a needle is in the command
    line only if each of its pieces (UTF-8 encoded, as decoding with ``surrogateescape``
    reverses) is in those bytes. A case-folded needle is looked for so only when the
    bytes are all ASCII, where ``str.lower`` of the decoded line is ``bytes.lower`` of
    them. Any other record (split arguments, a malformed body): the decoded command line
    is searched."""

    __slots__ = ("_line", "_raw_exact", "_raw_folded")

    def __init__(self, needles: Iterable[Needle]) -> None:
        needles = frozenset(needles)
        # Many verdict keys (a name and executable each) share one set of needles: its
        # searches are built once (the tries and their patterns are most of a gate's
        # cost) and shared, as they hold no state.
        made = _GATE_PARTS.get(needles)
        if made is None:
            exact, folded = _texts_of(needles)
            made = (LineSearch(needles), _raw_pieces(exact), _raw_pieces(folded))
            if len(_GATE_PARTS) >= _MAX_GATE_PARTS:
                _GATE_PARTS.clear()
            _GATE_PARTS[needles] = made
        self._line, self._raw_exact, self._raw_folded = made

    def shut(self, facts: Facts) -> bool:
        """Whether no needle is in the process's own command line (known).

        Bodies longer than :data:`MAX_RAW_LOOK` are not looked at raw: the raw look costs
        about what the look in the decoded line does (a body of quoted arguments decodes
        in a few C-level calls, :func:`~kexecwatch.core.scan.fastpath.whole_argv`), and
        a long body leaves it undecided more often (a piece of some needle in another
        argument, or in a field name): then both were paid."""
        raw = facts.raw_args
        if raw is not None and len(raw) <= MAX_RAW_LOOK and self.shut_raw(raw):
            return True
        return self.shut_line(facts)

    def shut_line(self, facts: Facts) -> bool:
        """Whether no needle is in the process's own command line (known), looked for in
        the decoded command line only."""
        line = facts.own[2]
        return line is not None and not self._line.found(facts, False, line)

    def shut_raw(self, raw: bytes) -> bool:
        """Whether the raw EXECVE bodies ``raw`` show, without decoding, that no needle
        is in the command line decoded from them (``False``: not known)."""
        exact, folded = self._raw_exact, self._raw_folded
        if exact is None or folded is None:
            return False
        # Where every argument is quoted, its bytes stand in the bodies as they are: a
        # piece (no space) in none of the bodies is in no argument. One found (perhaps in
        # a field name) is looked for again in the arguments alone.
        if _QUOTED_EXECVE.fullmatch(raw) is not None and _none_in(exact, folded, raw):
            return True
        if _SIMPLE_EXECVE.fullmatch(raw) is None:
            return False
        # Every argument's decoded bytes, one space apart (argc's field adds an empty one).
        values = b" ".join([quoted or unhexlify(hexed) for quoted, hexed in _ARG.findall(raw)])
        return _none_in(exact, folded, values)


#: The searches of a :class:`NeedleGate`, by its needles (then forgotten all at once,
#: which bounds memory).
_GATE_PARTS: dict[frozenset[Needle], _GateParts] = {}
_MAX_GATE_PARTS = 1024


def _none_in(exact: _RawNeedles, folded: _RawNeedles, text: bytes) -> bool:
    """Whether no needle is in ``text`` (the folded ones in its lower-cased form, looked
    for only when it is all ASCII: else ``False``, not known)."""
    if _holds_one(exact, text):
        return False
    if folded[0] is not None or folded[1]:
        return text.isascii() and not _holds_one(folded, text.lower())
    return True


def _holds_one(needles: _RawNeedles, text: bytes) -> bool:
    """Whether ``text`` holds one of ``needles`` (all pieces of one of them)."""
    single, several = needles
    if single is not None and single.search(text) is not None:
        return True
    for pieces in several:
        for piece in pieces:
            if piece not in text:
                break
        else:
            return True
    return False


class _Later:
    """A pattern's ``search``, the pattern made (by ``make``) when first searched with.

    A gate's patterns are made when first needed: many are never searched with (a gate
    that the raw EXECVE bodies decide never searches the decoded line; one that only
    stands for a test behind a bigger gate never searches raw bodies), and making a
    trie's pattern costs more than many searches.
    """

    __slots__ = ("_make", "search")

    def __init__(self, make: Callable[[], re.Pattern[Any]]) -> None:
        self._make: Callable[[], re.Pattern[Any]] | None = make
        #: The search (until first used: what makes the pattern, then searches).
        self.search: Callable[[Any], re.Match[Any] | None] = self._first

    def _first(self, text: Any) -> re.Match[Any] | None:
        make = self._make
        if make is not None:  # else another thread made it meanwhile
            self.search = make().search
            self._make = None
        return self.search(text)


def _one_of(words: Iterable[bytes]) -> re.Pattern[bytes] | None:
    """One search that finds any of ``words`` where it occurs (``None``: no word), as a
    trie: at each place at most one alternative per next byte is tried, so many needles
    cost about what one does (a plain alternation, or a loop of ``in``, costs each)."""
    # Bytes as the characters of the same codes: the pattern, encoded back, is the same.
    source = _trie_source(word.decode("latin-1") for word in words)
    return None if source is None else re.compile(source.encode("latin-1"))


def _one_of_text(words: Iterable[str]) -> re.Pattern[str]:
    """:func:`_one_of` for text (at least one word)."""
    source = _trie_source(words)
    assert source is not None
    return re.compile(source)


def _trie_of(words: Iterable[str]) -> dict[str, Any]:
    """The trie of ``words``: a dict per character, ``""`` marking a word's end."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}
    return trie


def _trie_source(words: Iterable[str]) -> str | None:
    """The pattern of the trie of ``words`` (``None``: no word)."""
    trie = _trie_of(words)
    return _trie_pattern(trie) if trie else None


def _trie_pattern(node: dict[str, Any]) -> str:
    # A run of nodes with one next character each (most of a trie: the needles' tails)
    # is those characters, escaped, in a row.
    chain: list[str] = []
    while len(node) == 1 and "" not in node:
        [(char, node)] = node.items()
        chain.append(_ESCAPED[char])
    if "" in node:
        return "".join(chain)  # a word ends here: whatever follows, it is found
    # Next characters with the same rest share one alternative, as a class: a hundred
    # needles ``0.0`` to ``9.9`` make ``[0-9]\.[0-9]``, one look per place, not a hundred.
    by_rest: dict[str, list[str]] = {}
    for char in sorted(node):
        by_rest.setdefault(_trie_pattern(node[char]), []).append(char)
    alternatives = [
        (
            _ESCAPED[chars[0]]
            if len(chars) == 1
            else "[" + "".join(map(_ESCAPED.__getitem__, chars)) + "]"
        )
        + rest
        for rest, chars in by_rest.items()
    ]
    if len(alternatives) == 1:
        return "".join(chain) + alternatives[0]
    return "".join(chain) + "(?:" + "|".join(alternatives) + ")"


class _Escapes(dict[str, str]):
    """``re.escape`` of each character, remembered."""

    def __missing__(self, char: str) -> str:
        escaped = self[char] = re.escape(char)
        return escaped


_ESCAPED = _Escapes()


#: An EXECVE field in its simplest forms: ``argc=N``, an argument written quoted
#: (``aN="..."``) or as upper-case hex of whole bytes, the two forms the kernel writes for
#: an argument not split over several fields; each argument's groups are its quoted text
#: and its hex (what ``decode_untrusted`` reads them as).
_FIELD = rb'(?:argc=[0-9]+|a[0-9]+=(?:"([^"\n]*)"|((?:[0-9A-F]{2})+)))'
_ARG = re.compile(rb"(?:^|[ \n])" + _FIELD)
#: EXECVE bodies (joined by newlines, as ``execve_bodies`` keeps them) made only of
#: such fields, one space apart.
_SIMPLE_EXECVE = re.compile(_FIELD + rb"(?:[ \n]" + _FIELD + rb")*")


#: EXECVE bodies of :data:`_SIMPLE_EXECVE` whose arguments are all quoted.
_QUOTED_EXECVE = re.compile(
    rb'(?:argc=[0-9]+|a[0-9]+="[^"\n]*+")(?:[ \n](?:argc=[0-9]+|a[0-9]+="[^"\n]*+"))*+'
)


#: Needles as raw bytes: one search for those of one piece (``None``: there are none),
#: and the pieces of each other one.
_RawNeedles = tuple["_Later | None", tuple[tuple[bytes, ...], ...]]
#: A :class:`NeedleGate`'s searches: of the decoded line, of the raw exact and folded needles.
_GateParts = tuple[LineSearch, _RawNeedles | None, _RawNeedles | None]


def _raw_pieces(needles: tuple[str, ...]) -> _RawNeedles | None:
    """Each needle's pieces between spaces, as the raw bytes they decode from; ``None``
    when one cannot be written so (a lone surrogate no decoding makes)."""
    try:
        split = [
            tuple(piece.encode("utf-8", "surrogateescape") for piece in text.split(" ") if piece)
            for text in needles
        ]
    except UnicodeEncodeError:
        return None
    single = tuple(pieces[0] for pieces in split if len(pieces) == 1)
    return (
        _Later(lambda: _one_of_bytes(single)) if single else None,
        tuple(pieces for pieces in split if len(pieces) != 1),
    )


def _one_of_bytes(words: tuple[bytes, ...]) -> re.Pattern[bytes]:
    """:func:`_one_of` of at least one word."""
    search = _one_of(words)
    assert search is not None
    return search


def command_line_of(args: Iterable[bytes]) -> str:
    """``process.command_line`` of decoded arguments, as the document builds it (each
    argument decoded, joined by spaces): the bytes joined by spaces and decoded at once
    give the same text (UTF-8 is self-synchronising, and a space is no part of a
    multi-byte sequence, so no sequence is read across two arguments)."""
    return b" ".join(args).decode("utf-8", "surrogateescape")


def known_of(name: bytes | None, executable: bytes | None, args: Iterable[bytes] | None) -> Known:
    """The :data:`Known` of a process with these decoded values (``args`` ``None``: its
    arguments are not known)."""
    return (
        "" if name is None else name.decode("utf-8", "surrogateescape"),
        "" if executable is None else executable.decode("utf-8", "surrogateescape"),
        None if args is None else command_line_of(args),
    )
