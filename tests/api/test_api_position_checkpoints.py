"""Positions are folded from a checkpoint, not from the account's first trade, and always agree with a full fold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from oms.api import positions as positions_module
from oms.db.models import PositionCheckpoint
from oms.domain.enums import ExecType, OrderStatus
from oms.service.executor import CommandExecutor
from tests.api.conftest import Api
from tests.service.factories import NO_FEES, report

_checkpoints = PositionCheckpoint.__table__


@pytest.fixture
def eager_checkpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every trade counts as settled, and two of them beyond the checkpoint are enough to move it."""
    monkeypatch.setattr(positions_module, "CHECKPOINT_LAG", timedelta(0))
    monkeypatch.setattr(positions_module, "CHECKPOINT_EVERY", 2)


def _trade(api: Api, side: str, qty: str, price: str, symbol: str = "AAPL") -> None:
    response = api.place(side=side, qty=qty, limit_price=price, symbol=symbol)
    assert response.status_code == 201, response.text
    api.fill(response.json()["id"], qty, price, status=OrderStatus.FILLED)


def _positions(api: Api) -> list[dict[str, Any]]:
    response = api.get("/v1/accounts/ALICE/positions")
    assert response.status_code == 200, response.text
    return list(response.json())


def _checkpoint_rows(api: Api) -> list[Any]:
    with api.database.engine.connect() as connection:
        return connection.execute(select(_checkpoints).where(_checkpoints.c.account_id == "ALICE")).all()


def _forget_checkpoints(api: Api) -> None:
    with api.database.engine.begin() as connection:
        connection.execute(delete(_checkpoints))


def test_positions_read_through_a_moving_checkpoint_equal_a_fold_of_every_trade(api: Api, eager_checkpoints: None) -> None:
    trades = [("buy", "10", "180.00"), ("buy", "5", "186.00"), ("sell", "4", "195.00"), ("buy", "7", "181.37"),
              ("sell", "3", "179.10"), ("sell", "15", "192.00"), ("buy", "2", "188.88"), ("sell", "1", "190.01")]  # fmt: skip
    cursors = []
    for side, qty, price in trades:
        _trade(api, side, qty, price)
        through_checkpoint = _positions(api)
        cursors.append({row.through_id for row in _checkpoint_rows(api)})
        with api.database.engine.connect() as connection:
            saved = connection.execute(select(_checkpoints)).all()
        _forget_checkpoints(api)
        assert through_checkpoint == _positions(api)  # the same answer folded from the first trade
        with api.database.engine.begin() as connection:  # put the checkpoint back for the next step
            connection.execute(delete(_checkpoints))
            if saved:
                connection.execute(_checkpoints.insert(), [row._asdict() for row in saved])
    assert len({cursor for step in cursors for cursor in step}) >= 3, "the checkpoint moved forward as trades came"
    (position,) = _positions(api)
    assert Decimal(position["qty"]) == Decimal(1)


def test_the_read_starts_at_the_checkpoint_rather_than_the_first_trade(api: Api, eager_checkpoints: None) -> None:
    _trade(api, "buy", "10", "180.00")
    _trade(api, "sell", "4", "195.00")
    _positions(api)
    assert _checkpoint_rows(api), "two settled trades beyond no checkpoint write one"
    with api.database.engine.begin() as connection:
        connection.execute(update(_checkpoints).values(realized=_checkpoints.c.realized + Decimal(1000)))
    (position,) = _positions(api)
    assert Decimal(position["realized_pnl"]) == Decimal(60) + Decimal(1000)  # 4 x (195 - 180), as checkpointed


def test_a_checkpoint_that_disagrees_with_the_ledger_is_ignored(api: Api, eager_checkpoints: None) -> None:
    _trade(api, "buy", "10", "180.00")
    _trade(api, "sell", "4", "195.00")
    truth = _positions(api)
    with api.database.engine.begin() as connection:
        connection.execute(update(_checkpoints).values(qty=Decimal(999), realized=Decimal(-5)))
    assert _positions(api) == truth
    (row,) = _checkpoint_rows(api)  # and the full fold, which agrees with the ledger, replaced it
    assert (row.qty, row.realized) == (Decimal(6), Decimal(60))


def test_trades_younger_than_the_lag_stay_out_of_checkpoints(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(positions_module, "CHECKPOINT_EVERY", 1)  # the lag keeps its default of minutes
    _trade(api, "buy", "10", "180.00")
    _trade(api, "sell", "4", "195.00")
    (position,) = _positions(api)
    assert Decimal(position["realized_pnl"]) == Decimal(60)
    assert _checkpoint_rows(api) == []


def test_trades_booked_in_one_batch_are_folded_in_the_venues_order(api: Api, eager_checkpoints: None) -> None:
    """One executor batch stamps its executions with one created_at; their ids are random within it."""
    executor = CommandExecutor(api.database, NO_FEES)
    expected = positions_module._Book()
    for round_ in range(8):
        _trade(api, "buy", "10", "180.00")
        expected.buy(Decimal(10), Decimal("180.00"), Decimal(0))
        venue_ids = []
        for side, price in (("buy", "200.00"), ("sell", "210.00")):
            placed = api.place(side=side, qty="10", limit_price=price)
            assert placed.status_code == 201, placed.text
            venue_ids.append(api.venue_cl_ord_id(placed.json()["id"]))
        start = datetime.now(UTC)
        fills = [report(venue_id, ExecType.TRADE, OrderStatus.FILLED, last_qty="10", last_px=price,
                        transact_time=start + timedelta(milliseconds=3 * index))
                 for index, (venue_id, price) in enumerate(zip(venue_ids, ("200.00", "210.00"), strict=True))]  # fmt: skip
        assert all(result.ok for result in executor.execute(fills))  # one batch: one created_at
        expected.buy(Decimal(10), Decimal("200.00"), Decimal(0))
        expected.sell(Decimal(10), Decimal("210.00"), Decimal(0))
        (position,) = _positions(api)
        assert (Decimal(position["cost_basis"]), Decimal(position["realized_pnl"])) == (expected.cost, expected.realized), round_


def test_each_symbol_keeps_its_own_books_in_one_checkpoint(api: Api, eager_checkpoints: None) -> None:
    _trade(api, "buy", "10", "180.00")
    _trade(api, "buy", "3", "410.00", symbol="MSFT")
    _trade(api, "sell", "1", "420.00", symbol="MSFT")
    truth = _positions(api)
    rows = _checkpoint_rows(api)
    assert {row.symbol for row in rows} == {"AAPL", "MSFT"}
    assert len({(row.through_created_at, row.through_id) for row in rows}) == 1
    _trade(api, "sell", "10", "181.00")
    _trade(api, "buy", "1", "400.00", symbol="MSFT")
    after = _positions(api)
    _forget_checkpoints(api)
    assert _positions(api) == after != truth
