"""``kexecwatch run`` and the rule cache: used as configured, silent where it cannot write.

A real daemon follows a log that a fake auditd writes, with a small detection-rules
checkout (tests/test_rule_source.py) as its rules. The hardened unit may give the service
no writable cache directory; the daemon then loads its rules from their files without a
log line about the cache.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kexecwatch.adapters.daemon.config import Config, load_config
from kexecwatch.errors import ConfigError
from tests.daemon.harness import Daemon, FakeAuditd
from tests.test_rule_source import checkout


def _run(tmp_path: Path, *cache_args: str) -> str:
    rules = checkout(tmp_path / "checkout")
    log = tmp_path / "audit.log"
    w = FakeAuditd(log)
    d = Daemon(tmp_path, log, extra_args=("--rule", str(rules), "--no-builtin-rules", *cache_args))
    w.emit(kexec=True)
    d.wait_alerts(2)
    assert d.stop() == 0
    return d.stderr()


def test_the_daemon_keeps_its_rule_cache_in_the_configured_directory(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    own = _run(tmp_path, "--rule-cache-dir", str(cache))
    assert "rule_cache" not in own
    assert len(json.loads((cache / "rules.json").read_text())["entries"]) == 7


def test_a_cache_directory_the_service_cannot_write_is_skipped_silently(tmp_path: Path) -> None:
    # /proc/self/fd exists and no process can create a file in it, as a read-only
    # home under ProtectHome=/ProtectSystem= refuses writes.
    own = _run(tmp_path, "--rule-cache-dir", "/proc/self/fd")
    assert "rule_cache" not in own and "rules_loaded" in own


def test_no_rule_cache_writes_nothing(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _run(tmp_path, "--rule-cache-dir", str(cache), "--no-rule-cache")
    assert not cache.exists()


def test_the_configuration_keys_of_the_rule_cache(tmp_path: Path) -> None:
    config = tmp_path / "k.toml"
    config.write_text('rule-cache = false\nrule-cache-dir = "/var/cache/kw"\n')
    assert load_config(str(config)) == Config(rule_cache=False, rule_cache_dir="/var/cache/kw")
    config.write_text('rule-cache = "no"\n')
    with pytest.raises(ConfigError, match="rule-cache: expected bool"):
        load_config(str(config))
