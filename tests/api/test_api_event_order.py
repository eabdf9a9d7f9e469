"""A stream of several accounts sends their events in id order even when Redis delivers them out of order.

The API publishes its own commits at once; the FIX gateway's reach Redis later, through the tailer. If a
stream sent a later event first, a client that reconnected "after" it would never get the earlier one.
The hub therefore lets streams send buffered events only up to the highest id through which it has every
event, and reads an id that does not arrive from the database.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import text

from oms.api.events import GAP_FILL_AFTER_S, EventHub, fetch_events, iter_events
from oms.events.publisher import StreamPublisher
from oms.service.executor import CommandExecutor
from oms.service.uow import Database
from tests.service.factories import NO_FEES, buy, funded_database

ACCOUNTS = ["A", "B"]


@pytest.fixture
def database(postgres_url: str) -> Iterator[Database]:
    with funded_database(postgres_url, ACCOUNTS) as database:
        yield database


@asynccontextmanager
async def _live_hub(database: Database, redis_url: str) -> AsyncIterator[tuple[EventHub, StreamPublisher, int]]:
    """A hub connected to the Redis Stream, a publisher, and the id the hub has every event through."""
    hub = EventHub(redis_url, database, tail=False)
    await hub.start()
    publisher = StreamPublisher(redis_url)
    try:
        for _ in range(200):
            if hub.streaming:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the hub never connected to the Redis Stream")
        since = hub.ready_through()
        assert since is not None
        yield hub, publisher, since
    finally:
        publisher.close()
        await hub.stop()


async def _collect(database: Database, hub: EventHub, since: int, count: int, sink: list[dict[str, Any]]) -> float:
    """Run one live stream of both accounts (polling the database only every 60 s) until ``count`` events;
    the time.monotonic() at which the last one came."""

    async for event in iter_events(database, hub, ACCOUNTS, since, _false, poll_interval_s=60.0, heartbeat_s=60.0):
        if event is not None:
            sink.append(event)
            if len(sink) >= count:
                return time.monotonic()
    raise AssertionError("the stream ended")


async def _false() -> bool:
    return False


def _place(database: Database, account: str, cl_ord_id: str) -> None:
    """Commit an order (one event) without publishing it: as the gateway does before the tailer runs."""
    CommandExecutor(database, NO_FEES).one(buy(account, cl_ord_id, "1"))


def test_an_event_published_before_a_lower_id_waits_for_it_and_both_go_out_in_id_order(
    database: Database, redis_url: str
) -> None:
    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        async with _live_hub(database, redis_url) as (hub, publisher, since):
            sink: list[dict[str, Any]] = []
            collecting = asyncio.create_task(_collect(database, hub, since, 4, sink))
            await asyncio.sleep(0.3)  # the stream has read the database and waits on the hub
            for account in ACCOUNTS:  # one event of each account first, published in order: both seen live
                await asyncio.to_thread(_place, database, account, f"WARM-{account}")
            publisher.publish(await asyncio.to_thread(fetch_events, database, ACCOUNTS, since))
            for _ in range(100):
                if len(sink) == 2:
                    break
                await asyncio.sleep(0.02)
            assert len(sink) == 2
            await asyncio.to_thread(_place, database, "A", "EARLY")  # committed first, never published
            await asyncio.to_thread(_place, database, "B", "LATE")  # committed second, published at once
            committed = await asyncio.to_thread(fetch_events, database, ACCOUNTS, since)
            assert [event["data"]["cl_ord_id"] for event in committed[2:]] == ["EARLY", "LATE"]
            publisher.publish([committed[3]])
            await asyncio.wait_for(collecting, 10)  # the stream polls the database only every 60 s
            return committed, sink

    committed, sent = asyncio.run(scenario())
    assert [event["sequence"] for event in sent] == [event["sequence"] for event in committed]


def test_an_id_that_was_never_committed_does_not_hold_the_stream_up(database: Database, redis_url: str) -> None:
    """A rolled-back transaction leaves a hole in the ids: the hub finds nothing there and moves past it."""

    async def scenario() -> tuple[list[dict[str, Any]], float]:
        async with _live_hub(database, redis_url) as (hub, publisher, since):
            sink: list[dict[str, Any]] = []
            collecting = asyncio.create_task(_collect(database, hub, since, 1, sink))
            await asyncio.sleep(0.3)
            with database.engine.connect() as connection:  # draw an id and roll back: it never commits
                connection.execute(text("SELECT nextval(pg_get_serial_sequence('order_events', 'id'))"))
                connection.rollback()
            await asyncio.to_thread(_place, database, "B", "AFTER-HOLE")
            (committed,) = await asyncio.to_thread(fetch_events, database, ACCOUNTS, since)
            assert committed["sequence"] == since + 2
            started = time.monotonic()
            publisher.publish([committed])
            return sink, await asyncio.wait_for(collecting, 10) - started

    sent, waited = asyncio.run(scenario())
    assert [event["data"]["cl_ord_id"] for event in sent] == ["AFTER-HOLE"]
    assert waited < GAP_FILL_AFTER_S + 1.0  # the hub's own gap read, not the stream's 60 s database poll


def test_a_gap_that_cannot_be_read_sends_streams_to_the_database_instead_of_holding_events_forever(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the database is down the hub cannot read a gap; past ``MAX_AHEAD`` waiting ids it stops keeping
    them (memory stays bounded) and tells streams the buffer is incomplete, so they read the database, which
    is exact, once it is back."""
    import oms.api.events as events

    monkeypatch.setattr(events, "MAX_AHEAD", 5)

    async def scenario() -> tuple[int | None, bool, int | None, bool]:
        hub = EventHub("redis://127.0.0.1:1/0", database)  # not started: events are handed to it below
        position = hub.position
        for sequence in range(2, 7):  # id 1 never arrives
            hub._receive({"sequence": sequence, "account": "A"})
        held = hub.ready_through()
        complete_before = hub.take(position, frozenset(ACCOUNTS))[2]
        hub._receive({"sequence": 7, "account": "A"})
        return held, complete_before, hub.ready_through(), hub.take(position, frozenset(ACCOUNTS))[2]

    held, complete_before, through, complete_after = asyncio.run(scenario())
    assert (held, complete_before) == (0, True)  # ids 2-6 wait for id 1
    assert (through, complete_after) == (7, False)  # given up: the database, not the buffer, says what came
