"""Opening what ``replay`` is pointed at: files, ``-``, ``.gz`` and directories.

A directory means its ``audit.log*`` set, read oldest first as one stream:
``audit.log.N`` down to ``audit.log.1``, then ``audit.log`` (compressed
members such as ``audit.log.3.gz`` take their number's place). Other names in
the set (``audit.log-20261130`` from a date-stamped rotation) come first,
oldest modification time first.
"""

from __future__ import annotations

import gzip
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from kexecwatch.errors import InputError

__all__ = ["CHUNK_SIZE", "Source", "expand_paths", "read_chunks"]

CHUNK_SIZE = 1 << 18
_NUMBERED = re.compile(r"^audit\.log\.(\d+)(\.gz)?$")


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Source:
    """One input: a path, or ``-`` for standard input."""

    name: str
    size: int | None

    @property
    def is_stdin(self) -> bool:
        """Whether this is standard input."""
        return self.name == "-"


def expand_paths(paths: list[str]) -> list[Source]:
    """Turn command-line paths into an ordered list of sources.

    Raises:
        InputError: for a path that does not exist or cannot be read, or a
            directory with no ``audit.log*`` file.
    """
    sources: list[Source] = []
    for raw in paths or ["-"]:
        if raw == "-":
            sources.append(Source("-", None))
            continue
        path = Path(raw)
        if path.is_dir():
            members = _audit_set(path)
            if not members:
                raise InputError(f"{raw}: directory holds no audit.log* file")
            sources.extend(Source(str(m), m.stat().st_size) for m in members)
            continue
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise InputError(f"{raw}: no such file or directory") from None
        except OSError as exc:
            raise InputError(f"{raw}: {exc.strerror or exc}") from None
        if not os.access(path, os.R_OK):
            raise InputError(f"{raw}: permission denied")
        sources.append(Source(raw, size))
    return sources


def _audit_set(directory: Path) -> list[Path]:
    numbered: list[tuple[int, Path]] = []
    others: list[Path] = []
    current: list[Path] = []
    try:
        entries = list(directory.iterdir())
    except OSError as exc:
        raise InputError(f"{directory}: {exc.strerror or exc}") from None
    for entry in entries:
        name = entry.name
        if not name.startswith("audit.log") or not entry.is_file():
            continue
        if name == "audit.log":
            current.append(entry)
            continue
        match = _NUMBERED.match(name)
        if match:
            numbered.append((int(match.group(1)), entry))
        else:
            others.append(entry)
    others.sort(key=lambda p: (p.stat().st_mtime, p.name))
    numbered.sort(key=lambda item: -item[0])
    return others + [p for _, p in numbered] + current


def read_chunks(source: Source, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Yield the bytes of ``source`` in chunks, decompressing gzip transparently.

    Raises:
        InputError: when the file cannot be opened or is a broken gzip file.
    """
    stream: BinaryIO
    if source.is_stdin:
        stream = sys.stdin.buffer
        yield from _chunks(stream, chunk_size, source.name)
        return
    try:
        raw = open(source.name, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise InputError(f"{source.name}: {exc.strerror or exc}") from None
    with raw:
        magic = raw.read(2)
        raw.seek(0)
        if magic == b"\x1f\x8b":
            with gzip.GzipFile(fileobj=raw) as unzipped:
                yield from _chunks(unzipped, chunk_size, source.name)
        else:
            yield from _chunks(raw, chunk_size, source.name)


def _chunks(stream: _Readable, chunk_size: int, name: str) -> Iterator[bytes]:
    while True:
        try:
            data = stream.read(chunk_size)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise InputError(f"{name}: read failed: {exc}") from None
        if not data:
            return
        yield data
