"""The venue closes each trading day by itself at ``[EXCHANGE] EndOfDayTime``: DAY orders (and GTD orders whose
date has come) expire with ExecType=Expired, GTC orders carry over, and a venue that was down at that time
runs the end of day it missed when it starts."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from fixclient import FixClient, is_er, new_order

from exchange.config import ConfigError, load_venue_config
from exchange.end_of_day import EndOfDaySchedule, parse_end_of_day_time

MIDNIGHT = EndOfDaySchedule(time(0, 0, 0))
REPO = Path(__file__).resolve().parents[2]


# --- when a day ends ----------------------------------------------------------------------------------------------


def test_an_end_of_day_at_midnight_closes_the_day_before() -> None:
    at = MIDNIGHT.next_after(datetime(2026, 11, 23, 21, 5, tzinfo=UTC))
    assert at == datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
    assert EndOfDaySchedule.trade_date_ended_at(at) == date(2026, 11, 23)


def test_an_afternoon_end_of_day_closes_its_own_date_and_the_next_one_is_a_day_later() -> None:
    close = EndOfDaySchedule(time(21, 0, 0))
    first = close.next_after(datetime(2026, 11, 23, 20, 59, 59, tzinfo=UTC))
    assert first == datetime(2026, 11, 23, 21, 0, tzinfo=UTC)
    assert EndOfDaySchedule.trade_date_ended_at(first) == date(2026, 11, 23)
    assert close.next_after(first) == first + timedelta(days=1)


def test_a_start_after_a_missed_close_with_nothing_journaled_since_runs_it() -> None:
    now = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    last_command = datetime(2026, 11, 23, 22, 0, tzinfo=UTC)
    assert MIDNIGHT.missed(now, last_command, last_closed=date(2026, 11, 22)) == date(2026, 11, 23)
    assert MIDNIGHT.missed(now, last_command, last_closed=None) == date(2026, 11, 23)


def test_a_start_runs_no_end_of_day_when_it_ran_already_or_there_is_nothing_or_the_day_moved_on() -> None:
    now = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    assert MIDNIGHT.missed(now, datetime(2026, 11, 23, 22, 0, tzinfo=UTC), date(2026, 11, 23)) is None
    assert MIDNIGHT.missed(now, None, None) is None  # an empty journal: no order to expire
    # commands after the close without an end of day (a venue that ran through it with the schedule off):
    # expiring now would take the new day's orders too
    assert MIDNIGHT.missed(now, datetime(2026, 11, 24, 7, 0, tzinfo=UTC), date(2026, 11, 22)) is None


@pytest.mark.parametrize("raw, expected", [("00:00:00", time(0)), ("21:30:05", time(21, 30, 5)), ("off", None),
                                            (" OFF ", None)])
def test_end_of_day_time_is_hh_mm_ss_in_utc_or_off(raw: str, expected: time | None) -> None:
    assert parse_end_of_day_time(raw) == expected


@pytest.mark.parametrize("raw", ["24:00:00", "9:30:00", "09:30", "16:00:00Z", "never", ""])
def test_a_bad_end_of_day_time_is_refused_at_start_naming_the_key(tmp_path: Path, raw: str) -> None:
    shipped = (REPO / "sessions.cfg").read_text(encoding="utf-8")
    assert "EndOfDayTime=00:00:00\n" in shipped
    path = tmp_path / "sessions.cfg"
    path.write_text(shipped.replace("EndOfDayTime=00:00:00\n", f"EndOfDayTime={raw}\n"), encoding="utf-8")
    with pytest.raises(ConfigError, match="EndOfDayTime"):
        load_venue_config(path)


def test_the_shipped_sessions_cfg_closes_the_day_at_the_sessions_end() -> None:
    config = load_venue_config(REPO / "sessions.cfg")
    assert config.end_of_day_time == time(0, 0, 0)


# --- over FIX -----------------------------------------------------------------------------------------------------


def _rest(client: FixClient, cl_ord_id: str, tif: str) -> None:
    """A buy far below the market: it rests."""
    client.send("D", new_order(cl_ord_id, symbol="MSFT", qty="10", price="100.00", tif=tif))
    client.wait_for(is_er(cl_ord_id, "0"))


def test_day_orders_expire_at_the_end_of_day_time_and_gtc_orders_carry_over(venue_factory, client_factory) -> None:
    at = (datetime.now(UTC) + timedelta(seconds=5)).time().replace(microsecond=0)
    venue = venue_factory(EndOfDayTime=at.strftime("%H:%M:%S"))
    client = client_factory(venue)
    _rest(client, "EOD-DAY", "0")
    _rest(client, "EOD-GTC", "1")
    expired = client.wait_for(is_er("EOD-DAY", "C"), timeout_s=12)
    assert (expired[39], expired[151], expired[14]) == ("C", "0", "0")
    assert client.no_more(is_er("EOD-GTC", "C"), wait_s=0.5)
    client.send("H", [(11, "EOD-GTC"), (55, "MSFT"), (54, "1")])
    assert client.wait_for(is_er("EOD-GTC", "I"))[39] == "0"


def test_a_venue_down_at_the_end_of_day_runs_it_when_it_starts(venue_factory, client_factory) -> None:
    from exchange.venue import Venue

    harness = venue_factory(EndOfDayTime="00:00:00")
    client = client_factory(harness)
    _rest(client, "MISS-DAY", "0")
    _rest(client, "MISS-GTC", "1")
    harness.restart()  # the same day: nothing expires
    client.wait_logon(timeout_s=8)
    client.send("H", [(11, "MISS-DAY"), (55, "MSFT"), (54, "1")])
    assert client.wait_for(is_er("MISS-DAY", "I"), timeout_s=8)[39] == "0"
    harness.stop()
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    harness.venue = Venue(harness.config, clock=lambda: tomorrow)  # started after the midnight it slept through
    harness.venue.start()
    client.wait_logon(timeout_s=8)
    assert client.wait_for(is_er("MISS-DAY", "C"), timeout_s=8)[39] == "C"
    assert client.no_more(is_er("MISS-GTC", "C"), wait_s=0.5)
    harness.restart()  # later starts that day run it no more
    client.wait_logon(timeout_s=8)
    assert client.no_more(is_er("MISS-DAY", "C"), wait_s=0.5)
