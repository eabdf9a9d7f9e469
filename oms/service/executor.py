"""Runs commands in transactions: one call, one transaction, one durable commit for the whole batch.

:meth:`CommandExecutor.execute` prefetches everything a batch refers to with a few queries, locks the
accounts involved in a fixed order, runs each handler, and commits once. If anything unexpected fails, the
batch is rolled back and every command retried alone, so one bad command cannot sink its neighbours: it gets
an ``Outcome.FAILED`` result of its own.
:class:`GroupCommitter` lets many threads submit single commands that share commits (group commit).
"""

from __future__ import annotations

import gc
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError, OperationalError

from oms.domain.commands import ApplyExecution, CancelOrder, PlaceOrder, ReplaceOrder
from oms.service.batching import collect_batch
from oms.service.orders import (
    RATE_WINDOW,
    ApplyCancelReject,
    OrderResult,
    Outcome,
    ServiceConfig,
    apply_cancel_reject,
    apply_execution,
    cancel_order,
    find_order_for_report,
    place_order,
    rate_limit,
    replace_order,
)
from oms.service.uow import Database, UnitOfWork

log = structlog.get_logger(__name__)

Command = PlaceOrder | CancelOrder | ReplaceOrder | ApplyExecution | ApplyCancelReject
Clock = Callable[[], datetime]
OnCommit = Callable[[list[dict[str, Any]]], object]

_HANDLERS: dict[type, Callable[..., OrderResult]] = {
    PlaceOrder: place_order,
    CancelOrder: cancel_order,
    ReplaceOrder: replace_order,
    ApplyExecution: apply_execution,
    ApplyCancelReject: apply_cancel_reject,
}
MAX_RETRIES = 3


def utc_now() -> datetime:
    return datetime.now(UTC)


# A batch keeps thousands of young objects alive until its commit (records, events, legs, rows). With
# CPython's default young-generation threshold (700 allocations) the cyclic collector then runs over a
# thousand times per 10,000 orders and re-scans those survivors each time: about a tenth of the order
# path's time in the service benchmark. A higher threshold collects the same cycles, less often.
GC_YOUNG_THRESHOLD = 50_000


def tune_garbage_collector() -> None:
    """Raise the cyclic GC's young-generation threshold for this process (never lowers a higher one)."""
    young, middle, old = gc.get_threshold()
    if young < GC_YOUNG_THRESHOLD:
        gc.set_threshold(GC_YOUNG_THRESHOLD, max(middle, 20), max(old, 100))


class CommandExecutor:
    """The OMS order path: commands in, results out, every result durable before it is returned."""

    def __init__(
        self,
        database: Database,
        config: ServiceConfig | None = None,
        clock: Clock = utc_now,
        *,
        tune_gc: bool = True,
        on_commit: OnCommit | None = None,
    ) -> None:
        """``on_commit`` is called after each durable commit with the ``order_events`` rows it wrote (dicts with
        the column names: id, account_id, account_seq, kind, order_id, payload, created_at), e.g. to publish
        them to a Redis Stream. It runs on the executing thread; an exception in it is logged, never raised:
        the commit stands, and the events stay in the database for readers to catch up from."""
        self.database = database
        self.config = config or ServiceConfig()
        self.clock = clock
        self.on_commit = on_commit
        if tune_gc:
            tune_garbage_collector()

    def execute(self, commands: Sequence[Command]) -> list[OrderResult]:
        """One result per command, in order; every result is durable before it is returned.

        A command that raises (a bug, or a fact the database refuses) gets an ``Outcome.FAILED`` result: it was
        rolled back and nothing of it is booked, while its neighbours, retried one by one, keep their own
        results. Only a database that stays unreachable for a whole batch raises (OperationalError): then no
        command of the batch has a result. Commands are idempotent (ClOrdID, ExecID), so resubmitting a FAILED
        one, or a raised batch, is always safe.
        """
        if not commands:
            return []
        failure = self._attempt(commands)
        if isinstance(failure, list):
            return failure
        if len(commands) == 1:
            log.error("command_failed", command=repr(commands[0]), exc_info=failure)
            return [_failed(failure)]
        log.warning("batch_failed_retrying_one_by_one", size=len(commands), error=repr(failure))
        results = []
        for command in commands:
            try:
                results.append(self.execute([command])[0])
            except OperationalError as error:  # the database went away mid-way: the others keep their results
                log.error("command_failed", command=repr(command), exc_info=error)
                results.append(_failed(error))
        return results

    def _attempt(self, commands: Sequence[Command]) -> list[OrderResult] | Exception:
        """The batch's results, or the exception that sank it (after retrying what a retry can fix)."""
        conflict_retried = False
        for attempt in range(MAX_RETRIES + 1):
            try:
                return self._run(commands)
            except OperationalError as error:  # deadlock, serialization failure, lock timeout, lost connection
                if attempt == MAX_RETRIES:
                    raise
                log.warning("batch_retry", attempt=attempt, error=str(error.orig))
            except IntegrityError as error:
                # A row committed by another transaction after we looked (a ClOrdID, an ExecID): once more,
                # the retry reads it and answers DUPLICATE/IGNORED. A second conflict is a real failure.
                if conflict_retried:
                    return error
                conflict_retried = True
                log.warning("batch_retry_after_conflict", attempt=attempt, error=str(error.orig))
            except Exception as error:  # noqa: BLE001 - reported per command by execute
                return error
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _run(self, commands: Sequence[Command]) -> list[OrderResult]:
        now = self.clock()
        with UnitOfWork(self.database) as uow:
            uow.collect_events = self.on_commit is not None
            _prefetch(uow, commands, self.config, now)
            results = [_HANDLERS[type(command)](uow, command, self.config, now) for command in commands]
            uow.commit()
        if self.on_commit is not None and uow.written_events:
            try:
                self.on_commit(uow.written_events)
            except Exception:  # noqa: BLE001 - the commit is durable; publishing is best effort
                log.exception("on_commit_failed", events=len(uow.written_events))
        return results

    def one(self, command: Command) -> OrderResult:
        return self.execute([command])[0]


def _prefetch(uow: UnitOfWork, commands: Sequence[Command], config: ServiceConfig, now: datetime) -> None:
    """Lock every account the batch touches (sorted, one statement), then load what it refers to.

    Reading after the locks is what makes the reads current under READ COMMITTED: a transaction that
    commits the same ClOrdID or ExecID, or changes one of these orders, holds the same account lock, so it
    has either committed before our lock (and we read its rows) or waits for our commit. Venue reports name
    no account: the lock statement finds their accounts from the ClOrdIDs we sent.
    """
    accounts: set[str] = set()
    placing: set[str] = set()
    client_keys: list[tuple[str, str]] = []
    venue_ids: list[str] = []
    exec_ids: list[str] = []
    for command in commands:
        if isinstance(command, PlaceOrder):
            accounts.add(command.account)
            placing.add(command.account)
            client_keys.append((command.account, command.cl_ord_id))
        elif isinstance(command, (CancelOrder, ReplaceOrder)):
            accounts.add(command.account)
            client_keys.extend([(command.account, command.orig_cl_ord_id), (command.account, command.cl_ord_id)])
        elif isinstance(command, ApplyExecution):
            exec_ids.append(command.venue_exec_id)
            venue_ids.extend(str(v) for v in (command.cl_ord_id, command.orig_cl_ord_id) if v is not None)
        else:
            venue_ids.extend(v for v in (command.venue_cl_ord_id, command.orig_venue_cl_ord_id) if v is not None)
    if uow.database.is_postgres:  # one round trip; the steps below then find most of it loaded
        counts_since = now - RATE_WINDOW if placing else None
        uow.pg_prefetch_batch(accounts, client_keys, venue_ids, exec_ids, counts_since=counts_since)
    else:
        uow.lock_accounts(accounts, venue_ids)
    if client_keys:
        uow.prefetch_orders_by_client(client_keys)
    if venue_ids:
        uow.prefetch_orders_by_venue_cl_ord_id(venue_ids)
    order_ids: list[str] = []
    late: set[str] = set()
    for command in commands:
        if isinstance(command, (ApplyExecution, ApplyCancelReject)):
            record = _report_order(uow, command)
            if record is not None:
                order_ids.append(record.id)
                if record.account_id not in uow.accounts:
                    late.add(record.account_id)  # found by venue order id, or committed after our lock
    if late:
        uow.lock_accounts(late)
    if exec_ids:
        uow.prefetch_exec_ids(exec_ids)
    if order_ids:
        uow.prefetch_reservations(order_ids)
    limited = [a for a in placing if (record := uow.accounts.get(a)) is not None and rate_limit(record, config) > 0]
    if limited:
        uow.prefetch_recent_order_counts(limited, now - RATE_WINDOW)


def _failed(error: BaseException) -> OrderResult:
    return OrderResult(Outcome.FAILED, detail=f"{type(error).__name__}: {error}"[:500])


def _report_order(uow: UnitOfWork, command: ApplyExecution | ApplyCancelReject) -> Any:
    if isinstance(command, ApplyExecution):
        return find_order_for_report(
            uow,
            None if command.cl_ord_id is None else str(command.cl_ord_id),
            None if command.orig_cl_ord_id is None else str(command.orig_cl_ord_id),
            None if command.venue_order_id is None else str(command.venue_order_id),
        )
    return find_order_for_report(uow, command.venue_cl_ord_id, command.orig_venue_cl_ord_id, command.venue_order_id)


class GroupCommitter:
    """Collects commands from many threads and runs them in shared transactions (group commit).

    A command's future resolves only after the commit that made it durable. Batches are bounded
    (``max_batch``) and a lone command waits at most ``max_wait_s`` for company. A command that failed
    resolves to its own ``Outcome.FAILED`` result (its neighbours' futures are unaffected); a future
    raises only when the database was unreachable for the whole batch, in which case none of it committed.
    """

    def __init__(
        self, executor: CommandExecutor, *, max_batch: int = 256, max_wait_s: float = 0.0005, committers: int = 1
    ) -> None:
        """``committers`` > 1 runs that many batches at once (PostgreSQL: one batch's commit and round trips
        overlap the next one's Python work; row locks taken in sorted order keep them apart). Keep 1 on
        SQLite, whose single write lock would only make the extra committers wait."""
        if committers < 1:
            raise ValueError("committers must be at least 1")
        self._executor = executor
        self._max_batch = max_batch
        self._max_wait_s = max_wait_s
        self._queue: queue.Queue[tuple[Command, Future[OrderResult]] | None] = queue.Queue(maxsize=max_batch * 64)
        self._threads = [
            threading.Thread(target=self._loop, name=f"group-commit-{i}", daemon=True) for i in range(committers)
        ]
        self._thread = self._threads[0]
        for thread in self._threads:
            thread.start()

    def submit(self, command: Command) -> Future[OrderResult]:
        future: Future[OrderResult] = Future()
        self._queue.put((command, future))
        return future

    def execute(self, command: Command, timeout: float | None = 30.0) -> OrderResult:
        return self.submit(command).result(timeout)

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=10)

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch, stop = collect_batch(self._queue, item, self._max_batch, self._max_wait_s)
            self._run(batch)
            if stop:
                return

    def _run(self, batch: list[tuple[Command, Future[OrderResult]]]) -> None:
        try:
            results = self._executor.execute([command for command, _ in batch])
        except Exception as error:  # noqa: BLE001 - the database was unreachable: every waiter must hear it
            for _, future in batch:
                future.set_exception(error)
            return
        for (_, future), result in zip(batch, results, strict=True):
            future.set_result(result)
