"""Boot a real Debian 12 (systemd 252 as PID 1) in ``systemd-nspawn`` for tests.

The image is a ``debootstrap --variant=minbase`` of bookworm with only what a minimal
server has plus systemd, dbus and Python, made from the mirror the host's apt uses. It is
built once and cached under :data:`MACHINES`; a stamp file next to it records the suite
and package list, and is written last, so a half-built or outdated image is rebuilt, not
trusted. A build holds an exclusive ``flock`` on the image's lock file and every booted
container a shared one, so an image is never rebuilt under a running container.

:class:`Container` boots the image with ``--volatile=overlay`` (every change lands in a
tmpfs and the cached image stays pristine) and a directory bound at ``/out``. Commands
run inside with ``nsenter`` into all of the container's namespaces. Leaving the
``with booted(...)`` block always powers the container off: a clean poweroff first, then
SIGKILL of the container's PID 1 and of the ``systemd-nspawn`` this module started, by
pid; then it checks that no process of the container's PID namespace is left. Should the
test process itself be killed, the kernel sends ``systemd-nspawn`` SIGTERM (its parent-death
signal), on which it shuts the container down.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "IMAGE",
    "MACHINES",
    "PACKAGES",
    "Container",
    "NspawnError",
    "booted",
    "ensure_image",
    "host_mirror",
    "image_ok",
]

MACHINES = Path("/var/lib/machines")
IMAGE = MACHINES / "kexecwatch-bookworm"
SUITE = "bookworm"
PACKAGES = ("systemd", "systemd-sysv", "dbus", "python3", "python3-venv")
BUILD_TIMEOUT = 900.0


class NspawnError(RuntimeError):
    """The image could not be built or the container could not be booted or stopped."""


def _run(argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise NspawnError(
            f"{' '.join(argv)} exited {done.returncode}: {(done.stderr or done.stdout)[-2000:]}"
        )
    return done


def host_mirror(sources: Path = Path("/etc/apt")) -> str:
    """The Debian mirror of the host's apt sources that serves the main suite."""
    files = [sources / "sources.list", *sorted((sources / "sources.list.d").glob("*"))]
    for path in files:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if path.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields: dict[str, str] = {}
                for line in stanza.splitlines():
                    key, colon, value = line.partition(":")
                    if colon and not line.startswith("#"):
                        fields[key.strip().lower()] = value.strip()
                if SUITE in fields.get("suites", "").split() and fields.get("uris"):
                    return fields["uris"].split()[0]
        else:
            for line in text.splitlines():
                words = re.sub(r"\[[^]]*\]", "", line).split()
                if len(words) >= 3 and words[0] == "deb" and words[2] == SUITE:
                    return words[1]
    raise NspawnError(f"no apt source for Debian {SUITE} under {sources}")


def _stamp(image: Path) -> Path:
    return image.with_name(image.name + ".stamp")


def _stamp_text() -> str:
    return f"suite={SUITE}\nvariant=minbase\npackages={','.join(PACKAGES)}\n"


def _lock_path(image: Path) -> Path:
    return image.with_name(f".{image.name}.lock")


def image_ok(image: Path) -> bool:
    """Whether ``image`` is complete and made with this module's suite and package list."""
    stamp = _stamp(image)
    if not stamp.is_file() or stamp.read_text() != _stamp_text():
        return False
    needed = ("usr/lib/systemd/systemd", "usr/bin/python3", "usr/bin/dbus-daemon", "etc/os-release")
    return all((image / n).exists() for n in needed)


def _unmount_under(path: Path) -> None:
    """Unmount whatever an interrupted debootstrap left mounted below ``path``."""
    prefix = str(path) + "/"
    mounts = [
        line.split()[1]
        for line in Path("/proc/self/mounts").read_text().splitlines()
        if line.split()[1].startswith(prefix)
    ]
    for mount in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True, check=False)
    if any(
        line.split()[1].startswith(prefix)
        for line in Path("/proc/self/mounts").read_text().splitlines()
    ):
        raise NspawnError(f"cannot unmount what is mounted under {path}: remove it by hand")


def ensure_image(image: Path = IMAGE) -> tuple[Path, bool]:
    """Return the cached image, building it first if it is missing or incomplete.

    Returns ``(image, built)``; ``built`` says whether this call made it.
    """
    image.parent.mkdir(parents=True, exist_ok=True)
    with open(_lock_path(image), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if image_ok(image):
            return image, False
        for stale in [image, *image.parent.glob(f".{image.name}.build-*")]:
            if stale.exists():
                _unmount_under(stale)
                shutil.rmtree(stale)
        _stamp(image).unlink(missing_ok=True)
        build = image.with_name(f".{image.name}.build-{os.getpid()}")
        try:
            _run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    f"--include={','.join(PACKAGES)}",
                    SUITE,
                    str(build),
                    host_mirror(),
                ],
                BUILD_TIMEOUT,
            )
            # The downloaded .debs are installed: the image need not keep them.
            shutil.rmtree(build / "var/cache/apt/archives", ignore_errors=True)
            (build / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)
            build.rename(image)
        finally:
            if build.exists():
                _unmount_under(build)
                shutil.rmtree(build, ignore_errors=True)
        _stamp(image).write_text(_stamp_text())
        return image, True


def _ns_pid(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        match = re.search(r"^PPid:\s*(\d+)$", status, re.M)
        if match and int(match.group(1)) == pid:
            found.append(int(entry.name))
    return found


def pids_in_namespace(ns: str) -> list[int]:
    """Every live process whose PID namespace is ``ns`` (as ``readlink /proc/PID/ns/pid``)."""
    return [
        int(e.name)
        for e in Path("/proc").iterdir()
        if e.name.isdigit() and _ns_pid(int(e.name)) == ns
    ]


@contextlib.contextmanager
def booted(image: Path, out: Path, console_log: Path) -> Iterator[Container]:
    """A booted container of ``image`` with ``out`` bound at ``/out``, powered off on exit
    whatever happens (the console goes to ``console_log``)."""
    container = Container(image, out, console_log)
    with open(_lock_path(image), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)
        try:
            container.boot()
            yield container
        finally:
            container.poweroff()


class Container:
    """A container of ``image`` with ``out`` bound at ``/out``; see the module doc."""

    def __init__(self, image: Path, out: Path, console_log: Path) -> None:
        self.image = image
        self.out = out
        self.console_log = console_log
        self.nspawn: subprocess.Popen[bytes] | None = None
        self.pid1 = 0
        self.pidns = ""

    def boot(self) -> None:
        """Start ``systemd-nspawn`` and wait until systemd in there has finished booting."""
        with open(self.console_log, "wb") as console:
            self.nspawn = subprocess.Popen(
                [
                    # Should the test process die, the kernel sends nspawn SIGTERM.
                    "setpriv",
                    "--pdeathsig=TERM",
                    "systemd-nspawn",
                    "-q",
                    "-D",
                    str(self.image),
                    "-b",
                    "--register=no",
                    "--keep-unit",
                    "--volatile=overlay",
                    f"--bind={self.out}:/out",
                    "--console=passive",
                ],
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while not self.pid1:
            if self.nspawn.poll() is not None or time.monotonic() > deadline:
                raise NspawnError(
                    f"systemd-nspawn did not boot (exit {self.nspawn.returncode}): "
                    + self.console_log.read_text(errors="replace")[-2000:]
                )
            for child in _children(self.nspawn.pid):
                ns = _ns_pid(child)
                if ns and ns != _ns_pid(os.getpid()):
                    self.pid1, self.pidns = child, ns
            time.sleep(0.05)
        # is-system-running needs the bus; retry until systemd in there answers.
        while True:
            done = self.run("systemctl", "is-system-running", "--wait", check=False, timeout=60)
            if done.stdout.strip() in ("running", "degraded"):
                return
            if time.monotonic() > deadline + 60:
                raise NspawnError(f"the container did not finish booting: {done.stdout}")
            time.sleep(0.2)

    def run(
        self, *argv: str, check: bool = True, timeout: float = 120, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the container (all its namespaces) and wait for it."""
        cmd = [
            "nsenter",
            "-t",
            str(self.pid1),
            "-a",
            "env",
            "-i",
            "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG=C.UTF-8",
            "DEBIAN_FRONTEND=noninteractive",
            *argv,
        ]
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, check=False, input=input
        )
        if check and done.returncode != 0:
            raise NspawnError(
                f"in the container, {' '.join(argv)} exited {done.returncode}:\n"
                f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        return done

    def poweroff(self) -> None:
        """Stop the container however it is, and check nothing of it is left running."""
        nspawn = self.nspawn
        if nspawn is None:
            return
        if self.pid1 and nspawn.poll() is None:
            # SIGRTMIN+4 asks systemd for a clean poweroff.
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid1, signal.SIGRTMIN + 4)
            with contextlib.suppress(subprocess.TimeoutExpired):
                nspawn.wait(timeout=30)
        if nspawn.poll() is None:
            if self.pid1 and _ns_pid(self.pid1) == self.pidns:
                # Killing a PID namespace's init kills every process in it.
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid1, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                nspawn.wait(timeout=10)
        if nspawn.poll() is None:
            nspawn.kill()
            nspawn.wait(timeout=10)
        self.nspawn = None
        if self.pidns:
            deadline = time.monotonic() + 10
            while pids_in_namespace(self.pidns):
                if time.monotonic() > deadline:
                    raise NspawnError(
                        f"container processes left behind: {pids_in_namespace(self.pidns)}"
                    )
                time.sleep(0.1)
