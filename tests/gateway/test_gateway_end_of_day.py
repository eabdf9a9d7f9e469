"""Market hours over FIX, and the venue's end of day while the gateway is down.

With the us-equities calendar, after the close a NewOrderSingle is rejected MARKET_CLOSED (OrdRejReason 2,
exchange closed) and a replace gets an OrderCancelReject with the same text; a cancel still goes to the venue.

The venue's Expired reports wait in its FIX store; when the gateway logs on again they come back through
resend, are booked once (reservations released, ledger clean, an ``order.expired`` event each) and reach the
client when it reconnects. A GTC order survives the end of day and a venue restart and still works.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from fixclient import is_er, new_order, transact_time
from harness import GatewayClient, eventually
from sqlalchemy import select
from test_gateway_orders import ledger_is_clean

from oms.db.models import OrderEvent
from oms.domain.enums import OrderStatus
from oms.gateway import queries
from oms.gateway.gateway import Gateway
from oms.service.accounts import balances
from oms.service.orders import ServiceConfig, trading_calendar

pytestmark = [pytest.mark.fix, pytest.mark.timeout(120)]


def status(database, cl_ord_id: str) -> OrderStatus | None:  # type: ignore[no-untyped-def]
    record = queries.order_by_client(database, "ACC1", cl_ord_id)
    return None if record is None else record.order.status


def event_kinds(database, cl_ord_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    record = queries.order_by_client(database, "ACC1", cl_ord_id)
    assert record is not None
    table = OrderEvent.__table__
    with database.engine.connect() as connection:
        return list(connection.execute(select(table.c.kind).where(table.c.order_id == record.id).order_by(table.c.id)).scalars())


def test_day_and_gtd_orders_expire_at_the_venues_end_of_day_while_the_gateway_is_down(database, venue, gateway, connect) -> None:
    today = datetime.now(UTC).date()  # the simulated venue's trade date is UTC's
    client = connect("CLIENT1")
    for cl_ord_id, tif, extra in (("D1", "0", []), ("G1", "1", []), ("T1", "6", [(432, today.strftime("%Y%m%d"))])):
        client.send("D", new_order(cl_ord_id, symbol="AAPL", side="1", qty="100", price="180.00", tif=tif,
                                   extra=[(1, "ACC1"), *extra]))  # fmt: skip
        client.wait_for(is_er(cl_ord_id, "0"))
    client.stop()
    gateway.stop()

    assert len(venue.service.end_of_day(today)) == 2
    venue.stop()
    venue.start()  # the end of day is in the venue's journal: the restarted venue knows D1 and T1 are done
    gateway.start()

    eventually(lambda: status(database, "D1") is OrderStatus.EXPIRED and status(database, "T1") is OrderStatus.EXPIRED,
               timeout_s=20)  # fmt: skip
    gateway.gateway.worker.wait_idle()
    assert status(database, "G1") is OrderStatus.NEW
    assert balances(database, "ACC1").in_currency("USD").reserved == Decimal("18009.00")  # G1 alone: 18000 + fee
    assert event_kinds(database, "D1")[-1] == "order.expired" and event_kinds(database, "T1")[-1] == "order.expired"
    ledger_is_clean(database)

    again = connect("CLIENT1")
    for cl_ord_id in ("D1", "T1"):
        expired = again.wait_for(is_er(cl_ord_id, "C"), timeout_s=15)
        assert expired[39] == "C" and expired[151] == "0"
    again.send("F", [(11, "G1-X"), (41, "G1"), (1, "ACC1"), (55, "AAPL"), (54, "1"), (60, transact_time())])
    assert again.wait_for(is_er("G1-X", "4"))[41] == "G1"
    eventually(lambda: balances(database, "ACC1").in_currency("USD").reserved == 0)
    ledger_is_clean(database)



def test_after_the_close_new_orders_and_replaces_are_refused_market_closed_and_cancels_go(database, venue, gateway, tmp_path) -> None:
    gateway.stop()  # this test's gateway runs the us-equities calendar on a clock it sets
    now = [datetime(2026, 11, 23, 20, 59, 59, tzinfo=UTC)]  # 15:59:59 New York: still open
    hours = Gateway(gateway.settings, database, ServiceConfig(calendar=trading_calendar("us-equities")))
    hours.executor.clock = lambda: now[0]
    gateway.gateway = hours.start()
    assert hours.wait_venue(15)
    client = GatewayClient(gateway.client_port, tmp_path / "client-hours", "CLIENT1").start(10)
    try:
        client.send("D", new_order("H1", symbol="AAPL", side="1", qty="100", price="180.00", extra=[(1, "ACC1")]))
        client.wait_for(is_er("H1", "0"))
        held = balances(database, "ACC1").in_currency("USD").reserved

        now[0] = datetime(2026, 11, 23, 21, 0, tzinfo=UTC)  # 16:00 New York: the close is exclusive
        client.send("D", new_order("H2", symbol="AAPL", side="1", qty="100", price="180.00", extra=[(1, "ACC1")]))
        rejected = client.wait_for(is_er("H2", "8"))
        assert (rejected[103], rejected[58]) == ("2", "MARKET_CLOSED: time=2026-11-23T21:00:00+00:00, timezone=America/New_York")

        client.send("G", [(11, "H1-R"), (41, "H1"), (1, "ACC1"), (55, "AAPL"), (54, "1"), (60, transact_time()),
                          (38, "200"), (40, "2"), (44, "189.60"), (21, "1")])  # fmt: skip
        refused = client.wait_for(lambda m: m.msg_type == "9" and m.get(11) == "H1-R")
        assert refused[434] == "2" and refused[58].startswith("MARKET_CLOSED: ") and refused[39] == "0"
        assert balances(database, "ACC1").in_currency("USD").reserved == held

        client.send("F", [(11, "H1-C"), (41, "H1"), (1, "ACC1"), (55, "AAPL"), (54, "1"), (60, transact_time())])
        assert client.wait_for(is_er("H1-C", "4"))[41] == "H1"
        eventually(lambda: balances(database, "ACC1").in_currency("USD").reserved == 0)
        assert status(database, "H2") is OrderStatus.REJECTED
        ledger_is_clean(database)
    finally:
        client.stop()
