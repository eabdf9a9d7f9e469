"""The hot path's multi-row writer stores exactly what SQLAlchemy would, so every reader sees the same rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import Engine, select

from oms.db.bulk import BulkWriter
from oms.db.engine import make_engine
from oms.db.models import LedgerAccount, OutboxMessage

_ledger = LedgerAccount.__table__
_outbox = OutboxMessage.__table__
NOW = datetime(2026, 3, 2, 17, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
def db(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def ledger_row(key: str, balance: Decimal, keeps: bool = True) -> dict[str, object]:
    return {"key": key, "owner": key.split("/")[0], "name": "cash:available", "asset": "USD", "keeps_balance": keeps, "balance": balance}


def outbox_row(order_id: str, payload: dict[str, object] | None, created_at: datetime) -> dict[str, object]:
    return {"order_id": order_id, "kind": "new", "payload": payload, "created_at": created_at, "sent_at": None, "attempts": 0}


def test_bulk_rows_read_back_exactly_like_rows_written_by_sqlalchemy(db: Engine) -> None:
    balances = [Decimal("0"), Decimal("12345678901234.000000001"), Decimal("-0.50"), Decimal("1E+3")]
    payload = {"text": 'quote " and \\ and {braces}, spaces', "qty": "10", "nested": [1, None]}
    with db.begin() as connection:
        connection.execute(_ledger.insert(), [ledger_row(f"SA{i}/cash:available/USD", b) for i, b in enumerate(balances)])
        BulkWriter(connection).insert(_ledger, [ledger_row(f"BW{i}/cash:available/USD", b) for i, b in enumerate(balances)])
        connection.execute(_outbox.insert(), [outbox_row("SA", payload, NOW)])
        BulkWriter(connection).insert(_outbox, [outbox_row("BW", payload, NOW)])
    with db.connect() as connection:
        ledger = connection.execute(select(_ledger.c.key, _ledger.c.balance, _ledger.c.keeps_balance).order_by(_ledger.c.key)).all()
        outbox = connection.execute(select(_outbox.c.order_id, _outbox.c.payload, _outbox.c.created_at).order_by(_outbox.c.order_id)).all()
    by_writer = {prefix: [(row[1], row[2]) for row in ledger if row[0].startswith(prefix)] for prefix in ("SA", "BW")}
    assert by_writer["BW"] == by_writer["SA"] == [(b, True) for b in balances]
    assert [tuple(row[1:]) for row in outbox if row[0] == "BW"] == [tuple(row[1:]) for row in outbox if row[0] == "SA"]


def test_bulk_updates_change_only_the_keyed_rows_and_conflicts_can_be_ignored(db: Engine) -> None:
    with db.begin() as connection:
        writer = BulkWriter(connection)
        writer.insert(_ledger, [ledger_row(f"U{i}/cash:available/USD", Decimal(i)) for i in range(5)])
        writer.insert(_ledger, [ledger_row("U0/cash:available/USD", Decimal(99))], on_conflict_do_nothing=True)
        writer.update(_ledger, "key", [{"key": "U1/cash:available/USD", "balance": Decimal("10.25")},
                                       {"key": "U3/cash:available/USD", "balance": Decimal("-3")}])  # fmt: skip
    with db.connect() as connection:
        rows = connection.execute(select(_ledger.c.balance).order_by(_ledger.c.key)).scalars().all()
    assert rows == [Decimal(0), Decimal("10.25"), Decimal(2), Decimal(-3), Decimal(4)]


def test_sqlite_datetimes_keep_their_wall_clock_like_sqlalchemy_for_any_offset(db: Engine) -> None:
    later = NOW.astimezone(timezone(timedelta(hours=-5)))
    with db.begin() as connection:
        BulkWriter(connection).insert(_outbox, [outbox_row("A", None, NOW), outbox_row("B", {}, later)])
        connection.execute(_outbox.insert(), [outbox_row("C", None, later)])
    with db.connect() as connection:
        rows = dict(connection.execute(select(_outbox.c.order_id, _outbox.c.created_at)).all())
        payloads = dict(connection.execute(select(_outbox.c.order_id, _outbox.c.payload)).all())
    assert rows["B"] == rows["C"]
    assert rows["A"].replace(tzinfo=None) == NOW.replace(tzinfo=None) or rows["A"] == NOW
    assert payloads["A"] is None and payloads["B"] == {}


def test_non_finite_amounts_are_refused_before_anything_is_written(db: Engine) -> None:
    with db.begin() as connection, pytest.raises(ValueError, match="non-finite"):
        BulkWriter(connection).insert(_ledger, [ledger_row("N/cash:available/USD", Decimal("NaN"))])


def test_positional_rows_are_stored_like_dict_rows(db: Engine) -> None:
    """The ledger hands its rows over as tuples in a named column order: same values as dict rows."""
    names = ("key", "owner", "name", "asset", "keeps_balance", "balance")
    with db.begin() as connection:
        writer = BulkWriter(connection)
        writer.insert(_ledger, [ledger_row("D1/cash:available/USD", Decimal("1.50"))])
        writer.insert(_ledger, [tuple(ledger_row("T1/cash:available/USD", Decimal("1.50"))[n] for n in names)], names=names)
    with db.connect() as connection:
        rows = connection.execute(select(_ledger.c.owner, _ledger.c.balance, _ledger.c.keeps_balance).order_by(_ledger.c.key)).all()
    assert [tuple(row[1:]) for row in rows] == [(Decimal("1.50"), True)] * 2


@pytest.mark.parametrize(
    "value", ["0", "-0", "0.00", "190.00", "1E+3", "1.5E+2", "0.0000001", "-12345678901234.000000001", "1E-12", "5"]
)
def test_sqlite_decimal_text_is_the_fixed_point_text_sqlalchemy_stores(value: str) -> None:
    from oms.db.bulk import _exact_text

    assert _exact_text(Decimal(value)) == format(Decimal(value), "f")


def test_sqlite_decimal_text_refuses_what_exact_decimal_refuses() -> None:
    from oms.db.bulk import _exact_text

    for bad in (Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity"), Decimal("sNaN")):
        with pytest.raises(ValueError, match="non-finite"):
            _exact_text(bad)
    with pytest.raises(TypeError, match="takes Decimal"):
        _exact_text(5)  # type: ignore[arg-type]
