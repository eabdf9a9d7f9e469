"""Appends committed order events to a Redis Stream (XADD, bounded with ``MAXLEN ~``).

Whichever process commits events publishes them: ``StreamPublisher.publish`` is meant as the
``CommandExecutor(on_commit=...)`` callback (it receives the ``order_events`` rows just committed), and
:class:`OrderEventTailer` covers processes that cannot call it: it tails ``order_events`` and publishes
what appears, one tailer at a time across processes (a Redis lease). Publishing never blocks or fails a
commit: if Redis is down the events stay in the database, where readers fall back to.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select

from oms.db.models import OrderEvent
from oms.events.codec import encode, event_from_row
from oms.service.uow import Database

log = structlog.get_logger(__name__)

STREAM = "oms:order-events"
MAXLEN = 200_000  # about the last few minutes at full speed; older events come from the database
LEASE_KEY = "oms:order-events:tailer"
GRACE = timedelta(seconds=5)
REDIS_RETRY_S = 1.0  # how often a tailer that cannot reach Redis tries again
_table = OrderEvent.__table__


class StreamPublisher:
    """XADDs events to ``stream`` in one pipeline per call; thread-safe (redis-py pools connections)."""

    def __init__(self, redis_url: str, stream: str = STREAM, maxlen: int = MAXLEN) -> None:
        import redis

        self.client = redis.Redis.from_url(redis_url, socket_timeout=2.0)
        self.stream = stream
        self.maxlen = maxlen

    def publish(self, rows: Iterable[Mapping[Any, Any]]) -> int:  # (Any keys: SQLAlchemy's RowMapping too)
        """Append ``rows`` (``order_events`` rows or event dicts); returns how many were sent (0 if Redis failed)."""
        events = [row if "sequence" in row else event_from_row(row) for row in rows]
        if not events:
            return 0
        try:
            pipe = self.client.pipeline(transaction=False)
            for event in events:
                pipe.xadd(self.stream, encode(event), maxlen=self.maxlen, approximate=True)  # type: ignore[arg-type]
            pipe.execute()
        except Exception as error:  # noqa: BLE001 - the database still holds them; readers fall back to it
            log.warning("event_stream_publish_failed", error=str(error), events=len(events))
            return 0
        return len(events)

    __call__ = publish  # usable directly as an on_commit callback

    def close(self) -> None:
        self.client.close()


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class OrderEventTailer(threading.Thread):
    """Publishes ``order_events`` rows written by processes without an on_commit hook (the FIX gateway today).

    Holds a Redis lease so that of several API processes only one tails. It re-reads a short grace window
    behind the newest id because PostgreSQL may commit a lower id after a higher one; ids already
    published in that window are not sent twice (readers also drop duplicates by id).
    """

    def __init__(self, database: Database, publisher: StreamPublisher, interval_s: float = 0.05, lease_s: float = 3.0) -> None:
        super().__init__(name="order-event-tailer", daemon=True)
        self.database = database
        self.publisher = publisher
        self.interval_s = interval_s
        self.lease_ms = int(lease_s * 1000)
        self.owner = uuid.uuid4().hex
        self.stopping = threading.Event()
        self.wake = threading.Event()
        self.floor: int | None = None
        self.recent: dict[int, datetime] = {}
        self.redis_down = False  # the last lease attempt could not reach Redis

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        self.join(timeout=5)

    def _hold_lease(self) -> bool:
        client = self.publisher.client
        try:
            held = bool(client.set(LEASE_KEY, self.owner, nx=True, px=self.lease_ms))
            if not held and client.get(LEASE_KEY) == self.owner.encode():
                client.pexpire(LEASE_KEY, self.lease_ms)
                held = True
        except Exception as error:  # noqa: BLE001 - no Redis, nothing to publish to
            if not self.redis_down:  # once per outage: every step of it would bury the log
                log.warning("event_tailer_lease_failed", error=str(error))
            self.redis_down = True
            return False
        if self.redis_down:
            log.info("event_tailer_redis_back")
            self.redis_down = False
        return held

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                if self._hold_lease():
                    self.step()
                else:
                    self.floor = None  # another process tails; start from its present when we take over
            except Exception as error:  # noqa: BLE001 - keep tailing; the database keeps every event
                log.warning("event_tailer_failed", error=str(error))
            self.wake.wait(REDIS_RETRY_S if self.redis_down else self.interval_s)
            self.wake.clear()

    def step(self) -> int:
        """Publish what appeared since the last step; returns how many events were published."""
        if self.floor is None:
            self.floor = self._newest()
        with self.database.engine.connect() as connection:
            rows = connection.execute(
                select(_table).where(_table.c.id > self.floor).order_by(_table.c.id).limit(5000)
            ).mappings().all()
        fresh = [row for row in rows if row["id"] not in self.recent]
        published = self.publisher.publish(fresh) if fresh else 0
        if fresh and not published:
            return 0  # Redis failed: try the same rows again next step
        for row in fresh:
            self.recent[int(row["id"])] = _aware(row["created_at"])
        horizon = datetime.now(UTC) - GRACE
        settled = [ident for ident, created in self.recent.items() if created < horizon]
        if settled:
            self.floor = max(self.floor, max(settled))
        if len(self.recent) > 20_000:
            self.floor = max(self.floor, sorted(self.recent)[-20_000])
        self.recent = {ident: created for ident, created in self.recent.items() if ident > self.floor}
        return published

    def _newest(self) -> int:
        """Start a little behind the newest event (the grace window) so nothing committed late is skipped."""
        since = datetime.now(UTC) - GRACE
        with self.database.engine.connect() as connection:
            newest = connection.execute(select(_table.c.id).where(_table.c.created_at < since).order_by(_table.c.id.desc()).limit(1)).scalar()
        return int(newest or 0)
