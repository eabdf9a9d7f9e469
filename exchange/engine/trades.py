"""Trade records kept for end-of-day reporting, busts and corrections.

A trade is an immutable tuple (no Enum members, so the garbage collector untracks
it); busts and corrections replace it in the engine's list.  Layout::

    (qty_lots, price, price_ticks, buy_handle, sell_handle, buy_cl_ord_id,
     sell_cl_ord_id, aggressor_side_code, timestamp, busted, corrected)

What can be derived is not stored: every field costs on each fill (loading it) and in
the young collection that walks the new record once.  The trade number is the record's
position in the engine's list plus one (records are replaced in place, never moved), so
the trade id ``T<n>`` is built when reported; the symbol and the fee rate are the
book's, found through either order's static part.  The fee is derived from qty/price
at report time so the matching hot path does not pay for it and corrections never
leave a stale fee behind.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from exchange.engine.types import OrderSnapshot, Side, TradeReport, lots_to_qty

_CENT = Decimal("0.01")
_SIDE_BY_CODE = {m._value_: m for m in Side}

TradeRecord = tuple  # see the module docstring for the layout

QTY, PRICE, TICKS, BUY, SELL, TIMESTAMP, BUSTED = 0, 1, 2, 3, 4, 8, 9


def compute_fee(qty: Decimal, price: Decimal, rate: Decimal) -> Decimal:
    """Per-side fee: ``rate`` x notional, rounded half-up to cents."""
    return (qty * price * rate).quantize(_CENT, rounding=ROUND_HALF_UP)


def trade_report(
    number: int, t: TradeRecord, buy: OrderSnapshot, sell: OrderSnapshot, fee_rate: Decimal
) -> TradeReport:
    """Immutable view of trade ``T<number>``; trade date is the timestamp's UTC date."""
    buy_static, sell_static = buy[1], sell[1]
    qty = lots_to_qty(t[0], buy_static[6])
    return TradeReport(
        trade_id=f"T{number}",
        trade_date=t[8].date(),
        symbol=buy_static[1],
        qty=qty,
        price=t[1],
        buy_order_id=buy.order_id,
        sell_order_id=sell.order_id,
        buy_owner=buy_static[0],
        sell_owner=sell_static[0],
        buy_cl_ord_id=t[5],
        sell_cl_ord_id=t[6],
        aggressor_side=_SIDE_BY_CODE[t[7]],
        timestamp=t[8],
        fee=compute_fee(qty, t[1], fee_rate),
        busted=t[9],
        corrected=t[10],
    )
