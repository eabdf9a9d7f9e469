"""Trade records kept for end-of-day reporting, busts and corrections.

A trade is an immutable tuple (no Enum members, so the garbage collector untracks
it); busts and corrections replace it in the engine's list.  Layout::

    (trade_number, symbol, qty_lots, price, price_ticks, buy_handle, sell_handle,
     buy_cl_ord_id, sell_cl_ord_id, aggressor_side_code, timestamp, fee_rate,
     busted, corrected)

The trade id is ``T<trade_number>``, built when reported (formatting it per fill costs
more than the rest of the record).  The fee is derived from qty/price at report time
so the matching hot path does not pay for it and corrections never leave a stale fee
behind.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from exchange.engine.types import OrderSnapshot, Side, TradeReport, lots_to_qty

_CENT = Decimal("0.01")
_SIDE_BY_CODE = {m._value_: m for m in Side}

TradeRecord = tuple  # see the module docstring for the layout

QTY, PRICE, TICKS, BUY, SELL, TIMESTAMP, BUSTED = 2, 3, 4, 5, 6, 10, 12


def compute_fee(qty: Decimal, price: Decimal, rate: Decimal) -> Decimal:
    """Per-side fee: ``rate`` x notional, rounded half-up to cents."""
    return (qty * price * rate).quantize(_CENT, rounding=ROUND_HALF_UP)


def trade_report(t: TradeRecord, buy: OrderSnapshot, sell: OrderSnapshot) -> TradeReport:
    """Immutable view; trade date is the UTC calendar date of the timestamp."""
    buy_static, sell_static = buy[1], sell[1]
    qty = lots_to_qty(t[2], buy_static[6])
    return TradeReport(
        trade_id=f"T{t[0]}",
        trade_date=t[10].date(),
        symbol=t[1],
        qty=qty,
        price=t[3],
        buy_order_id=buy.order_id,
        sell_order_id=sell.order_id,
        buy_owner=buy_static[0],
        sell_owner=sell_static[0],
        buy_cl_ord_id=t[7],
        sell_cl_ord_id=t[8],
        aggressor_side=_SIDE_BY_CODE[t[9]],
        timestamp=t[10],
        fee=compute_fee(qty, t[3], t[11]),
        busted=t[12],
        corrected=t[13],
    )
