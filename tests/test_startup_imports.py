"""Start-up: each subcommand imports only what it uses.

A replay of a small log is mostly start-up, and on a large log start-up is still part of
the budget (README, "Benchmarks"): ``replay`` must not load the service, the doctor, the
live view or the sequence engine (unless a sequence rule is loaded). The modules are
named through their own imports here, so a move of a module keeps this test true.
"""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from kexecwatch import rulecmds
from kexecwatch.adapters import doctor
from kexecwatch.adapters.daemon import config, sinks
from kexecwatch.adapters.daemon import run as daemon
from kexecwatch.adapters.live import view as liveview
from kexecwatch.core.detect.rule import sequence_state
from kexecwatch.native import binding
from tests.builders import exec_lines, join, user_line
from tests.daemon.test_sequence_checkpoint import sequence_rule

#: One exec that no rule alerts on.
QUIET_LOG = join(exec_lines(1, pid=10, comm="ls", exe="/usr/bin/ls", args=("ls", "-l")))
LOG = join(
    exec_lines(1, pid=10, comm="bash", exe="/usr/bin/bash", args=("bash",))
    + exec_lines(2, pid=11, ppid=10, args=("kexec", "-l", "vmlinuz"))
)

#: What only ``run``, ``doctor``, ``live`` and the rule commands need.
NOT_FOR_REPLAY: tuple[ModuleType, ...] = (daemon, doctor, liveview, config, sinks, rulecmds)

_PROBE = (
    "import gc, json, sys\n"
    "from kexecwatch.cli import main\n"
    "out = sys.argv.pop(1)\n"
    "try:\n"
    "    code = main(sys.argv[1:])\n"
    "except SystemExit as exit:\n"
    "    code = exit.code\n"
    "with open(out, 'w') as f:\n"
    "    json.dump({'modules': sorted(sys.modules), 'frozen': gc.get_freeze_count()}, f)\n"
    "sys.exit(code)\n"
)


def run_probe(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    """The exit code of ``kexecwatch ARGS``, every module loaded by its end and how many
    objects it took out of the garbage collector's passes (``env``: more environment)."""
    out = tmp_path / f"modules-{len(list(tmp_path.glob('modules-*')))}.json"
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, str(out), *args],
        capture_output=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )
    assert out.exists(), result.stderr.decode()
    return result.returncode, json.loads(out.read_text(encoding="utf-8"))


def modules_after(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[int, set[str]]:
    """The exit code of ``kexecwatch ARGS`` and every module loaded by its end."""
    code, found = run_probe(tmp_path, *args, env=env)
    return code, set(found["modules"])


def test_replay_with_the_default_rules_loads_no_service_doctor_live_view_or_sequences(
    tmp_path: Path,
) -> None:
    log = tmp_path / "kexec.log"
    log.write_bytes(LOG)
    code, loaded = modules_after(tmp_path, "replay", "--quiet", str(log))
    assert code == 1  # the kexec -l alert: the alert path ran too
    # socket: the host name comes from os.uname(), as socket.gethostname() gives it.
    unwanted = {m.__name__ for m in (*NOT_FOR_REPLAY, sequence_state, socket)}
    assert sorted(unwanted & loaded) == []
    assert "tomllib" not in loaded  # the built-in rules come parsed (rules/builtin.json)


def test_replay_with_a_sequence_rule_loads_the_sequence_engine(tmp_path: Path) -> None:
    log = tmp_path / "kexec.log"
    log.write_bytes(LOG)
    rule = sequence_rule(tmp_path)
    code, loaded = modules_after(tmp_path, "replay", "--quiet", "--rule", str(rule), str(log))
    assert code == 1
    assert sequence_state.__name__ in loaded
    assert sorted({m.__name__ for m in NOT_FOR_REPLAY} & loaded) == []


def test_each_subcommand_loads_only_its_own_shell(tmp_path: Path) -> None:
    _, loaded = modules_after(tmp_path, "audit-rules")
    assert sorted({m.__name__ for m in (daemon, doctor, liveview, config, sinks)} & loaded) == []
    _, loaded = modules_after(tmp_path, "doctor", "--help")
    assert doctor.__name__ in loaded
    assert sorted({m.__name__ for m in (daemon, liveview, rulecmds)} & loaded) == []


def test_replay_takes_start_up_objects_out_of_the_collectors_passes(tmp_path: Path) -> None:
    # The modules and compiled rules live as long as the process; the collector's full
    # passes would otherwise walk them again and again during the stream (README, "Design").
    log = tmp_path / "kexec.log"
    log.write_bytes(LOG)
    code, found = run_probe(tmp_path, "replay", "--quiet", str(log))
    assert code == 1
    assert found["frozen"] > 10_000


def test_the_python_scanner_loads_neither_the_native_binding_nor_ctypes(tmp_path: Path) -> None:
    # KEXECWATCH_SCANNER=python: the library is not wanted, so not even its binding loads.
    log = tmp_path / "kexec.log"
    log.write_bytes(LOG)
    code, loaded = modules_after(
        tmp_path, "replay", "--quiet", str(log), env={"KEXECWATCH_SCANNER": "python"}
    )
    assert code == 1
    assert sorted({binding.__name__, "ctypes"} & loaded) == []
    code, loaded = modules_after(tmp_path, "--version", env={"KEXECWATCH_SCANNER": "python"})
    assert code == 0
    assert sorted({binding.__name__, "ctypes"} & loaded) == []


def test_a_replay_that_writes_nothing_loads_no_json_writer_logging_or_resources(
    tmp_path: Path,
) -> None:
    # The usual replay finds nothing: it writes no document (orjson loads with the first
    # one), follows no file (logging: the follower's notices) and reads its built-in rules
    # beside their module (importlib.resources costs a tenth of the start-up), already
    # parsed (kexecwatch/rules/builtin.json: tomllib is pure Python and was a fixed cost).
    log = tmp_path / "quiet.log"
    log.write_bytes(QUIET_LOG)
    code, loaded = modules_after(tmp_path, "replay", "--quiet", str(log))
    assert code == 0
    assert sorted({"orjson", "logging", "importlib.resources", "tomllib"} & loaded) == []


def test_a_quiet_replay_of_a_plain_file_loads_no_hash_gzip_spelling_or_date_modules(
    tmp_path: Path,
) -> None:
    # Each is loaded only where it is used: hashlib (OpenSSL, about a tenth of the start-up)
    # for an entity_id in a rendered document, gzip for a gzip file, difflib for a "did you
    # mean" hint on a rule problem. Start-up itself needs none of them (it used to render
    # ~160 sample documents: core/process/doctables.py stores what they showed).
    log = tmp_path / "user.log"
    log.write_bytes(join([user_line(1)]))  # a record no rule reads: no document rendered
    code, loaded = modules_after(tmp_path, "replay", "--quiet", str(log))
    assert code == 0
    assert sorted({"hashlib", "_hashlib", "gzip", "difflib"} & loaded) == []
    # datetime: for the first document's @timestamp; threading: the native binding's
    # locks are _thread's (threading.Lock is _thread.allocate_lock).
    assert sorted({"datetime", "threading"} & loaded) == []
    # ... and each still loads when it is needed (the alert's document has entity ids).
    zipped = tmp_path / "kexec.log.gz"
    zipped.write_bytes(gzip.compress(LOG))
    code, loaded = modules_after(tmp_path, "replay", str(zipped))
    assert code == 1
    assert {"hashlib", "gzip", "datetime"} <= loaded

