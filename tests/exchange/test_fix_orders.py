"""Order flow over real FIX sessions: types and TIFs, cancel, replace, status, resend, duplicates, FIX 4.2."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from fixclient import FixClient, is_er, new_order, transact_time

pytestmark = [pytest.mark.fix, pytest.mark.timeout(30)]


def cancel(client: FixClient, cl_ord_id: str, orig: str, symbol: str = "AAPL", side: str = "1") -> None:
    client.send("F", [(11, cl_ord_id), (41, orig), (55, symbol), (54, side), (60, transact_time()), (38, "100")])


def replace(client: FixClient, cl_ord_id: str, orig: str, qty: str, price: str, symbol: str = "GOOG",
            side: str = "2") -> None:
    client.send("G", [(11, cl_ord_id), (41, orig), (21, "1"), (55, symbol), (54, side), (60, transact_time()),
                      (38, qty), (40, "2"), (44, price)])


def status(client: FixClient, cl_ord_id: str, symbol: str = "AAPL", side: str = "1") -> None:
    client.send("H", [(11, cl_ord_id), (55, symbol), (54, side)])


TOMORROW = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y%m%d")
ORDER_CASES = [
    # (ord_type, tif, price, stop_px, extra)
    ("2", "0", "200.00", None, ()),           # limit DAY
    ("2", "1", "200.00", None, ()),           # limit GTC
    ("2", "3", "200.00", None, ()),           # limit IOC
    ("2", "4", "200.00", None, ()),           # limit FOK
    ("2", "6", "200.00", None, ((432, TOMORROW),)),  # limit GTD
    ("1", "0", None, None, ()),               # market
    ("1", "3", None, None, ()),               # market IOC
    ("3", "0", None, "100.00", ()),           # stop (triggers: last trade >= stop)
    ("4", "1", "200.00", "100.00", ()),       # stop limit GTC
]


@pytest.mark.parametrize(("ord_type", "tif", "price", "stop_px", "extra"), ORDER_CASES)
def test_every_order_type_and_tif_is_accepted_and_filled(venue, client: FixClient, ord_type: str, tif: str,
                                                         price: str | None, stop_px: str | None, extra) -> None:
    venue.service.step_market_maker()
    if ord_type in ("3", "4"):  # stops need a last trade to trigger on
        client.send("D", new_order("SEED", qty="10", price="200.00"))
        client.wait_for(is_er("SEED", "F"))
    client.send("D", new_order("C1", ord_type=ord_type, tif=tif, price=price, stop_px=stop_px, extra=extra))
    accepted = client.wait_for(is_er("C1", "0"))
    assert accepted[39] == "0" and accepted[37] != "NONE"
    fill = client.wait_for(is_er("C1", "F"))
    assert fill[39] == "2" and fill[14] == "100" and fill[151] == "0" and fill[32] == "100"
    assert Decimal(fill[31]) == Decimal(fill[6]) and fill[37] == accepted[37]
    assert int(fill[17]) > int(accepted[17])


def test_partial_fill_then_cancel(venue, client: FixClient) -> None:
    client.send("D", new_order("S1", symbol="GOOG", side="2", qty="100", price="141.80"))
    client.wait_for(is_er("S1", "0"))
    client.send("D", new_order("B1", symbol="GOOG", side="1", qty="40", price="141.80"))
    partial = client.wait_for(is_er("S1", "F"))
    assert (partial[39], partial[14], partial[151], partial[31]) == ("1", "40", "60", "141.80")
    cancel(client, "S1-X", "S1", symbol="GOOG", side="2")
    canceled = client.wait_for(is_er("S1-X", "4"))
    assert (canceled[39], canceled[41], canceled[14], canceled[151]) == ("4", "S1", "40", "0")
    assert canceled[37] == partial[37]


def test_cancel_reject_unknown_and_done(venue, client: FixClient) -> None:
    cancel(client, "X1", "NOPE")
    reject = client.wait_for(lambda m: m.msg_type == "9" and m.get(11) == "X1")
    assert (reject[102], reject[434], reject[37], reject[39]) == ("1", "1", "NONE", "8")
    venue.service.step_market_maker()
    client.send("D", new_order("F1", qty="10", price="200.00"))
    client.wait_for(is_er("F1", "F"))
    cancel(client, "X2", "F1")
    reject = client.wait_for(lambda m: m.msg_type == "9" and m.get(11) == "X2")
    assert (reject[102], reject[39]) == ("0", "2")


def test_replace_keeps_order_id_and_priority_rules(venue, client: FixClient) -> None:
    for cl in ("A", "B"):
        client.send("D", new_order(cl, symbol="GOOG", side="2", qty="100", price="141.80"))
        client.wait_for(is_er(cl, "0"))
    replace(client, "A2", "A", qty="80", price="141.80")  # smaller: keeps time priority
    replaced = client.wait_for(is_er("A2", "5"))
    assert (replaced[41], replaced[38], replaced[151], replaced[39]) == ("A", "80", "80", "0")
    client.send("D", new_order("BUY1", symbol="GOOG", side="1", qty="50", price="141.80"))
    fill = client.wait_for(lambda m: m.msg_type == "8" and m.get(150) == "F" and m.get(54) == "2")
    assert fill[11] == "A2" and fill[37] == replaced[37]
    replace(client, "A3", "A2", qty="80", price="141.81")  # price change: loses priority, then back
    client.wait_for(is_er("A3", "5"))
    replace(client, "A4", "A3", qty="80", price="141.80")
    client.wait_for(is_er("A4", "5"))
    client.send("D", new_order("BUY2", symbol="GOOG", side="1", qty="50", price="141.80"))
    fill = client.wait_for(lambda m: m.msg_type == "8" and m.get(150) == "F" and m.get(54) == "2")
    assert fill[11] == "B"


def test_replace_unknown_order_is_rejected(venue, client: FixClient) -> None:
    replace(client, "R1", "NOPE", qty="10", price="141.80")
    reject = client.wait_for(lambda m: m.msg_type == "9" and m.get(11) == "R1")
    assert (reject[434], reject[102]) == ("2", "1")


def test_order_status_request(venue, client: FixClient) -> None:
    client.send("D", new_order("ST1", symbol="GOOG", side="2", qty="100", price="141.80"))
    accepted = client.wait_for(is_er("ST1", "0"))
    status(client, "ST1", symbol="GOOG", side="2")
    report = client.wait_for(is_er("ST1", "I"))
    assert (report[39], report[37], report[151], report[14]) == ("0", accepted[37], "100", "0")
    status(client, "NEVER")
    unknown = client.wait_for(is_er("NEVER", "I"))
    assert (unknown[39], unknown[37]) == ("8", "NONE")


def test_poss_resend_of_known_order_gets_status_not_a_second_booking(venue, client: FixClient) -> None:
    client.send("D", new_order("PR1", symbol="GOOG", side="2", qty="100", price="141.80"))
    accepted = client.wait_for(is_er("PR1", "0"))
    client.send("D", new_order("PR1", symbol="GOOG", side="2", qty="100", price="141.80"), header=[(97, "Y")])
    report = client.wait_for(is_er("PR1", "I"))
    assert report[37] == accepted[37]
    assert client.no_more(is_er("PR1", "0"))
    assert len(venue.service._engine.engine.orders(owner="OMS")) == 1
    # A PossResend of an order we never saw is booked normally.
    client.send("D", new_order("PR2", symbol="GOOG", side="2", qty="100", price="141.80"), header=[(97, "Y")])
    client.wait_for(is_er("PR2", "0"))


def test_duplicate_cl_ord_id_is_rejected(venue, client: FixClient) -> None:
    client.send("D", new_order("DUP", symbol="GOOG", side="2", qty="100", price="141.80"))
    client.wait_for(is_er("DUP", "0"))
    client.send("D", new_order("DUP", symbol="GOOG", side="2", qty="100", price="141.80"))
    reject = client.wait_for(is_er("DUP", "8"))
    assert (reject[103], reject[39]) == ("6", "8")
    assert len(venue.service._engine.engine.orders(owner="OMS")) == 1


def test_fix42_session_orders_fill_and_cancel(venue, client_factory) -> None:
    client = client_factory(venue, "FIX.4.2")
    venue.service.step_market_maker()
    client.send("D", new_order("F42", qty="10", price="200.00"))
    accepted = client.wait_for(is_er("F42", "0"))
    assert accepted[20] == "0"
    fill = client.wait_for(is_er("F42", "2"))
    assert (fill[20], fill[39], fill[32]) == ("0", "2", "10")
    client.send("D", new_order("R42", symbol="GOOG", side="2", qty="10", price="141.80"))
    client.wait_for(is_er("R42", "0"))
    status(client, "R42", symbol="GOOG", side="2")
    report = client.wait_for(lambda m: m.msg_type == "8" and m.get(11) == "R42" and m.get(20) == "3")
    assert report[39] == "0"
    client.send("F", [(11, "R42X"), (41, "R42"), (55, "GOOG"), (54, "2"), (60, transact_time())])
    assert client.wait_for(is_er("R42X", "4"))[41] == "R42"
    client.send("D", new_order("Z42", symbol="NOPE"))
    assert client.wait_for(is_er("Z42", "8"))[103] == "1"
