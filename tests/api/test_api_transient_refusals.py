"""A refusal that means "not now" (the account's order rate) tells the client when to retry and is not stored
under the Idempotency-Key: the retry with the same key runs, rather than replaying the refusal for 24 hours."""

from __future__ import annotations

import time

from sqlalchemy import update

from oms.db.models import Account
from tests.api.conftest import Api

ORDER = {"symbol": "AAPL", "side": "buy", "type": "limit", "qty": "1", "limit_price": "190.00"}


def test_an_order_refused_for_the_accounts_rate_runs_when_retried_with_the_same_key(api: Api) -> None:
    with api.database.engine.begin() as connection:
        connection.execute(update(Account.__table__).where(Account.__table__.c.id == "ALICE").values(max_orders_per_second=1))
    assert api.post("/v1/orders", ORDER, idempotency_key="first").status_code == 201
    refused = api.post("/v1/orders", ORDER, idempotency_key="second")
    assert refused.status_code == 429, refused.text
    assert refused.json()["code"] == "RATE_LIMITED" and int(refused.headers["retry-after"]) >= 1
    time.sleep(1.1)  # the account's one-second window has moved on
    retried = api.post("/v1/orders", ORDER, idempotency_key="second")
    assert retried.status_code == 201, retried.text
    assert "idempotent-replayed" not in retried.headers
    again = api.post("/v1/orders", ORDER, idempotency_key="second")  # now the answer is final, and replayed
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == retried.json()["id"]


def test_the_same_client_order_id_is_placed_when_retried_after_a_rate_refusal(api: Api) -> None:
    with api.database.engine.begin() as connection:
        connection.execute(update(Account.__table__).where(Account.__table__.c.id == "ALICE").values(max_orders_per_second=1))
    assert api.post("/v1/orders", ORDER | {"client_order_id": "C-1"}, idempotency_key="one").status_code == 201
    refused = api.post("/v1/orders", ORDER | {"client_order_id": "C-2"}, idempotency_key="two")
    assert refused.status_code == 429 and "order_id" not in refused.json()  # nothing was kept
    time.sleep(1.1)
    retried = api.post("/v1/orders", ORDER | {"client_order_id": "C-2"}, idempotency_key="two")
    assert retried.status_code == 201, retried.text
    assert retried.json()["client_order_id"] == "C-2" and retried.json()["status"] != "rejected"
