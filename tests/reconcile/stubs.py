"""Stub factories for the pure reconciliation tests: a venue row and the execution of ours that mirrors it."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from reconcile.model import OurExecution, VenueTrade

T0 = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)


def venue_row(exec_id: str, *, order: str = "O1", cl: str = "C1", symbol: str = "AAPL", side: str = "buy",
              qty: str = "10", price: str = "100.00", fee: str = "0.50", seconds: int = 0) -> VenueTrade:
    return VenueTrade(exec_id, order, cl, "OMS", symbol, side, Decimal(qty), Decimal(price), Decimal(fee),
                      T0 + timedelta(seconds=seconds))


def ours_of(row: VenueTrade, *, account: str = "ACC1", **changes: object) -> OurExecution:
    """Our booking of ``row``; ``changes`` override fields (exec_id, qty, price, side, symbol...)."""
    execution = OurExecution(row.exec_id, f"ord-{row.cl_ord_id}", account, row.cl_ord_id, row.order_id, row.symbol,
                             row.side, row.qty, row.price, Decimal("0.50"), row.transact_time)
    return dataclasses.replace(execution, **changes)  # type: ignore[arg-type]


def day(n: int = 6) -> list[VenueTrade]:
    """A small day: n fills on three orders of two symbols, both sides."""
    rows = []
    for i in range(n):
        order = i % 3
        rows.append(venue_row(f"E{i}", order=f"O{order}", cl=f"C{order}", symbol=("AAPL", "MSFT", "AAPL")[order],
                              side=("buy", "buy", "sell")[order], qty=str(10 + i), price=f"{100 + i}.25",
                              seconds=i))
    return rows
