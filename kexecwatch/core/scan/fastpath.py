"""The fast path: whole syscall events recognised with a few searches, in C.

Theory of operation: auditd writes the records of one syscall event one after the other
(``SYSCALL``, aux records, ``EXECVE``..., ``CWD``, ``PATH``..., ``PROCTITLE``), all with the
same ``msg=audit(...)`` id. :data:`SYSCALL_HEAD` and :func:`run_end` recognise such a run: one
regular-expression search, in C, finds the next run in a block of lines, reads what the
process table needs from the ``SYSCALL`` record (syscall, success, exit, pid, ppid, comm,
exe); a few ``startswith`` calls per line check that every following line up to the
``PROCTITLE`` is a record of the same event. Python touches the event a handful of times,
not once per line or field. Everything else stays unparsed bytes; the detector then
decides, from cheap literals (:mod:`kexecwatch.core.scan.prefilter`), whether the event needs
a full parse. Usually it does not.

Rule 1: the fast path never changes a result. It only recognises runs the reference
path would read the same way: a ``SYSCALL`` record in the kernel's canonical field
order (no ``node=``, no duplicated or oddly quoted field), then only records of the
same id: ``BPRM_FCAPS`` (an exec that gains privileges: the kernel writes it before the
``EXECVE`` records), ``EXECVE``, records whose types are in :data:`MIDDLE_TYPES` (so no
``EOE``, no earlier ``PROCTITLE``), then ``PROCTITLE``. Two such events whose records
interleave are pulled apart by :func:`split_pair` (passing over the first one's bare
``EOE`` after its end) and each checked the same way. Anything else (other layouts,
three events interleaved, ``UNKNOWN[n]`` types) is not recognised and goes the reference,
line-by-line way.
Rule 2: values are read with the reference decoders (:func:`decode_untrusted`,
:func:`parse_record`), never re-implemented here.
"""

from __future__ import annotations

import re
from binascii import unhexlify

from kexecwatch.core.audit.fields import MAX_ARGS, argv_from_execve, parse_fields
from kexecwatch.core.audit.record import AuditRecord, EventId, parse_record
from kexecwatch.core.audit.syscalls import syscall_name

__all__ = [
    "FAST_TYPES",
    "MIDDLE_TYPES",
    "SYSCALL_BODY",
    "SYSCALL_HEAD",
    "RunBounds",
    "argv_of_execve_bodies",
    "execve_bodies",
    "inode_search",
    "path_inodes",
    "record_types",
    "records_of",
    "run_end",
    "split_argv",
    "split_pair",
    "syscall_of",
]

# A value parse_fields reads as one token: quoted up to the next quote, or up to a space.
# No NUL anywhere: a line with one is corruption, which the reference path reports.
_VALUE = rb'(?:"[^"\n\x1d\x00]*"|[^ "\x1d\n\x00]+)'
_TOKEN = rb'[^ "\x1d\n\x00]+'

# The kernel's SYSCALL record, canonical layout (audit_log_exit), up to its key. Group
# ``extra`` is the credentials text the process table keeps (see kexecwatch.core.process.table).
_SYSCALL_FIELDS = (
    rb"(?P<call>arch=[0-9a-f]{1,8} syscall=[0-9]{1,6}) (?:per=[0-9a-f]+ )?"
    rb"success=(?P<success>yes|no) exit=(?P<exit>-?[0-9]{1,20}) "
    rb"a0=[0-9a-f]+ a1=[0-9a-f]+ a2=[0-9a-f]+ a3=[0-9a-f]+ items=[0-9]+ "
    rb"ppid=(?P<ppid>[0-9]{1,10}) pid=(?P<pid>[0-9]{1,10}) "
    rb"(?P<extra>auid=[0-9]+ uid=[0-9]+ gid=[0-9]+ euid=[0-9]+ suid=[0-9]+ fsuid=[0-9]+ "
    rb"egid=[0-9]+ sgid=[0-9]+ fsgid=[0-9]+ tty=" + _TOKEN + rb" ses=[0-9]+) "
    rb"comm=(?P<comm>" + _VALUE + rb") exe=(?P<exe>" + _VALUE + rb") "
    rb"(?:subj=" + _TOKEN + rb" )?key=" + _VALUE
)

#: A ``SYSCALL`` record body (``AuditRecord.body``) in the canonical layout, with the
#: groups of :data:`EVENT_RUN` it shares.
SYSCALL_BODY = re.compile(_SYSCALL_FIELDS)

#: Record types that may sit between SYSCALL and PROCTITLE in a whole run, after the
#: EXECVE records. Any other (EOE, a second PROCTITLE, node= lines, UNKNOWN[n], another
#: event's records) makes the run go the reference way.
MIDDLE_TYPES = (b"CWD", b"PATH", b"BPRM_FCAPS", b"SOCKADDR", b"FD_PAIR", b"OBJ_PID")

#: Every record type a run recognised by :data:`EVENT_RUN` can hold.
FAST_TYPES = frozenset(
    ["SYSCALL", "EXECVE", "PROCTITLE", *(t.decode("ascii") for t in MIDDLE_TYPES)]
)

#: The first line of a syscall event, searched for in a block of lines *with a newline
#: put in front* (``b"\\n" + lines``), so that a match starts at the newline before the
#: line. Groups: id, sec, ms, serial, and those of :data:`SYSCALL_BODY`; the line goes on
#: with the ENRICHED tail or ends.
SYSCALL_HEAD = re.compile(
    rb"\ntype=SYSCALL msg=audit\((?P<id>(?P<sec>[0-9]{1,20})\.(?P<ms>[0-9]{3}):"
    rb"(?P<serial>[0-9]{1,20}))\): " + _SYSCALL_FIELDS + rb"(?=[\x1d\n])"
)

_MIDDLE = frozenset(MIDDLE_TYPES)


#: Where a whole run's parts end: ``(execve_end, end, execve_start, lines)``, see
#: :func:`run_end`.
RunBounds = tuple[int, int, int, int]


def run_end(buf: bytes, m: re.Match[bytes]) -> RunBounds | None:
    """Where the whole event whose :data:`SYSCALL_HEAD` match is ``m`` ends, if it is one.

    Returns ``(execve_end, end, execve_start, lines)``: the offset just past its EXECVE
    lines, just past its PROCTITLE line's newline, where its EXECVE lines start (the line
    after the SYSCALL line, or after the ``BPRM_FCAPS`` lines the kernel writes first for
    an exec that gains privileges), and how many lines it has (a reader counts them so,
    not by a second pass over the bytes); or ``None`` when the lines from the SYSCALL
    line on are not exactly one whole event in the shape described in the module
    docstring.
    Each following line is checked by a few ``startswith``/``find`` calls against the
    headers this event's lines may have.
    """
    find = buf.find
    starts = buf.startswith
    line = find(b"\n", m.end()) + 1
    tag = b" msg=audit(" + m.group("id") + b"):"
    lines = 2  # the SYSCALL line and the PROCTITLE line
    if starts(b"type=BPRM_FCAPS", line):
        fcaps = b"type=BPRM_FCAPS" + tag
        while starts(fcaps, line):
            line = find(b"\n", line) + 1
            lines += 1
    args_start = line
    execve = b"type=EXECVE" + tag
    while starts(execve, line):
        line = find(b"\n", line) + 1
        lines += 1
    args_end = line
    # The usual middle lines are matched with one call per line; the rarer types
    # by their type name.
    usual = (b"type=PATH" + tag, b"type=CWD" + tag)
    proctitle = b"type=PROCTITLE" + tag
    while True:
        while starts(usual, line):
            line = find(b"\n", line) + 1
            lines += 1
        if starts(proctitle, line):
            break
        space = find(b" ", line + 5, line + 16)
        if (
            space < 0
            or not starts(b"type=", line)
            or buf[line + 5 : space] not in _MIDDLE
            or not starts(tag, space)
        ):
            return None
        line = find(b"\n", line) + 1
        lines += 1
    end = find(b"\n", line) + 1
    if find(b"\x00", m.start(), end) >= 0:
        return None  # a NUL is corruption: the reference path reports it
    return args_end, end, args_start, lines


#: The most lines :func:`split_pair` reads before giving up (a bound on wasted work).
PAIR_MAX_LINES = 48


def _plain_eoe(buf: bytes, space: int, nl: int, tag: bytes) -> bool:
    """Whether the line whose type ends at ``space`` and which ends at ``nl`` reads
    ``type=EOE`` + ``tag``, then at most one space: an EOE with nothing to parse."""
    length = nl - space - len(tag)
    return length == 0 or (length == 1 and buf[nl - 1] == 0x20)


def split_pair(buf: bytes, m: re.Match[bytes]) -> tuple[bytes, bytes, int] | None:
    """Two events whose records interleave, from the first one's SYSCALL line, pulled apart.

    Concurrent syscalls on two CPUs can have their records written interleaved:
    ``SYSCALL`` of A, ``SYSCALL`` of B, the rest of A up to its ``PROCTITLE``, the rest
    of B. ``m`` is A's :data:`SYSCALL_HEAD` match in ``buf``. This reads the lines from
    there and sorts each into A or B by its id, B's id being that of the first other
    ``SYSCALL`` line (which must match :data:`SYSCALL_HEAD` too).

    Returns:
        ``(a, b, end)``: each event's lines in log order, with a newline in front
        (the form :data:`SYSCALL_HEAD` and :func:`run_end` read, to check that each is
        whole), and the offset just past the pair's last line, B's ``PROCTITLE``.
        ``None`` when the lines are not exactly two events so interleaved, A's
        ``PROCTITLE`` first, within :data:`PAIR_MAX_LINES` lines. One exception: an
        ``EOE`` line of A after A's ``PROCTITLE`` (auditd writes one after every event
        for audisp plugins and forwarders), bare (``type=EOE msg=audit(ID):`` and at
        most a space), is passed over: pushed, it would be absorbed as a late ``EOE``
        of a complete event. It is in neither part; ``end`` counts it.
    """
    find = buf.find
    starts = buf.startswith
    tag_a = b" msg=audit(" + m.group("id") + b"):"
    tag_b = b""
    lines_a: list[bytes] = []
    lines_b: list[bytes] = []
    a_open = True
    a_eoe = False
    line = m.start() + 1
    for _ in range(PAIR_MAX_LINES):
        nl = find(b"\n", line)
        space = find(b" ", line, line + 32)
        if nl < 0 or space < 0 or not starts(b"type=", line):
            return None
        kind = buf[line + 5 : space]
        if a_open and starts(tag_a, space):
            lines_a.append(buf[line : nl + 1])
            a_open = kind != b"PROCTITLE"
        elif (
            not a_eoe
            and kind == b"EOE"
            and starts(tag_a, space)
            and _plain_eoe(buf, space, nl, tag_a)
        ):
            # A's EOE once A is closed: pushed, the assembler absorbs it (A is done),
            # so only the line and record counts see it, and they count every line.
            a_eoe = True
        elif tag_b and starts(tag_b, space):
            lines_b.append(buf[line : nl + 1])
            if kind == b"PROCTITLE":
                if a_open:
                    return None  # B ends first: the reference completes it first
                return b"\n" + b"".join(lines_a), b"\n" + b"".join(lines_b), nl + 1
        elif not tag_b and kind == b"SYSCALL":
            head = SYSCALL_HEAD.match(buf, line - 1)
            if head is None:
                return None
            tag_b = b" msg=audit(" + head.group("id") + b"):"
            lines_b.append(buf[line : nl + 1])
        else:
            return None
        line = nl + 1
    return None


def execve_bodies(lines: bytes, event_id: bytes) -> bytes:
    """The bodies of a run's EXECVE lines as :func:`parse_record` gives them, one a line.

    Each body is the text after the record header, cut at the ENRICHED separator and
    stripped of spaces (a trailing carriage return dropped first): what
    :func:`argv_of_execve_bodies` decodes exactly as the reference reads the records, and
    what the process table stores and counts (the native table stores the same bytes).
    ``lines`` are the run's EXECVE lines, each with its newline.
    """
    header = b"type=EXECVE msg=audit(" + event_id + b"): "
    cut = len(header)
    # One EXECVE record in the kernel's own layout (the usual): a few C-level calls.
    bodies = lines[cut:-1]
    if (
        lines.startswith(header)
        and lines[-2] != 0x20
        and b"\n" not in bodies
        and b"\x1d" not in bodies
        and b"\r" not in bodies
    ):
        return bodies.lstrip(b" ")
    # Several records (a long argument in pieces) or odd ones: line by line, each step
    # O(1) or one copy (a search for a short needle in a long line costs more).
    cut -= 1
    out = []
    for line in lines[:-1].split(b"\n"):
        rest = line[cut:]
        if rest.endswith(b"\r"):
            rest = rest[:-1]
        out.append(rest.partition(b"\x1d")[0].strip(b" "))
    return b"\n".join(out)


_INODE_SEARCHES: dict[tuple[tuple[int, str], ...], re.Pattern[bytes]] = {}


def inode_search(items: tuple[tuple[int, str], ...]) -> re.Pattern[bytes]:
    """A search for an ``inode=`` value that may read as the inode of one of ``items``.

    ``items`` are ``(inode, dev)`` pairs, as a detection learns them; keyed by the
    tuple itself, the cache costs a caller one C-level ``tuple()`` per event. The
    search finds one of the inodes in plain digits (leading zeros allowed), or any
    value that ``int()`` could read some other way (a sign, an underscore, a space): a
    superset of what :func:`path_inodes` would find, in one C-level search.
    """
    pattern = _INODE_SEARCHES.get(items)
    if pattern is None:
        digits = b"|".join(b"%d" % abs(i) for i in sorted({i for i, _ in items}))
        pattern = re.compile(
            rb"inode=(?:0*(?:" + digits + rb")(?=[ \n\x1d])|[^ \n\x1d]*[^0-9 \n\x1d])"
        )
        if len(_INODE_SEARCHES) >= 256:
            _INODE_SEARCHES.clear()
        _INODE_SEARCHES[items] = pattern
    return pattern


_INODE = re.compile(rb"inode=([^ \n\x1d]*)")


def path_inodes(run: bytes) -> frozenset[int]:
    """Every ``inode=`` value of a run that reads as a number: a superset of its PATH inodes."""
    found = set()
    for raw in _INODE.findall(run):
        try:
            found.add(int(raw))
        except ValueError:
            continue
    return frozenset(found)


_SYSCALLS: dict[bytes, str] = {}


def syscall_of(call: bytes) -> str:
    """The syscall name of an ``arch=X syscall=N`` text, as the reference path names it."""
    name = _SYSCALLS.get(call)
    if name is None:
        arch_part, _, number_part = call.partition(b" ")
        arch = arch_part[5:].decode("ascii")
        number = int(number_part[8:])
        name = syscall_name(arch, number) or f"syscall_{number}"
        if len(_SYSCALLS) < 4096:
            _SYSCALLS[call] = name
    return name


def records_of(
    run: bytes, line_no: int, event_id: EventId | None = None
) -> tuple[AuditRecord, ...]:
    """Parse every line of a matched run into records (line numbers from ``line_no``).

    Every line of a run is a record by construction, so no :class:`ParseIssue` arises.
    ``event_id``: the run's id (its ``SYSCALL_HEAD`` match's); every line's header is
    then ``type=TYPE msg=audit(ID):`` with that very id (:func:`run_end` checked it), so
    only the type is read from each, without the header's regular expression.
    """
    lines = run[:-1].split(b"\n")
    if event_id is None:
        records: list[AuditRecord] = []
        for offset, line in enumerate(lines):
            record = parse_record(line, line_no + offset)
            assert isinstance(record, AuditRecord), "EVENT_RUN accepted a line that is no record"
            records.append(record)
        return tuple(records)
    head = lines[0]
    # The header's length after the type: " msg=audit(" + id + "):".
    after_type = head.find(b"):", 14) + 2 - head.find(b" ", 5)
    types = _RUN_TYPES
    out = []
    for line in lines:
        space = line.find(b" ", 5)
        rtype = types.get(line[5:space]) or _run_type(line[5:space])
        rest = line[space + after_type :]
        if rest.endswith(b"\r"):
            rest = rest[:-1]
        body, _, enriched = rest.partition(b"\x1d")
        out.append(AuditRecord(None, rtype, event_id, body.strip(b" "), enriched, line_no))
        line_no += 1
    return tuple(out)


# The record types of runs (MIDDLE_TYPES and the three others) as text.
_RUN_TYPES: dict[bytes, str] = {}


def _run_type(raw: bytes) -> str:
    name = raw.decode("ascii")
    if len(_RUN_TYPES) < 64:
        _RUN_TYPES[raw] = name
    return name


def argv_of_execve_bodies(raw: bytes) -> tuple[bytes, ...] | None:
    """argv from EXECVE record bodies joined by newlines (which bodies never hold).

    ``b""`` is one record with an empty body: an empty argv, as the full parse reads it.
    """
    whole = whole_argv(raw)
    if whole is not None:
        return whole
    whole = split_argv(raw)
    if whole is not None:
        return whole
    argv, _, _ = argv_from_execve([parse_fields(body)[0] for body in raw.split(b"\n")])
    return tuple(argv)


def whole_argv(raw: bytes) -> tuple[bytes, ...] | None:
    """:func:`argv_of_execve_bodies` of one EXECVE body in the kernel's plainest form
    (``argc=N`` and then arguments ``a0`` to ``aN-1`` in order, each written whole, quoted
    or in upper-case hex), read in two C-level passes; ``None`` for any other body.

    Most execs are written so: the field-by-field reading (``parse_fields``,
    ``argv_from_execve``) costs a long command line hundreds of microseconds. Most of
    them have every argument quoted: such a body, split at its quotes, is its arguments
    between the field names ``argc=N a0=``, `` a1=``, ... (compared at once), with
    nothing after the last quote: one split, one comparison, no regex.
    """
    parts = raw.split(b'"')
    count = len(parts) >> 1
    if (
        0 < count <= len(_SEPARATORS)
        and not parts[-1]
        and len(parts) == 2 * count + 1
        and parts[0] == b"argc=%d a0=" % count
        and parts[2:-1:2] == _SEPARATORS[1:count]
        and b"\n" not in raw
    ):
        return tuple(parts[1::2])
    m = _WHOLE_ARGV.fullmatch(raw)
    if m is None:
        return None
    found = _WHOLE_ARG.findall(raw, m.end(1))
    count = len(found)
    if int(m[1]) != count or count > MAX_ARGS:
        return None
    if not count:
        return ()
    # Columns, compared and joined by C-level calls, not a Python step per argument (a
    # build's linker line has hundreds).
    indices, quoted, hexed = zip(*found, strict=True)
    if (count > len(_INDICES) or indices != _INDICES[:count]) and any(
        int(index) != position for position, index in enumerate(indices)
    ):
        return None
    if not any(hexed):
        return quoted  # every argument quoted (an empty one too: its hex is empty)
    return tuple([text or unhexlify(code) for text, code in zip(quoted, hexed, strict=True)])


def split_argv(raw: bytes) -> tuple[bytes, ...] | None:
    """:func:`argv_of_execve_bodies` of EXECVE bodies in the kernel's form for long
    arguments: ``argc=N``, then arguments ``a0`` to ``aN-1`` in order, each written whole
    (quoted or upper-case hex) or in pieces (``aI_len=L aI[0]=... aI[1]=...``, in order,
    all quoted or all hex), fields a space or a record apart; ``None`` for any other
    bodies (pieces mixing the two forms among them, hex of an odd length).

    A JVM's class path (tens of KB) comes so, over several records: read field by field
    (``parse_fields``, ``argv_from_execve``) it cost about 0.5 ms. Here one C-level match
    checks the form and one ``findall`` reads the fields; Python steps once per field.
    """
    m = _SPLIT_ARGV.fullmatch(raw)
    if m is None:
        return None
    count = int(m[1])
    if count > MAX_ARGS:
        return None
    argv: list[bytes] = []
    pieces: list[bytes] = []  # the pieces of the argument being read
    hexed = False  # whether they are hex
    for index, piece, text, code in _SPLIT_FIELD.findall(raw, m.end(1)):
        if pieces and (not piece or piece == b"0"):
            if not _take_joined(argv, pieces, hexed):
                return None
            pieces = []
        if int(index) != len(argv):  # arguments (and an argument's pieces) in order
            return None
        if not piece:
            if len(code) & 1:
                return None  # odd hex, which decodes as it is
            argv.append(text or unhexlify(code))
            continue
        if piece == b"0":
            hexed = bool(code)
        elif int(piece) != len(pieces) or hexed is not bool(code):
            return None  # a piece out of order (or the first missing), or mixed forms
        pieces.append(code or text)
    if pieces and not _take_joined(argv, pieces, hexed):
        return None
    return tuple(argv) if len(argv) == count else None


def _take_joined(argv: list[bytes], pieces: list[bytes], hexed: bool) -> bool:
    """Append the argument whose pieces (quoted texts, or hex) are ``pieces`` to ``argv``,
    as ``argv_from_execve`` decodes it (hex pieces joined, then decoded); ``False`` for
    hex of an odd length (which it keeps as it is)."""
    joined = b"".join(pieces)
    if hexed:
        if len(joined) & 1:
            return False
        joined = unhexlify(joined)
    argv.append(joined)
    return True


#: EXECVE bodies of :func:`split_argv`'s form (the indices not yet checked), and one
#: field of them after ``argc``: an argument's index, its piece's number (none for a
#: whole one), its quoted text, its hex. ``aI_len=L`` fields are passed over.
_SPLIT_VALUE = rb'(?:"[^"\n]*"|[0-9A-F]+)'
_SPLIT_ARGV = re.compile(
    rb"argc=([0-9]{1,9})(?:[ \n]a[0-9]{1,9}(?:=" + _SPLIT_VALUE + rb"|_len=[0-9]{1,9}"
    rb"(?:[ \n]a[0-9]{1,9}\[[0-9]{1,9}\]=" + _SPLIT_VALUE + rb")+))*"
)
_SPLIT_FIELD = re.compile(rb'[ \n]a([0-9]{1,9})(?:\[([0-9]{1,9})\])?=(?:"([^"\n]*)"|([0-9A-F]+))')


#: The first argument indices as the kernel writes them, in order, and what stands
#: between two quoted arguments (`` a1=`` before the second).
_INDICES = tuple(str(i).encode() for i in range(4096))
_SEPARATORS = [b" a%d=" % i for i in range(4096)]
#: An EXECVE body of :func:`whole_argv`'s form (the argument indices not yet checked), and
#: one argument of it: its index, its quoted text, its hex.
_WHOLE_ARGV = re.compile(rb'argc=([0-9]{1,9})(?: a[0-9]{1,9}=(?:"[^"\n]*"|(?:[0-9A-F]{2})+))*')
_WHOLE_ARG = re.compile(rb' a([0-9]{1,9})=(?:"([^"\n]*)"|((?:[0-9A-F]{2})+))')


_TYPE_FIELD = re.compile(rb"^(?:node=[^ \n]* )?type=([^ \n]+) ", re.MULTILINE)


def record_types(run: bytes) -> frozenset[str]:
    """The record types of a matched run."""
    return frozenset(t.decode("ascii", "replace") for t in _TYPE_FIELD.findall(run))
