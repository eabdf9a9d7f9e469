"""FIX 4.4 order-state scenarios through the gateway; after each, client, venue and ledger agree."""

from __future__ import annotations

from decimal import Decimal

import pytest
from fixclient import is_er, new_order, transact_time
from harness import eventually, sqlite_only
from sqlalchemy import select
from test_gateway_orders import ledger_is_clean, reserved_rows

from exchange.faults import FaultKnob
from oms.db.models import Instrument
from oms.domain.enums import OrderStatus
from oms.gateway import queries
from oms.service.accounts import balances

pytestmark = [pytest.mark.fix, pytest.mark.timeout(90)]


def best_offer(venue, symbol: str = "AAPL") -> Decimal:  # type: ignore[no-untyped-def]
    _, asks = venue.venue.engine.engine.book_depth(symbol, 1)
    return asks[0][0]


def no_reservation_left(database, account: str) -> None:  # type: ignore[no-untyped-def]
    eventually(lambda: balances(database, account).in_currency("USD").reserved == 0)


# (ClOrdID, NewOrderSingle overrides, expected Text prefix, expected OrdRejReason)
DENIALS = [
    ("U1", {"symbol": "ZZZZ"}, "UNKNOWN_SYMBOL: ", "1"),
    ("U2", {"price": "190.001"}, "INVALID_PRICE: ", "11"),
    ("U3", {"qty": "0"}, "INVALID_QUANTITY: ", "13"),
    ("U4", {"qty": "2000000", "price": "1.00"}, "MAX_ORDER_QTY: ", "3"),
    ("U5", {"qty": "60000", "price": "189.50"}, "MAX_ORDER_NOTIONAL: ", "3"),
    ("U6", {"price": "250.00"}, "PRICE_OUTSIDE_COLLAR: ", "99"),
    ("U7", {"qty": "5000", "price": "200.00"}, "INSUFFICIENT_BUYING_POWER: ", "3"),
    ("U8", {"side": "2"}, "INSUFFICIENT_POSITION: ", "3"),
    ("U9", {"ord_type": "P"}, "UNSUPPORTED_ORDER_TYPE: ", "11"),
]


def test_every_pre_trade_check_denies_with_its_reason_and_nothing_is_reserved(database, venue, gateway, connect) -> None:
    client = connect("CLIENT1")
    for cl_ord_id, overrides, text, code in DENIALS:
        fields = {"symbol": "AAPL", "side": "1", "qty": "100", "price": "190.00", **overrides}
        client.send("D", new_order(cl_ord_id, extra=[(1, "ACC1")], **fields))  # type: ignore[arg-type]
        reject = client.wait_for(is_er(cl_ord_id, "8"))
        assert reject[58].startswith(text), (cl_ord_id, reject[58])
        assert reject[39] == "8" and reject.get(103) in (code, "0" if code == "99" else code), (cl_ord_id, reject[103])

    assert reserved_rows(database, "ACC1") == 0
    assert balances(database, "ACC1").in_currency("USD").available == Decimal("1000000")
    assert venue.orders() == []
    ledger_is_clean(database)


@sqlite_only
def test_duplicate_cl_ord_id_with_different_content_is_denied(database, venue, gateway, connect) -> None:
    client = connect("CLIENT1")
    client.send("D", new_order("DUP", symbol="AAPL", side="1", qty="100", price="180.00", extra=[(1, "ACC1")]))
    client.wait_for(is_er("DUP", "0"))
    client.send("D", new_order("DUP", symbol="AAPL", side="1", qty="200", price="180.00", extra=[(1, "ACC1")]))

    reject = client.wait_for(is_er("DUP", "8"))
    assert reject[58].startswith("DUPLICATE_CL_ORD_ID: ") and reject[103] == "6"
    assert len(venue.orders()) == 1


def test_partial_fill_then_cancel(database, venue, gateway, connect) -> None:
    client = connect("CLIENT1")
    offer = best_offer(venue)
    client.send("D", new_order("P1", symbol="AAPL", side="1", qty="1500", price=str(offer), extra=[(1, "ACC1")]))

    partial = client.wait_for(is_er("P1", "F"))
    assert partial[39] == "1" and partial[14] == "1000" and partial[151] == "500"
    client.send("F", [(11, "P1-X"), (41, "P1"), (1, "ACC1"), (55, "AAPL"), (54, "1"), (60, transact_time())])
    canceled = client.wait_for(is_er("P1-X", "4"))
    assert canceled[39] == "4" and canceled[14] == "1000" and canceled[151] == "0"

    venue_id = queries.order_by_client(database, "ACC1", "P1").pending_venue_cl_ord_id  # type: ignore[union-attr]
    assert venue_id is None  # the request is finished
    assert balances(database, "ACC1").position("AAPL").available == Decimal(1000)
    no_reservation_left(database, "ACC1")
    ledger_is_clean(database)


def test_replace_after_partial_fill_carries_the_filled_quantity(database, venue, gateway, connect) -> None:
    client = connect("CLIENT1")
    offer = best_offer(venue)
    client.send("D", new_order("P2", symbol="AAPL", side="1", qty="1500", price=str(offer), extra=[(1, "ACC1")]))
    client.wait_for(is_er("P2", "F"))

    client.send("G", [(11, "P3"), (41, "P2"), (1, "ACC1"), (21, "1"), (55, "AAPL"), (54, "1"), (60, transact_time()),
                      (38, "1200"), (40, "2"), (44, "180.00")])
    replaced = client.wait_for(is_er("P3", "5"))
    assert replaced[41] == "P2" and replaced[39] == "1" and replaced[14] == "1000" and replaced[151] == "200"
    record = queries.order_by_client(database, "ACC1", "P3")
    assert record is not None and record.order.status is OrderStatus.PARTIALLY_FILLED
    at_venue = venue.order(record.venue_cl_ord_id)
    assert at_venue.cum_qty == Decimal(1000) and at_venue.qty == Decimal(1200)
    ledger_is_clean(database)


def test_replace_denied_by_risk_is_an_order_cancel_reject(database, venue, gateway, connect) -> None:
    client = connect("CLIENT1")
    client.send("D", new_order("RR1", symbol="AAPL", side="1", qty="100", price="180.00", extra=[(1, "ACC1")]))
    client.wait_for(is_er("RR1", "0"))

    client.send("G", [(11, "RR2"), (41, "RR1"), (1, "ACC1"), (21, "1"), (55, "AAPL"), (54, "1"), (60, transact_time()),
                      (38, "6000"), (40, "2"), (44, "180.00")])
    reject = client.wait_for(lambda m: m.msg_type == "9" and m.get(11) == "RR2")
    assert reject[41] == "RR1" and reject[434] == "2" and reject[39] == "0"
    assert reject[58].startswith("INSUFFICIENT_BUYING_POWER: ")
    assert venue.order(queries.order_by_client(database, "ACC1", "RR1").venue_cl_ord_id).qty == Decimal(100)  # type: ignore[union-attr]


def test_ioc_remainder_is_canceled_by_the_venue_and_released(database, venue, gateway, connect) -> None:
    client = connect("CLIENT1")
    client.send("D", new_order("I1", symbol="AAPL", side="1", qty="100", price="180.00", tif="3", extra=[(1, "ACC1")]))

    done = client.wait_for(lambda m: m.msg_type == "8" and m.get(11) == "I1" and m.get(39) in ("4", "C"))
    assert done[151] == "0" and done.get(41) is None  # unsolicited: no OrigClOrdID
    no_reservation_left(database, "ACC1")
    ledger_is_clean(database)


def test_venue_reject_reaches_the_client_and_releases_the_reservation(database, venue, gateway, connect) -> None:
    client = connect("CLIENT1")
    venue.service.faults.arm(FaultKnob.REJECT, 1)
    client.send("D", new_order("VR1", symbol="AAPL", side="1", qty="100", price="190.00", extra=[(1, "ACC1")]))

    reject = client.wait_for(is_er("VR1", "8"))
    assert "FAULT_INJECTED" in reject[58] and reject[39] == "8"
    record = queries.order_by_client(database, "ACC1", "VR1")
    assert record is not None and record.order.status is OrderStatus.REJECTED
    no_reservation_left(database, "ACC1")
    ledger_is_clean(database)


def test_duplicated_venue_report_is_applied_and_relayed_once(database, venue, gateway, connect) -> None:
    client = connect("CLIENT1")
    venue.service.faults.arm(FaultKnob.DUPLICATE, 2)
    client.send("D", new_order("DR1", symbol="AAPL", side="1", qty="100", price="190.00", extra=[(1, "ACC1")]))

    client.wait_for(is_er("DR1", "F"))
    gateway.gateway.worker.wait_idle()
    assert len([m for m in client.received("8") if m.get(11) == "DR1" and m.get(150) == "F"]) == 1
    assert balances(database, "ACC1").position("AAPL").available == Decimal(100)
    ledger_is_clean(database)


@pytest.mark.parametrize("expire_date", ["2026124", "2026-12-04", "202612041"])
def test_an_expire_date_that_is_not_exactly_yyyymmdd_is_rejected_and_no_order_is_placed(
    database, venue, gateway, connect, expire_date: str
) -> None:
    """LocalMktDate is YYYYMMDD: '2026124' is 2026-12-04 or 2026-01-24, and no guess is booked."""
    client = connect("CLIENT1")
    client.send("D", new_order("X1", tif="6", extra=[(1, "ACC1"), (432, expire_date)]))
    reject = client.wait_for(lambda m: m.msg_type == "3")
    assert reject[371] == "432" and reject[45]
    assert queries.order_by_client(database, "ACC1", "X1") is None and venue.orders() == []
    client.send("D", new_order("X2", tif="6", extra=[(1, "ACC1"), (432, "29991231")]))
    assert client.wait_for(is_er("X2", "0"))[432] == "29991231"
    assert client.logged_on.is_set() and reserved_rows(database, "ACC1") == 1


@sqlite_only
def test_missing_order_qty_gets_a_business_message_reject_and_the_session_stays_up(database, venue, gateway, connect) -> None:
    client = connect("CLIENT1")
    client.send("D", [(11, "M1"), (1, "ACC1"), (21, "1"), (55, "AAPL"), (54, "1"), (60, transact_time()), (40, "2"),
                      (44, "190.00")])  # no OrderQty

    reject = client.wait_for(lambda m: m.msg_type == "j")  # QuickFIX: conditionally required field missing
    assert reject[372] == "D" and reject[380] == "5" and "(38)" in reject[58]

    client.send("D", new_order("M2", price="not-a-price", extra=[(1, "ACC1")]))
    session_reject = client.wait_for(lambda m: m.msg_type == "3")
    assert session_reject[371] == "44" and session_reject[373] == "6"  # incorrect data format
    assert client.logged_on.is_set() and reserved_rows(database, "ACC1") == 0


@sqlite_only
def test_reference_prices_follow_the_venues_market_data(database, venue, gateway, connect) -> None:
    for _ in range(3):
        venue.service.step_market_maker()
    bids, asks = venue.venue.engine.engine.book_depth("MSFT", 1)
    mid = (bids[0][0] + asks[0][0]) / 2

    def reference() -> Decimal | None:
        table = Instrument.__table__
        with database.engine.connect() as connection:
            return connection.execute(select(table.c.reference_price).where(table.c.symbol == "MSFT")).scalar_one()

    assert eventually(lambda: reference() == mid, timeout_s=10) is True


def test_day_order_expires_at_the_venues_end_of_day(database, venue, gateway, connect) -> None:
    client = connect("CLIENT1")
    client.send("D", new_order("E1", symbol="AAPL", side="1", qty="100", price="180.00", tif="0", extra=[(1, "ACC1")]))
    client.wait_for(is_er("E1", "0"))

    venue.service.end_of_day()
    expired = client.wait_for(is_er("E1", "C"))
    assert expired[39] == "C" and expired[151] == "0"
    no_reservation_left(database, "ACC1")
    record = queries.order_by_client(database, "ACC1", "E1")
    assert record is not None and record.order.status is OrderStatus.EXPIRED
    ledger_is_clean(database)
