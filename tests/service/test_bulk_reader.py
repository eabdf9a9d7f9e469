"""BulkReader returns exactly what SQLAlchemy returns for the same rows, on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import Engine, select

from oms.db import bulk
from oms.db.bulk import BulkReader, BulkWriter
from oms.db.engine import make_engine
from oms.db.models import OutboxMessage, PendingSettlement

_outbox = OutboxMessage.__table__
_settlements = PendingSettlement.__table__
NOW = datetime(2026, 3, 2, 17, 0, 0, 123456, tzinfo=UTC)
OUTBOX_COLUMNS = ("id", "order_id", "kind", "payload", "created_at", "sent_at", "attempts")
SETTLEMENT_COLUMNS = ("id", "account_id", "currency", "amount", "trade_date", "settle_date", "source_entry_id", "settled_entry_id")


@pytest.fixture
def db(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def _placeholder(engine: Engine) -> str:
    return "%s" if engine.dialect.name == "postgresql" else "?"


def test_rows_read_back_like_sqlalchemy_reads_them(db: Engine) -> None:
    with db.begin() as connection:
        connection.exec_driver_sql("INSERT INTO accounts (id, status, currency, max_order_qty, max_order_notional, "
                                   "price_collar_pct, market_collar_pct, max_orders_per_second, kill_switch, created_at, "
                                   "event_seq) VALUES ('A1', 'active', 'USD', '1', '1', '1', '1', 0, false, '2026-01-01', 0)"
                                   if db.dialect.name == "postgresql" else
                                   "INSERT INTO accounts (id, status, currency, max_order_qty, max_order_notional, "
                                   "price_collar_pct, market_collar_pct, max_orders_per_second, kill_switch, created_at, "
                                   "event_seq) VALUES ('A1', 'active', 'USD', '1', '1', '1', '1', 0, 0, '2026-01-01', 0)")  # fmt: skip
        writer = BulkWriter(connection)
        writer.insert(_outbox, [
            {"order_id": "O1", "kind": "new", "payload": {"qty": "10", "nested": [1, None]}, "created_at": NOW, "sent_at": None, "attempts": 0},
            {"order_id": "O2", "kind": "cancel", "payload": None, "created_at": NOW, "sent_at": NOW, "attempts": 3},
        ])  # fmt: skip
        writer.insert(_settlements, [
            {"id": "S1", "account_id": "A1", "currency": "USD", "amount": Decimal("1899.0500"), "trade_date": date(2026, 3, 2),
             "settle_date": date(2026, 3, 4), "source_entry_id": "E1", "settled_entry_id": None},
        ])  # fmt: skip
    mark = _placeholder(db)
    with db.connect() as connection:
        reader = BulkReader(connection)
        outbox = reader.fetch(f"SELECT {', '.join(OUTBOX_COLUMNS)} FROM outbox WHERE kind IN ({mark}, {mark}) ORDER BY id",
                              ["new", "cancel"], _outbox, OUTBOX_COLUMNS)  # fmt: skip
        settlements = reader.fetch(f"SELECT {', '.join(SETTLEMENT_COLUMNS)} FROM pending_settlements WHERE id = {mark}",
                                   ["S1"], _settlements, SETTLEMENT_COLUMNS)  # fmt: skip
        expected_outbox = connection.execute(select(*(_outbox.c[n] for n in OUTBOX_COLUMNS)).order_by(_outbox.c.id)).all()
        expected_settlements = connection.execute(select(*(_settlements.c[n] for n in SETTLEMENT_COLUMNS))).all()
    assert [tuple(row) for row in outbox] == [tuple(row) for row in expected_outbox]
    assert [tuple(row) for row in settlements] == [tuple(row) for row in expected_settlements]
    assert [type(value) for value in settlements[0][3:6]] == [Decimal, date, date]
    assert outbox[0][3] == {"qty": "10", "nested": [1, None]} and outbox[1][3] is None


def test_sqlite_in_lists_are_chunked_and_take_row_values(db: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    if db.dialect.name != "sqlite":
        pytest.skip("IN lists are the SQLite path; PostgreSQL takes arrays")
    monkeypatch.setattr(bulk, "SQLITE_IN_CHUNK", 3)
    rows = [{"order_id": f"O{i}", "kind": "new", "payload": None, "created_at": NOW, "sent_at": None, "attempts": i}
            for i in range(10)]  # fmt: skip
    with db.begin() as connection:
        BulkWriter(connection).insert(_outbox, rows)
    with db.connect() as connection:
        reader = BulkReader(connection)
        by_id = reader.fetch_in("SELECT order_id, attempts FROM outbox WHERE order_id IN ({}) OR kind IN ({})",
                                [f"O{i}" for i in range(8)], _outbox, ("order_id", "attempts"))  # fmt: skip
        by_pair = reader.fetch_in("SELECT order_id, attempts FROM outbox WHERE (order_id, attempts) IN (VALUES {})",
                                  [("O1", 1), ("O2", 5), ("O9", 9), ("O4", 4)], _outbox, ("order_id", "attempts"))  # fmt: skip
    assert sorted(by_id) == [(f"O{i}", i) for i in range(8)]
    assert sorted(by_pair) == [("O1", 1), ("O4", 4), ("O9", 9)]
