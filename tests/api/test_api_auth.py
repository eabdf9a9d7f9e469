"""Auth: bearer keys stored hashed, scopes, and every lookup scoped to the caller's accounts (others' data is 404)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from oms.api.keys import Scope, create_api_key, revoke_api_key
from tests.api.conftest import Api


def test_missing_malformed_and_unknown_keys_are_401_problems(api: Api) -> None:
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer omsk_nope_nope"}, {"Authorization": "Bearer "}):
        response = api.client.get("/v1/accounts", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["code"] in ("MISSING_API_KEY", "INVALID_API_KEY")


def test_keys_are_stored_only_as_hashes(api: Api) -> None:
    with api.database.engine.connect() as connection:
        stored = [row[0] for row in connection.execute(text("SELECT key_hash FROM api_keys"))]
    assert len(stored) == 2
    assert api.alice not in stored and all(len(value) == 64 for value in stored)


def test_a_key_sees_only_its_accounts(api: Api) -> None:
    accounts = api.get("/v1/accounts").json()
    assert [account["id"] for account in accounts] == ["ALICE"]
    assert accounts[0]["balances"]["account"] == "ALICE"


OTHERS_RESOURCES = [
    "/v1/accounts/BOB",
    "/v1/accounts/BOB/balances",
    "/v1/accounts/BOB/positions",
    "/v1/accounts/BOB/statement",
    "/v1/orders?account=BOB",
    "/v1/executions?account=BOB",
    "/v1/events?account=BOB",
]


@pytest.mark.parametrize("path", OTHERS_RESOURCES)
def test_another_accounts_resources_are_404(api: Api, path: str) -> None:
    response = api.get(path)
    assert response.status_code == 404, response.text
    assert response.json()["code"] == "NOT_FOUND"


def test_another_accounts_order_is_404_by_id_by_client_id_for_cancel_and_replace(api: Api) -> None:
    bobs = api.place(key=api.bob, client_order_id="bob-1").json()
    assert bobs["account"] == "BOB"
    assert api.get(f"/v1/orders/{bobs['id']}").status_code == 404
    assert api.get("/v1/orders/by-client-id/bob-1").status_code == 404
    assert api.delete(f"/v1/orders/{bobs['id']}").status_code == 404
    assert api.post(f"/v1/orders/{bobs['id']}/replace", {"qty": "5"}).status_code == 404
    assert api.get("/v1/orders").json()["orders"] == []
    assert api.get(f"/v1/orders/{bobs['id']}", key=api.bob).status_code == 200


def test_placing_or_funding_for_another_account_is_404_and_books_nothing(api: Api) -> None:
    assert api.place(account="BOB").status_code == 404
    assert api.post("/v1/accounts/BOB/deposits", {"amount": "5"}).status_code == 404
    assert api.post("/v1/accounts/BOB/withdrawals", {"amount": "5"}).status_code == 404
    with api.database.engine.connect() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM orders")).scalar_one() == 0


def test_scopes_are_enforced(api: Api) -> None:
    reader = create_api_key(api.database, ["ALICE"], [Scope.READ])
    assert api.get("/v1/accounts/ALICE", key=reader).status_code == 200
    refused = api.place(key=reader)
    assert refused.status_code == 403
    assert refused.json()["code"] == "MISSING_SCOPE"
    assert api.post("/v1/accounts/ALICE/deposits", {"amount": "5"}, key=reader).status_code == 403
    assert api.client.put("/v1/quotes/AAPL", json={"price": "200.00"}, headers=api.headers(reader)).status_code == 403
    trader = create_api_key(api.database, ["ALICE"], [Scope.TRADE])
    assert api.get("/v1/accounts/ALICE", key=trader).status_code == 403
    assert api.place(key=trader).status_code == 201


def test_a_revoked_key_stops_working(api: Api) -> None:
    key = create_api_key(api.database, ["ALICE"], [Scope.READ])
    key_id = key.split("_")[1]
    revoke_api_key(api.database, key_id)
    assert api.get("/v1/accounts", key=key).status_code == 401


def test_cli_creates_a_key_printed_alone_on_stdout(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from cli.main import main
    from oms.api.keys import lookup
    from oms.service.accounts import create_account
    from oms.service.uow import Database
    from oms.settings import get_settings

    database = Database.from_url(database_url)
    create_account(database, "CLI1")
    monkeypatch.setenv("OMS_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(main, ["api-keys", "create", "CLI1", "--scope", "read", "--scope", "fund"])
        assert result.exit_code == 0, result.output
        key = result.stdout.strip()
        assert "\n" not in key and key.startswith("omsk_")
        principal = lookup(database, key)
        assert principal is not None
        assert principal.accounts == frozenset({"CLI1"})
        assert principal.scopes == frozenset({Scope.READ, Scope.FUND})
        unknown = CliRunner().invoke(main, ["api-keys", "create", "NOBODY"])
        assert unknown.exit_code != 0
        assert "unknown account NOBODY" in unknown.output
    finally:
        get_settings.cache_clear()
        database.dispose()
