"""The nightly settlement reads the sales still to settle, not every sale the broker ever booked.

``oms ledger settle`` runs every night; the settled history grows by a day's sales every day. Its lookup of
what is due must come from an index of the unsettled ones (``ix_pending_settlements_due``), on both backends.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import text

from oms.service.accounts import create_account, due_settlements
from oms.service.uow import Database
from tests.service.factories import setup_database
from tests.service.plans import rows_examined

SETTLED = 3000  # past sales, settled long ago
DUE = 5


def _history(database: Database) -> date:
    """SETTLED settled sales over the past years and DUE unsettled ones; returns the settlement date."""
    create_account(database, "ACC")
    today = date(2026, 11, 23)
    rows: list[dict[str, Any]] = [
        {"id": f"S{n:05d}", "settle_date": today - timedelta(days=1 + n % 700), "settled": f"E{n:05d}"} for n in range(SETTLED)
    ]
    rows += [{"id": f"D{n}", "settle_date": today - timedelta(days=n % 2), "settled": None} for n in range(DUE)]
    with database.engine.begin() as connection:
        connection.execute(
            text("INSERT INTO pending_settlements (id, account_id, currency, amount, trade_date, settle_date, "
                 "source_entry_id, settled_entry_id) VALUES (:id, 'ACC', 'USD', 1, :settle_date, :settle_date, 'X', :settled)"),
            rows,
        )  # fmt: skip
        connection.execute(text("ANALYZE"))
    return today


def test_the_due_settlements_are_read_from_the_unsettled_ones_alone(database_url: str) -> None:
    database = setup_database(database_url)
    try:
        today = _history(database)
        statement = due_settlements(today)
        with database.engine.connect() as connection:
            due = connection.execute(statement).all()
            assert sorted(row[0] for row in due) == [f"D{n}" for n in range(DUE)]
            compiled = statement.compile(connection)
            if connection.dialect.name == "sqlite":
                params = [compiled.params[name] for name in compiled.positiontup or []]
                plan = [row[3] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled), tuple(params))]
                assert any("ix_pending_settlements_due" in step for step in plan), plan
                assert not any(step.startswith("SCAN pending_settlements") for step in plan), plan
        if database.engine.dialect.name == "postgresql":
            read = rows_examined(database, str(compiled), compiled.params, "pending_settlements")
            assert read <= DUE, read  # not the 3,000 settled sales
    finally:
        database.dispose()
