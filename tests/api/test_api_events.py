"""The order-event stream (SSE): scoped, resumable without loss, woken in process and through Redis."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from oms.api.app import create_app
from oms.api.ratelimit import RateLimit
from oms.domain.enums import OrderStatus
from tests.api.conftest import Api, LiveServer, seeded_database
from tests.service.factories import NO_FEES

WAIT_S = 15.0


class Stream:
    """An SSE client on its own thread; frames arrive in ``frames``."""

    def __init__(self, base_url: str, key: str, params: dict[str, Any] | None = None, last_event_id: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {key}"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        self.frames: queue.Queue[dict[str, Any]] = queue.Queue()
        self._client = httpx.Client(base_url=base_url, timeout=httpx.Timeout(30, read=None))
        self._stop = threading.Event()
        self._opened = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(headers, params or {}), daemon=True)
        self._thread.start()
        assert self._opened.wait(WAIT_S), "stream did not open"

    def _run(self, headers: dict[str, str], params: dict[str, Any]) -> None:
        try:
            with self._client.stream("GET", "/v1/events", headers=headers, params=params) as response:
                assert response.headers["content-type"].startswith("text/event-stream")
                self._opened.set()
                frame: dict[str, str] = {}
                for line in response.iter_lines():
                    if self._stop.is_set():
                        return
                    if line == "":
                        if "data" in frame:
                            self.frames.put({"id": int(frame["id"]), "event": frame["event"], **json.loads(frame["data"])})
                        frame = {}
                    elif not line.startswith(":"):
                        name, _, value = line.partition(": ")
                        frame[name] = value
        except (httpx.HTTPError, RuntimeError):
            return

    def take(self, count: int) -> list[dict[str, Any]]:
        deadline = time.monotonic() + WAIT_S
        got = []
        while len(got) < count:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"only {len(got)} of {count} events arrived: {got}"
            got.append(self.frames.get(timeout=remaining))
        return got

    def nothing_more(self, wait_s: float = 0.5) -> bool:
        time.sleep(wait_s)
        return self.frames.empty()

    def close(self) -> None:
        self._stop.set()  # the reader notices at the next line (heartbeats come every 0.3 s)
        self._thread.join(timeout=5)
        self._client.close()


@contextmanager
def stream(api: Api, key: str | None = None, **kw: Any) -> Iterator[Stream]:
    opened = Stream(str(api.client.base_url), key or api.alice, **kw)
    try:
        yield opened
    finally:
        opened.close()


def alice_events(api: Api) -> list[tuple[int, str]]:
    with api.database.engine.connect() as connection:
        rows = connection.execute(text("SELECT id, kind FROM order_events WHERE account_id = 'ALICE' ORDER BY id"))
        return [(int(row[0]), str(row[1])) for row in rows]


def test_stream_delivers_live_events_of_own_accounts_only(live_api: Api) -> None:
    with stream(live_api) as events:
        order = live_api.place(qty="2").json()
        live_api.place(key=live_api.bob, qty="3")
        (first,) = events.take(1)
        assert (first["event"], first["order_id"], first["account"]) == ("order.pending_new", order["id"], "ALICE")
        assert first["data"]["status"] == "pending_new" and first["sequence"] == first["id"]
        live_api.fill(order["id"], "2", "189.00", OrderStatus.FILLED)  # written by the venue path, found by polling
        (filled,) = events.take(1)
        assert filled["event"] == "order.filled" and filled["data"]["cum_qty"] == "2"
        live_api.post("/v1/accounts/ALICE/deposits", {"amount": "5"})
        (deposit,) = events.take(1)
        assert deposit["event"] == "balance.deposit" and deposit["data"]["amount"] == "5"
        assert events.nothing_more()


def test_reconnecting_with_last_event_id_or_since_loses_nothing(live_api: Api) -> None:
    orders = [live_api.place(qty="1", client_order_id=f"S{i}").json()["id"] for i in range(3)]
    with stream(live_api, params={"since": 0}) as events:
        backlog = events.take(3)
        assert [frame["order_id"] for frame in backlog] == orders
        last_seen = backlog[-1]["id"]
    live_api.fill(orders[0], "1", "189.00", OrderStatus.FILLED)  # while disconnected
    live_api.delete(f"/v1/orders/{orders[1]}")
    live_api.place(qty="1", client_order_id="S-late")
    expected = [event for event in alice_events(live_api) if event[0] > last_seen]
    assert len(expected) == 3
    with stream(live_api, last_event_id=str(last_seen)) as resumed:
        got = resumed.take(3)
        assert [(frame["id"], frame["event"]) for frame in got] == expected
        assert resumed.nothing_more()
    with stream(live_api, params={"since": backlog[0]["id"]}) as since:
        again = since.take(5)
        assert [frame["id"] for frame in again] == [backlog[1]["id"], backlog[2]["id"], *(e[0] for e in expected)]


def test_without_a_resume_point_the_stream_starts_from_now(live_api: Api) -> None:
    live_api.place(qty="1")
    with stream(live_api) as events:
        assert events.nothing_more(0.6)
        live_api.place(qty="1", client_order_id="now")
        (frame,) = events.take(1)
        assert frame["data"]["cl_ord_id"] == "now"


def _slow_polling_server(database_url: str, redis_url: str | None, seeded: Any = None) -> tuple[Any, LiveServer]:
    database, alice, bob = seeded or seeded_database(database_url)
    app = create_app(database, config=NO_FEES, redis_url=redis_url, rate_limit=RateLimit(10_000, 10_000), poll_interval_s=60,
                     heartbeat_s=0.3)
    return (database, alice, bob), LiveServer(app)


def test_in_process_writes_wake_the_stream_without_polling(database_url: str) -> None:
    (database, alice, bob), server = _slow_polling_server(database_url, None)
    with server, httpx.Client(base_url=server.url, timeout=30) as client:
        api = Api(client, database, alice, bob)
        with stream(api, params={"since": 0}) as events:
            time.sleep(0.3)  # let the stream go idle on its 60 s poll
            started = time.monotonic()
            api.place(qty="1")
            events.take(1)
            assert time.monotonic() - started < 5
    database.dispose()


def test_redis_carries_the_wake_up_between_api_processes(database_url: str, redis_url: str) -> None:
    seeded, writer_server = _slow_polling_server(database_url, redis_url)
    _, reader_server = _slow_polling_server(database_url, redis_url, seeded)
    database, alice, bob = seeded
    with writer_server, reader_server, httpx.Client(base_url=writer_server.url, timeout=30) as writer, \
            httpx.Client(base_url=reader_server.url, timeout=30) as reader:  # fmt: skip
        writing = Api(writer, database, alice, bob)
        reading = Api(reader, database, alice, bob)
        with stream(reading, params={"since": 0}) as events:
            time.sleep(0.5)  # subscribed and idle on a 60 s poll
            started = time.monotonic()
            writing.place(qty="1", client_order_id="via-redis")
            (frame,) = events.take(1)
            assert frame["data"]["cl_ord_id"] == "via-redis"
            assert time.monotonic() - started < 5
    database.dispose()


@pytest.mark.parametrize("since", ["0"])
def test_stream_of_another_account_is_refused(live_api: Api, since: str) -> None:
    response = live_api.client.get("/v1/events", params={"account": "BOB", "since": since}, headers=live_api.headers())
    assert response.status_code == 404


def test_an_idle_redis_stream_reader_keeps_its_connection(redis_url: str) -> None:
    """No event for longer than one XREAD block is no outage: the reader stays connected (no reconnect, no
    warning every few seconds, no fallback of every stream to the database), and the next event arrives."""
    import asyncio
    from datetime import UTC, datetime

    from oms.api.events import EventHub
    from oms.events.publisher import StreamPublisher

    async def scenario() -> list[bool]:
        hub = EventHub(redis_url)
        await hub.start()
        try:
            for _ in range(100):
                if hub.streaming:
                    break
                await asyncio.sleep(0.05)
            seen: list[bool] = []
            for _ in range(160):  # 8 s: longer than a 5 s block plus redis-py's 5 s default socket timeout
                seen.append(hub.streaming)
                await asyncio.sleep(0.05)
            position = hub.position
            publisher = StreamPublisher(redis_url)
            assert publisher.publish([{"sequence": 1, "account_seq": 1, "account": "A", "kind": "order.new",
                                       "order_id": "O1", "data": {}, "created_at": datetime.now(UTC)}]) == 1
            publisher.close()
            for _ in range(100):
                if hub.position > position:
                    break
                await asyncio.sleep(0.05)
            seen.append(hub.position > position)
            return seen
        finally:
            await hub.stop()

    seen = asyncio.run(scenario())
    assert all(seen[:-1]), f"the reader disconnected while idle ({seen.count(False)} samples of 50 ms)"
    assert seen[-1], "the event published after the idle period did not reach the buffer"
