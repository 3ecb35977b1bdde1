"""Where the live view's bytes come from: a followed log, or recorded logs replayed.

Both feeds have one method the terminal loop calls, :meth:`pump`: feed the model what
is due now, spending at most about ``budget_s`` seconds, and say when to call again
(``0`` for "more is ready now", ``None`` for "finished"). Keeping each call short keeps
the keys responsive while a big file is read.

Following uses the daemon's :class:`~kexecwatch.adapters.daemon.follower.Follower`, so the
view survives rotation and truncation exactly as the daemon does. Replaying paces the
records by their own timestamps: a record written ``t`` seconds after the first one is
fed ``t / speed`` seconds after the replay started (never before; a record older than
its predecessor is fed at once). ``speed=None`` feeds as fast as possible.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Sequence

from kexecwatch.adapters.daemon.follower import Follower, Lines, Switched
from kexecwatch.adapters.live.state import LiveModel
from kexecwatch.adapters.session import notice
from kexecwatch.adapters.sources import Source, read_chunks
from kexecwatch.core import line_time_ms

__all__ = ["FollowFeed", "ReplayFeed", "line_time_ms"]

_MAX_CHUNK = 1 << 16
_MAX_BATCH = 2000


class ReplayFeed:
    """Recorded logs, paced by their timestamps times ``speed`` (``None``: at once).

    Args:
        sources: the files, in order (see :func:`kexecwatch.adapters.sources.expand_paths`).
        speed: the pace multiplier, or ``None`` for as fast as possible.
    """

    def __init__(self, sources: Sequence[Source], speed: float | None) -> None:
        self.sources = list(sources)
        self.speed = speed
        self._items = self._stream()
        self._next: tuple[Source, bytes] | Source | None = None
        self._started = False
        self._t0: int | None = None
        self._w0 = 0.0
        self._paused_at: float | None = None
        self._file_no = 0
        self._offset = 0
        self._size: int | None = None

    def pause(self, now: float) -> None:
        """Stop the replay clock at monotonic time ``now``."""
        self._paused_at = now

    def resume(self, now: float) -> None:
        """Restart the replay clock; the pause does not count as log time."""
        if self._paused_at is not None:
            self._w0 += now - self._paused_at
            self._paused_at = None

    def close(self) -> None:
        """Stop reading (the open file is closed with the generator)."""
        self._items.close()

    def pump(self, model: LiveModel, now: float, budget_s: float = 0.05) -> float | None:
        """Feed what is due at monotonic time ``now``; see the module docstring."""
        state = model.state
        if not self._started:
            self._started = True
            self._w0 = now
            state.source = "replay"
            state.status = (
                "replaying as fast as possible"
                if self.speed is None
                else (f"replaying at {self.speed:g}x")
            )
        deadline = time.monotonic() + budget_s
        batch: list[bytes] = []
        try:
            while time.monotonic() < deadline:
                item = self._peek()
                if item is None:
                    self._flush(model, batch)
                    model.flush()
                    state.finished = True
                    state.lag = 0 if self._size is not None else None
                    return None
                if isinstance(item, Source):
                    self._flush(model, batch)
                    self._enter(model, item)
                    self._next = None
                    continue
                _, data = item
                wait = self._wait(data, now)
                if wait > 0:
                    self._flush(model, batch)
                    return wait
                batch.append(data)
                self._offset += len(data)
                self._next = None
                if len(batch) >= _MAX_BATCH:
                    self._flush(model, batch)
            return 0.0
        finally:
            self._flush(model, batch)
            state.offset = self._offset
            if self._size is not None:
                state.lag = max(0, self._size - self._offset)

    def _peek(self) -> tuple[Source, bytes] | Source | None:
        if self._next is None:
            self._next = next(self._items, None)
        return self._next

    def _wait(self, data: bytes, now: float) -> float:
        if self.speed is None:
            return 0.0
        t = line_time_ms(data)
        if t is None:
            return 0.0
        if self._t0 is None:
            self._t0, self._w0 = t, now
        due = self._w0 + (t - self._t0) / 1000 / self.speed
        return max(0.0, due - now)

    def _enter(self, model: LiveModel, source: Source) -> None:
        model.switch_source(source.name)
        self._file_no += 1
        self._offset = 0
        self._size = None if _is_gzip(source) else source.size
        many = f" ({self._file_no}/{len(self.sources)})" if len(self.sources) > 1 else ""
        model.state.path = source.name + many

    @staticmethod
    def _flush(model: LiveModel, batch: list[bytes]) -> None:
        if batch:
            model.feed(b"".join(batch))
            batch.clear()

    def _stream(self) -> Generator[tuple[Source, bytes] | Source, None, None]:
        """Each source, then its bytes: whole chunks at full speed, else line by line."""
        for source in self.sources:
            yield source
            tail = b""
            for chunk in read_chunks(source, _MAX_CHUNK):
                if self.speed is None:
                    yield source, chunk
                    continue
                lines = (tail + chunk).split(b"\n")
                tail = lines.pop()
                for line in lines:
                    yield source, line + b"\n"
            if tail:
                yield source, tail


def _is_gzip(source: Source) -> bool:
    if source.is_stdin:
        return True  # no size to compare with
    try:
        with open(source.name, "rb") as f:
            return f.read(2) == b"\x1f\x8b"
    except OSError:
        return False


class FollowFeed:
    """A live log, read through the daemon's follower (rotation-safe).

    Args:
        path: the log to follow, e.g. ``/var/log/audit/audit.log``.
        poll_s: how often to look for new lines when idle.
    """

    def __init__(self, path: str, *, poll_s: float = 0.25) -> None:
        self.path = path
        self.poll_s = poll_s
        self.follower = Follower(path, poll_interval=poll_s)

    def pause(self, now: float) -> None:
        """Nothing to do: the log keeps growing, and the lag shows it."""

    def resume(self, now: float) -> None:
        """Nothing to do; reading continues where it stopped."""

    def close(self) -> None:
        """Close the followed files."""
        self.follower.close()

    def pump(self, model: LiveModel, now: float, budget_s: float = 0.05) -> float | None:
        """Feed the lines written since the last call; see the module docstring."""
        state = model.state
        state.source = "follow"
        state.status = "following"
        deadline = time.monotonic() + budget_s
        got = False
        while time.monotonic() < deadline:
            outputs = self.follower.read(budget=_MAX_CHUNK * 4)
            if not outputs:
                break
            for item in outputs:
                if isinstance(item, Lines):
                    got = True
                    model.feed(item.data, now)
                    continue
                if isinstance(item, Switched):
                    model.switch_source(item.path, item.offset)
                    state.path = item.path
                said = notice(item)
                if said is not None and said.text is not None:
                    model.note(said.text)
        position = self.follower.position
        if position is not None:
            state.offset = position.offset
            state.lag = self.follower.lag_bytes()
        if got:
            return 0.0
        model.idle(now, mid_line=self.follower.holds_partial_line)
        return self.poll_s
