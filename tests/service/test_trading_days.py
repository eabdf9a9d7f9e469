"""Days on the order path, on SQLite and PostgreSQL: which calendar date a time means to the market.

The market's date is its local one (New York for ``us-equities``), not UTC's: 20:30 in New York is already
tomorrow in UTC, and Auckland's morning is yesterday in UTC. A GTD date is checked against the market's date,
for a replace as for a new order, and a sale settles T+N business days after the market's trade date.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time
from decimal import Decimal

from sqlalchemy import text

from oms.domain.calendar import TradingCalendar
from oms.domain.commands import CancelOrder, ReplaceOrder
from oms.domain.enums import ExecType, OrderStatus, TimeInForce
from oms.domain.risk import FeeSchedule
from oms.service.accounts import settle
from oms.service.executor import CommandExecutor
from oms.service.orders import Outcome, ServiceConfig, trading_calendar
from oms.service.uow import Database
from tests.service.factories import (
    buy,
    cash,
    ledger_violations,
    new_ack,
    position_of,
    report,
    sell,
)

D = Decimal
US_EQUITIES = ServiceConfig(fee_schedule=FeeSchedule(rate=D(0)), calendar=trading_calendar("us-equities"))
THURSDAY_NOON_NEW_YORK = datetime(2026, 11, 19, 17, 0, tzinfo=UTC)
THURSDAY_EVENING_NEW_YORK = datetime(2026, 11, 20, 1, 30, tzinfo=UTC)  # 20:30 EST Thursday = Friday in UTC


def at(database: Database, now: datetime, config: ServiceConfig = US_EQUITIES) -> CommandExecutor:
    return CommandExecutor(database, config, clock=lambda: now)


def test_a_sale_filled_after_the_close_settles_t_plus_two_from_the_new_york_trade_date(database: Database) -> None:
    """A resting sell the venue fills at 20:30 New York on Thursday traded on Thursday: it settles on Monday,
    not on Tuesday as it would from Friday, the date in UTC."""
    position_of(database, "ACC1", "AAPL", "10", "190.00")
    placed = at(database, THURSDAY_NOON_NEW_YORK).one(sell("ACC1", "S1", "10", "195.00"))
    assert placed.outcome is Outcome.ACCEPTED and placed.venue_cl_ord_id is not None
    late = at(database, THURSDAY_EVENING_NEW_YORK)
    late.one(new_ack(placed.venue_cl_ord_id, transact_time=THURSDAY_NOON_NEW_YORK))
    done = late.one(report(placed.venue_cl_ord_id, ExecType.TRADE, OrderStatus.FILLED, last_qty="10", last_px="195.00",
                           transact_time=THURSDAY_EVENING_NEW_YORK))  # fmt: skip
    assert done.order is not None and done.order.status is OrderStatus.FILLED
    with database.engine.connect() as connection:
        row = connection.execute(text("SELECT trade_date, settle_date FROM pending_settlements")).one()
    assert (str(row[0]), str(row[1])) == ("2026-11-19", "2026-11-23")

    assert settle(database, date(2026, 11, 20)) == 0  # Friday: T+1
    assert settle(database, date(2026, 11, 23)) == 1  # Monday: T+2 in New York
    assert cash(database, "ACC1")[2] == 0
    assert ledger_violations(database) == []


def test_a_replace_checks_its_gtd_date_against_the_markets_date_as_a_new_order_does(database: Database) -> None:
    """Auckland opens at 10:00 NZDT, 21:00 UTC the day before: during its morning session a GTD date that is
    already past there is still 'today' in UTC. A replace must refuse it exactly as a new order does."""
    auckland = ServiceConfig(fee_schedule=FeeSchedule(rate=D(0)),
                             calendar=TradingCalendar.weekdays("Pacific/Auckland", time(10, 0), time(16, 45)))  # fmt: skip
    tuesday_morning = datetime(2026, 11, 23, 21, 30, tzinfo=UTC)  # 10:30 NZDT Tuesday 24th
    monday = date(2026, 11, 23)
    placed = at(database, tuesday_morning, auckland).one(
        dataclasses.replace(buy("ACC1", "G1", "1", "190.00"), tif=TimeInForce.GTD, expire_date=date(2026, 11, 30)))
    assert placed.outcome is Outcome.ACCEPTED and placed.venue_cl_ord_id is not None
    at(database, tuesday_morning, auckland).one(new_ack(placed.venue_cl_ord_id))
    new_order = at(database, tuesday_morning, auckland).one(
        dataclasses.replace(buy("ACC1", "G2", "1", "190.00"), tif=TimeInForce.GTD, expire_date=monday))
    assert str(new_order.denial) == "INVALID_EXPIRE_DATE: expire_date=2026-11-23, today=2026-11-24"

    replace = ReplaceOrder(account="ACC1", cl_ord_id="G1-R", orig_cl_ord_id="G1", qty=D("2"), limit_price=D("190.00"),  # type: ignore[arg-type]
                           tif=TimeInForce.GTD, expire_date=monday)  # fmt: skip
    refused = at(database, tuesday_morning, auckland).one(replace)
    assert str(refused.denial) == "INVALID_EXPIRE_DATE: expire_date=2026-11-23, today=2026-11-24"
    assert refused.order is not None and refused.order.status is OrderStatus.NEW
    assert ledger_violations(database) == []


def test_outside_market_hours_a_replace_is_refused_market_closed_and_a_cancel_still_goes(database: Database) -> None:
    """After the close a replace is a new price or size the market cannot take now (a marketable one would
    trade after hours at a venue that runs 24x7): refused like a new order. Cancels still work."""
    placed = at(database, THURSDAY_NOON_NEW_YORK).one(buy("ACC1", "B1", "10", "180.00"))
    assert placed.outcome is Outcome.ACCEPTED and placed.venue_cl_ord_id is not None
    at(database, THURSDAY_NOON_NEW_YORK).one(new_ack(placed.venue_cl_ord_id))
    held = cash(database, "ACC1")[1]

    evening = at(database, THURSDAY_EVENING_NEW_YORK)
    replace = evening.one(ReplaceOrder(account="ACC1", cl_ord_id="B1-R", orig_cl_ord_id="B1", qty=D("20"),  # type: ignore[arg-type]
                                       limit_price=D("195.00")))  # fmt: skip
    assert str(replace.denial) == "MARKET_CLOSED: time=2026-11-20T01:30:00+00:00, timezone=America/New_York"
    assert replace.order is not None and replace.order.status is OrderStatus.NEW
    assert cash(database, "ACC1")[1] == held

    cancel = evening.one(CancelOrder(account="ACC1", cl_ord_id="B1-C", orig_cl_ord_id="B1"))  # type: ignore[arg-type]
    assert cancel.outcome is Outcome.ACCEPTED and cancel.order is not None
    assert cancel.order.status is OrderStatus.PENDING_CANCEL
    assert ledger_violations(database) == []
