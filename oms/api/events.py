"""The order-event stream: ``order_events`` rows, per account, pushed over Server-Sent Events and WebSocket.

The database is the source of truth and the resume point: every event has the row's id (``sequence``,
the cursor) and, once the schema has it, ``account_seq`` (contiguous per account). A client reconnecting
with ``Last-Event-ID`` (or ``?since=N``) gets every event after N from the database, then live ones.
In process, writes wake streams, which read the database. With ``OMS_REDIS_URL`` set, every committing
process appends its events to a Redis Stream and each API process XREADs it into a buffer that streams
take live events from, so an API process sees what a gateway process did within milliseconds. Every
stream also re-reads the database every ``poll_interval_s``: nothing published is lost if Redis is not.

Event ids are in commit order (``oms.service.uow.EVENT_ORDER_LOCK_SQL``): once an id is visible, every lower
id is committed or never will be, so a database read after N is exact. Redis can still deliver them out of
order (the API publishes its own commits at once, the tailer the gateway's a little later), so the hub keeps
the highest id through which it has received every event (:meth:`EventHub.ready_through`), reads a gap from
the database when it does not fill by itself, and streams send buffered events only up to that id. Each poll
also re-reads a short ``grace`` window behind the newest event and sends only ids not yet sent (a safety net
from before ids were ordered).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import deque
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import anyio
import structlog
from sqlalchemy import Connection, Select, String, column, func, select, true, union_all, values
from sqlalchemy.exc import DBAPIError

from oms.api.render import timestamp
from oms.db.errors import database_unavailable, first_line
from oms.db.models import OrderEvent
from oms.events.codec import event_from_row
from oms.service.uow import Database

log = structlog.get_logger(__name__)

BATCH = 500
HEARTBEAT_S = 15.0
STOP_CHECK_S = 1.0  # the longest a stream waits without asking ``stopped()`` again (a revoked key ends it)
GRACE = timedelta(seconds=5)
XREAD_BLOCK_MS = 5000
# redis-py 8 (what we install) gives every connection a 5 s socket timeout by default: a 5 s XREAD BLOCK
# on an idle stream would then time out and reconnect every 6 s. The reader's own timeout outlasts its block.
XREAD_SOCKET_TIMEOUT_S = XREAD_BLOCK_MS / 1000 + 5.0
GAP_FILL_AFTER_S = 0.05  # an id missing this long behind received ones is read from the database (tailer's pace)
MAX_AHEAD = 10_000  # received ids waiting above a gap that the hub keeps before it gives up on the gap
HOLD_LIMIT_S = 1.0  # a stream whose next buffered event waits longer than this for a gap reads the database
MAX_UNSETTLED = 1000
_table = OrderEvent.__table__


class EventHub:
    """Wakes waiting streams when events were written and, with Redis, carries the events themselves.

    In process, ``notify`` (called after a REST commit) wakes streams, which then read the database.
    With ``OMS_REDIS_URL`` set, one task per API process XREADs the shared Redis Stream that every
    committing process appends to (:mod:`oms.events.publisher`) and keeps the newest ``buffer_size`` events
    in memory; streams take live events from that buffer and go to the database only to catch up (a
    ``since`` older than what they saw, a buffer overrun, a Redis outage).
    """

    def __init__(self, redis_url: str | None = None, database: Database | None = None, *, tail: bool = True,
                 buffer_size: int = 20_000) -> None:  # fmt: skip
        self.redis_url = redis_url
        self.database = database
        self.tail = tail  # also publish what other writers commit without a hook (OrderEventTailer)
        self._generation = 0
        self._condition: asyncio.Condition | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reader: asyncio.Task[None] | None = None
        self._tailer: Any = None
        self._publisher: Any = None
        self._buffer: deque[dict[str, Any]] = deque(maxlen=buffer_size)
        self._received = 0  # events ever appended to the buffer: positions are counted in these
        self._valid_from = 0  # positions before this may have missed events (a Redis reconnect)
        # Every event id up to _contiguous is in the buffer (since the reader connected) or was never committed;
        # _ahead holds received ids above it, _gap_since when the first of them had to wait.
        self._contiguous = 0
        self._ahead: set[int] = set()
        self._gap_since: float | None = None
        self.streaming = False  # True while the Redis Stream reader is connected

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._condition = asyncio.Condition()
        if self.redis_url:
            from oms.events.publisher import OrderEventTailer, StreamPublisher

            self._reader = asyncio.create_task(self._read_stream())
            self._publisher = StreamPublisher(self.redis_url)
            if self.tail and self.database is not None:
                self._tailer = OrderEventTailer(self.database, self._publisher)
                self._tailer.start()

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass
        if self._tailer is not None:
            await anyio.to_thread.run_sync(self._tailer.stop)
        if self._publisher is not None:
            self._publisher.close()

    def published(self) -> Callable[[list[dict[str, Any]]], Any] | None:
        """The ``on_commit`` callback for this process's own writes: XADD them (None without Redis)."""
        return None if self.redis_url is None else self._publish

    def _publish(self, rows: list[dict[str, Any]]) -> None:
        if self._publisher is not None:
            self._publisher.publish(rows)

    def notify(self, accounts: set[str]) -> None:
        """Called after a commit, from any thread: wake local streams now (they read the database when
        Redis is not connected; with it, the events come through the stream this process just appended to)."""
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

    async def _read_stream(self) -> None:
        import redis.asyncio as aioredis

        from oms.events.codec import decode
        from oms.events.publisher import STREAM

        while True:
            client = aioredis.Redis.from_url(self.redis_url, socket_timeout=XREAD_SOCKET_TIMEOUT_S)  # type: ignore[arg-type]
            try:
                # (redis types entry ids as possibly None and replies as RESP2 or RESP3: ours are RESP2 entries)
                newest = cast("list[tuple[bytes, dict[bytes, bytes]]]", await client.xrevrange(STREAM, count=1))
                last: bytes | str = newest[0][0] if newest else b"0-0"
                self._valid_from = self._received  # whatever happened before this connection, ask the database
                if self.database is not None:  # every id up to the newest committed is final: start past it
                    self._contiguous = await anyio.to_thread.run_sync(_newest_event_id, self.database)
                    self._ahead.clear()
                    self._gap_since = None
                self.streaming = True
                await self._wake()
                while True:
                    block_ms = int(GAP_FILL_AFTER_S * 1000) if self._ahead else XREAD_BLOCK_MS
                    reply = cast("list[list[Any]] | None", await client.xread({STREAM: last}, block=block_ms, count=2000))
                    for _name, entries in reply or ():
                        for entry_id, fields in entries:
                            last = entry_id
                            self._receive(decode(fields))
                    filled = False
                    if self._gap_since is not None and asyncio.get_running_loop().time() - self._gap_since >= GAP_FILL_AFTER_S:
                        await self._fill_gap()
                        filled = True
                    if reply or filled:
                        await self._wake()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - reconnect; streams read the database meanwhile
                self.streaming = False
                log.warning("event_stream_reader_reconnect", error=str(error))
                await self._wake()
                await asyncio.sleep(1.0)
            finally:
                self.streaming = False
                await client.aclose()

    def _receive(self, event: dict[str, Any]) -> None:
        """Append ``event`` to the buffer and move the contiguous id forward over it when it can."""
        self._buffer.append(event)
        self._received += 1
        if self.database is None:
            return
        sequence = int(event["sequence"])
        if sequence <= self._contiguous:
            return  # an event committed before the reader connected, or a duplicate
        self._ahead.add(sequence)
        if len(self._ahead) > MAX_AHEAD:  # gaps that cannot be read (the database is down): start afresh
            self._valid_from = self._received  # streams read the database, which is exact, before going on
            self._contiguous = max(self._ahead)
            self._ahead.clear()
        self._absorb()

    def _absorb(self) -> None:
        contiguous, ahead = self._contiguous, self._ahead
        while contiguous + 1 in ahead:
            contiguous += 1
            ahead.remove(contiguous)
        self._contiguous = contiguous
        if not ahead:
            self._gap_since = None
        elif self._gap_since is None:
            self._gap_since = asyncio.get_running_loop().time()

    async def _fill_gap(self) -> None:
        """Read the ids missing below the lowest received one from the database into the buffer. That one is
        committed, so every lower id is committed already or never will be: what the read does not find is
        no event, and the contiguous id moves past it."""
        assert self.database is not None
        low, high = self._contiguous, min(self._ahead)
        try:
            rows = await anyio.to_thread.run_sync(_events_between, self.database, low, high, BATCH)
        except DBAPIError as error:  # streams fall back to the database themselves (HOLD_LIMIT_S)
            log.warning("event_stream_gap_read_failed", error=first_line(error))
            return
        for event in rows:
            self._buffer.append(event)
            self._received += 1
        self._contiguous = high - 1 if len(rows) < BATCH else int(rows[-1]["sequence"])
        self._ahead = {sequence for sequence in self._ahead if sequence > self._contiguous}
        self._gap_since = None
        self._absorb()

    def ready_through(self) -> int | None:
        """The highest event id a stream may send from the buffer: every event up to it has been received
        (or read), so none of a lower id can follow it there. None: no limit (a hub without a database)."""
        return None if self.database is None else self._contiguous

    @property
    def position(self) -> int:
        """Where a stream starts taking buffered events: capture it *before* reading the database."""
        return self._received

    def take(self, position: int, accounts: frozenset[str]) -> tuple[list[dict[str, Any]], int, bool]:
        """Buffered events of ``accounts`` from ``position``: (events, new position, complete?).

        Not complete when the buffer dropped events the caller had not taken yet, or Redis reconnected
        since: the caller then reads the database.
        """
        received = self._received
        oldest = received - len(self._buffer)
        if position < max(oldest, self._valid_from):
            return [], received, False
        start = position - oldest
        events = [event for event in itertools.islice(self._buffer, start, None) if event["account"] in accounts]
        return events, oldest + len(self._buffer), True

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


_HAS_ACCOUNT_SEQ = "account_seq" in _table.c  # migration 0003_event_seq: per-account sequence numbers
_COLUMNS = [_table.c.id, _table.c.account_id, _table.c.kind, _table.c.order_id, _table.c.payload, _table.c.created_at]
if _HAS_ACCOUNT_SEQ:
    _COLUMNS.append(_table.c.account_seq)
HEARTBEAT = None  # what ``iter_events`` yields after a silence: the transport sends a keep-alive


def fetch_events(database: Database, accounts: list[str], after_id: int, limit: int = BATCH) -> list[dict[str, Any]]:
    if not accounts:
        return []
    with database.engine.connect() as connection:
        rows = connection.execute(events_select(connection.dialect.name, accounts, after_id, limit)).mappings().all()
    return [event_from_row(row) for row in rows]


def events_select(dialect: str, accounts: list[str], after_id: int, limit: int) -> Select[Any]:
    """The first ``limit`` events of ``accounts`` after ``after_id``, in id order.

    PostgreSQL reads each account's next ``limit`` events from ``ix_order_events_account_id_id`` (a LATERAL
    subquery per account) and keeps the first ``limit``. With ``account_id IN (...)`` the planner walked the
    primary key from ``after_id`` and filtered by account, counting on the accounts' events being spread
    evenly: for accounts with few events since ``after_id`` it read every event of every account written
    since, at each catch-up and poll of the stream. SQLite keeps the plain query.
    """
    if dialect != "postgresql":
        return (select(*_COLUMNS).where(_table.c.account_id.in_(accounts) & (_table.c.id > after_id))
                .order_by(_table.c.id).limit(limit))  # fmt: skip
    wanted = values(column("account_id", String), name="wanted").data([(account,) for account in accounts])
    following = (
        select(*_COLUMNS).where((_table.c.account_id == wanted.c.account_id) & (_table.c.id > after_id))
        .order_by(_table.c.id).limit(limit).lateral("following")
    )  # fmt: skip
    return select(following).select_from(wanted.join(following, true())).order_by(following.c.id).limit(limit)


def _newest_event_id(database: Database) -> int:
    with database.engine.connect() as connection:
        return int(connection.execute(select(func.max(_table.c.id))).scalar() or 0)


def _events_between(database: Database, low: int, high: int, limit: int) -> list[dict[str, Any]]:
    """Every account's events with ``low < id < high``, in id order (a primary-key range)."""
    with database.engine.connect() as connection:
        rows = connection.execute(
            select(*_COLUMNS).where((_table.c.id > low) & (_table.c.id < high)).order_by(_table.c.id).limit(limit)
        ).mappings().all()
    return [event_from_row(row) for row in rows]


def latest_sequence(connection: Connection, accounts: list[str]) -> int:
    """The newest event id of ``accounts`` (0 if none): each account's newest from its own index entries.

    (``max(id) ... WHERE account_id IN (...)`` walked the primary key back from the newest event of all
    accounts, reading every event written since the last one of these accounts.)
    """
    if not accounts:
        return 0
    newest = union_all(
        *(select(func.max(_table.c.id).label("id")).where(_table.c.account_id == account) for account in accounts)
    ).subquery("newest")
    return int(connection.execute(select(func.max(newest.c.id))).scalar() or 0)


def event_json(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "sequence": event["sequence"],
        "account_seq": event.get("account_seq"),
        "account": event["account"],
        "kind": event["kind"],
        "order_id": event["order_id"],
        "created_at": timestamp(event["created_at"]),
        "data": event["data"],
    }


def sse_frame(event: dict[str, Any]) -> str:
    body = json.dumps(event_json(event), separators=(",", ":"))
    return f"id: {event['sequence']}\nevent: {event['kind']}\ndata: {body}\n\n"


async def iter_events(
    database: Database,
    hub: EventHub,
    accounts: list[str],
    since: int,
    stopped: Callable[[], Any],
    poll_interval_s: float,
    heartbeat_s: float = HEARTBEAT_S,
) -> AsyncIterator[dict[str, Any] | None]:
    """Every event after ``since`` for ``accounts``, then live ones, until ``stopped()`` says so (the client
    went away, or its key no longer allows the stream); it is asked at least every ``STOP_CHECK_S``.

    The database is read to catch up, when a local write woke us, and every ``poll_interval_s`` (a
    safety net); with the Redis Stream connected, live events come from the hub's buffer instead.
    ``HEARTBEAT`` is yielded after ``heartbeat_s`` of silence so proxies keep the connection and a vanished
    client is noticed.
    """
    sent: dict[int, datetime] = {}
    floor = since
    wanted = frozenset(accounts)
    loop = asyncio.get_running_loop()
    last_write = next_poll = loop.time()
    position = hub.position
    from_database = True
    unreadable = False  # the last database read found it unreachable
    account_seqs: dict[str, int] = {}  # per account, the account_seq of the last event sent
    held_since: float | None = None  # when a buffered event of ours started waiting for a lower id
    while not await stopped():
        generation = hub.generation
        fresh: list[dict[str, Any]] = []
        more = False
        if not from_database and hub.streaming:
            events, taken_to, complete = hub.take(position, wanted)
            if not complete:
                from_database = True
                continue
            fresh = sorted((e for e in events if e["sequence"] > floor and e["sequence"] not in sent), key=lambda e: e["sequence"])
            through = hub.ready_through()
            if through is not None and fresh and fresh[-1]["sequence"] > through:
                # a lower id may still reach the buffer: send up to it, take the rest again from here later
                fresh = [event for event in fresh if event["sequence"] <= through]
                held_since = loop.time() if held_since is None else held_since
                if loop.time() - held_since > HOLD_LIMIT_S:
                    held_since, from_database = None, True
                    continue
            else:
                held_since, position = None, taken_to
            if skips_an_event(fresh, account_seqs):
                from_database = True  # an earlier event of that account is committed but not here yet
                continue
        elif from_database:
            if hub.streaming:
                position = hub.position  # anything buffered from here on is newer than this read
            read = await _read_unless_unreachable(database, accounts, floor, BATCH + len(sent), unreadable)
            unreadable = read is None
            events = read or []
            fresh = [event for event in events if event["sequence"] not in sent]
            next_poll = loop.time() + poll_interval_s
            more = len(events) >= BATCH + len(sent) and bool(fresh)
        for event in fresh:
            sent[event["sequence"]] = event["created_at"]
            if event.get("account_seq") is not None:
                account_seqs[event["account"]] = event["account_seq"]
            yield event
        if fresh:
            last_write = loop.time()
        floor = advance_floor(sent, floor)
        if more:
            continue
        now = loop.time()
        if now - last_write >= heartbeat_s:
            yield HEARTBEAT
            last_write = now
        timeout_s = max(0.0, min(next_poll, last_write + heartbeat_s, now + STOP_CHECK_S) - now)
        woke = await hub.wait(generation, timeout_s)
        # With the Redis Stream, live events (ours too: the publisher is woken by local writes) come from the
        # buffer; the database only at polling time. Without it, a wake-up means "read the database".
        # A read that found the database unreachable is retried before anything is taken from the buffer.
        from_database = unreadable or (woke and not hub.streaming) or loop.time() >= next_poll


def skips_an_event(events: list[dict[str, Any]], account_seqs: dict[str, int]) -> bool:
    """Whether sending ``events`` (in sequence order) would send an account's event before an earlier one.

    The client resumes after the last sequence it got, so an event sent after a later one of its account is
    lost if the client reconnects in between. Through Redis events can arrive out of order (the API publishes
    its own commits at once; the FIX gateway's reach Redis through the tailer). An account's events are
    numbered without gaps under its lock (``account_seq``), so a gap, or an account not yet seen on this
    stream, means: read the database, which holds every earlier one already (they committed first).
    """
    expected = dict(account_seqs)
    for event in events:
        number = event.get("account_seq")
        if number is None:  # a database from before account_seq: nothing to check against
            continue
        account = event["account"]
        if account not in expected or number != expected[account] + 1:
            return True
        expected[account] = number
    return False


async def _read_unless_unreachable(database: Database, accounts: list[str], after_id: int, limit: int,
                                   already_down: bool) -> list[dict[str, Any]] | None:
    """The events after ``after_id``, or None while the database cannot be reached: an open stream waits for
    it (heartbeats go on; the key re-check ends the stream if the outage outlasts the key cache) instead of
    breaking off mid-response. Logged once per outage and stream."""
    try:
        return await anyio.to_thread.run_sync(fetch_events, database, accounts, after_id, limit)
    except DBAPIError as error:
        if not database_unavailable(error):
            raise
        if not already_down:
            log.warning("event_stream_database_unavailable", error=first_line(error))
        return None


async def event_stream(
    database: Database,
    hub: EventHub,
    accounts: list[str],
    since: int,
    stopped: Callable[[], Any],
    poll_interval_s: float,
    heartbeat_s: float = HEARTBEAT_S,
) -> AsyncIterator[str]:
    """The Server-Sent Events rendering of :func:`iter_events`."""
    yield "retry: 1000\n\n"
    async for event in iter_events(database, hub, accounts, since, stopped, poll_interval_s, heartbeat_s):
        yield ": keep-alive\n\n" if event is HEARTBEAT else sse_frame(event)


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
