"""The event stream over WebSocket, and across processes through the Redis Stream.

WebSocket: same auth, scoping and ``since`` resume as SSE, served by uvicorn (a real socket). Redis: a
writer that never wakes the reader in process (the venue path through ``CommandExecutor``, as in the FIX
gateway process, publishing with its ``on_commit`` hook, or not publishing at all and covered by the
tailer) and a reader API instance polling the database only every 60 s; everything arrives live through the
Redis Stream, in order, with contiguous per-account sequence numbers, nothing lost, and a reconnect with
``since`` resumes exactly.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import text
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from oms.api.app import create_app
from oms.api.ratelimit import RateLimit
from oms.domain.enums import ExecType, OrderStatus
from oms.events.codec import decode
from oms.events.publisher import STREAM, OrderEventTailer, StreamPublisher
from oms.service.executor import CommandExecutor
from tests.api.conftest import Api, LiveServer, seeded_database
from tests.service.factories import NO_FEES, buy, report

WAIT_S = 15.0


@contextmanager
def websocket(api: Api, key: str | None = None, **params: Any) -> Iterator[ClientConnection]:
    query = "&".join(f"{name}={value}" for name, value in params.items())
    url = str(api.client.base_url).replace("http://", "ws://") + "/v1/events/ws" + (f"?{query}" if query else "")
    with connect(url, additional_headers={"Authorization": f"Bearer {key or api.alice}"}, open_timeout=WAIT_S) as connection:
        yield connection


def take(connection: ClientConnection, count: int) -> list[dict[str, Any]]:
    """The next ``count`` events (heartbeats skipped)."""
    deadline = time.monotonic() + WAIT_S
    events: list[dict[str, Any]] = []
    while len(events) < count:
        message = json.loads(connection.recv(timeout=max(0.01, deadline - time.monotonic())))
        if message["type"] == "event":
            events.append(message)
    return events


def database_events(database: Any, account: str = "ALICE") -> list[tuple[int, str]]:
    with database.engine.connect() as connection:
        rows = connection.execute(text("SELECT id, kind FROM order_events WHERE account_id = :a ORDER BY id"), {"a": account})
        return [(int(row[0]), str(row[1])) for row in rows]


def test_websocket_streams_own_events_live_then_resumes_with_since(live_api: Api) -> None:
    with websocket(live_api, since=0) as connection:
        order = live_api.place(qty="2").json()
        live_api.place(key=live_api.bob, qty="3")  # BOB's: never on ALICE's stream
        live_api.fill(order["id"], "2", "189.00", OrderStatus.FILLED)
        first, filled = take(connection, 2)
        assert (first["kind"], first["order_id"], first["account"]) == ("order.pending_new", order["id"], "ALICE")
        assert filled["kind"] == "order.filled" and filled["data"]["cum_qty"] == "2"
        last_seen = filled["sequence"]
    live_api.post("/v1/accounts/ALICE/deposits", {"amount": "5"})  # while disconnected
    live_api.place(qty="1", client_order_id="ws-late")
    expected = [event for event in database_events(live_api.database) if event[0] > last_seen]
    assert len(expected) == 2
    with websocket(live_api, since=last_seen) as connection:
        assert [(event["sequence"], event["kind"]) for event in take(connection, 2)] == expected


@pytest.mark.parametrize(
    ("key", "params", "code", "reason"),
    [("nonsense", {}, 4401, "INVALID_API_KEY"), (None, {"account": "BOB"}, 4404, "NOT_FOUND")],
)
def test_websocket_refuses_bad_keys_and_other_accounts(live_api: Api, key: str | None, params: dict[str, str], code: int,
                                                       reason: str) -> None:  # fmt: skip
    with websocket(live_api, key, **params) as connection, pytest.raises(ConnectionClosed) as closed:
        connection.recv(timeout=WAIT_S)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (code, reason)


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("since=abc", "INVALID_SINCE"),
        ("since=-5", "INVALID_SINCE"),
        ("since=%EF%BC%91", "INVALID_SINCE"),  # a full-width 1
        (f"since={2**62 + 1}", "INVALID_SINCE"),
        ("since=1&since=2", "REPEATED_QUERY_PARAMETER"),
        ("account=ALICE&account=BOB", "REPEATED_QUERY_PARAMETER"),
    ],
)
def test_websocket_refuses_bad_query_parameters_as_sse_does_with_4000_plus_400(live_api: Api, query: str, reason: str) -> None:
    url = str(live_api.client.base_url).replace("http://", "ws://") + f"/v1/events/ws?{query}"
    with connect(url, additional_headers={"Authorization": f"Bearer {live_api.alice}"}, open_timeout=WAIT_S) as connection, \
            pytest.raises(ConnectionClosed) as closed:  # fmt: skip
        connection.recv(timeout=WAIT_S)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4400, reason)
    assert live_api.get(f"/v1/events?{query}").status_code in (400, 422)  # SSE refuses the same queries


@contextmanager
def writer_and_reader(database: Any, redis_url: str, alice: str, bob: str) -> Iterator[tuple[Api, Api]]:
    """Two API instances serving on one database and one Redis, neither tailing; the reader polls only every
    60 s. Yields a client of each: (writing, reading)."""
    limit = RateLimit(10_000, 10_000)
    writer_app = create_app(database, config=NO_FEES, redis_url=redis_url, rate_limit=limit, tail_events=False)
    reader_app = create_app(database, config=NO_FEES, redis_url=redis_url, rate_limit=limit, poll_interval_s=60,
                            heartbeat_s=0.3, tail_events=False)
    with LiveServer(writer_app) as writer_server, LiveServer(reader_app) as reader_server, \
            httpx.Client(base_url=writer_server.url, timeout=30) as writer, \
            httpx.Client(base_url=reader_server.url, timeout=30) as reader:  # fmt: skip
        yield Api(writer, database, alice, bob), Api(reader, database, alice, bob)


def _fill(executor: CommandExecutor, api: Api, order_id: str) -> None:
    """The venue path as the gateway process runs it: an ExecutionReport through CommandExecutor."""
    result = executor.one(report(api.venue_cl_ord_id(order_id), ExecType.TRADE, OrderStatus.FILLED, last_qty="1", last_px="189.00"))
    assert result.ok, result


def test_events_committed_by_another_process_arrive_through_the_redis_stream(postgres_url: str, redis_url: str) -> None:
    database, alice, bob = seeded_database(postgres_url)
    publisher = StreamPublisher(redis_url)
    gateway = CommandExecutor(database, NO_FEES, on_commit=publisher.publish)  # the gateway process's one-line hook
    try:
        with writer_and_reader(database, redis_url, alice, bob) as (writing, reading):
            with websocket(reading, since=0) as connection:
                time.sleep(0.5)  # caught up from the database, now idle on a 60 s poll: only Redis can wake it
                orders = [writing.place(qty="1", client_order_id=f"R{i}").json()["id"] for i in range(5)]
                for order_id in orders[:3]:
                    _fill(gateway, writing, order_id)
                live = take(connection, 8)
                assert [event["sequence"] for event in live] == [event[0] for event in database_events(database)]
                assert [event["account_seq"] for event in live] == list(range(live[0]["account_seq"], live[0]["account_seq"] + 8))
                last_seen = live[3]["sequence"]
            for order_id in orders[3:]:
                writing.delete(f"/v1/orders/{order_id}")  # while disconnected
            expected = [event for event in database_events(database) if event[0] > last_seen]
            with websocket(reading, since=last_seen) as connection:
                resumed = take(connection, len(expected))
                assert [(event["sequence"], event["kind"]) for event in resumed] == expected
            client = redis.Redis.from_url(redis_url)
            # Every event went into the stream exactly once, by the process that committed it.
            assert client.xlen(STREAM) == len(database_events(database))
            client.close()
    finally:
        publisher.close()
        database.dispose()


def test_a_tailer_publishes_what_writers_without_the_hook_commit(postgres_url: str, redis_url: str) -> None:
    database, alice, bob = seeded_database(postgres_url)
    publisher = StreamPublisher(redis_url)
    tailer = OrderEventTailer(database, publisher, interval_s=0.02)
    tailer.start()
    try:
        with writer_and_reader(database, redis_url, alice, bob) as (writing, reading), \
                websocket(reading, since=0) as connection:  # fmt: skip
            time.sleep(0.5)
            order_id = writing.place(qty="1").json()["id"]
            _fill(CommandExecutor(database, NO_FEES), writing, order_id)  # no hook: only the tailer sees it
            placed, filled = take(connection, 2)
            assert (placed["kind"], filled["kind"]) == ("order.pending_new", "order.filled")
            assert filled["account_seq"] == placed["account_seq"] + 1
    finally:
        tailer.stop()
        publisher.close()
        database.dispose()


def test_a_tailer_waits_out_a_redis_outage_quietly_and_publishes_once_it_is_back(database_url: str, redis_url: str) -> None:
    """While Redis cannot be reached the tailer says so once (not on every 20 ms step: a log line per step
    buried everything else during an outage) and tries again at a calmer pace; once Redis is back it
    publishes what was committed."""
    from structlog.testing import capture_logs

    from fix.certification.tcp_proxy import FaultProxy

    database, _, _ = seeded_database(database_url)
    placed = CommandExecutor(database, NO_FEES).one(buy("ALICE", "DURING-OUTAGE", "1")).order  # an event, no hook
    assert placed is not None
    port = int(redis_url.rsplit(":", 1)[1].split("/", 1)[0])
    with FaultProxy(port) as proxy:
        proxy.refuse(True)
        publisher = StreamPublisher(redis_url.replace(f":{port}", f":{proxy.port}"))
        tailer = OrderEventTailer(database, publisher, interval_s=0.02)
        try:
            with capture_logs() as logs:
                tailer.start()
                time.sleep(1.5)
            failures = [entry for entry in logs if entry["event"].startswith("event_tailer")]
            assert len(failures) == 1, failures
            proxy.refuse(False)
            client = redis.Redis.from_url(redis_url)

            def ours() -> list[dict[str, Any]]:  # this database's order: other tests' writers may share Redis
                return [event for _, fields in client.xrange(STREAM) if (event := decode(fields))["order_id"] == str(placed.order_id)]

            deadline = time.monotonic() + 5
            while not ours() and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.2)  # a few more tailer steps: it must not publish the event again
            assert [(event["sequence"], event["kind"]) for event in ours()] == database_events(database, "ALICE")
            client.close()
        finally:
            tailer.stop()
            publisher.close()
            database.dispose()


def test_an_accounts_events_go_out_in_their_order_even_when_redis_brings_them_out_of_it(postgres_url: str, redis_url: str) -> None:
    """A stream's resume point is the last sequence it sent: a client reconnecting after N never gets an
    event at or below N. So the events of an account must go out in their order. Through Redis they may
    arrive out of it: the API publishes its own commits at once, while what the FIX gateway commits reaches
    Redis through the tailer tens of milliseconds later (here: not at all, and the reader polls only every
    60 s). A chaos run saw a client take event N+2 before N; had it reconnected then, N was lost for good.
    An account's events are numbered without gaps (``account_seq``), so a gap says an earlier one is missing:
    the stream reads the database for it first."""
    database, alice, bob = seeded_database(postgres_url)
    try:
        with writer_and_reader(database, redis_url, alice, bob) as (writing, reading):
            order_id = writing.place(qty="1").json()["id"]
            since = database_events(database)[-1][0]
            with websocket(reading, since=since) as connection:
                time.sleep(0.5)
                _fill(CommandExecutor(database, NO_FEES), writing, order_id)  # committed; nobody publishes it
                second = writing.place(qty="1").json()["id"]  # published at once by the writer's hook
                first_out, second_out = take(connection, 2)
            assert (first_out["kind"], first_out["order_id"]) == ("order.filled", order_id)
            assert (second_out["kind"], second_out["order_id"]) == ("order.pending_new", second)
            assert second_out["account_seq"] == first_out["account_seq"] + 1
            assert first_out["sequence"] < second_out["sequence"]
    finally:
        database.dispose()
