"""Full events, made cheaper: each shortcut gives the very outputs of the slow path.

- A fast-path run a rule prefilter needs is read straight from its bytes
  (``process_event_of_run``), without records or an assembled event in between.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kexecwatch.core.detect import detector as detector_module
from kexecwatch.core.detect.detector import Detector, DetectorOptions
from tests.builders import join
from tests.core.detect.test_detector import fingerprint
from tests.core.process.test_run_events import kernel_exec, runs
from tests.core.simple_rule import SimpleRule, kexec_like


def _every(doc: dict[str, Any]) -> bool:
    return True


def _outputs(data: bytes, rules: list[SimpleRule], *, chunk: int | None = None) -> list[str]:
    det = Detector(rules, host_name="h", options=DetectorOptions(emit_events=False))
    out: list[object] = []
    step = chunk or len(data) or 1
    for pos in range(0, len(data), step):
        out += det.feed(data[pos : pos + step])
    out += det.flush()
    return fingerprint(out)


def _slow(data: bytes, rules: list[SimpleRule], **kw: Any) -> list[str]:
    """The outputs with every run built the reference way (records, then the event)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(detector_module, "process_event_of_run", lambda *a, **k: None)
        return _outputs(data, rules, **kw)


LOG = join(
    kernel_exec(1, ("bash", "-c", "x"))
    + kernel_exec(2, ("kexec", "-l", "vmlinuz"))
    + kernel_exec(3, ("kexec", "-e"))
)


def test_a_run_a_rule_needs_is_read_without_records() -> None:
    # Fails on the old code: it built every such run from its records.
    built: list[object] = []
    reference = detector_module.process_event_from

    def counting(*args: Any, **kwargs: Any) -> Any:
        built.append(args[0])
        return reference(*args, **kwargs)

    rules = [SimpleRule(kexec_like)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(detector_module, "process_event_from", counting)
        fast = _outputs(LOG, rules)
    assert built == []
    assert fast == _slow(LOG, rules)
    assert sum(line.startswith("alert ") for line in fast) == 3


@settings(max_examples=150, deadline=None)
@given(st.lists(runs(), min_size=1, max_size=5), st.integers(1, 400))
def test_runs_read_straight_give_the_reference_outputs(parts: list[bytes], chunk: int) -> None:
    data = b"".join(parts)
    rules = [SimpleRule(_every), SimpleRule(kexec_like, rule_id="kexec")]
    assert _outputs(data, rules, chunk=chunk) == _slow(data, rules, chunk=chunk)
