"""Regenerate docs/live.svg: ``kexecwatch live`` on a bundled fixture, as rich records it.

    .venv/bin/python tools/make_screenshot.py                      # the default fixture
    .venv/bin/python tools/make_screenshot.py fixtures/audit/raw/X.log --out /tmp/x.svg

The fixture is replayed at full speed through the same model and renderer as the live
view; the clock is fixed (60 s of uptime) and the host name is given, so the picture
only changes when the fixture, the detector or the renderer does.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from rich.console import Console

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kexecwatch.adapters.live.feeds import ReplayFeed  # noqa: E402
from kexecwatch.adapters.live.render import render_dashboard  # noqa: E402
from kexecwatch.adapters.live.state import LiveModel  # noqa: E402
from kexecwatch.adapters.sources import expand_paths  # noqa: E402
from kexecwatch.rules import load_builtin_rules  # noqa: E402

DEFAULT_FIXTURES = ["fixtures/audit/enriched/all-scenarios.log"]
WIDTH, HEIGHT = 100, 46
UPTIME_S = 60.0


def build_model(paths: list[str], host_name: str) -> LiveModel:
    """Replay ``paths`` to the end, as ``kexecwatch live --replay --speed max`` would."""
    model = LiveModel(load_builtin_rules(), host_name=host_name)
    model.tick(0.0)
    feed = ReplayFeed(expand_paths(paths), None)
    while feed.pump(model, 0.0, budget_s=10.0) is not None:
        pass
    model.tick(UPTIME_S)
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="*", default=DEFAULT_FIXTURES, metavar="LOG")
    parser.add_argument("--out", default="docs/live.svg")
    parser.add_argument("--host-name", default="lab-host")
    args = parser.parse_args(argv)
    paths = [str(p) for p in args.paths]
    model = build_model(paths, args.host_name)
    console = Console(
        record=True,
        width=WIDTH,
        height=HEIGHT,
        file=io.StringIO(),
        force_terminal=True,
        color_system="truecolor",
    )
    console.print(render_dashboard(model.state, WIDTH, HEIGHT))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    console.save_svg(str(out), title="kexecwatch live")
    s = model.state
    print(f"{out}: {s.alerts} alerts, {len(s.activity)} kexec runs, {s.events} events")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
