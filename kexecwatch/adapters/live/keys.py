"""The live view's keys: bytes from a cbreak-mode terminal to names, names to state.

Rule 1: pure; :func:`handle_key` only changes the :class:`DashboardState` it is given.
"""

from __future__ import annotations

from kexecwatch.adapters.live.state import DashboardState, is_compact

__all__ = ["handle_key", "parse_keys"]

_SEQUENCES = {
    b"\x1b[A": "up",
    b"\x1b[B": "down",
    b"\x1bOA": "up",
    b"\x1bOB": "down",
    b"\x1b[5~": "pageup",
    b"\x1b[6~": "pagedown",
    b"\x1b[H": "home",
    b"\x1b[F": "end",
    b"\x1b[1~": "home",
    b"\x1b[4~": "end",
}
_SINGLE = {
    b"\r": "enter",
    b"\n": "enter",
    b"\x03": "interrupt",
    b"k": "up",
    b"j": "down",
    b"q": "q",
    b"Q": "q",
    b"p": "p",
    b"P": "p",
    b"c": "c",
    b"C": "c",
}


def parse_keys(data: bytes) -> list[str]:
    """Name the keys in bytes read from a terminal in cbreak mode.

    Arrow keys arrive as ``ESC [ A``; an ``ESC`` that starts no known sequence is the
    Escape key. Unknown bytes and sequences are ignored.
    """
    keys: list[str] = []
    i = 0
    while i < len(data):
        if data[i] == 0x1B:
            for seq, name in _SEQUENCES.items():
                if data.startswith(seq, i):
                    keys.append(name)
                    i += len(seq)
                    break
            else:
                # An unknown CSI sequence is skipped whole; a lone ESC is Escape.
                if data.startswith(b"\x1b[", i):
                    j = i + 2
                    while j < len(data) and not 0x40 <= data[j] <= 0x7E:
                        j += 1
                    i = j + 1
                else:
                    keys.append("escape")
                    i += 1
            continue
        single = _SINGLE.get(data[i : i + 1])
        if single is not None:
            keys.append(single)
        i += 1
    return keys


def handle_key(state: DashboardState, key: str, *, page: int = 10) -> bool:
    """Apply one key to ``state``; return True when the view should quit.

    In the list: ``q`` quits, ``p`` pauses or resumes, ``c`` switches between one line
    and two lines per alert (from what the screen shows now), ``up``/``down`` move the
    selection (newest alert at the top), ``enter`` opens the selected alert (or the
    newest), ``escape`` goes back to following the newest. In the detail view:
    ``q``/``escape`` go back and ``up``/``down``/``pageup``/``pagedown`` scroll.
    ``interrupt`` (Ctrl-C) always quits.
    """
    if key == "interrupt":
        return True
    if state.detail is not None:
        scroll = {"up": -1, "down": 1, "pageup": -page, "pagedown": page}
        if key in ("q", "escape"):
            state.detail = None
        elif key in scroll:
            state.detail_scroll = max(0, state.detail_scroll + scroll[key])
        elif key == "home":
            state.detail_scroll = 0
        return False
    rows = len(state.alert_rows)
    newest = rows - 1
    current = newest if state.selected is None else state.selected
    if key == "q":
        return True
    if key == "p":
        state.paused = not state.paused
    elif key == "c":
        state.compact = not is_compact(state, state.height)
    elif key == "escape":
        state.selected = None
    elif rows and key in ("up", "down", "pageup", "pagedown", "home", "end"):
        step = {"up": 1, "down": -1, "pageup": page, "pagedown": -page}
        if key == "home":
            state.selected = newest
        elif key == "end":
            state.selected = 0
        else:
            state.selected = min(newest, max(0, current + step[key]))
    elif rows and key == "enter":
        state.selected = current
        state.detail = current
        state.detail_scroll = 0
    return False
