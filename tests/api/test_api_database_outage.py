"""The REST API while PostgreSQL cannot be reached: every route answers at once with a clear 503
(``DATABASE_UNAVAILABLE`` or ``BUSY``, ``Retry-After``), the client's connection stays usable, and once the
database is back the same process serves as before.

The fault proxy sits between the API and PostgreSQL (refusing and cutting connections looks to the API like
a server that is down); the server itself keeps running for the other tests on this machine.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy.engine import make_url

from fix.certification.tcp_proxy import FaultProxy
from oms.api.app import create_app
from oms.api.ratelimit import RateLimit
from tests.api.conftest import LiveServer, seeded_database
from tests.service.factories import NO_FEES


@dataclass
class Outage:
    client: httpx.Client
    proxy: FaultProxy
    alice: str
    bob: str


@pytest.fixture
def outage(postgres_url: str) -> Iterator[Outage]:
    url = make_url(postgres_url)
    with FaultProxy(url.port or 5432, upstream_host=url.host or "127.0.0.1") as proxy:
        through_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        database, alice, bob = seeded_database(through_proxy)
        app = create_app(database, config=NO_FEES, rate_limit=RateLimit(rate_per_s=10_000, burst=10_000), poll_interval_s=0.2)
        with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
            yield Outage(client, proxy, alice, bob)
        database.dispose()


def eventually(check: Callable[[], object], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _order(cl_ord_id: str) -> dict[str, str]:
    return {"symbol": "AAPL", "side": "buy", "type": "limit", "qty": "1", "limit_price": "100", "client_order_id": cl_ord_id}


def test_every_route_answers_503_while_the_database_is_unreachable_and_serves_again_after(outage: Outage) -> None:
    client, proxy = outage.client, outage.proxy
    alice = {"Authorization": f"Bearer {outage.alice}"}
    placed = client.post("/v1/orders", json=_order("OUT-1"), headers=alice)
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["id"]

    proxy.refuse(True)
    proxy.cut()
    bob = {"Authorization": f"Bearer {outage.bob}"}  # a key never looked up yet: its lookup needs the database
    requests = [
        ("GET", "/v1/accounts/ALICE/balances", alice, None),
        ("GET", "/v1/orders", alice, None),
        ("GET", f"/v1/orders/{order_id}", alice, None),
        ("GET", "/v1/executions", alice, None),
        ("GET", "/v1/accounts", bob, None),
        ("POST", "/v1/orders", alice, _order("OUT-2")),
        ("DELETE", f"/v1/orders/{order_id}", alice, None),
    ]
    for method, path, headers, body in requests:
        answer = client.request(method, path, headers=headers, json=body)  # one keep-alive connection throughout
        assert answer.status_code == 503, (method, path, answer.status_code, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["code"] in ("DATABASE_UNAVAILABLE", "BUSY"), answer.text
        assert answer.headers.get("Retry-After") == "1"

    proxy.refuse(False)
    proxy.heal()
    assert client.get("/v1/accounts/ALICE/balances", headers=alice).status_code == 200
    assert client.get("/v1/accounts", headers=bob).status_code == 200
    again = client.post("/v1/orders", json=_order("OUT-2"), headers=alice)
    assert again.status_code == 201, again.text


def test_an_open_event_stream_outlives_a_short_database_outage(outage: Outage) -> None:
    """A stream reads the database on every poll: an outage shorter than the key cache's life must not tear
    it down mid-response (the client saw a broken chunked body, the log a traceback); once the database is
    back, the same response carries the events written after it."""
    client, proxy = outage.client, outage.proxy
    alice = {"Authorization": f"Bearer {outage.alice}"}
    first = client.post("/v1/orders", json=_order("SSE-1"), headers=alice).json()["id"]
    seen: list[str] = []
    failures: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        try:
            with httpx.stream("GET", f"{client.base_url}/v1/events", params={"since": 0}, headers=alice,
                              timeout=httpx.Timeout(5, read=20)) as response:
                for line in response.iter_lines():
                    if line.startswith("data:"):
                        seen.append(json.loads(line[5:])["order_id"])
                    if done.is_set():
                        return
        except BaseException as error:  # noqa: BLE001 - reported by the test
            failures.append(error)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    eventually(lambda: first in seen or failures, 10)
    assert failures == [] and first in seen, (failures, seen)
    proxy.refuse(True)
    proxy.cut()
    time.sleep(1.5)  # several polls of 0.2 s fail meanwhile
    proxy.refuse(False)
    proxy.heal()
    second = client.post("/v1/orders", json=_order("SSE-2"), headers=alice)
    assert second.status_code == 201, second.text
    eventually(lambda: second.json()["id"] in seen or failures, 10)
    done.set()
    assert failures == [], failures
    assert second.json()["id"] in seen
