"""Idempotency-Key: replay, 409 while running, 422 with another body, 24 h lifetime, one transaction with the write."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from oms.api import idempotency
from tests.api.conftest import Api

ORDER = {"symbol": "AAPL", "side": "buy", "type": "limit", "qty": "10", "limit_price": "190.00"}


def count(api: Api, table: str) -> int:
    with api.database.engine.connect() as connection:
        return int(connection.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())


def test_same_key_and_body_replays_the_first_response(api: Api) -> None:
    first = api.post("/v1/orders", ORDER, idempotency_key="k-1")
    second = api.post("/v1/orders", ORDER, idempotency_key="k-1")
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert count(api, "orders") == 1


def test_key_order_and_spacing_of_the_json_body_do_not_matter(api: Api) -> None:
    first = api.post("/v1/orders", ORDER, idempotency_key="k-json")
    reordered = api.client.post(
        "/v1/orders",
        content='{ "limit_price":"190.00", "qty":"10","type":"limit","side":"buy","symbol":"AAPL"}',
        headers=api.headers(idempotency_key="k-json") | {"content-type": "application/json"},
    )
    assert reordered.json() == first.json()
    assert count(api, "orders") == 1


def test_a_denial_is_replayed_too(api: Api) -> None:
    first = api.post("/v1/orders", ORDER | {"qty": "100000"}, idempotency_key="k-deny")
    second = api.post("/v1/orders", ORDER | {"qty": "100000"}, idempotency_key="k-deny")
    assert first.status_code == second.status_code == 422
    assert second.json() == first.json()
    assert second.headers["content-type"] == "application/problem+json"
    assert count(api, "orders") == 1  # the one rejected order, recorded once


def test_same_key_with_a_different_body_is_422_and_books_nothing(api: Api) -> None:
    api.post("/v1/orders", ORDER, idempotency_key="k-2")
    other = api.post("/v1/orders", ORDER | {"qty": "11"}, idempotency_key="k-2")
    assert other.status_code == 422
    assert other.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert count(api, "orders") == 1


def test_same_key_on_another_endpoint_is_422(api: Api) -> None:
    api.post("/v1/accounts/ALICE/deposits", {"amount": "10"}, idempotency_key="k-3")
    other = api.post("/v1/accounts/ALICE/withdrawals", {"amount": "10"}, idempotency_key="k-3")
    assert other.status_code == 422


def test_same_key_while_the_first_request_is_running_is_409(api: Api) -> None:
    body = b'{"amount":"10"}'
    fingerprint = idempotency.request_fingerprint("POST", "/v1/accounts/ALICE/deposits", body)
    key_id = api.alice.split("_")[1]
    assert idempotency.claim(api.database, key_id, "k-run", fingerprint, datetime.now(UTC)) is None
    response = api.client.post("/v1/accounts/ALICE/deposits", content=body,
                               headers=api.headers(idempotency_key="k-run") | {"content-type": "application/json"})  # fmt: skip
    assert response.status_code == 409
    assert response.json()["code"] == "IDEMPOTENCY_KEY_IN_USE"
    assert response.headers["retry-after"] == "1"


def test_a_claim_abandoned_past_its_lease_is_taken_over(api: Api) -> None:
    body = b'{"amount":"10"}'
    fingerprint = idempotency.request_fingerprint("POST", "/v1/accounts/ALICE/deposits", body)
    key_id = api.alice.split("_")[1]
    long_ago = datetime.now(UTC) - idempotency.RUNNING_LEASE - timedelta(seconds=5)
    assert idempotency.claim(api.database, key_id, "k-dead", fingerprint, long_ago) is None
    response = api.client.post("/v1/accounts/ALICE/deposits", content=body,
                               headers=api.headers(idempotency_key="k-dead") | {"content-type": "application/json"})  # fmt: skip
    assert response.status_code == 201


def test_keys_live_24_hours_then_expire(api: Api) -> None:
    api.post("/v1/orders", ORDER, idempotency_key="k-old")
    with api.database.engine.connect() as connection:
        created, expires = connection.execute(text("SELECT created_at, expires_at FROM idempotency_keys")).one()
    if isinstance(created, str):
        created, expires = datetime.fromisoformat(created), datetime.fromisoformat(expires)
    assert expires - created >= timedelta(hours=24)
    with api.database.engine.begin() as connection:
        connection.execute(text("UPDATE idempotency_keys SET expires_at = :past"), {"past": datetime(2000, 1, 1, tzinfo=UTC)})
    fresh = api.post("/v1/orders", ORDER | {"qty": "3"}, idempotency_key="k-old")
    assert fresh.status_code == 201
    assert fresh.json()["qty"] == "3"
    assert idempotency.purge_expired(api.database, datetime.now(UTC)) == 0


def test_key_and_write_commit_together_a_failure_leaves_neither(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*_args: object, **_kw: object) -> None:
        raise RuntimeError("crash between the write and its commit")

    monkeypatch.setattr(idempotency, "complete", fail)
    response = api.post("/v1/orders", ORDER, idempotency_key="k-crash")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert count(api, "orders") == 0
    assert count(api, "idempotency_keys") == 0
    assert count(api, "outbox") == 0
    monkeypatch.undo()
    retry = api.post("/v1/orders", ORDER, idempotency_key="k-crash")
    assert retry.status_code == 201
    assert count(api, "orders") == 1


def test_the_stored_response_is_committed_with_the_order(api: Api) -> None:
    placed = api.post("/v1/orders", ORDER, idempotency_key="k-row").json()
    with api.database.engine.connect() as connection:
        state, status, body = connection.execute(text("SELECT state, response_status, response_body FROM idempotency_keys")).one()
    if isinstance(body, str):
        import json

        body = json.loads(body)
    assert (state, status, body["id"]) == ("done", 201, placed["id"])


def test_eight_concurrent_requests_with_one_key_make_one_order(live_api: Api) -> None:
    def send(_: int) -> tuple[int, dict[str, object]]:
        response = live_api.post("/v1/orders", ORDER, idempotency_key="k-race")
        return response.status_code, response.json()

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(send, range(8)))
    assert count(live_api, "orders") == 1
    created = [body for status, body in results if status == 201]
    assert created and all(body == created[0] for body in created)
    assert all(status in (201, 409) for status, _ in results), results
    assert all(body["code"] == "IDEMPOTENCY_KEY_IN_USE" for status, body in results if status == 409)


def test_an_invalid_key_is_400(api: Api) -> None:
    response = api.post("/v1/orders", ORDER, idempotency_key="x" * 200)
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_IDEMPOTENCY_KEY"
    assert count(api, "orders") == 0


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8"], ids=["fast path", "route"])
def test_two_keys_in_one_request_are_400_not_the_first_one(api: Api, content_type: str) -> None:
    headers = [("authorization", f"Bearer {api.alice}"), ("content-type", content_type),
               ("idempotency-key", "k-a"), ("idempotency-key", "k-b")]  # fmt: skip
    response = api.client.post("/v1/orders", content=json.dumps(ORDER), headers=headers)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "INVALID_IDEMPOTENCY_KEY"
    assert count(api, "orders") == 0
    assert count(api, "idempotency_keys") == 0
