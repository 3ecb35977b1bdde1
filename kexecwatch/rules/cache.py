"""The rule cache: each rule file's parsed TOML and each query's parsed EQL, kept as plain
JSON between runs.

Theory of operation: reading a rule file is mostly TOML parsing (Python's ``tomllib``
reads a long string one character at a time, and Elastic's rules carry long
investigation guides) and parsing its EQL query. The cache keeps what ``tomllib`` made of
each file, keyed by the SHA-256 of the file's text salted with kexecwatch's and Python's
versions, and the syntax tree each query parsed to
(:mod:`kexecwatch.core.detect.rule.astjson`), keyed by the query's text salted the same
way and with a fingerprint of the parser's own code: the SHA-256 of every source file of
:mod:`kexecwatch.core.detect.rule` and of :mod:`kexecwatch.errors`
(:func:`parser_fingerprint`), so a changed parser, even without a new version number,
never gets an old tree. Both as JSON text: plain data only, never pickled or marshalled
code, so a cache file can at worst describe a rule file, never run anything; a tree is
checked node by node when it is read back. Queries that do not parse are never kept, so
their errors are always the parser's own. Compiling a tree is still done on every load,
with the options of the run, so the options are not part of the key; but the cache also
lists the keys of the queries that compiled without an error (``compiled``), and those
compile lazily: their predicates are built when an event first reaches them
(:meth:`RuleCache.compile_statement`), so a rule no event reaches never pays for them. A
query that fails to compile is never listed, so its error is always the compiler's own.
A file whose TOML holds a date or time (which JSON has no form for) is simply parsed
every time.

Where: ``rules.json`` in ``$XDG_CACHE_HOME/kexecwatch`` (``~/.cache/kexecwatch`` when that
is unset), or a configured directory. The directory is created mode 0700 and the file
written to a temporary file and renamed into place (mode 0600), so concurrent runs (such
as ``replay --per-host --jobs N``) never see half a file. It holds the entries the last
run used plus older ones up to :data:`MAX_ENTRIES` files and as many queries. A cache of
an earlier format version is replaced without a word.

Nothing about the cache is ever an error. A cache that is damaged (truncated, not JSON,
not this format), unreadable, not owned by this user or writable by others (its content
becomes rules, so it must be as trusted as the user), or cannot be written is ignored
with one warning line, and the rules load from their files. When there is no place for
it (no home directory, or a home that cannot be created or is read-only), it is skipped
silently; so is a directory the daemon cannot write into. Under the packaged unit the
service's home is its state directory, so the daemon's cache lives there.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeGuard

from kexecwatch import __version__
from kexecwatch.core import parse_toml

if TYPE_CHECKING:
    from kexecwatch.core import CompiledQuery, CompiledSequence, QuerySource, Statement

__all__ = [
    "CACHE_FILE",
    "MAX_ENTRIES",
    "RuleCache",
    "default_cache_dir",
    "fingerprint_files",
    "parser_fingerprint",
]

#: The cache's file name in its directory.
CACHE_FILE = "rules.json"
#: The most entries kept (the last run's first): several checkouts' worth.
MAX_ENTRIES = 4096
_FORMAT = "kexecwatch-rule-cache"
_FORMAT_VERSION = 2
_SALT = f"{_FORMAT}/{_FORMAT_VERSION}\0{__version__}\0{sys.version}\0".encode()


def fingerprint_files() -> list[str]:
    """The source files of the EQL parser, compiler and cache codec: every module of
    :mod:`kexecwatch.core.detect.rule`, and :mod:`kexecwatch.errors` and
    :mod:`kexecwatch.core.text.frozen`, the kexecwatch modules outside the package that parsing
    and compiling import (a test holds this list to their imports)."""
    from kexecwatch import errors
    from kexecwatch.core import Frozen, astjson

    frozen = sys.modules[Frozen.__module__]

    folder = os.path.dirname(os.path.abspath(astjson.__file__ or ""))
    files = sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".py"))
    return [*files, *(os.path.abspath(m.__file__ or "") for m in (errors, frozen))]


def parser_fingerprint() -> bytes | None:
    """The SHA-256 of the source of :func:`fingerprint_files`, file names included;
    ``None`` when one cannot be read (queries are then neither kept nor known to
    compile).
    """
    import hashlib

    digest = hashlib.sha256()
    try:
        for path in fingerprint_files():
            with open(path, "rb") as source:
                digest.update(os.path.basename(path).encode() + b"\0" + source.read() + b"\0")
    except OSError:
        return None
    return digest.digest()


def default_cache_dir(environ: Mapping[str, str] = os.environ) -> str | None:
    """``$XDG_CACHE_HOME/kexecwatch``, else ``$HOME/.cache/kexecwatch``; ``None`` when
    neither is an absolute path (the XDG base directory rules ignore relative ones)."""
    xdg = environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(xdg):
        return os.path.join(xdg, "kexecwatch")
    home = environ.get("HOME", "")
    if os.path.isabs(home):
        return os.path.join(home, ".cache", "kexecwatch")
    return None


class RuleCache:
    """Parsed rule files by content, read once and written back by :meth:`save`.

    Args:
        directory: where ``rules.json`` lives; ``None``: no cache (every file is parsed).
        warn: receives the one warning line, if any (``None``: warnings are dropped).
        quiet_unwritable: a cache that cannot be written is skipped without a warning
            (the daemon: its service may not be given a writable cache directory).
    """

    def __init__(
        self,
        directory: str | None,
        *,
        warn: Callable[[str], None] | None = None,
        quiet_unwritable: bool = False,
    ) -> None:
        self.path = None if directory is None else os.path.join(directory, CACHE_FILE)
        self.hits = 0
        self.misses = 0
        self._warn = warn
        self._quiet_unwritable = quiet_unwritable
        self._warned = False
        self._loaded = False
        self._untouchable = False  # not ours to read or write (set after a warning)
        self._old: dict[str, str] = {}
        self._used: dict[str, str] = {}
        self._old_queries: dict[str, str] = {}
        self._used_queries: dict[str, str] = {}
        self._query_salt: bytes | None = b""  # None: the parser has no fingerprint
        # Query keys whose query compiled without an error (with this very compiler,
        # as the key says): these compile lazily (``compile_ast``'s ``lazy``).
        self._old_compiled: set[str] = set()
        self._used_compiled: set[str] = set()
        self._dirty = False

    def parse_toml(self, text: str, source: str) -> dict[str, Any]:
        """What :func:`kexecwatch.core.parse_toml` gives for ``text``, from the cache when
        it holds the file.

        Raises:
            RuleError: as :func:`~kexecwatch.core.parse_toml` (errors are never cached).
        """
        if self.path is None:
            return parse_toml(text, source)
        self._load()
        if self._untouchable:
            return parse_toml(text, source)
        import hashlib  # here: a run without rule files never pays for OpenSSL's set-up

        key = hashlib.sha256(_SALT + text.encode("utf-8", "surrogatepass")).hexdigest()
        entry = self._used.get(key) or self._old.get(key)
        if entry is not None:
            data = _decode(entry)
            if data is not None:
                self._used[key] = entry
                self.hits += 1
                return data
            self._problem("damaged (an entry is not a JSON object); it will be rewritten")
            self._old.clear()
            self._dirty = True
        self.misses += 1
        data = parse_toml(text, source)
        try:
            entry = json.dumps(data, separators=(",", ":"))
        except (TypeError, ValueError, RecursionError):  # a TOML date or time: no JSON form
            return data
        self._used[key] = entry
        self._dirty = True
        return data

    def parse_statement(self, src: QuerySource) -> Statement:
        """What :func:`kexecwatch.core.detect.rule.parser.parse_statement` gives for
        ``src``, from the cache when it holds the query's tree.

        Raises:
            RuleError: as ``parse_statement`` (errors are never cached).
        """
        from kexecwatch.core import astjson, parse_statement

        key = self._query_key(src)
        if key is None:
            return parse_statement(src)
        entry = self._used_queries.get(key) or self._old_queries.get(key)
        if entry is not None:
            try:
                statement = astjson.from_data(json.loads(entry))
            except (ValueError, RecursionError):
                self._problem("damaged (a query is not a syntax tree); it will be rewritten")
                self._old_queries.clear()
                self._dirty = True
            else:
                self._used_queries[key] = entry
                self.hits += 1
                return statement
        self.misses += 1
        statement = parse_statement(src)
        try:
            entry = json.dumps(astjson.to_data(statement), separators=(",", ":"))
        except (TypeError, ValueError, RecursionError):  # no JSON form: parsed every time
            return statement
        self._used_queries[key] = entry
        self._dirty = True
        return statement

    def compile_statement(self, src: QuerySource) -> CompiledQuery | CompiledSequence:
        """What :func:`kexecwatch.core.detect.rule.query.compile_statement` gives for
        ``src``, its tree from :meth:`parse_statement`; compiled lazily (the predicates
        built when an event first needs them) when the cache knows that this query
        compiled with this compiler, else compiled now and remembered when it does.

        Raises:
            RuleError: as ``compile_statement`` (errors are never cached).
        """
        from kexecwatch.core import compile_statement

        key = self._query_key(src)
        if key is None:
            return compile_statement(src, self.parse_statement)
        known = key in self._used_compiled or key in self._old_compiled
        compiled = compile_statement(src, self.parse_statement, lazy=known)
        if not known:
            self._dirty = True
        self._used_compiled.add(key)
        return compiled

    def _query_key(self, src: QuerySource) -> str | None:
        """The cache key of a query (salted with the compiler's fingerprint); ``None``
        when queries are not cached (no cache, or no fingerprint)."""
        if self.path is None:
            return None
        self._load()
        if self._query_salt == b"":
            fingerprint = parser_fingerprint()
            self._query_salt = None if fingerprint is None else _SALT + fingerprint + b"\0"
        if self._untouchable or self._query_salt is None:
            return None
        import hashlib

        return hashlib.sha256(
            self._query_salt + src.text.encode("utf-8", "surrogatepass")
        ).hexdigest()

    def save(self) -> None:
        """Write the cache back if this run added to it (entries used first)."""
        if self.path is None or self._untouchable or not self._dirty:
            return
        doc = {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "entries": _kept(self._used, self._old),
            "queries": _kept(self._used_queries, self._old_queries),
            "compiled": list(
                _kept(dict.fromkeys(self._used_compiled, ""), dict.fromkeys(self._old_compiled, ""))
            ),
        }
        directory = os.path.dirname(self.path)
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
        except OSError:
            return  # no place for a cache (no home, a read-only home): skipped silently
        import tempfile

        try:
            fd, temporary = tempfile.mkstemp(prefix=".rules.", suffix=".tmp", dir=directory)
            try:
                with os.fdopen(fd, "w", encoding="ascii") as out:
                    json.dump(doc, out, separators=(",", ":"))
                os.replace(temporary, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
        except OSError as exc:
            if exc.errno != errno.EROFS and not self._quiet_unwritable:
                self._problem(f"cannot be written ({exc.strerror or exc})")
            return
        self._dirty = False

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        assert self.path is not None
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno == errno.ENOTDIR:
                return  # a file where the directory should be: save() says so, if it may
            self._untouchable = True
            self._problem(f"cannot be read ({exc.strerror or exc})")
            return
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                why = "not a regular file"
            elif info.st_uid != os.geteuid() or info.st_mode & 0o022:
                why = "not owned by this user, or writable by others"
            else:
                with os.fdopen(os.dup(fd), "rb") as stream:
                    raw = stream.read()
                why = ""
        except OSError as exc:
            why = f"cannot be read ({exc.strerror or exc})"
        finally:
            os.close(fd)
        if why:
            self._untouchable = True
            self._problem(why)
            return
        found = _entries(raw)
        if found is None:
            self._problem("damaged (truncated, not JSON, or not this format); it will be rewritten")
            self._dirty = True
            return
        self._old, self._old_queries, self._old_compiled = found

    def _problem(self, why: str) -> None:
        """The one warning line (later problems are not repeated)."""
        if self._warned or self._warn is None:
            return
        self._warned = True
        self._warn(f"{self.path}: {why}; rules load from their files")


def _kept(used: dict[str, str], old: dict[str, str]) -> dict[str, str]:
    """The entries to write: this run's, then older ones up to :data:`MAX_ENTRIES`."""
    entries = dict(used)
    for key, entry in old.items():
        if len(entries) >= MAX_ENTRIES:
            break
        entries.setdefault(key, entry)
    return entries


def _entries(raw: bytes) -> tuple[dict[str, str], dict[str, str], set[str]] | None:
    """The file entries, query entries and the keys of the queries known to compile of a
    cache file (all empty for a cache of an earlier format version; no ``compiled`` list,
    as an earlier kexecwatch of this format writes: none known), or ``None`` when it is
    not one."""
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError included
        return None
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
        return None
    version = doc.get("version")
    if isinstance(version, int) and not isinstance(version, bool) and version < _FORMAT_VERSION:
        return {}, {}, set()  # an older kexecwatch's: rewritten in this format, without a word
    if version != _FORMAT_VERSION:
        return None
    entries, queries = doc.get("entries"), doc.get("queries")
    compiled = doc.get("compiled", [])
    if not (_all_text(entries) and _all_text(queries)):
        return None
    if not (isinstance(compiled, list) and all(isinstance(k, str) for k in compiled)):
        return None
    return entries, queries, set(compiled)


def _all_text(part: Any) -> TypeGuard[dict[str, str]]:
    return isinstance(part, dict) and all(isinstance(v, str) for v in part.values())


def _decode(entry: str) -> dict[str, Any] | None:
    try:
        data = json.loads(entry)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None
