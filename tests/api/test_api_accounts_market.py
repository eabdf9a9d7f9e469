"""Accounts, balances, deposits and withdrawals, statement paging, instruments and quotes, the OpenAPI document."""

from __future__ import annotations

from decimal import Decimal

from oms.domain.enums import OrderStatus
from tests.api.conftest import Api


def test_account_with_all_balance_figures(api: Api) -> None:
    account = api.get("/v1/accounts/ALICE").json()
    assert (account["id"], account["status"], account["currency"]) == ("ALICE", "active", "USD")
    balances = account["balances"]
    assert set(balances) == {"account", "currency", "available", "reserved", "unsettled", "withdrawable", "total"}
    assert Decimal(balances["available"]) == Decimal(balances["withdrawable"]) == Decimal(balances["total"]) == Decimal("100000")


def test_deposit_and_withdrawal_move_cash_and_answer_with_the_new_balances(api: Api) -> None:
    deposit = api.post("/v1/accounts/ALICE/deposits", {"amount": "250.50"})
    assert deposit.status_code == 201, deposit.text
    assert deposit.json()["kind"] == "deposit" and deposit.json()["amount"] == "250.50"
    assert Decimal(deposit.json()["balances"]["available"]) == Decimal("100250.50")
    withdrawal = api.post("/v1/accounts/ALICE/withdrawals", {"amount": "0.50"})
    assert withdrawal.status_code == 201
    assert Decimal(api.get("/v1/accounts/ALICE/balances").json()["available"]) == Decimal("100250")
    kinds = [line["kind"] for line in api.get("/v1/accounts/ALICE/statement").json()["lines"]]
    assert kinds.count("deposit") == 2 and kinds.count("withdrawal") == 1  # the seed deposit and ours


def test_reserved_cash_cannot_be_withdrawn(api: Api) -> None:
    api.place(qty="500", limit_price="190.00")  # reserves 95000
    refused = api.post("/v1/accounts/ALICE/withdrawals", {"amount": "5001"})
    assert refused.status_code == 422
    assert refused.json()["code"] == "INSUFFICIENT_FUNDS"
    assert api.post("/v1/accounts/ALICE/withdrawals", {"amount": "5000"}).status_code == 201


def test_statement_pages_with_a_cursor_without_gaps_or_repeats(api: Api) -> None:
    for amount in ("1", "2", "3"):
        api.post("/v1/accounts/ALICE/deposits", {"amount": amount})
    everything = api.get("/v1/accounts/ALICE/statement", params={"limit": 500}).json()["lines"]
    pages: list[dict[str, object]] = []
    cursor = None
    while True:
        page = api.get("/v1/accounts/ALICE/statement", params={"limit": 1} | ({"cursor": cursor} if cursor else {})).json()
        pages.extend(page["lines"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == everything and len(everything) == 4


def test_instruments_and_quotes(api: Api) -> None:
    instruments = {item["symbol"]: item for item in api.get("/v1/instruments").json()}
    assert set(instruments) == {"AAPL", "MSFT", "BTCX"}
    assert instruments["BTCX"]["fractional"] is True and instruments["BTCX"]["qty_decimals"] == 4
    assert api.get("/v1/instruments/AAPL").json()["tick_size"] == "0.01"
    assert api.get("/v1/instruments/NOPE").status_code == 404
    quote = api.get("/v1/quotes/AAPL").json()
    assert Decimal(quote["reference_price"]) == Decimal("190") and quote["updated_at"]
    assert {q["symbol"] for q in api.get("/v1/quotes").json()} == {"AAPL", "MSFT", "BTCX"}


def test_an_admin_sets_a_reference_price_that_positions_value_at(api: Api) -> None:
    from oms.api.keys import Scope, create_api_key

    admin = create_api_key(api.database, ["ALICE"], [Scope.READ, Scope.ADMIN])
    response = api.client.put("/v1/quotes/AAPL", json={"price": "200.00"}, headers=api.headers(admin))
    assert response.status_code == 200, response.text
    assert response.json()["reference_price"] == "200.00"
    assert api.client.put("/v1/quotes/NOPE", json={"price": "1.00"}, headers=api.headers(admin)).status_code == 404
    order = api.place(qty="1", limit_price="200.00").json()
    api.fill(order["id"], "1", "199.00", status=OrderStatus.FILLED)
    (position,) = api.get("/v1/accounts/ALICE/positions").json()
    assert Decimal(position["market_value"]) == Decimal("200")
    assert Decimal(position["unrealized_pnl"]) == Decimal("1")


def test_openapi_document_lists_every_resource(api: Api) -> None:
    document = api.client.get("/openapi.json").json()
    paths = set(document["paths"])
    assert {
        "/v1/accounts", "/v1/accounts/{account}/balances", "/v1/accounts/{account}/deposits",
        "/v1/accounts/{account}/withdrawals", "/v1/accounts/{account}/positions", "/v1/accounts/{account}/statement",
        "/v1/orders", "/v1/orders/{order_id}", "/v1/orders/by-client-id/{client_order_id}",
        "/v1/orders/{order_id}/replace", "/v1/executions", "/v1/instruments", "/v1/quotes", "/v1/events",
    } <= paths  # fmt: skip
    qty = document["components"]["schemas"]["OrderRequest"]["properties"]["qty"]
    assert qty["type"] == "string"
    assert "429" in document["paths"]["/v1/orders"]["post"]["responses"]


def test_health_needs_no_key(api: Api) -> None:
    assert api.client.get("/v1/health").json() == {"status": "ok"}
