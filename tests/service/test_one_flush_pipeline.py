"""PostgreSQL: a transaction's statements sent in one write, answered in one read (oms.db.pipeline).

What the order path relies on: rows come back as psycopg's cursors return them; the transaction is started
as psycopg would start it and committed in the same trip when asked; a failing statement raises psycopg's
exception for its SQLSTATE and skips the rest, leaving nothing written; statements are prepared as psycopg
prepares its own, and stay in step with psycopg's bookkeeping across rollbacks.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import psycopg
import pytest
from psycopg import errors

from oms.db.pipeline import OneFlushPipeline


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.fixture
def connection(postgres_url: str) -> Iterator[psycopg.Connection]:
    """A psycopg connection as oms.db.engine makes them (psycopg's defaults)."""
    with psycopg.connect(_libpq(postgres_url)) as conn:
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


def _prepared(connection: psycopg.Connection) -> list[str]:
    """The statements prepared on ``connection`` (this look-up, which psycopg prepares too, left out)."""
    rows = connection.execute(
        "SELECT name FROM pg_prepared_statements WHERE statement NOT LIKE '%%pg_prepared_statements%%' ORDER BY name"
    ).fetchall()
    return [name for (name,) in rows]


def test_a_statement_is_prepared_from_its_sixth_use_as_psycopg_prepares_its_own(connection: psycopg.Connection) -> None:
    for attempt in range(7):
        with OneFlushPipeline(connection) as pipe:
            found = pipe.execute("SELECT %s::int + 1", (attempt,))
        assert found.fetchall() == [(attempt + 1,)]
        connection.commit()
        assert len(_prepared(connection)) == (0 if attempt < 5 else 1)
    connection.rollback()


def test_a_rollback_deallocates_them_and_psycopg_and_the_pipeline_agree_about_it(connection: psycopg.Connection) -> None:
    """psycopg answers a ROLLBACK with DEALLOCATE ALL; the pipeline then prepares the statement again rather
    than name one the server has forgotten."""
    for attempt in range(16):
        with OneFlushPipeline(connection) as pipe:
            one = pipe.execute("SELECT %s::int", (attempt,))
            two = pipe.execute("SELECT %s::int", (attempt + 100,))  # the same statement twice in one trip
        assert (one.fetchall(), two.fetchall()) == ([(attempt,)], [(attempt + 100,)])
        if attempt in (6, 9):
            connection.rollback()
            assert _prepared(connection) == []
        else:
            connection.commit()
    assert len(_prepared(connection)) == 1


def test_a_statement_that_failed_is_not_remembered_as_prepared(connection: psycopg.Connection) -> None:
    for _ in range(6):
        with pytest.raises(errors.UndefinedTable), OneFlushPipeline(connection) as pipe:
            pipe.execute("SELECT * FROM later")
        connection.rollback()
    connection.execute("CREATE TABLE later (x int)")
    connection.execute("INSERT INTO later VALUES (7)")
    for _ in range(7):
        with OneFlushPipeline(connection) as pipe:
            rows = pipe.execute("SELECT * FROM later")
        assert rows.fetchall() == [(7,)]
