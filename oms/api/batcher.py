"""Group commit for REST writes: many requests' actions and their Idempotency-Key rows in one transaction.

Request threads submit (action, key) and wait; one thread runs up to ``max_batch`` waiting actions in one
unit of work, locks their accounts up front in sorted order (no deadlock between batches), records every
response against its key, and commits once. A response is returned only after that commit. If the batch
fails unexpectedly it is rolled back and each action retried alone, so one bad request cannot sink the
others; deadlocks and serialization failures retry the whole batch.

Callers on the event loop use :meth:`WriteBatcher.run_async` / :meth:`run_keyed_async`: no worker thread
waits for them, and a committed batch wakes each event loop once, not once per request.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio
import structlog
from sqlalchemy import Connection
from sqlalchemy.exc import OperationalError

from oms.api import idempotency
from oms.api.idempotency import StoredResponse
from oms.api.problems import Problem
from oms.service.batching import collect_batch
from oms.service.executor import tune_garbage_collector
from oms.service.orders import RATE_WINDOW, ServiceConfig
from oms.service.uow import Database, UnitOfWork

log = structlog.get_logger(__name__)

MAX_ATTEMPTS = 3
Action = Callable[[UnitOfWork, datetime], StoredResponse]


@dataclass
class Write:
    action: Action
    principal: str
    key: str | None
    accounts: set[str]
    fingerprint: str | None = None  # with a key: claim it inside the batch (else the caller claimed it)
    future: Future[StoredResponse] | None = None  # a waiting thread's; None when ``waiter`` is set
    waiter: asyncio.Future[StoredResponse] | None = None  # a waiting coroutine's, resolved on its own loop
    replayed: bool = False
    refused: Problem | None = None  # the key's own refusal (409 / 422), raised to the caller after the batch

    def __post_init__(self) -> None:
        if self.waiter is None and self.future is None:
            self.future = Future()


WriteOutcome = StoredResponse | BaseException


class WriteBatcher:
    def __init__(
        self,
        database: Database,
        *,
        max_batch: int = 64,
        max_wait_s: float = 0.0,
        on_commit: Callable[[list[dict[str, Any]]], Any] | None = None,
        config: ServiceConfig | None = None,
    ) -> None:
        """``on_commit`` gets the ``order_events`` rows of each committed batch (as ``CommandExecutor``'s
        hook does): the API process publishes what it wrote to the Redis Stream itself.

        ``max_wait_s``: how long a lone write waits for company. None by default: writes that arrive while a
        batch runs form the next batch anyway, and a timed wait cost a lone placement about 0.8 ms, not
        0.5 (the thread's wake-up and the GIL), measured at 30 requests/s (``bench/RESULTS-rest.md``, round 11)."""
        self.database = database
        self.on_commit = on_commit
        self.config = config or ServiceConfig()
        tune_garbage_collector()  # a batch keeps thousands of young objects alive until its commit, as the executor's do
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._queue: queue.Queue[Write | None] = queue.Queue(maxsize=max_batch * 64)
        self._in_flight: set[tuple[str, str]] = set()
        self._flight_lock = threading.Lock()
        self._connection: Connection | None = None  # the writer thread's own, kept between batches
        self._thread = threading.Thread(target=self._loop, name="rest-group-commit", daemon=True)
        self._thread.start()

    def run(self, action: Action, principal: str, key: str | None, accounts: set[str], timeout_s: float = 30.0) -> StoredResponse:
        write = Write(action, principal, key, accounts)
        self._queue.put(write, timeout=timeout_s)
        return write.future.result(timeout_s)  # type: ignore[union-attr]

    def run_keyed(self, action: Action, principal: str, key: str, fingerprint: str, accounts: set[str],
                  timeout_s: float = 30.0) -> tuple[StoredResponse, bool]:  # fmt: skip
        """Claim ``key``, run ``action`` and record its response in one group-committed transaction.

        Returns (response, replayed). The same key already in flight in this process is 409 at once.
        """
        flight = self._take_off(principal, key)
        try:
            write = Write(action, principal, key, accounts, fingerprint)
            self._queue.put(write, timeout=timeout_s)
            return write.future.result(timeout_s), write.replayed  # type: ignore[union-attr]
        finally:
            self._land(flight)

    async def run_async(self, action: Action, principal: str, key: str | None, accounts: set[str],
                        timeout_s: float = 30.0) -> StoredResponse:  # fmt: skip
        """:meth:`run` for a coroutine: it awaits the commit instead of blocking a thread."""
        return await self._submit(Write(action, principal, key, accounts, waiter=_new_waiter()), timeout_s)

    async def run_keyed_async(self, action: Action, principal: str, key: str, fingerprint: str, accounts: set[str],
                              timeout_s: float = 30.0) -> tuple[StoredResponse, bool]:  # fmt: skip
        """:meth:`run_keyed` for a coroutine, with the same answers (409 at once for a key in flight)."""
        flight = self._take_off(principal, key)
        try:
            write = Write(action, principal, key, accounts, fingerprint, waiter=_new_waiter())
            return await self._submit(write, timeout_s), write.replayed
        finally:
            self._land(flight)

    def _take_off(self, principal: str, key: str) -> tuple[str, str]:
        flight = (principal, key)
        with self._flight_lock:
            if flight in self._in_flight:
                raise Problem(409, "IDEMPOTENCY_KEY_IN_USE", "a request with this Idempotency-Key is still running",
                              headers={"Retry-After": "1"})  # fmt: skip
            self._in_flight.add(flight)
        return flight

    def _land(self, flight: tuple[str, str]) -> None:
        with self._flight_lock:
            self._in_flight.discard(flight)

    async def _submit(self, write: Write, timeout_s: float) -> StoredResponse:
        """Queue ``write`` and await its outcome, with the same time limits as the blocking calls."""
        waiter = write.waiter
        assert waiter is not None
        try:
            self._queue.put_nowait(write)
        except queue.Full:  # rare: wait for room off the event loop, as the blocking call would
            await anyio.to_thread.run_sync(lambda: self._queue.put(write, timeout=timeout_s))
        async with asyncio.timeout(timeout_s):
            return await waiter

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)
        if not self._thread.is_alive() and self._connection is not None:
            self._connection.close()
            self._connection = None

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, stop = collect_batch(self._queue, first, self.max_batch, self.max_wait_s)
            self._run(batch)
            if stop:
                return

    def _run(self, batch: list[Write]) -> None:
        try:
            responses = self._commit(batch)
        except Exception as error:  # noqa: BLE001 - isolate the culprit, or tell every waiter
            if len(batch) == 1:
                _deliver([(batch[0], error)])
                return
            log.warning("rest_batch_failed_retrying_alone", size=len(batch), error=str(error))
            for write in batch:
                self._run([write])
            return
        _deliver([(write, response if write.refused is None else write.refused)
                  for write, response in zip(batch, responses, strict=True)])  # fmt: skip

    @staticmethod
    def _placements(batch: list[Write]) -> list[tuple[str, str]]:
        """(account, ClOrdID) of each placement in the batch: what the batch's reads look up."""
        commands = [command for write in batch if (command := getattr(write.action, "command", None)) is not None]
        return [(command.account, command.cl_ord_id) for command in commands]

    def _commit(self, batch: list[Write]) -> list[StoredResponse]:
        for attempt in range(MAX_ATTEMPTS):
            try:
                return self._attempt(batch)
            except OperationalError as error:  # deadlock or serialization failure: the whole batch again
                log.warning("rest_batch_retry", attempt=attempt, error=str(error.orig))
                time.sleep(0.01 * (attempt + 1))
        raise Problem(503, "BUSY", "the database is busy; retry with the same Idempotency-Key", headers={"Retry-After": "1"})

    def _writer_connection(self) -> Connection:
        """The writer thread keeps one connection: checking one out of the pool per batch costs a pre-ping
        round trip on PostgreSQL. After any failure it is dropped (:meth:`_drop_connection`), and the next
        batch checks out a fresh, pinged one."""
        if self._connection is None:
            self._connection = self.database.engine.connect()
        return self._connection

    def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.invalidate()  # the DBAPI connection may be broken: never back into the pool
                connection.close()
            except Exception:  # noqa: BLE001 - it is being thrown away
                log.warning("rest_writer_connection_close_failed")

    def _attempt(self, batch: list[Write]) -> list[StoredResponse]:
        try:
            return self._attempt_on(self._writer_connection(), batch)
        except BaseException:
            self._drop_connection()
            raise

    def _attempt_on(self, connection: Connection, batch: list[Write]) -> list[StoredResponse]:
        now = datetime.now(UTC)
        with UnitOfWork(self.database, connection) as uow:
            uow.collect_events = self.on_commit is not None
            keyed = [(w.principal, w.key, w.fingerprint) for w in batch if w.key is not None and w.fingerprint is not None]
            claimed: set[tuple[str, str]] = set()
            claim = idempotency.claim_many_with_reads(uow, keyed, now, claimed)  # type: ignore[arg-type]
            placements = self._placements(batch)
            uow.prefetch_placements(set().union(*(write.accounts for write in batch)), placements,
                                    now - RATE_WINDOW if placements else None, also=claim)  # fmt: skip
            responses = []
            record = []  # whether to store each response against its key
            for write in batch:
                write.replayed, write.refused = False, None
                if write.key is not None and write.fingerprint is not None and (write.principal, write.key) not in claimed:
                    try:
                        stored = idempotency.claim_in(uow.connection, write.principal, write.key, write.fingerprint, now)
                    except Problem as problem:  # 409 / 422: about the key, never stored under it
                        write.refused = problem
                        responses.append(StoredResponse(problem.status, problem.body()))
                        record.append(False)
                        continue
                    if stored is not None:
                        write.replayed = True
                        responses.append(stored)
                        record.append(False)
                        continue
                try:
                    responses.append(write.action(uow, now))
                except Problem as problem:  # refused before writing anything: a response like any other
                    responses.append(StoredResponse(problem.status, problem.body()))
                record.append(write.key is not None)
            completions, retry_later = [], []  # a "not now" answer is not kept: the retry must run
            for write, response, keep in zip(batch, responses, record, strict=True):
                if not keep:
                    continue
                if response.status in idempotency.TRANSIENT_STATUSES:
                    retry_later.append((write.principal, write.key))
                else:
                    completions.append((write.principal, write.key, response))
            idempotency.complete(uow, completions)  # type: ignore[arg-type]
            idempotency.forget_in(uow.connection, retry_later)  # type: ignore[arg-type]
            uow.commit()
        if self.on_commit is not None and uow.written_events:
            try:
                self.on_commit(uow.written_events)
            except Exception:  # noqa: BLE001 - the commit is durable; readers catch up from the database
                log.exception("rest_on_commit_failed", events=len(uow.written_events))
        return responses


def _new_waiter() -> asyncio.Future[StoredResponse]:
    return asyncio.get_running_loop().create_future()


def _deliver(outcomes: list[tuple[Write, WriteOutcome]]) -> None:
    """Hand each write its response or exception: a waiting thread directly; coroutines with one call per
    event loop (each ``call_soon_threadsafe`` wakes the loop through a pipe: once per batch is enough)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[StoredResponse], WriteOutcome]]] = {}
    for write, outcome in outcomes:
        if write.waiter is not None:
            by_loop.setdefault(write.waiter.get_loop(), []).append((write.waiter, outcome))
        elif isinstance(outcome, BaseException):
            write.future.set_exception(outcome)  # type: ignore[union-attr]
        else:
            write.future.set_result(outcome)  # type: ignore[union-attr]
    for loop, waiters in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle, waiters)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            log.warning("rest_batch_waiters_gone", count=len(waiters))


def _settle(waiters: list[tuple[asyncio.Future[StoredResponse], WriteOutcome]]) -> None:
    """On the waiters' event loop: resolve each one that has not given up (timed out or cancelled)."""
    for waiter, outcome in waiters:
        if waiter.done():
            continue
        if isinstance(outcome, BaseException):
            waiter.set_exception(outcome)
        else:
            waiter.set_result(outcome)
