"""Positions with average cost and P&L, derived from the account's fills and the reference prices.

Average-cost method: a buy adds its notional plus its fee to the cost basis; a sell removes the
proportional share of the cost basis and realizes ``proceeds - fee - removed cost``. Unrealized P&L is
``qty x reference price - cost basis``. Quantities come from the ledger (the source of truth);
``average_cost`` is shown to 8 decimal places, P&L exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, select

from oms.api.render import text
from oms.db.models import Execution, Instrument
from oms.ledger.balances import Balances

ZERO = Decimal(0)
COST_PLACES = Decimal("0.00000001")


@dataclass(slots=True)
class _Book:
    qty: Decimal = ZERO
    cost: Decimal = ZERO
    realized: Decimal = ZERO
    seen: bool = field(default=False)

    def buy(self, qty: Decimal, price: Decimal, fee: Decimal) -> None:
        self.qty += qty
        self.cost += qty * price + fee
        self.seen = True

    def sell(self, qty: Decimal, price: Decimal, fee: Decimal) -> None:
        removed = (self.cost * qty / self.qty).quantize(COST_PLACES) if self.qty > 0 else ZERO
        removed = min(removed, self.cost)
        self.realized += qty * price - fee - removed
        self.cost -= removed
        self.qty -= qty
        if self.qty <= 0:
            self.qty, self.cost = ZERO, ZERO
        self.seen = True


def _books(connection: Connection, account_id: str) -> dict[str, _Book]:
    table = Execution.__table__
    rows = connection.execute(
        select(table.c.symbol, table.c.side, table.c.last_qty, table.c.last_px, table.c.fee)
        .where((table.c.account_id == account_id) & (table.c.exec_type == "trade"))
        .order_by(table.c.created_at, table.c.transact_time)
    )
    books: dict[str, _Book] = {}
    for symbol, side, qty, price, fee in rows:
        book = books.setdefault(symbol, _Book())
        (book.buy if side == "buy" else book.sell)(qty, price, fee)
    return books


def positions(connection: Connection, account_id: str, balances: Balances) -> list[dict[str, Any]]:
    books = _books(connection, account_id)
    table = Instrument.__table__
    prices = dict(connection.execute(select(table.c.symbol, table.c.reference_price)).all())
    symbols = sorted(set(balances.positions) | {symbol for symbol, book in books.items() if book.seen})
    result = []
    for symbol in symbols:
        held = balances.position(symbol)
        book = books.get(symbol, _Book())
        qty = held.total
        cost = book.cost if book.qty == qty else (book.cost * qty / book.qty if book.qty else ZERO)
        average = (cost / qty).quantize(COST_PLACES) if qty else None
        price = prices.get(symbol)
        market_value = qty * price if price is not None else None
        result.append(
            {
                "symbol": symbol,
                "qty": text(qty),
                "available_qty": text(held.available),
                "reserved_qty": text(held.reserved),
                "average_cost": text(average),
                "reference_price": text(price),
                "market_value": text(market_value),
                "cost_basis": text(cost),
                "unrealized_pnl": text(market_value - cost) if market_value is not None else None,
                "realized_pnl": text(book.realized),
            }
        )
    return result
