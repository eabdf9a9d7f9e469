"""Trade records kept for end-of-day reporting, busts and corrections."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from exchange.engine.order import LiveOrder
from exchange.engine.types import Side, TradeReport

_CENT = Decimal("0.01")


def compute_fee(qty: Decimal, price: Decimal, rate: Decimal) -> Decimal:
    """Per-side fee: ``rate`` x notional, rounded half-up to cents."""
    return (qty * price * rate).quantize(_CENT, rounding=ROUND_HALF_UP)


class Trade:
    """Mutable trade record (busts/corrections change it); reported via ``report()``.

    The fee is derived from qty/price at report time so the matching hot path does
    not pay for it and corrections never leave a stale fee behind.
    """

    __slots__ = (
        "trade_id", "symbol", "qty", "price", "buy", "sell", "buy_cl_ord_id",
        "sell_cl_ord_id", "aggressor_side", "timestamp", "busted", "corrected", "fee_rate",
    )

    def __init__(
        self,
        trade_id: str,
        symbol: str,
        qty: Decimal,
        price: Decimal,
        buy: LiveOrder,
        sell: LiveOrder,
        aggressor_side: Side,
        timestamp: datetime,
        fee_rate: Decimal,
    ) -> None:
        self.trade_id = trade_id
        self.symbol = symbol
        self.qty = qty
        self.price = price
        self.buy = buy
        self.sell = sell
        self.buy_cl_ord_id = buy.cl_ord_id
        self.sell_cl_ord_id = sell.cl_ord_id
        self.aggressor_side = aggressor_side
        self.timestamp = timestamp
        self.busted = False
        self.corrected = False
        self.fee_rate = fee_rate

    def report(self) -> TradeReport:
        """Immutable view; trade date is the UTC calendar date of the timestamp."""
        return TradeReport(
            trade_id=self.trade_id,
            trade_date=self.timestamp.date(),
            symbol=self.symbol,
            qty=self.qty,
            price=self.price,
            buy_order_id=self.buy.order_id,
            sell_order_id=self.sell.order_id,
            buy_owner=self.buy.owner,
            sell_owner=self.sell.owner,
            buy_cl_ord_id=self.buy_cl_ord_id,
            sell_cl_ord_id=self.sell_cl_ord_id,
            aggressor_side=self.aggressor_side,
            timestamp=self.timestamp,
            fee=compute_fee(self.qty, self.price, self.fee_rate),
            busted=self.busted,
            corrected=self.corrected,
        )
