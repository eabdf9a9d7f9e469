"""The order-event stream: ``order_events`` rows, per account, pushed over Server-Sent Events.

The database is the source of truth and the resume point: every event has the row's id, which increases
per account, and a client reconnecting with ``Last-Event-ID`` (or ``?since=N``) gets every event after N,
then live ones. Waking is only a latency matter: writes in this process wake streams directly; with
``OMS_REDIS_URL`` set, writers publish on a Redis channel so streams in other API processes wake too; and
every stream re-polls at least every ``poll_interval_s`` so events written by processes that do not
publish (the FIX gateway) still arrive, just later.

PostgreSQL may commit a lower id after a higher one; each poll re-reads a short ``grace`` window behind
the newest event and sends only ids not yet sent, so a late commit is not skipped.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import structlog
from sqlalchemy import select

from oms.api.render import timestamp
from oms.db.models import OrderEvent
from oms.service.uow import Database

log = structlog.get_logger(__name__)

REDIS_CHANNEL = "oms:order_events"
BATCH = 500
HEARTBEAT_S = 15.0
GRACE = timedelta(seconds=5)
MAX_UNSETTLED = 1000
_table = OrderEvent.__table__


class EventHub:
    """Wakes waiting streams when events were written: in-process, and across processes through Redis."""

    def __init__(self, redis_url: str | None = None) -> None:
        self.redis_url = redis_url
        self._generation = 0
        self._condition: asyncio.Condition | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._publisher: Any = None
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._condition = asyncio.Condition()
        if self.redis_url:
            import redis

            self._publisher = redis.Redis.from_url(self.redis_url, socket_timeout=1.0)
            self._listener = asyncio.create_task(self._listen())

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            try:
                await self._listener
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass
        if self._publisher is not None:
            self._publisher.close()

    def notify(self, accounts: set[str]) -> None:
        """Called after a commit, from any thread."""
        if self._publisher is not None:
            try:
                self._publisher.publish(REDIS_CHANNEL, json.dumps(sorted(accounts)))
                return  # our own listener wakes the local streams
            except Exception as error:  # noqa: BLE001 - Redis down: streams still wake locally and by polling
                log.warning("event_publish_failed", error=str(error))
        self._wake_threadsafe()

    def _wake_threadsafe(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            loop.create_task(self._wake())
        else:
            asyncio.run_coroutine_threadsafe(self._wake(), loop)

    async def _wake(self) -> None:
        assert self._condition is not None
        async with self._condition:
            self._generation += 1
            self._condition.notify_all()

    async def _listen(self) -> None:
        import redis.asyncio as aioredis

        while True:
            client = aioredis.Redis.from_url(self.redis_url)  # type: ignore[arg-type]
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(REDIS_CHANNEL)
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            await self._wake()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - reconnect; polling covers the gap
                log.warning("event_listener_reconnect", error=str(error))
                await asyncio.sleep(1.0)
            finally:
                await client.aclose()

    @property
    def generation(self) -> int:
        return self._generation

    async def wait(self, seen_generation: int, timeout_s: float) -> bool:
        """Wait until something was written after ``seen_generation`` (True) or ``timeout_s`` passed (False)."""
        assert self._condition is not None
        async with self._condition:
            if self._generation != seen_generation:
                return True
            try:
                await asyncio.wait_for(self._condition.wait(), timeout_s)
            except TimeoutError:
                return False
            return True


def fetch_events(database: Database, accounts: list[str], after_id: int, limit: int = BATCH) -> list[dict[str, Any]]:
    with database.engine.connect() as connection:
        rows = connection.execute(
            select(_table.c.id, _table.c.account_id, _table.c.kind, _table.c.order_id, _table.c.payload, _table.c.created_at)
            .where(_table.c.account_id.in_(accounts) & (_table.c.id > after_id))
            .order_by(_table.c.id)
            .limit(limit)
        ).all()
    return [
        {"sequence": row[0], "account": row[1], "kind": row[2], "order_id": row[3], "data": row[4],
         "created_at": row[5] if row[5].tzinfo else row[5].replace(tzinfo=UTC)}
        for row in rows
    ]  # fmt: skip


def sse_frame(event: dict[str, Any]) -> str:
    body = {
        "sequence": event["sequence"],
        "account": event["account"],
        "kind": event["kind"],
        "order_id": event["order_id"],
        "created_at": timestamp(event["created_at"]),
        "data": event["data"],
    }
    return f"id: {event['sequence']}\nevent: {event['kind']}\ndata: {json.dumps(body, separators=(',', ':'))}\n\n"


async def event_stream(
    database: Database,
    hub: EventHub,
    accounts: list[str],
    since: int,
    is_disconnected: Callable[[], Any],
    poll_interval_s: float,
    heartbeat_s: float = HEARTBEAT_S,
) -> AsyncIterator[str]:
    """Every event after ``since`` for ``accounts``, then live ones, until the client goes away.

    The database is read when a write woke us or every ``poll_interval_s``; a comment line goes out after
    ``heartbeat_s`` of silence so proxies keep the connection and a vanished client is noticed.
    """
    sent: dict[int, datetime] = {}
    floor = since
    loop = asyncio.get_running_loop()
    yield "retry: 1000\n\n"
    last_write = next_poll = loop.time()
    query = True
    while not await is_disconnected():
        generation = hub.generation
        if query:
            events = await anyio.to_thread.run_sync(fetch_events, database, accounts, floor, BATCH + len(sent))
            fresh = [event for event in events if event["sequence"] not in sent]
            for event in fresh:
                sent[event["sequence"]] = event["created_at"]
                yield sse_frame(event)
            if fresh:
                last_write = loop.time()
            floor = advance_floor(sent, floor)
            next_poll = loop.time() + poll_interval_s
            if len(events) >= BATCH + len(sent) and fresh:
                continue
        now = loop.time()
        if now - last_write >= heartbeat_s:
            yield ": keep-alive\n\n"
            last_write = now
        timeout_s = max(0.0, min(next_poll, last_write + heartbeat_s) - now)
        woke = await hub.wait(generation, timeout_s)
        query = woke or loop.time() >= next_poll


def advance_floor(sent: dict[int, datetime], floor: int) -> int:
    """Stop re-reading ids older than the grace window (or beyond the newest ``MAX_UNSETTLED``); forget them."""
    horizon = datetime.now(UTC) - GRACE
    settled = [sequence for sequence, created in sent.items() if created < horizon]
    if settled:
        floor = max(floor, max(settled))
    if len(sent) > MAX_UNSETTLED:  # a burst: bound what every wake re-reads
        floor = max(floor, sorted(sent)[len(sent) - MAX_UNSETTLED - 1])
    for sequence in [s for s in sent if s <= floor]:
        del sent[sequence]
    return floor
