"""PostgreSQL: a transaction's statements sent in one write, answered in one read (oms.db.pipeline).

What the order path relies on: rows come back as psycopg's cursors return them; the transaction is started
as psycopg would start it and committed in the same trip when asked; a failing statement raises psycopg's
exception for its SQLSTATE and skips the rest, leaving nothing written; statements are prepared once per
connection and stay usable across commits and rollbacks.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import psycopg
import pytest
from psycopg import errors

from oms.db.pipeline import OneFlushPipeline, _prepared_statements


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.fixture
def connection(postgres_url: str) -> Iterator[psycopg.Connection]:
    """A psycopg connection configured as oms.db.engine configures them (no automatic preparing)."""
    with psycopg.connect(_libpq(postgres_url), prepare_threshold=None) as conn:
        conn.execute("CREATE TABLE notes (id int PRIMARY KEY, amount numeric NOT NULL, at timestamptz NOT NULL)")
        conn.commit()
        yield conn


def _count(connection: psycopg.Connection) -> int:
    row = connection.execute("SELECT count(*) FROM notes").fetchone()
    connection.rollback()
    return int(row[0]) if row else 0


def test_rows_come_back_typed_as_psycopg_returns_them_and_commands_have_no_description(connection: psycopg.Connection) -> None:
    at = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    with OneFlushPipeline(connection) as pipe:
        insert = pipe.execute("INSERT INTO notes VALUES (%s, %s, %s)", (1, Decimal("1.10"), at))
        rows = pipe.execute("SELECT id, amount, at FROM notes WHERE id = ANY(%s::int[])", ("{1,2}",))
        empty = pipe.execute("SELECT id FROM notes WHERE id = %s", (99,))
    assert insert.description is None and insert.fetchall() == []
    assert rows.fetchall() == [(1, Decimal("1.10"), at)]
    assert empty.description is not None and empty.fetchall() == []


def test_the_transaction_stays_open_until_committed_and_a_commit_joins_the_same_trip(connection: psycopg.Connection) -> None:
    with OneFlushPipeline(connection) as pipe:
        pipe.execute("INSERT INTO notes VALUES (1, 1, now())")
    assert connection.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    connection.rollback()
    assert _count(connection) == 0

    with OneFlushPipeline(connection) as pipe:
        pipe.execute("INSERT INTO notes VALUES (2, 1, now())")
        pipe.commit()
    assert connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert _count(connection) == 1


def test_a_failing_statement_raises_its_sqlstate_skips_the_rest_and_writes_nothing(connection: psycopg.Connection) -> None:
    with OneFlushPipeline(connection) as pipe:
        pipe.execute("INSERT INTO notes VALUES (1, 1, now())")
        pipe.commit()

    with pytest.raises(errors.UniqueViolation), OneFlushPipeline(connection) as pipe:
        pipe.execute("INSERT INTO notes VALUES (2, 1, now())")
        pipe.execute("INSERT INTO notes VALUES (1, 1, now())")  # the duplicate key
        pipe.execute("INSERT INTO notes VALUES (3, 1, now())")
        pipe.commit()
    assert connection.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
    connection.rollback()
    assert _count(connection) == 1


def test_statements_are_prepared_once_and_survive_rollbacks(connection: psycopg.Connection) -> None:
    for attempt in range(3):
        with OneFlushPipeline(connection) as pipe:
            found = pipe.execute("SELECT %s::int + 1", (attempt,))
            again = pipe.execute("SELECT %s::int + 1", (attempt + 10,))  # the same statement twice in one trip
        assert (found.fetchall(), again.fetchall()) == ([(attempt + 1,)], [(attempt + 11,)])
        if attempt == 1:
            connection.rollback()
        else:
            connection.commit()
    assert len(_prepared_statements(connection)) == 1
    names = connection.execute("SELECT name FROM pg_prepared_statements").fetchall()
    assert names == [(name.decode(),) for name in _prepared_statements(connection).values()]


def test_a_statement_whose_prepare_failed_is_prepared_again_next_time(connection: psycopg.Connection) -> None:
    with pytest.raises(errors.UndefinedTable), OneFlushPipeline(connection) as pipe:
        pipe.execute("SELECT * FROM later")
    connection.rollback()
    assert _prepared_statements(connection) == {}
    connection.execute("CREATE TABLE later (x int)")
    connection.execute("INSERT INTO later VALUES (7)")
    with OneFlushPipeline(connection) as pipe:
        rows = pipe.execute("SELECT * FROM later")
    assert rows.fetchall() == [(7,)]


def test_a_connection_that_prepares_itself_gets_unnamed_statements(postgres_url: str) -> None:
    """psycopg answers a ROLLBACK with DEALLOCATE ALL once it has prepared anything: no names of ours there."""
    with psycopg.connect(_libpq(postgres_url)) as conn:
        for _ in range(3):
            with OneFlushPipeline(conn) as pipe:
                one = pipe.execute("SELECT 1")
            conn.rollback()
            assert one.fetchall() == [(1,)]
        assert _prepared_statements(conn) == {}
