"""``kexecwatch replay --per-host --jobs N``: each path is its own host.

Each host is replayed as its own stream, with its own detector and process
table, in up to N worker processes. Every host's output documents are sorted
by ``@timestamp`` (stable, so records of one time keep the host's own order)
and written to a private temporary file; the parent then merges the hosts by
``@timestamp``, then host name, then the host's own order. The output thus
depends neither on N nor on which worker finished first nor on the order of
the arguments.

Errors: a path that cannot be opened stops everything before any host runs. An
error met while a host is read (a broken gzip member, input with no audit
record) ends that host only; the other hosts finish and their output is
written, then each failed host is named on one line, and the exit code is 2.
"""

from __future__ import annotations

import heapq
import multiprocessing
import os
import signal
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TextIO

from kexecwatch.adapters.replay import format_document, replay, summary
from kexecwatch.adapters.sources import Source, expand_paths
from kexecwatch.core import DetectorOptions, Stats, escape_text
from kexecwatch.errors import InputError, KexecwatchError
from kexecwatch.native.choice import install

__all__ = [
    "Host",
    "HostResult",
    "RuleChoice",
    "host_name_of",
    "plan_hosts",
    "replay_hosts",
    "report",
    "total",
]


@dataclass(frozen=True, slots=True)
class Host:
    """One host of an investigation: its name and the sources of its one stream."""

    name: str
    path: str
    sources: tuple[Source, ...]


@dataclass(frozen=True, slots=True)
class RuleChoice:
    """The rule options, so that each worker process loads the same rules."""

    files: tuple[str, ...]
    builtin: bool
    ruleset: str
    #: Whether the rule cache is used (``--no-rule-cache``: false). The workers neither
    #: warn about it nor fail on it: a cache problem is said by a run without --per-host.
    cache: bool = True


@dataclass(slots=True)
class HostResult:
    """What replaying one host gave: counts, diagnostics, and where its output is.

    Attributes:
        keys: the ``@timestamp`` and byte length of each output line, in file order.
        stderr: the host's diagnostics, each line already naming the host.
        error: the one-line error that ended the host, if any.
    """

    name: str
    stats: Stats = field(default_factory=Stats)
    sources: int = 0
    bytes_read: int = 0
    keys: list[tuple[str, int]] = field(default_factory=list)
    stderr: str = ""
    error: str | None = None


def host_name_of(path: str) -> str:
    """The host name a path stands for: a directory's name; a file's name up to its
    first ``.log`` (``web-1.log.gz`` is ``web-1``), or without ``.gz``."""
    name = Path(os.path.abspath(path)).name or path
    if os.path.isdir(path):
        return name
    stem = name.removesuffix(".gz")
    return stem.split(".log", 1)[0] or stem


def plan_hosts(paths: Sequence[str]) -> list[Host]:
    """One :class:`Host` per path, sorted by name; every path is checked first.

    Raises:
        InputError: for ``-``, for a path that cannot be read (naming its host), and
            for two paths that give the same host name.
    """
    hosts: dict[str, Host] = {}
    for path in paths:
        if path == "-":
            raise InputError("--per-host cannot read standard input (-): give one path per host")
        name = host_name_of(path)
        try:
            sources = tuple(expand_paths([path]))
        except KexecwatchError as exc:
            raise InputError(f"host {escape_text(name)}: {exc}") from None
        if name in hosts:
            raise InputError(
                f"host name {escape_text(repr(name))} comes from both "
                f"{escape_text(hosts[name].path)} and {escape_text(path)}: "
                "give each host a path of its own name"
            )
        hosts[name] = Host(name, path, sources)
    return [hosts[name] for name in sorted(hosts)]


def _replay_host(
    host: Host, rules: RuleChoice, options: DetectorOptions, out_format: str, out_path: str
) -> HostResult:
    """Replay one host; its sorted output goes to ``out_path``.

    The rules are loaded afresh for each host: a detection keeps state (the kexec
    inodes it has seen), and what one host teaches it must not reach another.
    """
    import io

    from kexecwatch.rules import load_rules
    from kexecwatch.rules.cache import RuleCache, default_cache_dir

    documents: list[tuple[str, bytes]] = []
    err = io.StringIO()
    result = HostResult(host.name, sources=len(host.sources))

    def collect(doc: dict[str, Any]) -> None:
        documents.append((str(doc.get("@timestamp", "")), format_document(doc, out_format)))

    try:
        done = replay(
            host.sources,
            list(
                load_rules(
                    rules.files,
                    builtin=rules.builtin,
                    ruleset=rules.ruleset,
                    cache=RuleCache(default_cache_dir() if rules.cache else None),
                )
            ),
            host_name=host.name,
            options=options,
            out_format=out_format,
            stderr=err,
            sink=collect,
            label=f"host {escape_text(host.name)}: ",
        )
        result.stats, result.bytes_read = done.detector.stats, done.bytes_read
        problem = done.input_error()
        if problem is not None:
            result.error = str(problem)
    except KexecwatchError as exc:
        result.error = str(exc)
    documents.sort(key=lambda item: item[0])  # stable: the host's own order within one time
    with open(out_path, "wb") as out:
        for stamp, line in documents:
            out.write(line)
            result.keys.append((stamp, len(line)))
    result.stderr = err.getvalue()
    return result


def replay_hosts(
    hosts: Sequence[Host],
    rules: RuleChoice,
    *,
    jobs: int,
    options: DetectorOptions,
    out_format: str,
    stdout: Any,
) -> list[HostResult]:
    """Replay each host in up to ``jobs`` processes; write the merged output to the
    binary stream ``stdout``; return each host's result, in host-name order."""
    with tempfile.TemporaryDirectory(prefix="kexecwatch-replay-") as scratch:
        outputs = [os.path.join(scratch, f"{i}.out") for i in range(len(hosts))]
        work = [(h, rules, options, out_format, o) for h, o in zip(hosts, outputs, strict=True)]
        if jobs <= 1 or len(hosts) <= 1:
            results = [_replay_host(*item) for item in work]
        else:
            previous = signal.signal(signal.SIGTERM, _exit_on_signal)
            try:
                # Leaving the block (done, an error, Ctrl-C, SIGTERM) ends the workers.
                # The largest hosts first, so that no worker is left with a big one at the end.
                order = sorted(range(len(work)), key=lambda i: -_size(hosts[i]))
                with multiprocessing.Pool(min(jobs, len(hosts)), _worker_signals) as pool:
                    done = pool.starmap(_replay_host, [work[i] for i in order], chunksize=1)
                results = [done[order.index(i)] for i in range(len(work))]
            finally:
                signal.signal(signal.SIGTERM, previous)
        streams = [_lines(r, o) for r, o in zip(results, outputs, strict=True)]
        for *_, line in heapq.merge(*streams):
            stdout.write(line)
        stdout.flush()
    return results


def _size(host: Host) -> int:
    return sum(source.size or 0 for source in host.sources)


def _exit_on_signal(signum: int, _frame: object) -> None:
    """SIGTERM during a parallel replay: unwind, so that the workers and the scratch
    files go, then exit as the signal would have (128 + its number)."""
    raise SystemExit(128 + signum)


def _worker_signals() -> None:
    """In a worker: Ctrl-C is the parent's to handle (it ends the workers), and
    SIGTERM, which the parent sends to end one, ends it at once."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # The parent's scanner (KEXECWATCH_SCANNER, checked at its start), whatever the
    # start method of the workers.
    install()


def _lines(result: HostResult, path: str) -> Iterator[tuple[str, str, int, bytes]]:
    """A host's output lines with their merge key: time, host, the host's own order."""
    with open(path, "rb") as data:
        for seq, (stamp, length) in enumerate(result.keys):
            yield stamp, result.name, seq, data.read(length)


def total(results: Sequence[HostResult]) -> Stats:
    """The counts of all hosts together (the latest record time of any host)."""
    whole = Stats()
    for result in results:
        for f in fields(Stats):
            mine, theirs = getattr(whole, f.name), getattr(result.stats, f.name)
            merged = max(mine, theirs) if f.name == "last_time_ms" else mine + theirs
            setattr(whole, f.name, merged)
    return whole


def report(results: Sequence[HostResult], err: TextIO, *, quiet: bool, seconds: float) -> None:
    """Each host's diagnostics and summary, the total, then each failed host's error."""
    for r in results:
        err.write(r.stderr)
        if not quiet:
            counts = summary(r.stats, r.sources, r.bytes_read)
            err.write(f"kexecwatch: host {escape_text(r.name)}: {counts})\n")
    if not quiet:
        sources = sum(r.sources for r in results)
        read = sum(r.bytes_read for r in results)
        err.write(
            f"kexecwatch: {len(results)} hosts: {summary(total(results), sources, read)} "
            f"in {seconds:.2f} s)\n"
        )
    for r in results:
        if r.error is not None:
            err.write(f"kexecwatch: error: host {escape_text(r.name)}: {r.error}\n")
