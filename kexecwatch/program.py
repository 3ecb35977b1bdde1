"""The installed ``kexecwatch`` program (and ``python -m kexecwatch``): the command line
with the garbage collector paused while the process starts up.

Start-up builds tens of thousands of objects that live as long as the process (modules,
classes, the compiled rules) and next to no garbage, yet the collector's passes walked
them about 40 times: 3% of a replay's fixed cost. :func:`kexecwatch.cli.main` enables it
again when start-up ends: before a command's handler runs, or for ``replay`` once its rules
are loaded and frozen out of the collector's passes. Importing :mod:`kexecwatch.cli` as a
library changes nothing: only this entry point pauses the collector.
"""

from __future__ import annotations

import gc


def main() -> int:
    """Run ``kexecwatch`` with the process's arguments; return the exit code."""
    gc.disable()
    from kexecwatch.cli import main as command_line  # after the pause: most of start-up

    return command_line(collector_paused=True)
