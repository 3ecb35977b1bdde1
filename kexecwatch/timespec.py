"""Time specifications for ``--since``/``--until``.

Accepted forms:

* Elastic date math: ``now``, ``now-9m``, ``now+1d``, ``now-1d/d`` (units
  ``y M w d h H m s``; ``/unit`` rounds down), and ``<date>||-1h``.
* ISO 8601 (``2026-11-30T04:00:00Z``, ``2026-11-30``) and the common formats
  python-dateutil reads (``30 Nov 2026 04:00``, ``11/30/2026 4am``).
* Epoch seconds (``1796011798`` or ``1796011798.5``).

A time without a zone is taken as UTC, since audit records carry UTC epochs.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from dateutil.relativedelta import relativedelta

from kexecwatch.errors import InputError

__all__ = ["parse_time_ms"]

_MATH = re.compile(r"([+-])(\d+)([yMwdhHms])|/([yMwdhHms])")
_UNITS: dict[str, relativedelta | timedelta] = {
    "y": relativedelta(years=1),
    "M": relativedelta(months=1),
    "w": timedelta(weeks=1),
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "H": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
}


def parse_time_ms(text: str, *, now: datetime, option: str = "time") -> int:
    """Parse a time specification into epoch milliseconds.

    Args:
        text: the specification (see the module docstring).
        now: the current time, for ``now`` expressions.
        option: the option name, for the error message.

    Raises:
        InputError: naming the option and the text when it cannot be read.
    """
    spec = text.strip()
    try:
        if spec.startswith("now"):
            return _to_ms(_apply_math(now.astimezone(UTC), spec[3:], text, option))
        anchor, sep, math = spec.partition("||")
        if sep:
            return _to_ms(_apply_math(_parse_absolute(anchor), math, text, option))
        return _to_ms(_parse_absolute(spec))
    except (ValueError, OverflowError) as exc:
        raise InputError(
            f"bad {option} {text!r}: expected an ISO date, a common date format, "
            f"epoch seconds or date math such as now-9m ({exc})"
        ) from None


def _parse_absolute(spec: str) -> datetime:
    if re.fullmatch(r"\d{9,11}(\.\d+)?", spec):
        return datetime.fromtimestamp(float(spec), tz=UTC)
    if not spec:
        raise ValueError("empty")
    # Imported here: the parser costs 30 ms of start-up, and most runs give no date.
    from dateutil import parser as date_parser

    parsed = date_parser.parse(spec)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _apply_math(base: datetime, math: str, text: str, option: str) -> datetime:
    pos = 0
    value = base
    while pos < len(math):
        match = _MATH.match(math, pos)
        if match is None:
            raise ValueError(f"cannot read date math at {math[pos:]!r}")
        sign, amount, unit, round_unit = match.groups()
        if round_unit:
            value = _round_down(value, round_unit)
        else:
            step = _UNITS[unit] * int(amount)
            value = value + step if sign == "+" else value - step
        pos = match.end()
    return value


def _round_down(value: datetime, unit: str) -> datetime:
    if unit == "y":
        return value.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    if unit == "M":
        return value.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if unit == "w":
        day = value.replace(hour=0, minute=0, second=0, microsecond=0)
        return day - timedelta(days=day.weekday())
    if unit == "d":
        return value.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit in ("h", "H"):
        return value.replace(minute=0, second=0, microsecond=0)
    if unit == "m":
        return value.replace(second=0, microsecond=0)
    return value.replace(microsecond=0)


def _to_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)
