"""API fixtures: the real app over a fresh migrated database (SQLite and PostgreSQL), with keys for two accounts.

``api`` drives the app in process (Starlette's TestClient, lifespan included); ``live_api`` serves it with
uvicorn on a loopback port for tests that need real concurrency or a long-lived stream.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from oms.api.app import create_app
from oms.api.keys import Scope, create_api_key
from oms.api.ratelimit import RateLimit
from oms.domain.commands import ApplyExecution
from oms.domain.enums import ExecType, OrderStatus
from oms.service.accounts import create_account, deposit
from oms.service.executor import CommandExecutor
from oms.service.orders import OrderResult
from oms.service.uow import Database
from tests.ports import free_port
from tests.service.factories import NO_FEES, report, setup_database

ALL_SCOPES = [Scope.READ, Scope.TRADE, Scope.FUND]


@dataclass
class Api:
    """A client for the app plus the keys and database behind it."""

    client: Any
    database: Database
    alice: str  # key for account ALICE (read, trade, fund)
    bob: str  # key for account BOB (read, trade, fund)

    def headers(self, key: str | None = None, idempotency_key: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {key or self.alice}"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        return headers

    def get(self, path: str, key: str | None = None, **kw: Any) -> httpx.Response:
        return self.client.get(path, headers=self.headers(key), **kw)

    def post(self, path: str, body: Any, key: str | None = None, idempotency_key: str | None = None) -> httpx.Response:
        return self.client.post(path, json=body, headers=self.headers(key, idempotency_key))

    def delete(self, path: str, key: str | None = None, idempotency_key: str | None = None) -> httpx.Response:
        return self.client.delete(path, headers=self.headers(key, idempotency_key))

    def place(self, key: str | None = None, **fields: Any) -> httpx.Response:
        body = {"symbol": "AAPL", "side": "buy", "type": "limit", "qty": "10", "limit_price": "190.00"}
        body.update(fields)
        return self.post("/v1/orders", body, key)

    def venue(self, command: ApplyExecution) -> OrderResult:
        """What the venue session does with an ExecutionReport: the service's real entry point."""
        return CommandExecutor(self.database, NO_FEES).one(command)

    def venue_cl_ord_id(self, order_id: str) -> str:
        from sqlalchemy import text

        with self.database.engine.connect() as connection:
            return str(connection.execute(text("SELECT venue_cl_ord_id FROM orders WHERE id = :id"), {"id": order_id}).scalar_one())

    def ack(self, order_id: str) -> None:
        result = self.venue(report(self.venue_cl_ord_id(order_id), ExecType.NEW, OrderStatus.NEW))
        assert result.ok, result

    def fill(self, order_id: str, qty: str, px: str, status: OrderStatus = OrderStatus.PARTIALLY_FILLED) -> None:
        result = self.venue(report(self.venue_cl_ord_id(order_id), ExecType.TRADE, status, last_qty=qty, last_px=px))
        assert result.ok, result


def seeded_database(url: str) -> tuple[Database, str, str]:
    database = setup_database(url)
    for account in ("ALICE", "BOB"):
        create_account(database, account)
        deposit(database, account, Decimal("100000"))
    alice = create_api_key(database, ["ALICE"], ALL_SCOPES)
    bob = create_api_key(database, ["BOB"], ALL_SCOPES)
    return database, alice, bob


@pytest.fixture
def api(database_url: str) -> Iterator[Api]:
    database, alice, bob = seeded_database(database_url)
    app = create_app(database, config=NO_FEES, rate_limit=RateLimit(rate_per_s=10_000, burst=10_000), poll_interval_s=0.2)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client, database, alice, bob)
    database.dispose()


class LiveServer:
    """uvicorn serving the app in a thread on a loopback port."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on", timeout_graceful_shutdown=2))
        self.thread = threading.Thread(target=self.server.run, name="api-test-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("API server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


@pytest.fixture
def live_api(database_url: str) -> Iterator[Api]:
    database, alice, bob = seeded_database(database_url)
    app = create_app(
        database, config=NO_FEES, rate_limit=RateLimit(rate_per_s=10_000, burst=10_000), poll_interval_s=0.2, heartbeat_s=0.3
    )
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        yield Api(client, database, alice, bob)
    database.dispose()
