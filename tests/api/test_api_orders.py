"""Orders through REST on SQLite and PostgreSQL: place, get, list, cancel, replace; fills from the venue path."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import quote

import pytest

from oms.api.keys import create_api_key
from oms.domain.enums import ExecType, OrderStatus
from tests.api.conftest import ALL_SCOPES, Api
from tests.service.factories import report


def test_place_returns_201_with_the_order_in_pending_new_and_a_generated_client_order_id(api: Api) -> None:
    response = api.place()
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["status"] == "pending_new"
    assert order["account"] == "ALICE"
    assert order["qty"] == "10" and order["limit_price"] == "190.00"
    assert order["filled_qty"] == "0" and order["filled_avg_price"] is None
    assert order["client_order_id"] and order["id"]
    assert order["created_at"].endswith("Z")
    balances = api.get("/v1/accounts/ALICE/balances").json()
    assert Decimal(balances["reserved"]) == Decimal(1900)
    assert Decimal(balances["available"]) == Decimal(98100)


def test_get_by_id_and_by_client_order_id(api: Api) -> None:
    placed = api.place(client_order_id="my-1").json()
    assert api.get(f"/v1/orders/{placed['id']}").json() == placed
    by_client = api.get("/v1/orders/by-client-id/my-1")
    assert by_client.status_code == 200
    assert by_client.json()["id"] == placed["id"]


@pytest.mark.parametrize("client_order_id", ["desk/2026/0001", "/leading", "trailing/", "a//b", "a#b+c:d@e.f_g-h"])
def test_every_client_order_id_that_placing_accepts_is_found_by_client_id_encoded_or_not(api: Api, client_order_id: str) -> None:
    placed = api.place(client_order_id=client_order_id)
    assert placed.status_code == 201, placed.text
    for path in (quote(client_order_id, safe="/"), quote(client_order_id, safe="")):  # '#' must be encoded in a URL
        found = api.get(f"/v1/orders/by-client-id/{path}")
        assert found.status_code == 200, (path, found.text)
        assert found.json()["id"] == placed.json()["id"]


def test_same_client_order_id_and_terms_returns_the_original_with_200(api: Api) -> None:
    first = api.place(client_order_id="dup-1")
    again = api.place(client_order_id="dup-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]


def test_same_client_order_id_with_other_terms_is_a_duplicate_problem(api: Api) -> None:
    api.place(client_order_id="dup-2")
    response = api.place(client_order_id="dup-2", qty="11")
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "DUPLICATE_CL_ORD_ID"


def test_insufficient_buying_power_is_a_problem_with_the_fix_reason_code_and_reserves_nothing(api: Api) -> None:
    response = api.place(qty="1000", limit_price="190.00")
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "INSUFFICIENT_BUYING_POWER"
    assert problem["detail"].startswith("INSUFFICIENT_BUYING_POWER: ")
    assert problem["type"] == "urn:oms:problem:insufficient_buying_power"
    rejected = api.get(f"/v1/orders/{problem['order_id']}").json()
    assert rejected["status"] == "rejected"
    assert rejected["reject_reason"] == problem["detail"]
    assert Decimal(api.get("/v1/accounts/ALICE/balances").json()["reserved"]) == 0


def test_unknown_symbol_is_a_problem(api: Api) -> None:
    response = api.place(symbol="NOPE")
    assert response.status_code == 422
    assert response.json()["code"] == "UNKNOWN_SYMBOL"


def test_market_stop_and_stop_limit_orders_and_fractional_quantities(api: Api) -> None:
    market = api.place(type="market", limit_price=None)
    assert market.status_code == 201, market.text
    stop = api.place(side="buy", type="stop", stop_price="195.00", limit_price=None, time_in_force="gtc")
    assert stop.status_code == 201, stop.text
    stop_limit = api.place(type="stop_limit", stop_price="195.00", limit_price="196.00", time_in_force="ioc")
    assert stop_limit.status_code == 201, stop_limit.text
    fractional = api.place(symbol="BTCX", qty="0.1234", limit_price="100.00")
    assert fractional.status_code == 201, fractional.text
    assert fractional.json()["qty"] == "0.1234"
    too_fine = api.place(symbol="BTCX", qty="0.12345", limit_price="100.00")
    assert too_fine.status_code == 422
    assert too_fine.json()["code"] == "INVALID_QUANTITY"
    whole_only = api.place(qty="1.5")
    assert whole_only.json()["code"] == "INVALID_QUANTITY"


def test_lifecycle_fills_from_the_venue_show_in_order_executions_positions_and_statement(api: Api) -> None:
    order = api.place(qty="10", limit_price="190.00").json()
    api.ack(order["id"])
    api.fill(order["id"], "4", "189.50")
    api.fill(order["id"], "6", "190.00", OrderStatus.FILLED)
    filled = api.get(f"/v1/orders/{order['id']}").json()
    assert filled["status"] == "filled"
    assert filled["filled_qty"] == "10"
    assert Decimal(filled["filled_avg_price"]) == Decimal("189.8")
    executions = api.get("/v1/executions", params={"order_id": order["id"]}).json()["executions"]
    trades = [e for e in executions if e["exec_type"] == "trade"]
    assert [(e["qty"], e["price"]) for e in trades] == [("4", "189.50"), ("6", "190.00")]
    (position,) = api.get("/v1/accounts/ALICE/positions").json()
    assert position["symbol"] == "AAPL"
    assert (position["qty"], position["available_qty"], position["reserved_qty"]) == ("10", "10", "0")
    assert position["average_cost"] == "189.80000000"
    numbers = {name: Decimal(position[name]) for name in ("reference_price", "market_value", "cost_basis", "unrealized_pnl", "realized_pnl")}
    assert numbers == {
        "reference_price": Decimal(190), "market_value": Decimal(1900), "cost_basis": Decimal(1898),
        "unrealized_pnl": Decimal(2), "realized_pnl": Decimal(0),
    }  # fmt: skip
    balances = api.get("/v1/accounts/ALICE/balances").json()
    assert Decimal(balances["available"]) == Decimal(100000) - Decimal(1898)
    assert Decimal(balances["reserved"]) == 0
    lines = api.get("/v1/accounts/ALICE/statement").json()["lines"]
    assert {line["kind"] for line in lines} >= {"deposit", "reserve", "fill"}


def test_realized_pnl_after_a_partial_sale(api: Api) -> None:
    buy = api.place(qty="10", limit_price="185.00").json()
    api.fill(buy["id"], "10", "185.00", OrderStatus.FILLED)
    sell = api.place(side="sell", qty="4", limit_price="195.00")
    assert sell.status_code == 201, sell.text
    api.fill(sell.json()["id"], "4", "195.00", OrderStatus.FILLED)
    (position,) = api.get("/v1/accounts/ALICE/positions").json()
    assert position["qty"] == "6"
    assert Decimal(position["realized_pnl"]) == Decimal(40)  # 4 x (195 - 185)
    assert Decimal(position["average_cost"]) == Decimal(185)
    assert Decimal(position["unrealized_pnl"]) == Decimal(30)  # 6 x (190 reference - 185)
    assert Decimal(api.get("/v1/accounts/ALICE/balances").json()["unsettled"]) == Decimal(780)


def test_cancel_goes_pending_then_canceled_by_the_venue_and_releases_the_reservation(api: Api) -> None:
    order = api.place().json()
    api.ack(order["id"])
    response = api.delete(f"/v1/orders/{order['id']}")
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "pending_cancel"
    again = api.delete(f"/v1/orders/{order['id']}")
    assert again.status_code == 409
    assert again.json()["code"] == "ORDER_ALREADY_PENDING"
    venue_cl = api.venue_cl_ord_id(order["id"])
    from sqlalchemy import text

    with api.database.engine.connect() as connection:
        pending = connection.execute(text("SELECT pending_venue_cl_ord_id FROM orders WHERE id=:id"), {"id": order["id"]}).scalar_one()
    assert api.venue(report(pending, ExecType.CANCELED, OrderStatus.CANCELED, orig_cl_ord_id=venue_cl)).ok
    assert api.get(f"/v1/orders/{order['id']}").json()["status"] == "canceled"
    assert Decimal(api.get("/v1/accounts/ALICE/balances").json()["reserved"]) == 0
    finished = api.delete(f"/v1/orders/{order['id']}")
    assert finished.status_code == 409
    assert finished.json()["code"] == "ORDER_NOT_CANCELABLE"


def test_replace_links_the_replacing_order_both_ways(api: Api) -> None:
    order = api.place(qty="10", limit_price="190.00").json()
    api.ack(order["id"])
    response = api.post(f"/v1/orders/{order['id']}/replace", {"qty": "12", "limit_price": "189.00", "client_order_id": "r-2"})
    assert response.status_code == 202, response.text
    pending = response.json()
    assert pending["status"] == "pending_replace"
    assert pending["pending_replace_client_order_id"] == "r-2"
    from sqlalchemy import text

    with api.database.engine.connect() as connection:
        new_venue_cl = connection.execute(text("SELECT pending_venue_cl_ord_id FROM orders WHERE id=:id"), {"id": order["id"]}).scalar_one()
    replaced = report(new_venue_cl, ExecType.REPLACED, OrderStatus.NEW, orig_cl_ord_id=api.venue_cl_ord_id(order["id"]))
    assert api.venue(replaced).ok
    original = api.get(f"/v1/orders/{order['id']}").json()
    assert original["status"] == "replaced"
    successor = api.get(f"/v1/orders/{original['replaced_by']}").json()
    assert successor["replaces"] == order["id"]
    assert successor["client_order_id"] == "r-2"
    assert (successor["qty"], successor["limit_price"], successor["status"]) == ("12", "189.00", "new")
    assert api.get("/v1/orders/by-client-id/r-2").json()["id"] == successor["id"]
    assert Decimal(api.get("/v1/accounts/ALICE/balances").json()["reserved"]) == Decimal(2268)


def test_a_replace_away_from_gtd_drops_the_expire_date_it_did_not_send(api: Api) -> None:
    """The date left out is kept only while the order stays GTD: a GTD order replaced to GTC (or DAY) was refused
    'INVALID_EXPIRE_DATE: expire_date=not_allowed' for a date the client never sent."""
    order = api.place(qty="10", limit_price="190.00", time_in_force="gtd", expire_date="2999-01-01").json()
    api.ack(order["id"])
    response = api.post(f"/v1/orders/{order['id']}/replace", {"time_in_force": "gtc", "client_order_id": "g-2"})
    assert response.status_code == 202, response.text
    from sqlalchemy import text

    with api.database.engine.connect() as connection:
        new_venue_cl = connection.execute(text("SELECT pending_venue_cl_ord_id FROM orders WHERE id=:id"), {"id": order["id"]}).scalar_one()
    assert api.venue(report(new_venue_cl, ExecType.REPLACED, OrderStatus.NEW, orig_cl_ord_id=api.venue_cl_ord_id(order["id"]))).ok
    successor = api.get("/v1/orders/by-client-id/g-2").json()
    assert (successor["time_in_force"], successor["expire_date"], successor["status"]) == ("gtc", None, "new")

    kept = api.place(qty="1", limit_price="190.00", time_in_force="gtd", expire_date="2999-01-01").json()
    api.ack(kept["id"])
    still_gtd = api.post(f"/v1/orders/{kept['id']}/replace", {"qty": "2"})  # staying GTD keeps its date
    assert still_gtd.status_code == 202, still_gtd.text
    assert still_gtd.json()["expire_date"] == "2999-01-01"


def test_list_filters_by_status_symbol_and_time_and_pages_with_a_cursor(api: Api) -> None:
    ids = [api.place(qty="1", client_order_id=f"L{i}").json()["id"] for i in range(5)]
    msft = api.place(symbol="MSFT", qty="1", limit_price="410.00").json()
    api.fill(ids[0], "1", "190.00", OrderStatus.FILLED)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, "symbol": "AAPL"} | ({"cursor": cursor} if cursor else {})
        page = api.get("/v1/orders", params=params).json()
        assert len(page["orders"]) <= 2
        seen.extend(order["id"] for order in page["orders"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == 5
    assert [o["id"] for o in api.get("/v1/orders", params={"status": "filled"}).json()["orders"]] == [ids[0]]
    open_orders = api.get("/v1/orders", params={"status": "open"}).json()["orders"]
    assert {o["id"] for o in open_orders} == set(ids[1:]) | {msft["id"]}
    future = api.get("/v1/orders", params={"after": "2999-01-01T00:00:00Z"}).json()["orders"]
    assert future == []
    past = api.get("/v1/orders", params={"until": "2000-01-01T00:00:00Z"}).json()["orders"]
    assert past == []
    everything = api.get("/v1/orders", params={"after": "2000-01-01T00:00:00Z", "until": "2999-01-01T00:00:00Z"}).json()
    assert len(everything["orders"]) == 6
    assert api.get("/v1/orders", params={"status": "bogus"}).status_code == 422
    assert api.get("/v1/orders", params={"cursor": "not-a-cursor"}).status_code == 400


def _all_pages(api: Api, path: str, field: str, key: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = api.get(path, key=key, params={"limit": 2} | ({"cursor": cursor} if cursor else {})).json()
        assert len(page[field]) <= 2
        items.extend(page[field])
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def test_a_key_for_several_accounts_pages_through_all_their_orders_and_executions_in_order(api: Api) -> None:
    both = create_api_key(api.database, ["ALICE", "BOB"], ALL_SCOPES)
    placed = [api.place(key=api.alice if n % 3 else api.bob, qty="1", client_order_id=f"M{n}").json()["id"] for n in range(7)]
    for order_id in placed[:5]:
        api.fill(order_id, "1", "190.00", OrderStatus.FILLED)

    orders = _all_pages(api, "/v1/orders", "orders", both)
    assert sorted(o["id"] for o in orders) == sorted(placed)  # no gaps, no repeats across accounts and pages
    newest_first = [(o["created_at"], o["id"]) for o in orders]
    assert newest_first == sorted(newest_first, reverse=True)
    assert {o["account"] for o in orders} == {"ALICE", "BOB"}

    executions = _all_pages(api, "/v1/executions", "executions", both)
    assert sorted(e["order_id"] for e in executions) == sorted(placed[:5])
    assert [e["order_id"] for e in executions] == placed[:5]  # booking order, across both accounts
