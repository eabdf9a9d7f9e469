"""The order lifecycle through REST while the venue fills over FIX: REST -> OMS -> gateway -> simulated exchange.

Uses the gateway's own test harness (a real QuickFIX venue and the real gateway over loopback) and the REST app
served by uvicorn, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "gateway"))

from harness import VenueHarness, eventually, free_port, seed_oms, write_gateway_config  # noqa: E402

from oms.api.app import create_app  # noqa: E402
from oms.api.keys import Scope, create_api_key  # noqa: E402
from oms.api.ratelimit import RateLimit  # noqa: E402
from oms.service.accounts import balances  # noqa: E402
from oms.service.uow import Database  # noqa: E402
from tests.api.conftest import Api, LiveServer  # noqa: E402
from tests.api.test_api_events import stream  # noqa: E402

pytestmark = pytest.mark.fix


@pytest.fixture
def fix_api(database_url: str, tmp_path: Path) -> Iterator[Api]:
    from oms.gateway.config import load_gateway_settings
    from oms.gateway.gateway import Gateway

    database = Database.from_url(database_url)
    seed_oms(database)
    key = create_api_key(database, ["ACC1"], [Scope.READ, Scope.TRADE])
    venue = VenueHarness(tmp_path / "venue").start()
    venue.service.step_market_maker()  # two-sided quotes on every symbol
    settings = load_gateway_settings(write_gateway_config(tmp_path / "gateway", venue.port, free_port()))
    gateway = Gateway(settings, database).start()
    try:
        assert gateway.wait_venue(15), "gateway never logged on to the venue"
        app = create_app(database, rate_limit=RateLimit(10_000, 10_000), poll_interval_s=0.1, heartbeat_s=0.3)
        with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
            yield Api(client, database, key, key)
    finally:
        gateway.stop(True)
        venue.stop()
        database.dispose()


def order_status(api: Api, order_id: str, wanted: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        order = api.get(f"/v1/orders/{order_id}").json()
        return order if order["status"] == wanted else None

    return eventually(reached, timeout_s=20)  # type: ignore[return-value]


def test_rest_order_fills_at_the_venue_over_fix_and_the_stream_reports_it(fix_api: Api) -> None:
    with stream(fix_api, params={"since": 0}) as events:
        placed = fix_api.place(account="ACC1", qty="100", limit_price="190.00", client_order_id="R1")
        assert placed.status_code == 201, placed.text
        order = order_status(fix_api, placed.json()["id"], "filled")
        assert order["filled_qty"] == "100"
        assert Decimal(order["filled_avg_price"]) <= Decimal("190.00")
        kinds = []
        while "order.filled" not in kinds:
            kinds.extend(frame["event"] for frame in events.take(1))
        assert kinds[0] == "order.pending_new"
    trades = [e for e in fix_api.get("/v1/executions", params={"order_id": order["id"]}).json()["executions"] if e["exec_type"] == "trade"]
    assert sum(Decimal(e["qty"]) for e in trades) == Decimal(100)
    (position,) = [p for p in fix_api.get("/v1/accounts/ACC1/positions").json() if p["symbol"] == "AAPL"]
    assert Decimal(position["qty"]) == Decimal(100)
    assert balances(fix_api.database, "ACC1").in_currency("USD").reserved == 0


def test_rest_cancel_of_a_resting_order_is_confirmed_by_the_venue(fix_api: Api) -> None:
    placed = fix_api.place(account="ACC1", qty="10", limit_price="175.00", client_order_id="R2")
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["id"]
    order_status(fix_api, order_id, "new")
    cancel = fix_api.delete(f"/v1/orders/{order_id}", idempotency_key="cancel-R2")
    assert cancel.status_code == 202, cancel.text
    order_status(fix_api, order_id, "canceled")
    assert balances(fix_api.database, "ACC1").in_currency("USD").reserved == 0
