"""Run one command as a child of this small process and report the command's own cost.

Linux counts, in a child's ``ru_maxrss``, the pages it shared with its parent when it was
forked: a ``kexecwatch replay`` started straight from a pytest process that has grown to 200 MB
reports at least 200 MB, whatever it used itself. Started from this launcher (a fresh
interpreter of a few MB, run with ``python -S``), the figure is the command's own peak.

Usage::

    python -S rusage_launcher.py FD AS_BYTES CPU_S COMMAND [ARG...]

The command runs with ``RLIMIT_AS`` = AS_BYTES and ``RLIMIT_CPU`` = CPU_S. The launcher writes
``PID\\n`` to the file descriptor FD once the command is started, then
``EXIT CPU_SECONDS MAXRSS_KB\\n`` once it is reaped, and exits 0. SIGTERM is passed on to the
command; SIGUSR1 kills it (SIGKILL itself cannot be passed on). The launcher dies with its parent
and the command with the launcher (``PR_SET_PDEATHSIG``), so a killed campaign leaves nothing
behind.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import sys

PR_SET_PDEATHSIG = 1
FORWARDED = {signal.SIGTERM: signal.SIGTERM, signal.SIGUSR1: signal.SIGKILL}


def _die_with_parent(libc: ctypes.CDLL, parent: int) -> None:
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent was gone before the request took effect
        os._exit(137)


def main() -> None:
    fd, as_bytes, cpu_s = (int(a) for a in sys.argv[1:4])
    argv = sys.argv[4:]
    libc = ctypes.CDLL(None, use_errno=True)
    _die_with_parent(libc, os.getppid())
    launcher = os.getpid()
    # Blocked until the handlers below know the command's pid; a signal that arrives in
    # between stays pending and is passed on then.
    signal.pthread_sigmask(signal.SIG_BLOCK, set(FORWARDED))
    pid = os.fork()
    if pid == 0:
        try:
            for sig in FORWARDED:
                signal.signal(sig, signal.SIG_DFL)
            _die_with_parent(libc, launcher)
            resource.setrlimit(resource.RLIMIT_AS, (as_bytes, as_bytes))
            resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s))
            signal.pthread_sigmask(signal.SIG_SETMASK, set())
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)

    def forward(sig: int, _frame: object) -> None:
        os.kill(pid, FORWARDED[signal.Signals(sig)])

    for sig in FORWARDED:
        signal.signal(sig, forward)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, set(FORWARDED))
    os.write(fd, f"{pid}\n".encode())
    # Wait without reaping, then stop passing signals on, then reap: a signal is never sent
    # to a pid that has been reaped (and could already name someone else's process).
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    signal.pthread_sigmask(signal.SIG_BLOCK, set(FORWARDED))
    _, status, usage = os.wait4(pid, 0)
    cpu = usage.ru_utime + usage.ru_stime
    os.write(fd, f"{os.waitstatus_to_exitcode(status)} {cpu} {usage.ru_maxrss}\n".encode())


if __name__ == "__main__":
    main()
