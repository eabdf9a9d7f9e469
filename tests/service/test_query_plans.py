"""SQLite: the order path's batch lookups probe indexes; none of them scans a whole table.

A whole-table scan per batch grows with the table: fine in a test, ruinous after a year of orders.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from oms.db.engine import make_engine
from oms.db.migrate import upgrade
from oms.ledger import book
from oms.service import uow

LOOKUPS = [
    (uow, "_SQLITE_ACCOUNTS"),
    (uow, "_SQLITE_ORDERS_BY_CLIENT"),
    (uow, "_SQLITE_ORDERS_BY_VENUE_CL"),
    (uow, "_SQLITE_ORDERS_BY_PENDING_VENUE_CL"),
    (uow, "_SQLITE_PENDING_RESERVATIONS"),
    (uow, "_SQLITE_APPLIED_EXEC_IDS"),
    (uow, "_SQLITE_EVENT_IDS"),
    (book, "_SQLITE_BALANCES"),
]


@pytest.fixture(scope="module")
def connection(tmp_path_factory: pytest.TempPathFactory) -> sqlite3.Connection:
    path = Path(tmp_path_factory.mktemp("plans")) / "oms.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return sqlite3.connect(path)


@pytest.mark.parametrize(("module", "name"), LOOKUPS, ids=[name for _, name in LOOKUPS])
def test_batch_lookups_use_an_index(connection: sqlite3.Connection, module: object, name: str) -> None:
    template: str = getattr(module, name)
    slots = template.count("{}")  # each slot takes the same keys, as ``BulkReader.fetch_in`` fills them
    if "VALUES" in template:
        sql, params = template.format(*["(?, ?), (?, ?)"] * slots), ["a", "b", "c", "d"] * slots
    else:
        sql, params = template.format(*["?, ?"] * slots), ["a", "b"] * slots
    plan = [row[3] for row in connection.execute("EXPLAIN QUERY PLAN " + sql, params)]
    table_scans = [step for step in plan if step.startswith("SCAN") and "CONSTANT ROWS" not in step and step != "SCAN k"]
    assert not table_scans, plan
    assert any("USING" in step and "INDEX" in step for step in plan), plan
