"""Mutable engine-internal order record; the outside world only sees snapshots."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

from exchange.engine.types import OrderSnapshot, OrderState, OrderType, Side, TimeInForce

if TYPE_CHECKING:
    from exchange.engine.book import Level, SymbolBook

ZERO = Decimal(0)
_tuple_new = tuple.__new__


class LiveOrder:
    """An order as the engine tracks it.

    Slots keep it small and attribute access fast; ``level`` is the price level the
    order rests on (None when not in the book), which also marks lazily-deleted queue
    entries as stale.
    """

    __slots__ = (
        "order_id", "owner", "cl_ord_id", "orig_cl_ord_id", "symbol", "side", "is_buy",
        "order_type", "tif", "qty", "limit_price", "stop_price", "expire_date",
        "cum_qty", "leaves_qty", "closed_qty", "notional", "avg_px", "state",
        "triggered", "level", "limit_ticks", "stop_ticks", "stop_token", "book",
    )

    order_id: str
    owner: str
    cl_ord_id: str
    orig_cl_ord_id: str | None
    symbol: str
    side: Side
    is_buy: bool
    order_type: OrderType
    tif: TimeInForce
    qty: Decimal
    limit_price: Decimal | None
    stop_price: Decimal | None
    expire_date: date | None
    cum_qty: Decimal
    leaves_qty: Decimal
    closed_qty: Decimal
    notional: Decimal
    avg_px: Decimal
    state: OrderState
    triggered: bool
    level: "Level | None"
    limit_ticks: int
    stop_ticks: int
    stop_token: int
    book: "SymbolBook"

    def snapshot(self) -> OrderSnapshot:
        """Immutable copy for events and queries (field order = OrderSnapshot)."""
        return _tuple_new(
            OrderSnapshot,
            (
                self.order_id, self.owner, self.cl_ord_id, self.orig_cl_ord_id, self.symbol,
                self.side, self.order_type, self.tif, self.qty, self.limit_price,
                self.stop_price, self.cum_qty, self.leaves_qty, self.avg_px, self.state,
                self.closed_qty, self.expire_date, self.triggered,
            ),
        )
