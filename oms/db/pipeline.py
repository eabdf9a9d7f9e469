"""PostgreSQL: a transaction's statements sent in one write and answered in one read (libpq pipeline mode).

psycopg's own pipeline (``Connection.pipeline()``) sends each statement as soon as it is executed: one
``send`` and two ``poll`` calls per statement, and PostgreSQL wakes up once per statement to answer it. For
the order path's round trips of 6-15 small statements that cost about three times the client CPU of the
statements themselves and more server CPU than their execution (measured in ``bench/RESULTS-rest.md``,
round 9). :class:`OneFlushPipeline` queues every statement in libpq's output buffer, adds one sync, flushes
once and reads every answer after it.

Parameters are adapted, statements prepared (from their sixth use, by the connection's own prepared-statement
manager) and results loaded by psycopg's own machinery, so values, statement names and plans are what
psycopg's cursors would have had. A failed statement raises psycopg's exception
for its SQLSTATE once every answer has been read: PostgreSQL skips the statements after it and the
transaction is aborted, exactly as with psycopg's pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self

import psycopg
from psycopg import pq
from psycopg._preparing import (
    Prepare,  # psycopg's prepared-statement manager (see run); version pinned
)
from psycopg._queries import (
    PostgresQuery,  # psycopg's own %s conversion; version pinned in pyproject.toml
)
from psycopg.adapt import Transformer
from psycopg.errors import error_from_result
from psycopg.waiting import Ready, Wait

_TUPLES_OK = pq.ExecStatus.TUPLES_OK
_FAILED = pq.ExecStatus.FATAL_ERROR
_SYNC = pq.ExecStatus.PIPELINE_SYNC
_IDLE = pq.TransactionStatus.IDLE
_BINARY = pq.Format.BINARY


class PendingResult:
    """One statement's answer, readable once the pipeline has run (as a psycopg cursor's after a sync)."""

    __slots__ = ("_rows", "description")

    def __init__(self) -> None:
        self._rows: list[tuple[Any, ...]] = []
        self.description: object | None = None  # not None when the statement returned rows (as DBAPI's)

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._rows


class OneFlushPipeline:
    """Statements queued with :meth:`execute` and sent, with a COMMIT if :meth:`commit` was called, when the
    ``with`` block ends without an exception. The connection's transaction is started first if it is idle,
    as psycopg would start it."""

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self._connection = connection
        self._transformer = Transformer.from_context(connection)
        self._queued: list[PostgresQuery] = []
        self._results: list[PendingResult] = []
        self._commit = False

    def execute(self, sql: str, params: Sequence[Any] = ()) -> PendingResult:
        """Queue one statement (``%s`` placeholders); its rows are on the returned object after the run."""
        query = PostgresQuery(self._transformer)
        query.convert(sql, params)
        self._queued.append(query)
        result = PendingResult()
        self._results.append(result)
        return result

    def commit(self) -> None:
        """End the transaction with a COMMIT in the same round trip."""
        self._commit = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        if kind is None:
            self.run()

    def run(self) -> None:
        """Send everything queued, read every answer, and raise the first statement's error if one failed.

        Statements are prepared as psycopg's cursors prepare them, through the connection's own manager (from a
        statement's sixth use, under psycopg's names), so psycopg's bookkeeping stays true: it deallocates them
        after a ROLLBACK, and PostgreSQL picks plans for them exactly as it does for psycopg's own statements.
        """
        connection = self._connection
        manager = connection._prepared
        # Per statement (Prepare.NO / YES / SHOULD, name, cache key), recorded as it is queued, as psycopg's
        # cursors do: a second use in the same trip then binds the name the first one's Parse creates.
        plans: list[tuple[Prepare, bytes, Any]] = []
        with connection.lock:
            pgconn = connection.pgconn
            begin = not connection.autocommit and pgconn.transaction_status == _IDLE
            pgconn.enter_pipeline_mode()
            try:
                if begin:
                    pgconn.send_query_params(connection._get_tx_start_command(), None)
                for query in self._queued:
                    prepare, name = manager.get(query)
                    plans.append((prepare, name, manager.maybe_add_to_cache(query, prepare, name)))
                    if prepare is Prepare.NO:
                        pgconn.send_query_params(query.query, query.params, param_types=query.types,
                                                 param_formats=query.formats, result_format=_BINARY)  # fmt: skip
                        continue
                    if prepare is Prepare.SHOULD:
                        pgconn.send_prepare(name, query.query, param_types=query.types)
                    pgconn.send_query_prepared(name, query.params, param_formats=query.formats, result_format=_BINARY)
                if self._commit:
                    pgconn.send_query_params(b"COMMIT", None)
                pgconn.pipeline_sync()
                answers = connection.wait(_exchange(pgconn))
                pgconn.exit_pipeline_mode()
            except BaseException:
                _abandon(connection)
                raise
        # Answers come in the order sent: [BEGIN], then per statement [its Parse] and its own, then [COMMIT].
        index = 1 if begin else 0
        failure = answers[0] if begin and answers[0].status == _FAILED else None
        transformer = self._transformer
        for (prepare, name, key), result in zip(plans, self._results, strict=True):
            if prepare is Prepare.SHOULD:
                failure = failure or (answers[index] if answers[index].status == _FAILED else None)
                index += 1
            answer = answers[index]
            index += 1
            if key is not None:
                manager.validate(key, prepare, name, [answer])
            if answer.status == _TUPLES_OK and failure is None:
                transformer.set_pgresult(answer)
                result.description = True
                result._rows = transformer.load_rows(0, answer.ntuples, tuple)
            elif answer.status == _FAILED:
                failure = failure or answer
        if failure is None and self._commit and answers[index].status == _FAILED:
            failure = answers[index]
        if manager._to_flush:  # statements psycopg evicts from its cache (more than its maximum prepared)
            with connection.lock:
                connection.wait(manager.maintain_gen(connection))
        if failure is not None:  # the statements after it were skipped (PIPELINE_ABORTED)
            raise error_from_result(failure, encoding=connection.info.encoding)


def _exchange(pgconn: pq.abc.PGconn) -> Any:
    """psycopg wait generator: flush the whole output buffer, then read one result per statement up to the
    sync. Input is consumed while flushing too, so a server answering early never blocks the send."""
    while pgconn.flush():
        ready = yield Wait.RW
        if ready & Ready.R:
            pgconn.consume_input()
    answers: list[pq.abc.PGresult] = []
    while True:
        while pgconn.is_busy():
            yield Wait.R
            pgconn.consume_input()
        result = pgconn.get_result()
        if result is None:  # the end of one statement's results
            continue
        if result.status == _SYNC:
            return answers
        answers.append(result)


def _abandon(connection: psycopg.Connection[Any]) -> None:
    """After an I/O failure mid-pipeline the protocol state is unknown: close the connection so that it is
    never reused (SQLAlchemy then invalidates it), rather than leave it in pipeline mode."""
    try:
        connection.pgconn.exit_pipeline_mode()
    except Exception:  # noqa: BLE001 - results still pending or the socket gone
        connection.close()
