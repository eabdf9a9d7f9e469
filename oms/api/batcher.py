"""Group commit for REST writes: many requests' actions and their Idempotency-Key rows in one transaction.

Request threads submit (action, key) and wait; one thread runs up to ``max_batch`` waiting actions in one
unit of work, locks their accounts up front in sorted order (no deadlock between batches), records every
response against its key, and commits once. A response is returned only after that commit. If the batch
fails unexpectedly it is rolled back and each action retried alone, so one bad request cannot sink the
others; deadlocks and serialization failures retry the whole batch.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog
from sqlalchemy.exc import OperationalError

from oms.api import idempotency
from oms.api.idempotency import StoredResponse
from oms.api.problems import Problem
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
    future: Future[StoredResponse] = field(default_factory=Future)


class WriteBatcher:
    def __init__(self, database: Database, *, max_batch: int = 64, max_wait_s: float = 0.0005) -> None:
        self.database = database
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._queue: queue.Queue[Write | None] = queue.Queue(maxsize=max_batch * 64)
        self._thread = threading.Thread(target=self._loop, name="rest-group-commit", daemon=True)
        self._thread.start()

    def run(self, action: Action, principal: str, key: str | None, accounts: set[str], timeout_s: float = 30.0) -> StoredResponse:
        write = Write(action, principal, key, accounts)
        self._queue.put(write, timeout=timeout_s)
        return write.future.result(timeout_s)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    more = self._queue.get(timeout=self.max_wait_s) if len(batch) == 1 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            self._run(batch)
            if stop:
                return

    def _run(self, batch: list[Write]) -> None:
        try:
            responses = self._commit(batch)
        except Exception as error:  # noqa: BLE001 - isolate the culprit, or tell every waiter
            if len(batch) == 1:
                batch[0].future.set_exception(error)
                return
            log.warning("rest_batch_failed_retrying_alone", size=len(batch), error=str(error))
            for write in batch:
                self._run([write])
            return
        for write, response in zip(batch, responses, strict=True):
            write.future.set_result(response)

    def _commit(self, batch: list[Write]) -> list[StoredResponse]:
        for attempt in range(MAX_ATTEMPTS):
            try:
                return self._attempt(batch)
            except OperationalError as error:  # deadlock or serialization failure: the whole batch again
                log.warning("rest_batch_retry", attempt=attempt, error=str(error.orig))
                time.sleep(0.01 * (attempt + 1))
        raise Problem(503, "BUSY", "the database is busy; retry with the same Idempotency-Key", headers={"Retry-After": "1"})

    def _attempt(self, batch: list[Write]) -> list[StoredResponse]:
        now = datetime.now(UTC)
        with UnitOfWork(self.database) as uow:
            uow.lock_accounts(sorted(set().union(*(write.accounts for write in batch))))
            responses = []
            for write in batch:
                try:
                    responses.append(write.action(uow, now))
                except Problem as problem:  # refused before writing anything: a response like any other
                    responses.append(StoredResponse(problem.status, problem.body()))
            uow.flush()
            for write, response in zip(batch, responses, strict=True):
                if write.key is not None:
                    idempotency.complete(uow.connection, write.principal, write.key, response)
            uow.commit()
        return responses
