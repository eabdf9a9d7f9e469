"""When the venue's trading day ends, and whether a restart missed an end of day.

The venue expires DAY orders (and GTD orders whose date has come) at its end of day, once a day at
``[EXCHANGE] EndOfDayTime`` (UTC, like the sessions' ``StartTime``/``EndTime``). The day that ends is the UTC
date of the instant just before it: with 00:00:00, the end of day at midnight closes the day before.

A venue that was down at that instant runs the end of day it missed when it starts, but only when nothing
was journaled after the instant: then every working DAY order is from the day that ended. A journal with
commands after it (a venue that ran through the instant with the schedule off) is left alone: expiring
then would also expire orders of the new day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

_TICK = timedelta(microseconds=1)


@dataclass(frozen=True)
class EndOfDaySchedule:
    """A daily end of day at ``at`` (UTC)."""

    at: time

    def next_after(self, now: datetime) -> datetime:
        """The first end of day strictly after ``now`` (aware, UTC)."""
        candidate = datetime.combine(now.astimezone(UTC).date(), self.at, tzinfo=UTC)
        while candidate <= now:
            candidate += timedelta(days=1)
        return candidate

    def last_at_or_before(self, now: datetime) -> datetime:
        """The most recent end of day at or before ``now``."""
        return self.next_after(now) - timedelta(days=1)

    @staticmethod
    def trade_date_ended_at(instant: datetime) -> date:
        """The trading day an end of day at ``instant`` closes: the UTC date just before it."""
        return (instant.astimezone(UTC) - _TICK).date()

    def missed(self, now: datetime, last_command_at: datetime | None, last_closed: date | None) -> date | None:
        """The trade date whose end of day a venue starting at ``now`` missed, or None.

        ``last_command_at`` is the timestamp of the journal's last command (None: empty journal, nothing to
        expire); ``last_closed`` the trade date of its last end of day.
        """
        if last_command_at is None:
            return None
        due = self.last_at_or_before(now)
        closes = self.trade_date_ended_at(due)
        if last_closed is not None and last_closed >= closes:
            return None
        return closes if last_command_at < due else None


def parse_end_of_day_time(raw: str) -> time | None:
    """``HH:MM:SS`` (UTC), or ``off`` for a venue whose days end only when an operator says so."""
    text = raw.strip()
    if text.lower() == "off":
        return None
    try:
        parsed = datetime.strptime(text, "%H:%M:%S")
    except ValueError:
        raise ValueError("expected HH:MM:SS (UTC) or off") from None
    if len(text) != 8:
        raise ValueError("expected HH:MM:SS (UTC) or off")
    return parsed.time()
