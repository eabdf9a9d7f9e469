"""Order flow through all three hops (test client -> gateway -> simulated venue) with real QuickFIX sessions."""

from __future__ import annotations

from decimal import Decimal

import pytest
from fixclient import is_er, new_order, transact_time
from harness import eventually, sqlite_only
from sqlalchemy import func, select

from oms.db.models import Order as OrderRow
from oms.db.models import Reservation
from oms.gateway import queries
from oms.ledger.verify import verify_ledger
from oms.service.accounts import balances

pytestmark = [pytest.mark.fix, pytest.mark.timeout(60)]


def venue_cl_ord_id(database, account: str, cl_ord_id: str) -> str:  # type: ignore[no-untyped-def]
    record = queries.order_by_client(database, account, cl_ord_id)
    assert record is not None
    return record.venue_cl_ord_id


def ledger_is_clean(database) -> None:  # type: ignore[no-untyped-def]
    with database.engine.connect() as connection:
        violations = verify_ledger(connection)
    assert violations == []


def test_order_placed_and_filled_end_to_end(database, venue, gateway, connect) -> None:
    client = connect("CLIENT1")
    client.send("D", new_order("C1", symbol="AAPL", side="1", qty="100", price="190.00", extra=[(1, "ACC1")]))

    accepted = client.wait_for(is_er("C1", "0"))
    fill = client.wait_for(is_er("C1", "F"))
    assert accepted[39] == "0" and accepted[1] == "ACC1"
    assert fill[39] == "2" and fill[32] == "100" and fill[14] == "100" and fill[151] == "0"
    assert Decimal(fill[31]) <= Decimal("190.00") and fill[37] == accepted[37]

    # The venue saw our ClOrdID, never the client's.
    ours = venue_cl_ord_id(database, "ACC1", "C1")
    assert ours != "C1" and venue.order(ours) is not None and venue.order("C1") is None
    # The ledger: 100 shares bought, cash paid with the fee, nothing left reserved, every entry balanced.
    held = balances(database, "ACC1")
    assert held.position("AAPL").available == Decimal(100)
    paid = Decimal(fill[31]) * 100
    cash = held.in_currency("USD")
    assert cash.available < Decimal("1000000") - paid and cash.reserved == 0
    ledger_is_clean(database)


def reserved_rows(database, account: str) -> int:  # type: ignore[no-untyped-def]
    table = Reservation.__table__
    with database.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table).where(table.c.account_id == account)).scalar_one())


def order_rows(database, account: str) -> int:  # type: ignore[no-untyped-def]
    table = OrderRow.__table__
    with database.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table).where(table.c.account_id == account)).scalar_one())


def cancel(client, cl_ord_id: str, orig: str, account: str = "ACC1", symbol: str = "AAPL", side: str = "1") -> None:  # type: ignore[no-untyped-def]
    client.send("F", [(11, cl_ord_id), (41, orig), (1, account), (55, symbol), (54, side), (60, transact_time()),
                      (38, "100")])


def replace(client, cl_ord_id: str, orig: str, qty: str, price: str, account: str = "ACC1", *,  # type: ignore[no-untyped-def]
            symbol: str = "AAPL", side: str = "1", prices: tuple[tuple[int, str], ...] | None = None,
            order_type: str = "2") -> None:
    client.send("G", [(11, cl_ord_id), (41, orig), (1, account), (21, "1"), (55, symbol), (54, side),
                      (60, transact_time()), (38, qty), (40, order_type), *(prices or ((44, price),))])


def resting_buy(client, cl_ord_id: str, price: str = "180.00", qty: str = "100", account: str = "ACC1"):  # type: ignore[no-untyped-def]
    """A buy far below the market maker's offer: it rests at the venue."""
    client.send("D", new_order(cl_ord_id, symbol="AAPL", side="1", qty=qty, price=price, extra=[(1, account)]))
    return client.wait_for(is_er(cl_ord_id, "0"))


def test_pre_trade_denial_is_an_execution_report_reject_and_reserves_nothing(database, venue, gateway, connect) -> None:
    client = connect("CLIENT1")
    client.send("D", new_order("BIG", symbol="AAPL", side="1", qty="50000", price="190.00", extra=[(1, "ACC1")]))

    reject = client.wait_for(is_er("BIG", "8"))
    assert reject[39] == "8" and reject[103] == "3"
    assert reject[58].startswith("INSUFFICIENT_BUYING_POWER: ")
    assert reserved_rows(database, "ACC1") == 0
    assert balances(database, "ACC1").in_currency("USD").available == Decimal("1000000")
    assert venue.orders() == []
    ledger_is_clean(database)


def test_cancel_releases_the_reservation_and_echoes_the_client_ids(database, venue, gateway, connect) -> None:
    client = connect("CLIENT1")
    resting_buy(client, "R1")
    assert balances(database, "ACC1").in_currency("USD").reserved > 0

    cancel(client, "R1-X", "R1")
    canceled = client.wait_for(is_er("R1-X", "4"))
    assert canceled[41] == "R1" and canceled[39] == "4" and canceled[151] == "0"
    client.send("H", [(11, "R1-X"), (1, "ACC1"), (55, "AAPL"), (54, "1")])  # named by the cancel's ClOrdID
    status = client.wait_for(lambda m: m.msg_type == "8" and m.get(150) == "I")
    assert status[39] == "4" and status[37] == canceled[37]
    eventually(lambda: balances(database, "ACC1").in_currency("USD").reserved == 0)
    assert balances(database, "ACC1").in_currency("USD").available == Decimal("1000000")
    ledger_is_clean(database)


def test_replace_client_sees_its_ids_and_venue_sees_a_chain_of_ours(database, venue, gateway, connect) -> None:
    client = connect("CLIENT1")
    resting_buy(client, "A1")
    first_venue_id = venue_cl_ord_id(database, "ACC1", "A1")

    replace(client, "A2", "A1", qty="200", price="181.00")
    replaced = client.wait_for(is_er("A2", "5"))
    assert replaced[41] == "A1" and replaced[38] == "200" and replaced[44] == "181" and replaced[39] == "0"

    second_venue_id = venue_cl_ord_id(database, "ACC1", "A2")
    at_venue = venue.order(second_venue_id)
    assert at_venue is not None and at_venue.orig_cl_ord_id == first_venue_id
    assert {first_venue_id, second_venue_id}.isdisjoint({"A1", "A2"})
    assert at_venue.qty == Decimal(200) and at_venue.limit_price == Decimal("181.00")
    # The reservation grew with the order; a later cancel by the new id releases all of it.
    cancel(client, "A3", "A2")
    client.wait_for(is_er("A3", "4"))
    eventually(lambda: balances(database, "ACC1").in_currency("USD").reserved == 0)
    ledger_is_clean(database)


@sqlite_only
def test_a_cancel_or_replace_naming_another_side_symbol_or_type_is_refused_and_changes_nothing(
    database, venue, gateway, connect
) -> None:
    client = connect("CLIENT1")
    resting_buy(client, "M1")
    requests = {
        "M-SIDE": lambda: replace(client, "M-SIDE", "M1", qty="100", price="180.00", side="2"),
        "M-SYMBOL": lambda: replace(client, "M-SYMBOL", "M1", qty="100", price="180.00", symbol="MSFT"),
        "M-TYPE": lambda: replace(client, "M-TYPE", "M1", qty="100", price="", order_type="3", prices=((99, "300.00"),)),
        "M-CXL": lambda: cancel(client, "M-CXL", "M1", symbol="TSLA", side="2"),
    }
    for cl_ord_id, send in requests.items():
        send()
        reject = client.wait_for(lambda m, wanted=cl_ord_id: m.msg_type == "9" and m.get(11) == wanted)
        assert reject[41] == "M1" and reject[102] == "2" and reject[39] == "0", reject
        assert reject[58].startswith("REQUEST_MISMATCH: field="), reject[58]
    record = queries.order_by_client(database, "ACC1", "M1")
    assert record is not None and record.order.status.value == "new" and record.replaced_by_order_id is None
    assert record.order.side.value == "buy" and str(record.order.symbol) == "AAPL"


@sqlite_only
def test_a_refused_order_is_reported_with_the_side_tif_and_stop_the_client_sent(database, venue, gateway, connect) -> None:
    client = connect("CLIENT1")
    client.send("D", new_order("SS1", side="5", qty="10", price="190.00", tif="1", extra=[(1, "ACC1")]))  # short
    client.send("D", new_order("ST1", ord_type="4", qty="10", price="190.00", stop_px="189.00", tif="6",
                               extra=[(1, "ACC1")]))  # a GTD stop-limit without its ExpireDate  # fmt: skip
    short = client.wait_for(is_er("SS1", "8"))
    assert (short[54], short[59], short[58]) == ("5", "1", "UNSUPPORTED_ORDER_TYPE: side=5")
    stop = client.wait_for(is_er("ST1", "8"))
    assert (stop[54], stop[40], stop[99], stop[59]) == ("1", "4", "189.00", "6"), stop[58]
    assert venue.orders() == []


@sqlite_only
def test_a_cancel_reusing_a_clordid_gets_cxl_rej_reason_duplicate(database, venue, gateway, connect) -> None:
    client = connect("CLIENT1")
    resting_buy(client, "U1")
    cancel(client, "U1", "U1")
    reject = client.wait_for(lambda m: m.msg_type == "9" and m.get(11) == "U1")
    assert reject[102] == "6" and reject[58].startswith("DUPLICATE_CL_ORD_ID")


@sqlite_only
def test_cancel_of_an_unknown_order_is_an_order_cancel_reject(database, venue, gateway, connect) -> None:
    client = connect("CLIENT1")
    cancel(client, "Q1", "NEVER-SENT")

    reject = client.wait_for(lambda m: m.msg_type == "9" and m.get(11) == "Q1")
    assert reject[41] == "NEVER-SENT" and reject[434] == "1" and reject[102] == "1"
    assert reject[58].startswith("UNKNOWN_ORDER: ")


def test_cancel_of_a_filled_order_is_rejected_as_too_late(database, venue, gateway, connect) -> None:
    client = connect("CLIENT1")
    client.send("D", new_order("F1", symbol="AAPL", side="1", qty="10", price="190.00", extra=[(1, "ACC1")]))
    client.wait_for(is_er("F1", "F"))

    cancel(client, "F1-X", "F1")
    reject = client.wait_for(lambda m: m.msg_type == "9" and m.get(11) == "F1-X")
    assert reject[102] == "0" and reject[39] == "2" and reject[58].startswith("ORDER_NOT_CANCELABLE")


@sqlite_only
def test_status_request_answers_from_our_books(database, venue, gateway, connect) -> None:
    client = connect("CLIENT1")
    resting_buy(client, "S1")

    client.send("H", [(11, "S1"), (1, "ACC1"), (55, "AAPL"), (54, "1")])
    status = client.wait_for(is_er("S1", "I"))
    assert status[39] == "0" and status[151] == "100"

    client.send("H", [(11, "NOPE"), (1, "ACC1"), (55, "AAPL"), (54, "1")])
    unknown = client.wait_for(is_er("NOPE", "I"))
    assert unknown[39] == "8" and unknown[103] == "5"


@sqlite_only
def test_account_not_allowed_for_the_session_is_rejected(database, venue, gateway, connect) -> None:
    client = connect("CLIENT1")
    client.send("D", new_order("W1", symbol="AAPL", side="1", qty="10", price="190.00", extra=[(1, "ACC2")]))

    reject = client.wait_for(is_er("W1", "8"))
    assert reject[58] == "UNKNOWN_ACCOUNT: account=ACC2"
    assert order_rows(database, "ACC2") == 0 and reserved_rows(database, "ACC2") == 0


@sqlite_only
def test_unsupported_message_type_gets_business_message_reject(database, venue, gateway, connect) -> None:
    client = connect("CLIENT1")
    client.send("AF", [(584, "M1"), (585, "7")])  # OrderMassStatusRequest: not something we take

    reject = client.wait_for(lambda m: m.msg_type == "j")
    assert reject[372] == "AF" and reject[380] == "3"
    assert client.logged_on.is_set()


@sqlite_only
def test_an_order_without_a_needed_field_gets_a_business_reject_naming_its_clordid(database, venue, gateway, connect) -> None:
    client = connect("CLIENT1")
    client.send("D", [(11, "NOSYM"), (21, "1"), (54, "1"), (60, transact_time()), (38, "10"), (40, "2"),
                      (44, "190.00"), (1, "ACC1")])  # no Symbol  # fmt: skip

    reject = client.wait_for(lambda m: m.msg_type == "j")
    assert (reject[372], reject[379], reject[380]) == ("D", "NOSYM", "5")
    assert reject[58] == "Conditionally Required Field Missing (55)" and int(reject[45]) > 1
    assert client.logged_on.is_set() and venue.orders() == []


@sqlite_only
def test_inbound_throttle_answers_rate_limited(database, venue, gateway, connect) -> None:
    client = connect("CLIENT3")  # ThrottlePerSecond=1, ThrottleBurst=2
    for number in range(4):
        client.send("D", new_order(f"T{number}", symbol="AAPL", side="1", qty="1", price="180.00", extra=[(1, "ACC3")]))

    limited = client.wait_for(lambda m: m.msg_type == "8" and m.get(150) == "8")
    assert limited[58].startswith("RATE_LIMITED: ") and limited[103] == "99"
    accepted = [client.wait_for(is_er(f"T{n}", "0")) for n in range(2)]
    assert len(accepted) == 2


def test_venue_down_rejects_new_orders_at_once_with_nothing_reserved(database, venue, gateway, connect) -> None:
    client = connect("CLIENT1")
    venue.stop()
    eventually(lambda: not gateway.gateway.venue_up())

    client.send("D", new_order("V1", symbol="AAPL", side="1", qty="10", price="190.00", extra=[(1, "ACC1")]))
    reject = client.wait_for(is_er("V1", "8"))
    assert reject[58].startswith("VENUE_UNAVAILABLE: ")
    assert order_rows(database, "ACC1") == 0 and reserved_rows(database, "ACC1") == 0
    assert balances(database, "ACC1").in_currency("USD").available == Decimal("1000000")


@sqlite_only
def test_fix42_client_gets_fix42_execution_reports(database, venue, gateway, connect) -> None:
    client = connect("CLIENT5", begin_string="FIX.4.2")
    client.send("D", new_order("N1", symbol="AAPL", side="1", qty="10", price="190.00", extra=[(1, "ACC5")]))

    fill = client.wait_for(lambda m: m.msg_type == "8" and m.get(11) == "N1" and m.get(150) == "2")
    assert fill[20] == "0" and fill[39] == "2" and fill[32] == "10"
    ledger_is_clean(database)


@sqlite_only
def test_prometheus_metrics_count_outcomes_and_show_session_state(database, venue, gateway, connect) -> None:
    from urllib.request import urlopen

    client = connect("CLIENT1")
    client.send("D", new_order("MX1", symbol="AAPL", side="1", qty="10", price="190.00", extra=[(1, "ACC1")]))
    client.wait_for(is_er("MX1", "F"))
    client.send("D", new_order("MX2", symbol="ZZZZ", side="1", qty="10", price="190.00", extra=[(1, "ACC1")]))
    client.wait_for(is_er("MX2", "8"))

    port = gateway.gateway.metrics_port
    text = urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert 'oms_gateway_outcomes_total{outcome="accepted"} 1.0' in text
    assert 'oms_gateway_outcomes_total{outcome="UNKNOWN_SYMBOL"} 1.0' in text
    assert 'oms_gateway_session_logged_on{role="client",session="FIX.4.4:OMS->CLIENT1"} 1.0' in text
    assert 'oms_gateway_session_logged_on{role="venue",session="FIX.4.4:OMS->EXCH"} 1.0' in text
    assert "oms_gateway_batch_seconds_count" in text
