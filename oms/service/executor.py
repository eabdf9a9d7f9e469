"""Runs commands in transactions: one call, one transaction, one durable commit for the whole batch.

:meth:`CommandExecutor.execute` prefetches everything a batch refers to with a few queries, locks the
accounts involved in a fixed order, runs each handler, and commits once. If anything unexpected fails, the
batch is rolled back and every command retried alone, so one bad command cannot sink its neighbours.
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
from sqlalchemy.exc import DBAPIError, OperationalError

from oms.domain.commands import ApplyExecution, CancelOrder, PlaceOrder, ReplaceOrder
from oms.service.orders import (
    RATE_WINDOW,
    ApplyCancelReject,
    OrderResult,
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
        self, database: Database, config: ServiceConfig | None = None, clock: Clock = utc_now, *, tune_gc: bool = True
    ) -> None:
        self.database = database
        self.config = config or ServiceConfig()
        self.clock = clock
        if tune_gc:
            tune_garbage_collector()

    def execute(self, commands: Sequence[Command]) -> list[OrderResult]:
        if not commands:
            return []
        for attempt in range(MAX_RETRIES):
            try:
                return self._run(commands)
            except OperationalError as error:  # deadlock, serialization failure, lock timeout: retry
                log.warning("batch_retry", attempt=attempt, error=str(error.orig))
            except Exception:
                if len(commands) == 1:
                    raise
                log.exception("batch_failed_retrying_one_by_one", size=len(commands))
                return [self.execute([command])[0] for command in commands]
        return self._run(commands)

    def _run(self, commands: Sequence[Command]) -> list[OrderResult]:
        now = self.clock()
        with UnitOfWork(self.database) as uow:
            _prefetch(uow, commands, self.config, now)
            results = [_HANDLERS[type(command)](uow, command, self.config, now) for command in commands]
            uow.commit()
        return results

    def one(self, command: Command) -> OrderResult:
        return self.execute([command])[0]


def _prefetch(uow: UnitOfWork, commands: Sequence[Command], config: ServiceConfig, now: datetime) -> None:
    """Load what the batch refers to in a few queries, then lock every account it touches, sorted."""
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
    if client_keys:
        uow.prefetch_orders_by_client(client_keys)
    if venue_ids:
        uow.prefetch_orders_by_venue_cl_ord_id(venue_ids)
    if exec_ids:
        uow.prefetch_exec_ids(exec_ids)
    order_ids: list[str] = []
    for command in commands:
        if isinstance(command, (ApplyExecution, ApplyCancelReject)):
            record = _report_order(uow, command)
            if record is not None:
                accounts.add(record.account_id)
                order_ids.append(record.id)
    uow.lock_accounts(accounts)
    if order_ids:
        uow.prefetch_reservations(order_ids)
    limited = [a for a in placing if (record := uow.accounts.get(a)) is not None and rate_limit(record, config) > 0]
    if limited:
        uow.prefetch_recent_order_counts(limited, now - RATE_WINDOW)


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
    (``max_batch``) and a lone command waits at most ``max_wait_s`` for company.
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
            batch = [item]
            stop = False
            while len(batch) < self._max_batch:
                try:
                    more = self._queue.get(timeout=self._max_wait_s) if len(batch) == 1 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            self._run(batch)
            if stop:
                return

    def _run(self, batch: list[tuple[Command, Future[OrderResult]]]) -> None:
        try:
            results = self._executor.execute([command for command, _ in batch])
        except (DBAPIError, Exception) as error:  # noqa: BLE001 - every waiter must hear about the failure
            for _, future in batch:
                future.set_exception(error)
            return
        for (_, future), result in zip(batch, results, strict=True):
            future.set_result(result)
