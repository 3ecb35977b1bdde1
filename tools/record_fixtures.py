"""Record the audit fixtures of fixtures/scenarios.toml with the real auditd.

Run as root from the repository root::

    sudo .venv/bin/python tools/record_fixtures.py            # everything
    sudo .venv/bin/python tools/record_fixtures.py v7-noise   # some scenarios

Every scenario is recorded into its own log twice: ``fixtures/audit/raw/<name>.log``
(log_format RAW, no node) and ``fixtures/audit/enriched/<name>.log`` (ENRICHED,
``node=kxlab-node``), plus one combined stream per ``[[combined]]`` entry. The logs
are copied exactly as auditd wrote them, after the kernel queue drained.

Scenario commands run as the system user ``kxlab`` (created when missing) through
``setpriv`` (no PAM records, unlike runuser), with a clean environment and cwd
/srv/kxlab, and the audit rules are restricted with ``-F uid=<kxlab>``. A stand-in
kexec (a copy of /bin/true) is installed at /usr/sbin/kexec for the recording;
a real kexec there makes the recorder abort, so it never runs one.
"""

from __future__ import annotations

import argparse
import contextlib
import filecmp
import os
import pwd
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tools.auditlab import (  # noqa: E402
    AuditdSession,
    AuditLabError,
    LogFormat,
    audit_status,
    auditctl,
    read_rules_file,
    scoped_rules,
)
from tools.scenarios import Manifest, Scenario, load_manifest  # noqa: E402

USER = "kxlab"
NODE = "kxlab-node"
KEXEC = Path("/usr/sbin/kexec")
TRUE = Path("/usr/bin/true")
OUT = REPO / "fixtures" / "audit"
FORMATS: dict[str, tuple[LogFormat, str | None]] = {
    "raw": ("RAW", None),
    "enriched": ("ENRICHED", NODE),
}
CLEAN_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/srv/kxlab",
    "USER": USER,
    "LOGNAME": USER,
    "SHELL": "/bin/bash",
    "LANG": "C.UTF-8",
}


def ensure_user() -> int:
    """The uid of ``kxlab``, creating it (system user, no home) when missing."""
    try:
        return pwd.getpwnam(USER).pw_uid
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                USER,
            ],
            check=True,
        )
        return pwd.getpwnam(USER).pw_uid


class StandIns:
    """Temporary files at system paths (the kexec stand-in, packaged kdump scripts).

    A path is taken only when it does not exist, or when it already holds exactly
    our content (left over by an interrupted run). Anything else aborts.
    """

    def __init__(self) -> None:
        self._files: list[Path] = []
        self._dirs: list[Path] = []

    def install(self, path: Path, *, copy_of: Path | None = None, text: str = "") -> None:
        if path.is_symlink() or path.exists():
            same = (
                filecmp.cmp(path, copy_of, shallow=False)
                if copy_of
                else path.read_text(errors="replace") == text
            )
            if path.is_symlink() or not same:
                raise AuditLabError(f"{path} exists and is not our stand-in; refusing to use it")
        missing = []
        for parent in path.parents:
            if parent.exists():
                break
            missing.append(parent)
        for parent in reversed(missing):
            parent.mkdir()
            self._dirs.append(parent)
        if copy_of:
            shutil.copyfile(copy_of, path)
        else:
            path.write_text(text)
        path.chmod(0o755)
        self._files.append(path)

    def remove(self) -> None:
        for path in reversed(self._files):
            path.unlink(missing_ok=True)
        for directory in reversed(self._dirs):
            with contextlib.suppress(OSError):
                directory.rmdir()
        self._files.clear()
        self._dirs.clear()


def prepare_lab(manifest: Manifest, scenarios: Sequence[Scenario], uid: int = 0) -> Path:
    """Recreate the lab directory with the common files and the scenarios' own.

    A scenario's ``writable`` directories (and the files in them) belong to ``uid``, the
    lab user, so that its commands can change them; everything else belongs to root.
    """
    lab = Path(manifest.lab_dir)
    shutil.rmtree(lab, ignore_errors=True)
    lab.mkdir(mode=0o755, parents=True)
    lab.chmod(0o755)
    for rel, text in manifest.common_files:
        (lab / rel).write_text(text.lstrip("\n"))
    for rel in manifest.true_copies:
        target = lab / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(TRUE, target)
        target.chmod(0o755)
    for rel, dest in manifest.symlinks:
        (lab / rel).symlink_to(dest)
    for sc in scenarios:
        for rel in sc.writable:
            (lab / rel).mkdir(parents=True, exist_ok=True)
            os.chown(lab / rel, uid, -1)
        for rel in sc.true_copies:
            target = lab / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(TRUE, target)
            target.chmod(0o755)
        for rel, text in sc.files:
            if rel.startswith("/"):
                continue
            path = lab / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text.lstrip("\n"))
            path.chmod(0o755 if text.lstrip("\n").startswith("#!") else 0o644)
            if any(Path(rel).is_relative_to(w) for w in sc.writable):
                os.chown(path, uid, -1)
    return lab


def run_driver(lab: Path, lines: Sequence[str]) -> None:
    """Run shell lines as kxlab: ``/bin/bash /srv/kxlab/run.sh`` in a clean environment."""
    driver = lab / "run.sh"
    driver.write_text("".join(f"{line}\n" for line in lines))
    driver.chmod(0o644)
    done = subprocess.run(
        [
            "setpriv",
            f"--reuid={USER}",
            f"--regid={USER}",
            "--init-groups",
            "/bin/bash",
            str(driver),
        ],
        cwd=lab,
        env=CLEAN_ENV,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=300,
        check=False,
    )
    if done.stderr:
        err = done.stderr.decode(errors="replace").strip()
        print(f"    (stderr of the driver: {err[:300]})", file=sys.stderr)


def control(session: AuditdSession, rules: Sequence[str], action: str) -> None:
    """Perform one ``@action`` line of the manifest as root."""
    session.wait_idle()
    if action == "@rules-remove":
        auditctl("-D")
    elif action == "@rules-restore":
        session.load_rules(rules)
    elif action == "@audit-disable":
        auditctl("-e", "0")
    elif action == "@audit-enable":
        auditctl("-e", "1")
    elif action == "@auditd-stop":
        session.stop()
    elif action == "@auditd-start":
        session.start()
    else:
        raise AuditLabError(f"unknown control action {action}")


def play(
    session: AuditdSession,
    rules: Sequence[str],
    manifest: Manifest,
    sc: Scenario,
    lab: Path,
    *,
    first: bool = True,
    last: bool = True,
) -> None:
    """Run one scenario: noise, then its commands split at ``@`` actions, then noise.

    In a combined stream only the first scenario gets the leading noise and only the
    last one the trailing noise, which keeps the stream small.
    """
    segments: list[list[str] | str] = [list(manifest.noise_before) if sc.noise and first else []]
    for command in sc.commands:
        if command.startswith("@"):
            segments += [command, []]
        else:
            segment = segments[-1]
            assert isinstance(segment, list)
            segment.append(command)
    tail = segments[-1]
    assert isinstance(tail, list)
    if sc.noise and last:
        tail.extend(manifest.noise_after)
    for segment in segments:
        if isinstance(segment, str):
            control(session, rules, segment)
        elif segment:
            run_driver(lab, segment)


def record(
    manifest: Manifest, scenarios: Sequence[Scenario], fmt: str, out: Path, uid: int
) -> None:
    """Record ``scenarios`` in one auditd session and copy its log to ``out``."""
    log_format, node = FORMATS[fmt]
    extra = [line for sc in scenarios for line in sc.audit_rules]
    rules = scoped_rules([*read_rules_file(REPO / "etc" / "audit.rules"), *extra], uid)
    with AuditdSession(rules, log_format=log_format, node_name=node) as session:
        lost_before = audit_status().lost
        for i, sc in enumerate(scenarios):
            lab = prepare_lab(manifest, scenarios, uid)
            play(session, rules, manifest, sc, lab, first=i == 0, last=i == len(scenarios) - 1)
        session.wait_idle()
        if audit_status().lost != lost_before:
            raise AuditLabError(f"{out.name}: the kernel lost audit events; raise the backlog")
        if session.log_path.with_name("audit.log.1").exists():
            raise AuditLabError(f"{out.name}: auditd rotated the log; raise max_log_file")
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(session.log_path, out)
    data = out.read_bytes()
    for machine_path in (b"/work/", b"/root/"):
        if machine_path in data or machine_path.hex().upper().encode() in data:
            raise AuditLabError(f"{out}: contains the machine path {machine_path.decode()}")
    print(f"  {fmt:8} {out.relative_to(REPO)}: {len(data)} bytes")


@contextlib.contextmanager
def stand_ins(manifest: Manifest) -> Iterator[None]:
    """Install the kexec stand-in and the scenarios' absolute-path files, then remove them."""
    installed = StandIns()
    try:
        installed.install(KEXEC, copy_of=TRUE)
        for sc in manifest.scenarios:
            for path, text in sc.files:
                if path.startswith("/"):
                    installed.install(Path(path), text=text.lstrip("\n"))
        yield
    finally:
        installed.remove()
        shutil.rmtree(manifest.lab_dir, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("names", nargs="*", help="scenarios or combined streams (default: all)")
    parser.add_argument("--format", choices=sorted(FORMATS), action="append")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("must run as root (it drives auditd and installs a kexec stand-in)")
    manifest = load_manifest()
    names = args.names or list(manifest.fixture_names)
    unknown = set(names) - set(manifest.fixture_names)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    uid = ensure_user()
    with stand_ins(manifest):
        for name in names:
            print(name)
            combined = {c.name: c for c in manifest.combined}
            if name in combined:
                group = [manifest.scenario(m) for m in combined[name].members]
            else:
                group = [manifest.scenario(name)]
            for fmt in args.format or sorted(FORMATS):
                record(manifest, group, fmt, OUT / fmt / f"{name}.log", uid)
    return 0


if __name__ == "__main__":
    sys.exit(main())
