"""Business-day arithmetic for T+2 settlement, and the us-equities session across daylight saving changes."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from oms.domain.calendar import add_business_days, is_business_day
from oms.domain.errors import InvalidValue
from oms.service.orders import trading_calendar

HOLIDAYS = frozenset({date(2024, 12, 25), date(2024, 12, 26), date(2025, 1, 1)})


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        (date(2024, 3, 4), 2, date(2024, 3, 6)),  # Monday T+2 -> Wednesday
        (date(2024, 3, 7), 2, date(2024, 3, 11)),  # Thursday -> Monday
        (date(2024, 3, 8), 2, date(2024, 3, 12)),  # Friday -> Tuesday
        (date(2024, 3, 9), 1, date(2024, 3, 11)),  # Saturday + 1 -> Monday
        (date(2024, 12, 23), 2, date(2024, 12, 27)),  # over two holidays
        (date(2024, 12, 31), 1, date(2025, 1, 2)),  # over New Year
        (date(2024, 3, 6), 0, date(2024, 3, 6)),
        (date(2024, 3, 11), -1, date(2024, 3, 8)),  # backwards over the weekend
        (date(2024, 3, 4), 10, date(2024, 3, 18)),
    ],
)
def test_add_business_days(start: date, n: int, expected: date) -> None:
    assert add_business_days(start, n, HOLIDAYS) == expected


def test_is_business_day() -> None:
    assert is_business_day(date(2024, 3, 4), HOLIDAYS)
    assert not is_business_day(date(2024, 3, 9), HOLIDAYS)
    assert not is_business_day(date(2024, 12, 25), HOLIDAYS)


@pytest.mark.parametrize("n", [10_000, True, 1.0])
def test_add_business_days_refuses_unbounded_or_non_int(n: object) -> None:
    with pytest.raises(InvalidValue):
        add_business_days(date(2024, 3, 4), n, HOLIDAYS)  # type: ignore[arg-type]


# The us-equities session across 2026's DST changes (2026-03-08 and 2026-11-01): 09:30-16:00 New York is
# 14:30-21:00 UTC in winter and 13:30-20:00 UTC in summer; the weekend of the change is closed.
@pytest.mark.parametrize(
    ("now", "is_open", "local_day"),
    [
        (datetime(2026, 3, 6, 14, 29, 59, tzinfo=UTC), False, date(2026, 3, 6)),  # Friday before: EST
        (datetime(2026, 3, 6, 14, 30, tzinfo=UTC), True, date(2026, 3, 6)),
        (datetime(2026, 3, 6, 20, 59, 59, tzinfo=UTC), True, date(2026, 3, 6)),
        (datetime(2026, 3, 8, 14, 30, tzinfo=UTC), False, date(2026, 3, 8)),  # the Sunday of the change
        (datetime(2026, 3, 9, 13, 29, 59, tzinfo=UTC), False, date(2026, 3, 9)),  # Monday after: EDT
        (datetime(2026, 3, 9, 13, 30, tzinfo=UTC), True, date(2026, 3, 9)),
        (datetime(2026, 3, 9, 20, 0, tzinfo=UTC), False, date(2026, 3, 9)),
        (datetime(2026, 10, 30, 19, 59, 59, tzinfo=UTC), True, date(2026, 10, 30)),  # Friday before: EDT
        (datetime(2026, 10, 30, 20, 0, tzinfo=UTC), False, date(2026, 10, 30)),
        (datetime(2026, 11, 1, 6, 30, tzinfo=UTC), False, date(2026, 11, 1)),  # 01:30 EST, the repeated hour
        (datetime(2026, 11, 2, 13, 30, tzinfo=UTC), False, date(2026, 11, 2)),  # Monday after: EST
        (datetime(2026, 11, 2, 14, 30, tzinfo=UTC), True, date(2026, 11, 2)),
        (datetime(2026, 11, 2, 20, 59, 59, tzinfo=UTC), True, date(2026, 11, 2)),
        (datetime(2026, 11, 3, 2, 0, tzinfo=UTC), False, date(2026, 11, 2)),  # 21:00 Monday: Tuesday in UTC
    ],
)
def test_the_us_equities_session_follows_new_york_across_dst(now: datetime, is_open: bool, local_day: date) -> None:
    calendar = trading_calendar("us-equities")
    assert calendar.is_open(now) is is_open
    assert calendar.local_date(now) == local_day
