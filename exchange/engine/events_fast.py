"""Allocation shortcuts for the events built on the matching hot path.

A frozen dataclass ``__init__`` goes through ``object.__setattr__`` per field, which
costs ~0.5 us for a 3-field event.  Writing the slot descriptors directly yields the
very same (immutable, equal, hashable) object in about half the time.  Only the
events created per order operation get a shortcut; the rest use their constructors.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from exchange.engine.types import OrderAccepted, OrderCanceled, OrderFilled, OrderSnapshot

_new = object.__new__

_a_seq = OrderAccepted.seq.__set__  # type: ignore[attr-defined]
_a_ts = OrderAccepted.timestamp.__set__  # type: ignore[attr-defined]
_a_order = OrderAccepted.order.__set__  # type: ignore[attr-defined]

_f_seq = OrderFilled.seq.__set__  # type: ignore[attr-defined]
_f_ts = OrderFilled.timestamp.__set__  # type: ignore[attr-defined]
_f_order = OrderFilled.order.__set__  # type: ignore[attr-defined]
_f_tid = OrderFilled.trade_id.__set__  # type: ignore[attr-defined]
_f_qty = OrderFilled.last_qty.__set__  # type: ignore[attr-defined]
_f_px = OrderFilled.last_px.__set__  # type: ignore[attr-defined]
_f_aggr = OrderFilled.aggressor.__set__  # type: ignore[attr-defined]

_c_seq = OrderCanceled.seq.__set__  # type: ignore[attr-defined]
_c_ts = OrderCanceled.timestamp.__set__  # type: ignore[attr-defined]
_c_order = OrderCanceled.order.__set__  # type: ignore[attr-defined]
_c_qty = OrderCanceled.canceled_qty.__set__  # type: ignore[attr-defined]
_c_text = OrderCanceled.text.__set__  # type: ignore[attr-defined]


def accepted(seq: int, timestamp: datetime, order: OrderSnapshot) -> OrderAccepted:
    """Same as ``OrderAccepted(seq, timestamp, order)``, faster."""
    e = _new(OrderAccepted)
    _a_seq(e, seq)
    _a_ts(e, timestamp)
    _a_order(e, order)
    return e


def filled(
    seq: int,
    timestamp: datetime,
    order: OrderSnapshot,
    trade_id: str,
    last_qty: Decimal,
    last_px: Decimal,
    aggressor: bool,
) -> OrderFilled:
    """Same as ``OrderFilled(...)``, faster."""
    e = _new(OrderFilled)
    _f_seq(e, seq)
    _f_ts(e, timestamp)
    _f_order(e, order)
    _f_tid(e, trade_id)
    _f_qty(e, last_qty)
    _f_px(e, last_px)
    _f_aggr(e, aggressor)
    return e


def canceled(
    seq: int, timestamp: datetime, order: OrderSnapshot, canceled_qty: Decimal, text: str
) -> OrderCanceled:
    """Same as ``OrderCanceled(...)``, faster."""
    e = _new(OrderCanceled)
    _c_seq(e, seq)
    _c_ts(e, timestamp)
    _c_order(e, order)
    _c_qty(e, canceled_qty)
    _c_text(e, text)
    return e
