"""Storage of position checkpoints: an account's folded position books as of one execution (a cache).

Why: the positions read folds an account's trades in booking order; without a checkpoint it reads every trade
the account ever made. The rows live in ``position_checkpoints`` (migration ``0009_position_checkpoints``), one
per account and symbol, all of an account's rows with the same cursor. A checkpoint is only ever moved
forward (or rewritten in place, to repair it): two readers saving at once leave the later cursor on every row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import structlog
from sqlalchemy import Connection, Table, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError

from oms.db.models import PositionCheckpoint

log = structlog.get_logger(__name__)

_table: Table = PositionCheckpoint.__table__  # type: ignore[assignment]  # declarative tables are Tables


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a checkpoint ends: it includes every trade booked at or before ``created_at`` (a whole batch),
    the last of which, in fold order, was ``execution_id`` (kept for whoever inspects the table)."""

    created_at: datetime
    execution_id: str


@dataclass(frozen=True, slots=True)
class SavedBook:
    """One symbol's books as folded through the cursor."""

    qty: Decimal
    cost: Decimal
    realized: Decimal


def load(connection: Connection, account_id: str) -> tuple[dict[str, SavedBook], Cursor | None]:
    """The account's checkpoint; none if it has none, or if its rows disagree on the cursor (never written so)."""
    rows = connection.execute(
        select(_table.c.symbol, _table.c.qty, _table.c.cost, _table.c.realized, _table.c.through_created_at,
               _table.c.through_id).where(_table.c.account_id == account_id)
    ).all()
    cursors = {(row[4], row[5]) for row in rows}
    if len(cursors) != 1:
        if rows:
            log.warning("position_checkpoint_torn", account=account_id, cursors=len(cursors))
        return {}, None
    (created_at, execution_id), = cursors
    return {row[0]: SavedBook(row[1], row[2], row[3]) for row in rows}, Cursor(created_at, execution_id)


def save(connection: Connection, account_id: str, books: dict[str, SavedBook], cursor: Cursor) -> bool:
    """Moves the account's checkpoint forward to ``cursor`` and commits; False (logged) if that failed.

    A failure loses nothing (the next read folds from the old checkpoint), so it is never raised to a reader.
    """
    if not books:
        return False
    insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
    statement = insert(_table).values([
        {"account_id": account_id, "symbol": symbol, "qty": book.qty, "cost": book.cost, "realized": book.realized,
         "through_created_at": cursor.created_at, "through_id": cursor.execution_id}
        for symbol, book in sorted(books.items())
    ])  # fmt: skip
    new = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=[_table.c.account_id, _table.c.symbol],
        set_={"qty": new.qty, "cost": new.cost, "realized": new.realized,
              "through_created_at": new.through_created_at, "through_id": new.through_id},
        where=_table.c.through_created_at <= new.through_created_at,  # never back; the same place again is a repair
    )  # fmt: skip
    try:
        connection.execute(statement)
        connection.commit()
    except SQLAlchemyError as error:
        connection.rollback()
        log.warning("position_checkpoint_not_saved", account=account_id, error=str(error).splitlines()[0])
        return False
    return True
