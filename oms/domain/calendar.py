"""Business days (T+2 settlement) and trading sessions. Pure: every 'now' is passed in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from types import MappingProxyType
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from oms.domain.errors import InvalidValue

__all__ = ["MAX_BUSINESS_DAYS", "TradingCalendar", "add_business_days", "is_business_day"]

MAX_BUSINESS_DAYS: Final = 3660  # about 14 years: a bound on the loop, far beyond any settlement cycle
_SATURDAY: Final = 5


def is_business_day(day: date, holidays: frozenset[date]) -> bool:
    """Monday to Friday and not a holiday."""
    return day.weekday() < _SATURDAY and day not in holidays


def add_business_days(day: date, n: int, holidays: frozenset[date]) -> date:
    """The date `n` business days after `day` (before it when n < 0); `day` itself need not be a business day.

    T+2 settlement of a Friday trade is the following Tuesday; n == 0 returns `day` unchanged.
    """
    if isinstance(n, bool) or not isinstance(n, int) or abs(n) > MAX_BUSINESS_DAYS:
        raise InvalidValue(f"n must be an int within +-{MAX_BUSINESS_DAYS}, got {n!r}")
    step = timedelta(days=1 if n >= 0 else -1)
    remaining = abs(n)
    while remaining:
        day += step
        if is_business_day(day, holidays):
            remaining -= 1
    return day


@dataclass(frozen=True, slots=True, kw_only=True)
class TradingCalendar:
    """When a market accepts orders.

    `sessions` maps a weekday (0 = Monday) to (open, close) local times in `timezone`; open is inclusive, close
    exclusive. `early_closes` overrides the close on given dates. `always_open=True` means 24x7 (crypto).
    """

    timezone: str = "UTC"
    sessions: Mapping[int, tuple[time, time]] = field(default_factory=dict)
    holidays: frozenset[date] = frozenset()
    early_closes: Mapping[date, time] = field(default_factory=dict)
    always_open: bool = False
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "_zone", ZoneInfo(self.timezone))
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise InvalidValue(f"unknown timezone {self.timezone!r}") from error
        for weekday, (open_time, close_time) in self.sessions.items():
            if weekday not in range(7) or not open_time < close_time:
                raise InvalidValue(f"session {weekday}: need weekday 0-6 and open < close (no overnight sessions)")
        object.__setattr__(self, "sessions", MappingProxyType(dict(self.sessions)))
        object.__setattr__(self, "early_closes", MappingProxyType(dict(self.early_closes)))
        object.__setattr__(self, "holidays", frozenset(self.holidays))

    @classmethod
    def weekdays(cls, timezone: str, open_time: time, close_time: time, **kwargs: object) -> TradingCalendar:
        """The same session Monday to Friday."""
        return cls(timezone=timezone, sessions={day: (open_time, close_time) for day in range(5)}, **kwargs)  # type: ignore[arg-type]

    def local_date(self, now: datetime) -> date:
        """The market's calendar date at the aware instant `now` (GTD dates and trade dates are local)."""
        if now.tzinfo is None or now.utcoffset() is None:
            raise InvalidValue("now must be a timezone-aware datetime")
        return now.astimezone(self._zone).date()

    def is_open(self, now: datetime) -> bool:
        """Whether the market is in session at the aware instant `now`."""
        if now.tzinfo is None or now.utcoffset() is None:
            raise InvalidValue("now must be a timezone-aware datetime")
        if self.always_open:
            return True
        local = now.astimezone(self._zone)
        today = local.date()
        session = self.sessions.get(local.weekday())
        if session is None or today in self.holidays:
            return False
        open_time, close_time = session
        close_time = min(close_time, self.early_closes.get(today, close_time))
        return open_time <= local.time().replace(tzinfo=None) < close_time
