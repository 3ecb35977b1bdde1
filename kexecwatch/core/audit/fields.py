"""Fields: splitting a record body into ``name=value`` pairs and decoding values.

Theory of operation: :func:`parse_fields` splits a body into a dict of raw
values, exactly as written (quotes kept), so that numbers, hex-encoded strings
and quoted strings can be told apart later by the reader that knows the field.
A nested ``msg='...'`` payload (user-space records) is flattened into the same
dict; its fields never overwrite the kernel's outer ones.

:func:`decode_untrusted` turns a value the kernel wrote with
``audit_log_n_untrustedstring()`` (comm, exe, cwd, names, args, proctitle, key)
into bytes: a quoted value is its content, an unquoted one is upper-case hex,
and ``(null)``/``(none)`` mean "no value".

Rule 1: never raise on input; problems are returned as strings beside the
fields, so one bad field never loses the record.
"""

from __future__ import annotations

import binascii
import re

__all__ = [
    "Fields",
    "argv_from_execve",
    "decode_untrusted",
    "decode_untrusted_text",
    "is_bound_problem",
    "parse_fields",
    "plain_fields",
]

#: Raw field values by name, as written (a quoted value keeps its quotes).
Fields = dict[str, bytes]

_NO_VALUE = frozenset((b"(null)", b"(none)"))
#: Empty arguments are not written, so argc may exceed the last index; an
#: execve's 2 MiB argument space holds at most about this many empty ones.
MAX_EMPTY_ARGS = 262_144
#: The most arguments an execve can pass: since Linux 4.18 argv and envp
#: together may fill at most 6 MiB (3/4 of the 8 MiB ``_STK_LIM``, however large
#: the stack limit), and each argument costs at least its NUL byte and an 8-byte
#: pointer. ``MAX_ARG_STRINGS`` (0x7FFFFFFF) never binds before this does.
MAX_ARGS = (6 << 20) // 9
#: Every problem that bounds the argument table starts so (see :func:`is_bound_problem`).
_BOUND = "argument table bounded: "


# A body that is only ``name=value`` tokens, read exactly as _split_into reads them: the
# atomic groups make the regex take each value the way the loop does (quoted up to the
# next quote, else up to the next space), so one C-level check says whether the loop
# would see anything odd (stray tokens, open quotes, msg='...' payloads).
_PLAIN_BODY = re.compile(rb'(?: *+(?>[^ ="\']*+)=(?>"[^"]*"|[^ "\'][^ \']*+|))*+ *+')
_PLAIN_FIELD = re.compile(rb' *+([^ ="\']*+)=("[^"]*"|[^ "\'][^ \']*+|)')


def parse_fields(body: bytes) -> tuple[Fields, list[str]]:
    """Split a record body into raw fields.

    Args:
        body: the bytes after the header (without the ENRICHED tail).

    Returns:
        ``(fields, problems)``: the raw values by name, and a list of short
        descriptions of anything that could not be split (stray tokens,
        unterminated quotes). Never raises.
    """
    plain = plain_fields(body)
    if plain is not None:
        return plain, []
    fields: Fields = {}
    problems: list[str] = []
    _split_into(body, fields, problems, nested=False)
    return fields, problems


def plain_fields(body: bytes) -> Fields | None:
    """:func:`parse_fields` of a body that is only ``name=value`` tokens (the usual
    case, read in C); ``None`` for any other body."""
    if _PLAIN_BODY.fullmatch(body):
        names = _NAMES
        return {names.get(n) or _name(n): v for n, v in _PLAIN_FIELD.findall(body)}
    return None


# Field names as text: a few dozen names recur in every record.
_NAMES: dict[bytes, str] = {}


def _name(raw: bytes) -> str:
    name = raw.decode("ascii", "replace")
    if len(_NAMES) < 4096:
        _NAMES[raw] = name
    return name


def _split_into(body: bytes, fields: Fields, problems: list[str], *, nested: bool) -> None:
    pos = 0
    end = len(body)
    while pos < end:
        while pos < end and body[pos] == 0x20:
            pos += 1
        if pos >= end:
            break
        eq = body.find(b"=", pos)
        space = body.find(b" ", pos)
        if eq < 0 or (0 <= space < eq):
            stop = end if space < 0 else space
            token = body[pos:stop]
            # auditd writes a few bare tokens (``USER_CMD ...: user pid=``);
            # they carry nothing a rule reads, but they are worth a note.
            if token not in (b":", b"'"):
                problems.append(f"stray token {token[:40]!r}")
            pos = stop
            continue
        name = body[pos:eq].decode("ascii", "replace")
        vstart = eq + 1
        if vstart < end and body[vstart] == 0x22:  # "quoted"
            close = body.find(b'"', vstart + 1)
            if close < 0:
                problems.append(f"unterminated quote in {name}")
                fields.setdefault(name, body[vstart:])
                return
            value = body[vstart : close + 1]
            pos = close + 1
        elif vstart < end and body[vstart] == 0x27 and name == "msg" and not nested:
            close = body.rfind(b"'")
            if close <= vstart:
                problems.append("unterminated msg='")
                close = end
            _split_into(body[vstart + 1 : close], fields, problems, nested=True)
            pos = close + 1
            continue
        else:
            stop = body.find(b" ", vstart)
            if stop < 0:
                stop = end
            value = body[vstart:stop]
            pos = stop
        if nested:
            fields.setdefault(name, value)
        else:
            fields[name] = value


def decode_untrusted(raw: bytes | None) -> bytes | None:
    """Decode a value written as an untrusted string.

    Returns the bytes of a quoted value, the bytes of an upper-case hex value,
    ``None`` for ``(null)``/``(none)``/absent, and the raw bytes of an
    unquoted value that is not valid hex (old kernels wrote ``a0=top``).
    """
    if raw is None or raw in _NO_VALUE:
        return None
    if raw.startswith(b'"'):
        return raw[1:-1] if raw.endswith(b'"') and len(raw) >= 2 else raw[1:]
    if len(raw) % 2 == 0:
        try:
            return binascii.unhexlify(raw)
        except (binascii.Error, ValueError):
            return raw
    return raw


def decode_untrusted_text(raw: bytes | None) -> str | None:
    """:func:`decode_untrusted`, then UTF-8 with ``surrogateescape`` (lossless)."""
    value = decode_untrusted(raw)
    return None if value is None else value.decode("utf-8", "surrogateescape")


def argv_from_execve(bodies: list[Fields]) -> tuple[list[bytes], int | None, list[str]]:
    """Rebuild argv from the fields of one event's EXECVE records.

    Arguments are placed by index, not by count: ``argc`` may exceed the
    number of ``aN`` fields when arguments are empty. A long argument comes as
    ``aN_len=L aN[0]=... aN[1]=...`` chunks, possibly spread over several
    records; the chunks are joined first and decoded as a whole (the kernel
    may switch a split argument to hex).

    Args:
        bodies: the split fields of each EXECVE record, in log order.

    Returns:
        ``(argv, argc, problems)``. ``argc`` is the raw count, when written.
    """
    problems: list[str] = []
    argc: int | None = None
    for fields in bodies:
        raw_argc = fields.get("argc")
        if raw_argc is not None:
            try:
                argc = int(raw_argc)
            except ValueError:
                problems.append("bad argc")
    limit = MAX_ARGS
    if argc is not None and 0 <= argc <= MAX_ARGS:
        limit = argc
    elif argc is not None:
        problems.append(f"{_BOUND}argc={argc} is outside the kernel's range 0 to {MAX_ARGS}")
    whole: dict[int, bytes] = {}
    chunks: dict[int, dict[int, bytes]] = {}
    dropped: list[str] = []
    for fields in bodies:
        for name, value in fields.items():
            if not name.startswith("a") or name == "argc":
                continue
            index_part, bracket, rest = name[1:].partition("[")
            if not (index_part.isascii() and index_part.isdigit()):
                continue
            # More digits than MAX_ARGS has are beyond any bound (and int() of
            # thousands of digits is slow, or raises).
            index = int(index_part) if len(index_part) <= 9 else MAX_ARGS
            if index >= limit:
                dropped.append(name)
            elif bracket:
                chunk_no = rest[:-1]
                if rest.endswith("]") and chunk_no.isascii() and chunk_no.isdigit():
                    chunks.setdefault(index, {})[int(chunk_no[:12])] = value
                else:
                    problems.append(f"bad argument chunk name {name[:40]}")
            else:
                whole[index] = value
    if dropped:
        bound = f"argc={argc}" if limit == argc else f"the kernel's limit of {MAX_ARGS}"
        problems.append(
            f"{_BOUND}{len(dropped)} argument fields beyond {bound} dropped"
            f" (first {dropped[0][:40]})"
        )
    for index, parts in chunks.items():
        joined = b"".join(_chunk_body(parts[n]) for n in sorted(parts))
        quoted = all(v.startswith(b'"') for v in parts.values())
        whole[index] = b'"' + joined + b'"' if quoted else joined
        expected = list(range(len(parts)))
        if sorted(parts) != expected:
            problems.append(f"argument a{index} is missing chunks")
    present = (max(whole) + 1) if whole else 0
    count = max(limit if limit == argc else 0, present)
    if count > present + MAX_EMPTY_ARGS:
        problems.append(f"argc={argc} is far beyond the arguments present; not padded")
        count = present
    argv: list[bytes] = []
    for index in range(count):
        written = whole.get(index)
        decoded = decode_untrusted(written) if written is not None else b""
        argv.append(decoded if decoded is not None else b"")
    return argv, argc, problems


def is_bound_problem(problem: str) -> bool:
    """Whether a problem of :func:`argv_from_execve` dropped fields to bound the table.

    Those are parse issues: the record claimed more than an execve can pass.
    """
    return problem.startswith(_BOUND)


def _chunk_body(value: bytes) -> bytes:
    if value.startswith(b'"') and value.endswith(b'"') and len(value) >= 2:
        return value[1:-1]
    return value
