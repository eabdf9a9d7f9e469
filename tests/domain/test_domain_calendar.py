"""Business-day arithmetic for T+2 settlement."""

from __future__ import annotations

from datetime import date

import pytest

from oms.domain.calendar import add_business_days, is_business_day
from oms.domain.errors import InvalidValue

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
