"""PostgreSQL: a transaction's statements sent in one write and answered in one read (libpq pipeline mode).

psycopg's own pipeline (``Connection.pipeline()``) sends each statement as soon as it is executed: one
``send`` and two ``poll`` calls per statement, and PostgreSQL wakes up once per statement to answer it. For
the order path's round trips of 6-15 small statements that cost about three times the client CPU of the
statements themselves and more server CPU than their execution (measured in ``bench/RESULTS-rest.md``,
round 9). :class:`OneFlushPipeline` queues every statement in libpq's output buffer, adds one sync, flushes
once and reads every answer after it.

Parameters are adapted and results loaded by psycopg's own machinery (the connection's adapters, binary
results), so values are the types psycopg's cursors return. A failed statement raises psycopg's exception
for its SQLSTATE once every answer has been read: PostgreSQL skips the statements after it and the
transaction is aborted, exactly as with psycopg's pipeline.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self

import psycopg
from psycopg import pq
from psycopg._queries import (
    PostgresQuery,  # psycopg's own %s conversion; pinned range in pyproject.toml
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
        self._queued: list[tuple[bytes, Sequence[Any] | None, Sequence[int] | None, Sequence[pq.Format] | None]] = []
        self._results: list[PendingResult] = []
        self._commit = False

    def execute(self, sql: str, params: Sequence[Any] = ()) -> PendingResult:
        """Queue one statement (``%s`` placeholders); its rows are on the returned object after the run."""
        query = PostgresQuery(self._transformer)
        query.convert(sql, params)
        self._queued.append((query.query, query.params, query.types, query.formats))
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
        """Send everything queued, read every answer, and raise the first statement's error if one failed."""
        connection = self._connection
        prepared = _prepared_statements(connection)
        # psycopg answers a ROLLBACK with DEALLOCATE ALL when it prepares statements itself: prepare only where
        # it does not (oms.db.engine turns it off), else send every statement unnamed.
        limit = _MAX_PREPARED if connection.prepare_threshold is None else 0
        parsed: dict[tuple[bytes, tuple[int, ...]], bytes] = {}  # prepared by this run's own Parse messages
        parses: list[tuple[bytes, tuple[int, ...]] | None] = []  # per statement: the key of the Parse sent first
        with connection.lock:
            pgconn = connection.pgconn
            begin = not connection.autocommit and pgconn.transaction_status == _IDLE
            pgconn.enter_pipeline_mode()
            try:
                if begin:
                    pgconn.send_query_params(connection._get_tx_start_command(), None)
                for query, params, types, formats in self._queued:
                    key = (query, tuple(types or ()))
                    name = prepared.get(key) or parsed.get(key)
                    if name is None and len(prepared) + len(parsed) < limit:
                        name = parsed[key] = b"_oms_%d" % (len(prepared) + len(parsed))
                        pgconn.send_prepare(name, query, param_types=types)
                        parses.append(key)
                    else:
                        parses.append(None)
                    if name is None:
                        pgconn.send_query_params(query, params, param_types=types, param_formats=formats, result_format=_BINARY)
                    else:
                        pgconn.send_query_prepared(name, params, param_formats=formats, result_format=_BINARY)
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
        for parse, result in zip(parses, self._results, strict=True):
            if parse is not None:
                if answers[index].status == _FAILED:
                    failure = failure or answers[index]
                elif answers[index].status == pq.ExecStatus.COMMAND_OK:  # kept by the session, whatever
                    prepared[parse] = parsed[parse]  # becomes of the transaction
                index += 1
            answer = answers[index]
            index += 1
            if answer.status == _TUPLES_OK and failure is None:
                transformer.set_pgresult(answer)
                result.description = True
                result._rows = transformer.load_rows(0, answer.ntuples, tuple)
            elif answer.status == _FAILED:
                failure = failure or answer
        if failure is None and self._commit and answers[index].status == _FAILED:
            failure = answers[index]
        if failure is not None:  # the statements after it were skipped (PIPELINE_ABORTED)
            raise error_from_result(failure, encoding=connection.info.encoding)


_MAX_PREPARED = 200  # per connection; statements beyond it are sent unnamed (parsed and planned each time)
_PREPARED: weakref.WeakKeyDictionary[psycopg.Connection[Any], dict[tuple[bytes, tuple[int, ...]], bytes]] = (
    weakref.WeakKeyDictionary()
)


def _prepared_statements(connection: psycopg.Connection[Any]) -> dict[tuple[bytes, tuple[int, ...]], bytes]:
    """The statements this module prepared on ``connection`` (query and parameter types -> name): prepared
    once, then only bound and executed, as psycopg's own cursors do after a statement's fifth use."""
    found = _PREPARED.get(connection)
    if found is None:
        found = _PREPARED[connection] = {}
    return found


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
