"""The ctypes binding of ``libkexecwatch_native.so`` (the Rust crate in ``native/``).

Theory of operation: the library keeps, per :class:`NativeSession`, one detector's
process table (the rules of :mod:`kexecwatch.core.process.table`, stated there once) and
its verdict cache, and scans stretches of the audit log where the Python assembler is
quiet, taking only the events whose effect it reproduces exactly and handing the rest
back (:meth:`NativeSession.scan`). The values it exchanges (``QuietState``,
``ScanResult``, ``RawEntry``) are those of :mod:`kexecwatch.core.audit.nativeapi`, whose
Protocols this module implements. It turns Python values into the C ABI's
and back: table entries travel in a small wire form (``native/src/entry.rs``), scan
results come back in buffers the session owns, copied here before the next call.

Rule 1: no native failure escapes as anything but :class:`NativeError` (a caught
panic, a refused argument) or, when loading, :class:`NativeUnavailable`; both carry a
one-line reason.
Rule 2: a value the library cannot hold (an integer beyond its range) is refused
with :class:`NativeError`, or, where there is an exact answer without the library
(no such entry; nothing to scan), answered here.
"""

from __future__ import annotations

import _thread  # its allocate_lock is threading.Lock, without loading threading
import ctypes
import struct
from array import array
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Final

from kexecwatch.core import (
    STOP_END,
    STOP_HANDBACK,
    STOP_LIVE,
    STOP_VERDICT,
    NeedleBytes,
    QuietState,
    RawEntry,
    ScanResult,
)

__all__ = [
    "ABI_VERSION",
    "STOP_END",
    "STOP_HANDBACK",
    "STOP_LIVE",
    "STOP_VERDICT",
    "NativeError",
    "NativeLib",
    "NativeSession",
    "NativeUnavailable",
    "QuietState",
    "RawEntry",
    "ScanResult",
    "library_path",
    "load",
]

#: The C ABI this binding speaks (``kw_abi_version``); any other library is refused.
ABI_VERSION: Final = 10
LIBRARY_NAME: Final = "libkexecwatch_native.so"

# A RawEntry (core.nativeapi) as the native table holds it: ``comm_raw``/``exe_raw`` say
# the value is as written in the SYSCALL record (Python decodes it); ``args`` are raw
# EXECVE bodies joined by newlines, a decoded argv, or unknown; ``extra`` is opaque (the
# scan stores the SYSCALL record's text from ``auid=`` up to, not including, `` comm=``).

# Wire form of an entry (native/src/entry.rs): three i128 as (low u64, high i64),
# flags, six segment lengths, then the segments.
_HEADER: Final = struct.Struct("<QqQqQqI6I")
_LENGTH: Final = struct.Struct("<I")
#: A segment of ``kw_table_state``'s output: its tag, then its length.
_SEGMENT: Final = struct.Struct("<BI")
_SEGMENT_JSON: Final = 0
_HAS_PPID: Final = 1
_HAS_COMM: Final = 2
_COMM_RAW: Final = 4
_HAS_EXE: Final = 8
_EXE_RAW: Final = 16
_HAS_ARGS: Final = 32
_ARGS_ARGV: Final = 64
_HAS_EXEC_ID: Final = 128
_HAS_EXTRA: Final = 256
_LOW: Final = (1 << 64) - 1
_I64_MIN: Final = -(1 << 63)
_I64_MAX: Final = (1 << 63) - 1
_I128_MIN: Final = -(1 << 127)
_I128_MAX: Final = (1 << 127) - 1
_U64_MAX: Final = (1 << 64) - 1
#: The most entries a session keeps decoded (NativeSession._entry).
_MAX_DECODED: Final = 1024
#: The entry sources the table names, as their wire bytes.
_SOURCES: Final = {"event": b"event", "procfs": b"procfs"}

#: ``kw_set_verdict_needles`` flags: the verdict is plain; every plain reads bit.
_NEEDLES_PLAIN: Final = 2
_PLAIN_READS: Final = 31

_CONFIG_LATENESS: Final = 1
_CONFIG_SINCE: Final = 2
_CONFIG_UNTIL: Final = 4
_CONFIG_LIVE: Final = 8
_CONFIG_FAULT: Final = 16


_ERRORS: Final = {-1: "no live session", -2: "argument refused", -3: "native panic"}


class NativeUnavailable(Exception):
    """The native library cannot be used; ``str(exc)`` is the one-line reason."""


class NativeError(RuntimeError):
    """A native call failed (a caught panic, a refused argument); one-line reason."""


class _Config(ctypes.Structure):
    _fields_ = (
        ("size", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("window_ms", ctypes.c_int64),
        ("max_entries", ctypes.c_uint64),
        ("max_args_bytes", ctypes.c_uint64),
        ("max_lateness_ms", ctypes.c_int64),
        ("since_ms", ctypes.c_int64),
        ("until_ms", ctypes.c_int64),
        ("max_inflight", ctypes.c_int64),
    )


class _State(ctypes.Structure):
    _fields_ = (
        ("present", ctypes.c_int64),
        ("elapsed", ctypes.c_int64),
        ("expected", ctypes.c_int64),
        ("last_time_ms", ctypes.c_int64),
        ("done_ceiling", ctypes.c_int64),
    )


class _ScanOut(ctypes.Structure):
    _fields_ = (
        ("end", ctypes.c_uint64),
        ("stop", ctypes.c_int32),
        ("reserved", ctypes.c_int32),
        ("ppid", ctypes.c_int64),
        ("time_ms", ctypes.c_int64),
        ("lines", ctypes.c_uint64),
        ("records", ctypes.c_uint64),
        ("events", ctypes.c_uint64),
        ("process_events", ctypes.c_uint64),
        ("last_time_ms", ctypes.c_int64),
        ("state", _State),
        ("key", ctypes.c_void_p),
        ("key_len", ctypes.c_size_t),
        ("done", ctypes.c_void_p),
        ("done_rows", ctypes.c_size_t),
        ("lost", ctypes.c_void_p),
        ("lost_rows", ctypes.c_size_t),
        ("ahead", ctypes.c_void_p),
        ("ahead_rows", ctypes.c_size_t),
        ("done_kept", ctypes.c_uint64),
        ("ahead_gone", ctypes.c_void_p),
        ("ahead_gone_len", ctypes.c_size_t),
        ("ahead_added", ctypes.c_void_p),
        ("ahead_added_rows", ctypes.c_size_t),
        ("leads", ctypes.c_void_p),
        ("leads_rows", ctypes.c_size_t),
    )


_SCAN_AHEAD_KEPT: Final = 1
_SCAN_AHEAD_HOLD: Final = 2


def library_path() -> Path:
    """Where the library is looked for: beside this module."""
    return Path(__file__).resolve().parent / LIBRARY_NAME


_I64 = ctypes.c_int64
_U64 = ctypes.c_uint64
_SIZE = ctypes.c_size_t
_PTR = ctypes.c_void_p
_OUT_PTR = ctypes.POINTER(ctypes.c_void_p)
_OUT_SIZE = ctypes.POINTER(ctypes.c_size_t)
_OUT_U64 = ctypes.POINTER(ctypes.c_uint64)
_OUT_U8 = ctypes.POINTER(ctypes.c_uint8)

_SIGNATURES: Final[dict[str, tuple[object, ...]]] = {
    "kw_session_new": (
        ctypes.POINTER(_Config),
        ctypes.c_char_p,
        _SIZE,
        ctypes.c_char_p,
        _SIZE,
        ctypes.POINTER(ctypes.c_void_p),
    ),
    "kw_session_free": (_PTR,),
    "kw_table_len": (_PTR, _OUT_U64),
    "kw_table_args_bytes": (_PTR, _OUT_U64),
    "kw_table_contains": (_PTR, _U64, _I64, _OUT_U8),
    "kw_table_entry_at": (_PTR, _U64, _I64, _U64, _I64, _OUT_PTR, _OUT_SIZE),
    "kw_table_latest": (_PTR, _U64, _I64, _OUT_PTR, _OUT_SIZE),
    "kw_table_store": (_PTR, ctypes.c_char_p, _SIZE),
    "kw_table_rows": (_PTR, _U64, _OUT_PTR, _OUT_SIZE, _OUT_U64),
    "kw_table_state": (_PTR, _U64, _OUT_PTR, _OUT_SIZE),
    "kw_table_mark_unreadable": (_PTR, _U64, _I64),
    "kw_table_is_unreadable": (_PTR, _U64, _I64, _OUT_U8),
    "kw_set_verdict": (_PTR, ctypes.c_char_p, _SIZE, ctypes.c_uint32),
    "kw_set_verdict_needles": (
        _PTR,
        ctypes.c_char_p,
        _SIZE,
        ctypes.c_uint32,
        _PTR,
        _SIZE,
        ctypes.c_uint32,
    ),
    "kw_set_verdict_tests": (_PTR, ctypes.c_char_p, _SIZE, _PTR, _SIZE),
    "kw_set_verdict_guards": (_PTR, ctypes.c_char_p, _SIZE, ctypes.c_uint32, _U64),
    "kw_alive_answer": (_PTR, _U64, _OUT_U8),
    "kw_plain_learned": (_PTR, _OUT_U8),
    "kw_plain_len": (_PTR, _OUT_U64, _OUT_U64),
    "kw_set_needles": (_PTR, ctypes.c_char_p, _SIZE),
    "kw_clear_verdicts": (_PTR,),
    "kw_set_inodes": (_PTR, _PTR, _SIZE),
    "kw_scan": (
        _PTR,
        ctypes.c_char_p,
        _SIZE,
        _U64,
        ctypes.POINTER(_State),
        _PTR,
        _SIZE,
        ctypes.c_uint32,
        _I64,
        ctypes.POINTER(_ScanOut),
    ),
    "kw_done_keep": (_PTR, ctypes.c_int),
    "kw_ahead_pull": (_PTR, _OUT_PTR, _OUT_SIZE, _OUT_PTR, _OUT_SIZE),
    "kw_done_len": (_PTR, _OUT_U64),
    "kw_done_contains": (_PTR, _I64, _I64, _I64, _OUT_U8),
    "kw_done_drop": (_PTR, _U64, _U64, _I64, _OUT_U64, ctypes.POINTER(_I64)),
    "kw_done_rows": (_PTR, _U64, _U64, _OUT_PTR, _OUT_SIZE),
    "kw_done_max_serial": (_PTR, _I64, _PTR, _SIZE, ctypes.POINTER(_I64)),
    "kw_selftest_panic": (),
    "kw_render_config": (_PTR, ctypes.c_char_p, _SIZE, ctypes.c_char_p, _SIZE),
    "kw_render_on": (_PTR, ctypes.c_int),
    "kw_render_set": (_PTR, ctypes.c_char_p, _SIZE, ctypes.c_char_p, _SIZE, ctypes.c_int),
    "kw_render_clear": (_PTR,),
    "kw_render_lines": (_PTR, _OUT_PTR, _OUT_SIZE),
}

_LOADED: dict[Path, NativeLib] = {}
_LOAD_LOCK = _thread.allocate_lock()


def load(path: Path | None = None) -> NativeLib:
    """Load the library (default :func:`library_path`) and check its ABI version.

    Raises:
        NativeUnavailable: the file is missing, cannot be loaded, lacks a function,
            or speaks another ABI version.
    """
    where = (path or library_path()).resolve()
    with _LOAD_LOCK:
        known = _LOADED.get(where)
        if known is None:
            known = _LOADED[where] = NativeLib(where)
        return known


def _one_line(text: str) -> str:
    return " ".join(text.split())


class NativeLib:
    """The loaded library; make sessions with :meth:`new_session`.

    Args:
        path: the shared library file.

    Raises:
        NativeUnavailable: see :func:`load` (use that, which shares loaded libraries).
    """

    version: str

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise NativeUnavailable(f"native library {path} not found")
        try:
            cdll = ctypes.CDLL(str(path))
        except OSError as exc:
            raise NativeUnavailable(
                f"native library {path} cannot be loaded: {_one_line(str(exc))}"
            ) from None
        try:
            cdll.kw_abi_version.restype = ctypes.c_uint32
            cdll.kw_abi_version.argtypes = ()
            abi = int(cdll.kw_abi_version())
            if abi != ABI_VERSION:
                raise NativeUnavailable(
                    f"native library {path} speaks ABI {abi}, this kexecwatch needs {ABI_VERSION}"
                )
            cdll.kw_crate_version.restype = ctypes.c_char_p
            cdll.kw_crate_version.argtypes = ()
            cdll.kw_last_error.restype = ctypes.c_size_t
            cdll.kw_last_error.argtypes = (ctypes.c_char_p, ctypes.c_size_t)
            for name, argtypes in _SIGNATURES.items():
                function = getattr(cdll, name)
                function.restype = ctypes.c_int
                function.argtypes = argtypes
        except AttributeError as exc:
            raise NativeUnavailable(
                f"native library {path} lacks a function: {_one_line(str(exc))}"
            ) from None
        version = cdll.kw_crate_version()
        self.version = version.decode("ascii", "replace") if isinstance(version, bytes) else "?"
        self.path = path
        self._cdll = cdll

    def __repr__(self) -> str:
        return f"NativeLib({str(self.path)!r}, version={self.version!r})"

    def call(self, name: str, *args: object) -> None:
        """Call ``name``; a non-zero return becomes :class:`NativeError`."""
        code = int(getattr(self._cdll, name)(*args))
        if code != 0:
            raise NativeError(f"{name}: {self.last_error() or _ERRORS.get(code, code)}")

    def function(self, name: str) -> Callable[..., int]:
        """The library's function ``name`` (its ctypes signature set)."""
        function: Callable[..., int] = getattr(self._cdll, name)
        return function

    def last_error(self) -> str:
        """This thread's last native error message (one line)."""
        buffer = ctypes.create_string_buffer(512)
        size = int(self._cdll.kw_last_error(buffer, len(buffer)))
        return _one_line(buffer.raw[: min(size, len(buffer))].decode("utf-8", "replace"))

    def new_session(
        self,
        *,
        window_ms: int,
        max_entries: int,
        max_args_bytes: int,
        max_lateness_ms: int | None,
        since_ms: int | None,
        until_ms: int | None,
        live: bool,
        single_types: Iterable[str],
        fault_on: bytes | None,
        max_inflight: int = 4096,
    ) -> NativeSession:
        """A session with an empty process table.

        Args:
            window_ms: the assembler's window (also the table's lateness, usually).
            max_entries: ``ProcessTable.max_entries``.
            max_args_bytes: ``ProcessTable.max_args_bytes``.
            max_lateness_ms: ``ProcessTable``'s lateness; ``None``: unbounded.
            since_ms: the detector's ``since_ms`` (relevance), or ``None``.
            until_ms: the detector's ``until_ms``, or ``None``.
            live: live mode: stop (LIVE) at an exec whose parent is not known.
            single_types: the record types that are single-record events the scan
                may take (neither telemetry nor daemon records).
            fault_on: the detector's ``fault_on`` test hook: runs holding it are
                handed back.
            max_inflight: the assembler's ``max_inflight`` (interleaved pairs are
                taken only with room for two).

        Raises:
            NativeError: an argument the library refuses (a negative window).
        """
        names = sorted(set(single_types))
        if any("\n" in name for name in names):
            raise NativeError("new_session: a record type name holds a newline")
        types = "\n".join(names).encode("utf-8", "surrogateescape")
        flags = _CONFIG_LIVE if live else 0
        config = _Config()
        config.size = ctypes.sizeof(_Config)
        config.window_ms = _clamp(window_ms)
        config.max_entries = min(max(max_entries, 0), _U64_MAX)
        config.max_args_bytes = min(max(max_args_bytes, 0), _U64_MAX)
        config.max_inflight = _clamp(max_inflight)
        if max_lateness_ms is not None:
            flags |= _CONFIG_LATENESS
            config.max_lateness_ms = _clamp(max_lateness_ms)
        if since_ms is not None:
            flags |= _CONFIG_SINCE
            config.since_ms = _clamp(since_ms)
        if until_ms is not None:
            flags |= _CONFIG_UNTIL
            config.until_ms = _clamp(until_ms)
        if fault_on is not None:
            flags |= _CONFIG_FAULT
        config.flags = flags
        handle = ctypes.c_void_p()
        fault = fault_on or b""
        self.call(
            "kw_session_new",
            ctypes.byref(config),
            types,
            len(types),
            fault,
            len(fault),
            ctypes.byref(handle),
        )
        if not handle.value:  # pragma: no cover - the library reports this itself
            raise NativeError("kw_session_new: no session returned")
        return NativeSession(self, handle.value)


def _clamp(value: int) -> int:
    # Times and sizes beyond i64 compare the same as its bounds against anything a
    # scan takes (event times stay below year 10000).
    return min(max(value, _I64_MIN), _I64_MAX)


def _halves(value: int) -> tuple[int, int]:
    return value & _LOW, value >> 64


def _encode(entry: RawEntry) -> bytes:
    pid, ppid, comm, comm_raw, exe, exe_raw, args, since_ms, exec_id, source, extra = entry
    # Python stores an entry for nearly every run it reads while the native session
    # hands runs back (many rules): one pack and one join, no per-field helpers.
    parent = 0 if ppid is None else ppid
    if not (
        _I128_MIN <= pid <= _I128_MAX
        and _I128_MIN <= since_ms <= _I128_MAX
        and _I128_MIN <= parent <= _I128_MAX
    ):
        bad = next(n for n in (pid, since_ms, parent) if not _I128_MIN <= n <= _I128_MAX)
        raise NativeError(f"table_store: {bad} is beyond what the table holds")
    flags = 0 if ppid is None else _HAS_PPID
    if comm is None:
        comm = b""
    else:
        flags |= _HAS_COMM | (_COMM_RAW if comm_raw else 0)
    if exe is None:
        exe = b""
    else:
        flags |= _HAS_EXE | (_EXE_RAW if exe_raw else 0)
    if isinstance(args, bytes):
        flags |= _HAS_ARGS
        args_data = args
    elif args is not None:
        flags |= _HAS_ARGS | _ARGS_ARGV
        args_data = b"".join(_LENGTH.pack(len(item)) + item for item in args)
    else:
        args_data = b""
    exec_data = b""
    if exec_id is not None:
        flags |= _HAS_EXEC_ID
        exec_data = exec_id.encode("utf-8", "surrogateescape")
    if extra is None:
        extra = b""
    else:
        flags |= _HAS_EXTRA
    source_data = _SOURCES.get(source) or source.encode("utf-8", "surrogateescape")
    try:
        header = _HEADER.pack(
            pid & _LOW,
            pid >> 64,
            parent & _LOW,
            parent >> 64,
            since_ms & _LOW,
            since_ms >> 64,
            flags,
            len(comm),
            len(exe),
            len(args_data),
            len(exec_data),
            len(extra),
            len(source_data),
        )
    except struct.error as exc:
        raise NativeError(f"table_store: entry refused: {exc}") from None
    return b"".join((header, comm, exe, args_data, exec_data, extra, source_data))


def _decode(data: bytes, offset: int = 0) -> tuple[RawEntry, int]:
    (pid_lo, pid_hi, ppid_lo, ppid_hi, since_lo, since_hi, flags, *lengths) = _HEADER.unpack_from(
        data, offset
    )
    at = offset + _HEADER.size
    segments = []
    for length in lengths:
        segments.append(data[at : at + length])
        at += length
    comm, exe, args_data, exec_data, extra, source = segments
    args: bytes | tuple[bytes, ...] | None = None
    if flags & _ARGS_ARGV:
        items = []
        pos = 0
        while pos < len(args_data):
            (length,) = _LENGTH.unpack_from(args_data, pos)
            items.append(args_data[pos + 4 : pos + 4 + length])
            pos += 4 + length
        args = tuple(items)
    elif flags & _HAS_ARGS:
        args = args_data
    entry: RawEntry = (
        (pid_hi << 64) | pid_lo,
        (ppid_hi << 64) | ppid_lo if flags & _HAS_PPID else None,
        comm if flags & _HAS_COMM else None,
        bool(flags & _COMM_RAW),
        exe if flags & _HAS_EXE else None,
        bool(flags & _EXE_RAW),
        args,
        (since_hi << 64) | since_lo,
        exec_data.decode("utf-8", "surrogateescape") if flags & _HAS_EXEC_ID else None,
        source.decode("utf-8", "surrogateescape"),
        extra if flags & _HAS_EXTRA else None,
    )
    return entry, at


def _rows(address: int | None, rows: int, width: int) -> array[int]:
    values = array("q")
    if rows and address:
        values.frombytes(ctypes.string_at(address, rows * width * 8))
    return values


class NativeSession:
    """One detector's native state: its process table, verdicts, inodes, and scans.

    The table keeps :class:`~kexecwatch.core.process.table.ProcessTable`'s rules exactly (LRU
    order with parents kept fresh, two previous entries of history, ``max_entries``,
    ``max_args_bytes`` counted as ``_size()`` does, the lateness walk, the unreadable FIFO
    of 4096): stated once in :mod:`kexecwatch.core.process.table`, implemented natively in
    ``native/src/table.rs``.

    Made by :meth:`NativeLib.new_session`. Calls are serialised by a lock; results
    are copied out before the lock is released. :meth:`close` frees it (also on
    garbage collection); any call after that raises :class:`NativeError`.
    """

    def __init__(self, lib: NativeLib, handle: int) -> None:
        self._lib = lib
        self._handle: int | None = handle
        self._lock = _thread.allocate_lock()
        # The entries _entry decoded lately, by their wire form.
        self._decoded: dict[bytes, RawEntry] = {}
        # The number of each needle given to set_needles.
        self._needle_ids: dict[NeedleBytes, int] = {}
        self._out_ptr = ctypes.c_void_p()
        self._out_len = ctypes.c_size_t()
        self._out_u64 = ctypes.c_uint64()
        self._out_u8 = ctypes.c_uint8()
        self._state = _State()
        self._scan_out = _ScanOut()
        self._state_ref = ctypes.byref(self._state)
        self._out_ref = ctypes.byref(self._scan_out)
        self._kw_scan = lib.function("kw_scan")
        # The table's calls come once or more per event Python reads: bound once,
        # with their output arguments made once.
        self._kw_contains = lib.function("kw_table_contains")
        self._kw_entry_at = lib.function("kw_table_entry_at")
        self._kw_latest = lib.function("kw_table_latest")
        self._kw_store = lib.function("kw_table_store")
        self._kw_is_unreadable = lib.function("kw_table_is_unreadable")
        self._kw_done_contains = lib.function("kw_done_contains")
        self._kw_done_drop = lib.function("kw_done_drop")
        self._out_i64 = ctypes.c_int64()
        self._i64_ref = ctypes.byref(self._out_i64)
        self._u64_ref = ctypes.byref(self._out_u64)
        self._ptr_ref = ctypes.byref(self._out_ptr)
        self._len_ref = ctypes.byref(self._out_len)
        self._u8_ref = ctypes.byref(self._out_u8)
        self._render_on = False
        self._kw_render_lines = lib.function("kw_render_lines")
        self._hold = False  # ahead_hold

    def _live(self) -> int:
        if self._handle is None:
            raise NativeError("native session already closed")
        return self._handle

    def _call(self, name: str, *args: object) -> None:
        self._lib.call(name, self._live(), *args)

    def _failed(self, name: str, code: int) -> NativeError:
        return NativeError(f"{name}: {self._lib.last_error() or _ERRORS.get(code, code)}")

    def _entry(self) -> RawEntry | None:
        size = self._out_len.value
        address = self._out_ptr.value
        if not size or not address:
            return None
        data = ctypes.string_at(address, size)
        # With many rules Python asks for the parent of nearly every exec, and a few
        # entries (the shells) are most of the answers: each is decoded once while it
        # recurs. Equal wire bytes, equal entry (the tuple is immutable).
        decoded = self._decoded
        entry = decoded.get(data)
        if entry is None:
            if len(decoded) >= _MAX_DECODED:
                decoded.clear()
            entry = decoded[data] = _decode(data)[0]
        return entry

    # -- the process table ---------------------------------------------------------

    def table_len(self) -> int:
        """How many pids have an entry."""
        with self._lock:
            self._call("kw_table_len", ctypes.byref(self._out_u64))
            return int(self._out_u64.value)

    def table_args_bytes(self) -> int:
        """The argv bytes the table holds (history included)."""
        with self._lock:
            self._call("kw_table_args_bytes", ctypes.byref(self._out_u64))
            return int(self._out_u64.value)

    def table_contains(self, pid: int) -> bool:
        """Whether ``pid`` has an entry (no time walk)."""
        if not _I128_MIN <= pid <= _I128_MAX:
            return False
        with self._lock:
            code = self._kw_contains(self._live(), pid & _LOW, pid >> 64, self._u8_ref)
            if code:
                raise self._failed("kw_table_contains", code)
            return bool(self._out_u8.value)

    def table_entry_at(self, pid: int, at_ms: int) -> RawEntry | None:
        """``ProcessTable._entry_at``: ``pid``'s latest entry from before ``at_ms``."""
        if not _I128_MIN <= pid <= _I128_MAX:
            return None
        at_ms = min(max(at_ms, _I128_MIN), _I128_MAX)
        with self._lock:
            code = self._kw_entry_at(
                self._live(),
                pid & _LOW,
                pid >> 64,
                at_ms & _LOW,
                at_ms >> 64,
                self._ptr_ref,
                self._len_ref,
            )
            if code:
                raise self._failed("kw_table_entry_at", code)
            return self._entry()

    def table_latest(self, pid: int) -> RawEntry | None:
        """``pid``'s latest entry (``entries.get(pid)``)."""
        if not _I128_MIN <= pid <= _I128_MAX:
            return None
        with self._lock:
            code = self._kw_latest(
                self._live(), pid & _LOW, pid >> 64, self._ptr_ref, self._len_ref
            )
            if code:
                raise self._failed("kw_table_latest", code)
            return self._entry()

    def table_store(self, entry: RawEntry) -> None:
        """``ProcessTable._store``: the new latest entry of its pid (history, LRU
        order, eviction)."""
        data = _encode(entry)
        with self._lock:
            code = self._kw_store(self._live(), data, len(data))
            if code:
                raise self._failed("kw_table_store", code)

    def table_rows(self, limit: int) -> list[RawEntry]:
        """The ``limit`` most recently used entries, least recent first."""
        if limit <= 0:
            return []
        with self._lock:
            self._call(
                "kw_table_rows",
                min(limit, _U64_MAX),
                ctypes.byref(self._out_ptr),
                ctypes.byref(self._out_len),
                ctypes.byref(self._out_u64),
            )
            count = int(self._out_u64.value)
            size = self._out_len.value
            address = self._out_ptr.value
            data = ctypes.string_at(address, size) if size and address else b""
        rows: list[RawEntry] = []
        at = 0
        for _ in range(count):
            entry, at = _decode(data, at)
            rows.append(entry)
        return rows

    def table_state(self, limit: int) -> list[memoryview | RawEntry]:
        """The snapshot rows of :meth:`table_rows` ``(limit)``, in order: a ``memoryview``
        (of one copy of the library's output) holds rows as the checkpoint writes them
        (``json.dumps`` with ``separators=(",", ":")`` and ``ensure_ascii``; consecutive
        rows joined by ``,``), a :data:`RawEntry` is an entry whose row Python makes
        (``native/src/state.rs`` says which)."""
        if limit <= 0:
            return []
        with self._lock:
            self._call(
                "kw_table_state",
                min(limit, _U64_MAX),
                ctypes.byref(self._out_ptr),
                ctypes.byref(self._out_len),
            )
            size = self._out_len.value
            address = self._out_ptr.value
            data = ctypes.string_at(address, size) if size and address else b""
        view = memoryview(data)
        parts: list[memoryview | RawEntry] = []
        at = 0
        while at < len(data):
            tag, length = _SEGMENT.unpack_from(data, at)
            at += _SEGMENT.size
            parts.append(view[at : at + length] if tag == _SEGMENT_JSON else _decode(data, at)[0])
            at += length
        return parts

    def table_mark_unreadable(self, pid: int) -> None:
        """Remember that ``/proc`` could not give ``pid`` (a FIFO of 4096)."""
        if not _I128_MIN <= pid <= _I128_MAX:
            raise NativeError(f"table_mark_unreadable: pid {pid} is beyond the table's range")
        with self._lock:
            self._call("kw_table_mark_unreadable", *_halves(pid))

    def table_is_unreadable(self, pid: int) -> bool:
        """Whether ``pid`` is remembered as unreadable."""
        if not _I128_MIN <= pid <= _I128_MAX:
            return False
        with self._lock:
            code = self._kw_is_unreadable(self._live(), pid & _LOW, pid >> 64, self._u8_ref)
            if code:
                raise self._failed("kw_table_is_unreadable", code)
            return bool(self._out_u8.value)

    # -- verdicts --------------------------------------------------------------------

    def set_verdict(self, key: bytes, code: int) -> None:
        """Cache the verdict ``code`` (bits 0-7, see ``native/src/verdicts.rs``) for
        ``key`` (``call \\0 success \\0 comm \\0 exe``); 4096 at most, then cleared."""
        if not 0 <= code <= 0xFF:
            raise NativeError(f"set_verdict: code {code} out of range")
        with self._lock:
            self._call("kw_set_verdict", key, len(key), code)

    def set_needles(self, needles: Sequence[NeedleBytes]) -> None:
        """Every argument needle of the rules, ``(text, case-insensitive)``; a needle's
        number is its position. Forgets every verdict (they name needles by number).
        Too many (``native/src/needles.rs``): :class:`NativeError`."""
        blob = b"".join(
            bytes((1 if nocase else 0,)) + _LENGTH.pack(len(text)) + text
            for text, nocase in needles
        )
        with self._lock:
            self._call("kw_set_needles", blob, len(blob))
            self._needle_ids = {needle: n for n, needle in enumerate(needles)}

    def set_verdict_needles(
        self,
        key: bytes,
        code: int,
        needles: Iterable[NeedleBytes],
        *,
        empty_if_no_execve: bool,
        plain: int | None = None,
        tests: Sequence[Sequence[Iterable[NeedleBytes]]] = (),
        guards: tuple[int, int] | None = None,
    ) -> None:
        """Cache ``code`` (with ``NEEDLE_IF_RELEVANT``) for ``key`` and the needles one of
        which a run of this key must have in its command line to be handed back (each
        given to :meth:`set_needles` before: :class:`NativeError` if not).
        ``tests``: the tests behind the verdict's gate, each as its clauses (needle sets
        each of which must have a needle in the command line for the test to hold): a
        run is then handed back for its needles only when every clause of some test has
        one (``native/src/verdicts.rs`` ``set_tests``). ``guards``: what the tests'
        guards read (bits as ``plain``) and which tests have one (bit ``i``: test ``i``):
        a run on which only guarded tests may hold then stops (``STOP_PLAIN``, a guard
        key) until :meth:`alive_answer` says which guards hold for its facts.
        ``empty_if_no_execve``: a run without EXECVE lines has the empty command line
        (else it is always handed back). ``plain``: the verdict is plain
        (``native/src/plain.rs``) and its plain parts read these facts (bits in
        ``argtest.Reads`` order: parent name or executable 1, working directory 2, ids 4,
        capabilities 8, parent command line 16): a relevant run whose needles are
        absent is taken only once Python answered for its plain key
        (:meth:`plain_learned`), else the scan stops (``STOP_PLAIN``)."""
        if not 0 <= code <= 0xFF:
            raise NativeError(f"set_verdict_needles: code {code} out of range")
        if plain is not None and not 0 <= plain <= _PLAIN_READS:
            raise NativeError(f"set_verdict_needles: plain reads {plain} out of range")
        flags = 1 if empty_if_no_execve else 0
        if plain is not None:
            flags |= _NEEDLES_PLAIN | plain << 8
        with self._lock:
            try:
                ids = array("I", sorted({self._needle_ids[n] for n in needles}))
                words = array("I", [len(tests)])
                for clauses in tests:
                    words.append(len(clauses))
                    for clause in clauses:
                        found = sorted({self._needle_ids[n] for n in clause})
                        words.append(len(found))
                        words.extend(found)
            except KeyError as exc:
                raise NativeError(f"set_verdict_needles: needle {exc} was not set") from None
            address, count = ids.buffer_info()
            self._call(
                "kw_set_verdict_needles",
                key,
                len(key),
                code,
                address if count else None,
                count,
                flags,
            )
            if tests:
                at, size = words.buffer_info()
                self._call("kw_set_verdict_tests", key, len(key), at, size)
                if guards is not None:
                    reads, guarded = guards
                    if not 0 <= reads <= _PLAIN_READS or not 0 <= guarded < 1 << 64:
                        raise NativeError("set_verdict_needles: guards out of range")
                    self._call("kw_set_verdict_guards", key, len(key), reads, guarded)

    def alive_answer(self, alive: int) -> bool:
        """Which tests' guards hold (bit ``i``: test ``i``) for the facts of the guard key
        of the last ``STOP_PLAIN``: kept for that key. ``False`` when no guard key was
        pending."""
        if not 0 <= alive < 1 << 64:
            raise NativeError(f"alive_answer: {alive} out of range")
        with self._lock:
            self._call("kw_alive_answer", alive, self._u8_ref)
            return bool(self._out_u8.value)

    def plain_learned(self) -> bool:
        """Python only learned from the run of the last ``STOP_PLAIN``: runs with its
        plain key are taken from now on. ``False`` when the session kept nothing (no
        key pending: answered already, or the verdicts or inodes changed since)."""
        with self._lock:
            self._call("kw_plain_learned", self._u8_ref)
            return bool(self._out_u8.value)

    def plain_len(self) -> tuple[int, int]:
        """How many plain answers the session keeps, and their key bytes."""
        count, size = ctypes.c_uint64(), ctypes.c_uint64()
        with self._lock:
            self._call("kw_plain_len", ctypes.byref(count), ctypes.byref(size))
            return int(count.value), int(size.value)

    def clear_verdicts(self) -> None:
        """Forget every verdict (rules or prefilters changed)."""
        with self._lock:
            self._call("kw_clear_verdicts")

    # -- --events lines ------------------------------------------------------------

    def render_config(self, host: bytes, host_key: bytes) -> None:
        """``--events`` lines: the host member and the entity ids' host part."""
        with self._lock:
            self._call("kw_render_config", host, len(host), host_key, len(host_key))

    def render_on(self, on: bool) -> None:
        """Whether scans write ``--events`` lines from now on."""
        with self._lock:
            self._call("kw_render_on", 1 if on else 0)
            self._render_on = on

    def render_set(self, key: bytes, pieces: list[bytes] | None) -> None:
        """Python's answer for a render key: the pieces (each sent with its u32 length),
        or ``None`` (such runs are handed back)."""
        blob = b"".join(len(p).to_bytes(4, "little") + p for p in pieces or ())
        with self._lock:
            self._call("kw_render_set", key, len(key), blob, len(blob), pieces is not None)

    def render_clear(self) -> None:
        """Forget every render answer."""
        with self._lock:
            self._call("kw_render_clear")

    def set_inodes(self, inodes: Iterable[int]) -> None:
        """The union of every prefilter's ``path_items`` inodes.

        An inode beyond 64 bits is left out: a log value that large always hands
        its run back anyway.
        """
        values = array("Q", sorted({abs(i) for i in inodes if abs(i) <= _U64_MAX}))
        address, count = values.buffer_info()
        with self._lock:
            self._call("kw_set_inodes", address if count else None, count)

    # -- the done store ----------------------------------------------------------------

    def done_keep(self, on: bool) -> None:
        """Whether scans keep the rows of the events they take (``ScanResult.done_kept``)
        for :class:`~kexecwatch.core.audit.nativeapi.DoneStore`'s calls; off empties the store."""
        with self._lock:
            self._call("kw_done_keep", 1 if on else 0)

    def ahead_hold(self, on: bool) -> None:
        """Whether scans that keep the serials ahead hold their changes for
        :meth:`ahead_pull` (``ScanResult.ahead_held``) instead of returning each
        scan's ``ahead_delta``."""
        self._hold = on

    def ahead_pull(self) -> tuple[list[int], array[int]]:
        """The changes to the serials ahead the scans held since the last pull (the
        serials gone; the rows ``(serial, sec, ms, seen)`` added, flat, in insertion
        order), forgotten by the session."""
        gone_ptr, added_ptr = ctypes.c_void_p(), ctypes.c_void_p()
        gone_len, added_rows = ctypes.c_size_t(), ctypes.c_size_t()
        with self._lock:
            self._call(
                "kw_ahead_pull",
                ctypes.byref(gone_ptr),
                ctypes.byref(gone_len),
                ctypes.byref(added_ptr),
                ctypes.byref(added_rows),
            )
            return (
                _rows(gone_ptr.value, gone_len.value, 1).tolist(),
                _rows(added_ptr.value, added_rows.value, 4),
            )

    def done_len(self) -> int:
        """How many rows the done store holds."""
        with self._lock:
            self._call("kw_done_len", self._u64_ref)
            return int(self._out_u64.value)

    def done_contains(self, sec: int, ms: int, serial: int) -> bool:
        """Whether the done store holds the event ``sec.ms:serial``."""
        if not (
            _I64_MIN <= sec <= _I64_MAX
            and _I64_MIN <= ms <= _I64_MAX
            and _I64_MIN <= serial <= _I64_MAX
        ):
            return False  # the store holds only what a scan read, all within int64
        with self._lock:
            code = self._kw_done_contains(self._live(), sec, ms, serial, self._u8_ref)
            if code:
                raise self._failed("kw_done_contains", code)
            return bool(self._out_u8.value)

    def done_drop(self, limit: int, forced: int, stale_before: int) -> tuple[int, int]:
        """Drop rows from the front: at most ``limit``, the first ``forced`` whatever
        their time, then while a row's elapsed time is below ``stale_before``. Returns
        how many went and the elapsed time of the row now in front (``2**63 - 1``: none)."""
        limit = min(max(limit, 0), _U64_MAX)
        forced = min(max(forced, 0), _U64_MAX)
        stale_before = min(max(stale_before, _I64_MIN), _I64_MAX)
        with self._lock:
            code = self._kw_done_drop(
                self._live(), limit, forced, stale_before, self._u64_ref, self._i64_ref
            )
            if code:
                raise self._failed("kw_done_drop", code)
            return int(self._out_u64.value), int(self._out_i64.value)

    def done_rows(self, offset: int, count: int) -> array[int]:
        """Rows ``offset .. offset + count`` of the store, ``(sec, ms, serial, elapsed)``
        flat, oldest first."""
        if offset < 0 or count <= 0:
            return array("q")
        with self._lock:
            self._call(
                "kw_done_rows",
                min(offset, _U64_MAX),
                min(count, _U64_MAX),
                ctypes.byref(self._out_ptr),
                ctypes.byref(self._out_len),
            )
            return _rows(self._out_ptr.value, self._out_len.value, 4)

    def done_max_serial(self, floor: int, excluded: Iterable[int]) -> int:
        """The highest serial held at or above ``floor`` and not in ``excluded``
        (``-1`` when none)."""
        if floor > _I64_MAX:
            return -1
        values = array("q", (s for s in excluded if _I64_MIN <= s <= _I64_MAX))
        address, count = values.buffer_info()
        with self._lock:
            self._call(
                "kw_done_max_serial",
                max(floor, _I64_MIN),
                address if count else None,
                count,
                self._i64_ref,
            )
            return int(self._out_i64.value)

    # -- the scan --------------------------------------------------------------------

    def scan(
        self, buf: bytes, start: int, state: QuietState, due_ms: int | None = None
    ) -> ScanResult:
        """Take what may be taken of ``buf`` from ``start`` (a line start), the
        detector being quiet in ``state``; see :class:`ScanResult`. With ``due_ms``,
        stop (``STOP_DUE``) right after the first unit that brings the latest event
        time taken to ``due_ms`` or beyond.

        Raises:
            NativeError: ``start`` beyond ``buf``, or a native failure.
        """
        if not 0 <= start <= len(buf):
            raise NativeError(f"scan: start {start} outside the buffer of {len(buf)} bytes")
        present, elapsed = state.present, state.elapsed
        expected, last_time_ms = state.expected, state.last_time_ms
        ceiling = state.done_ceiling
        if not (
            _I64_MIN <= present <= _I64_MAX
            and _I64_MIN <= elapsed <= _I64_MAX
            and _I64_MIN <= expected <= _I64_MAX
            and _I64_MIN <= last_time_ms <= _I64_MAX
            and ceiling <= _I64_MAX
        ):
            # Numbers the library cannot hold: nothing is taken, Python reads on.
            return _nothing_taken(start, state)
        flat = None
        address: int | None = None
        rows = 0
        kept = state.ahead_kept
        hold = kept and self._hold
        flags = (_SCAN_AHEAD_KEPT | _SCAN_AHEAD_HOLD) if hold else _SCAN_AHEAD_KEPT if kept else 0
        if kept and state.ahead_ops:
            # What Python changed since the last scan: (op, serial, sec, ms, seen) each.
            try:
                flat = array("q", state.ahead_ops)
            except OverflowError:
                return _nothing_taken(start, state)
            address, count = flat.buffer_info()
            rows = count // 5
        elif state.ahead and not kept:
            flat = array("q")
            try:
                for row in state.ahead:
                    flat.extend(row)
            except OverflowError:
                return _nothing_taken(start, state)
            address, count = flat.buffer_info()
            rows = count // 4
        with self._lock:
            # The structures are the session's, reused call after call.
            c_state = self._state
            c_state.present = present
            c_state.elapsed = elapsed
            c_state.expected = expected
            c_state.last_time_ms = last_time_ms
            # A ceiling below any serial stays below any serial when clamped.
            c_state.done_ceiling = max(ceiling, _I64_MIN)
            out = self._scan_out
            code = self._kw_scan(
                self._live(),
                buf,
                len(buf),
                start,
                self._state_ref,
                address,
                rows,
                flags,
                _I64_MAX if due_ms is None else _clamp(due_ms),
                self._out_ref,
            )
            if code:
                raise self._failed("kw_scan", code)
            key = ctypes.string_at(out.key, out.key_len) if out.key_len else None
            done = _rows(out.done, out.done_rows, 4)
            lost_flat = _rows(out.lost, out.lost_rows, 5) if out.lost_rows else None
            # The whole rows only for a caller that sent them; the change always.
            ahead_flat = (
                _rows(out.ahead, out.ahead_rows, 4) if out.ahead_rows and not kept else None
            )
            gone = _rows(out.ahead_gone, out.ahead_gone_len, 1).tolist()
            added_flat = _rows(out.ahead_added, out.ahead_added_rows, 4)
            leads = _rows(out.leads, out.leads_rows, 3) if out.leads_rows else None
            end_at, stop, ppid, time_ms = (
                int(out.end),
                int(out.stop),
                int(out.ppid),
                int(out.time_ms),
            )
            lines, records, events = int(out.lines), int(out.records), int(out.events)
            process_events, last_ms = int(out.process_events), int(out.last_time_ms)
            done_kept = int(out.done_kept)
            rendered = b""
            if self._render_on:
                code = self._kw_render_lines(self._live(), self._ptr_ref, self._len_ref)
                if code:
                    raise self._failed("kw_render_lines", code)
                if self._out_len.value and self._out_ptr.value:
                    rendered = ctypes.string_at(self._out_ptr.value, self._out_len.value)
            s = out.state
            present, elapsed = int(s.present), int(s.elapsed)
            expected, last_time_ms = int(s.expected), int(s.last_time_ms)
        del flat  # kept alive through the call
        lost: list[tuple[int, int, int, int, int]] = []
        if lost_flat is not None:
            lost = [
                (
                    lost_flat[i],
                    lost_flat[i + 1],
                    lost_flat[i + 2],
                    lost_flat[i + 3],
                    lost_flat[i + 4],
                )
                for i in range(0, len(lost_flat), 5)
            ]
        ahead: list[tuple[int, int, int, int]] = []
        if ahead_flat is not None:
            ahead = [
                (ahead_flat[i], ahead_flat[i + 1], ahead_flat[i + 2], ahead_flat[i + 3])
                for i in range(0, len(ahead_flat), 4)
            ]
        return ScanResult(
            end=end_at,
            stop=stop,
            key=key,
            ppid=ppid,
            time_ms=time_ms,
            lines=lines,
            records=records,
            events=events,
            process_events=process_events,
            last_time_ms=last_ms,
            state=QuietState(present, elapsed, expected, last_time_ms, ahead, ceiling, kept),
            done=done,
            lost=lost,
            done_kept=done_kept,
            ahead_delta=(gone, added_flat),
            leads=leads,
            rendered=rendered,
            ahead_held=hold,
        )

    def selftest_panic(self) -> None:
        """Make the library panic inside its guard (tests): raises :class:`NativeError`."""
        with self._lock:
            self._lib.call("kw_selftest_panic")

    def close(self) -> None:
        """Free the session; later calls raise :class:`NativeError`."""
        with self._lock:
            handle, self._handle = self._handle, None
            if handle is not None:
                self._lib.call("kw_session_free", handle)

    def __del__(self) -> None:
        # A session dropped without close() must not leak its table.
        # (No module globals here: at interpreter teardown they may be gone already.)
        try:  # noqa: SIM105
            self.close()
        except Exception:  # noqa: S110 - nothing to report to
            pass


def _nothing_taken(start: int, state: QuietState) -> ScanResult:
    return ScanResult(
        end=start,
        stop=STOP_HANDBACK,
        key=None,
        ppid=0,
        time_ms=0,
        lines=0,
        records=0,
        events=0,
        process_events=0,
        last_time_ms=0,
        state=state,
        done=array("q"),
        lost=[],
    )
