from datetime import UTC, datetime

import pytest

from kexecwatch.errors import InputError
from kexecwatch.timespec import parse_time_ms

NOW = datetime(2026, 11, 30, 4, 30, 15, tzinfo=UTC)


def ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("now", ms(2026, 11, 30, 4, 30, 15)),
        ("now-9m", ms(2026, 11, 30, 4, 21, 15)),
        ("now+1d", ms(2026, 12, 1, 4, 30, 15)),
        ("now-1d/d", ms(2026, 11, 29)),
        ("now/h", ms(2026, 11, 30, 4)),
        ("now-1M", ms(2026, 10, 30, 4, 30, 15)),
        ("2026-11-30T04:00:00Z", ms(2026, 11, 30, 4)),
        ("2026-11-30", ms(2026, 11, 30)),
        ("2026-11-30T05:00:00+01:00", ms(2026, 11, 30, 4)),
        ("30 Nov 2026 04:00", ms(2026, 11, 30, 4)),
        ("2026-11-30||-1h", ms(2026, 11, 29, 23)),
        ("1796011798", 1796011798000),
    ],
)
def test_accepted_forms(spec: str, expected: int) -> None:
    assert parse_time_ms(spec, now=NOW) == expected


@pytest.mark.parametrize("spec", ["yesterday-ish", "now-9x", "", "2026-13-45", "now-"])
def test_bad_times_name_the_option(spec: str) -> None:
    with pytest.raises(InputError, match="bad --since"):
        parse_time_ms(spec, now=NOW, option="--since")
