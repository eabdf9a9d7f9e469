"""How the engine holds an order: an integer handle and one immutable flat state tuple.

An order is a handle ``h`` (0, 1, 2, ... in OrderID order) into the engine's list of
state tuples (plus, for an untriggered stop, its token in the engine's token dict).
Every change builds a new state tuple; the event that reports the change holds that
tuple itself, and its typed view's ``order`` field wraps it in an
:class:`~exchange.engine.types.OrderSnapshot` only when read
(``new_snapshot(OrderSnapshot, state)``: fields converted only when read).  The state
is one *plain* tuple of plain values: CPython's collector untracks exactly those, and
one tuple per change (not three) is what keeps the collector's and the allocator's
work per order small.

State layout, indices used as literals on the hot path::

    state  = (h, static, cl_ord_id, orig_cl_ord_id, qty, qty_lots, limit_ticks, terms,
              cum_lots, leaves_lots, notional, state_code, entry)
    static = (owner, symbol, side_code, type_code, tif_code, expire_date,
              lot_size, tick_size, is_buy, book_index)   # never changes; shared
    terms  = (limit_price, stop_price, stop_ticks, triggered)

``static`` holds what an order shares with every other order of the same owner,
symbol, side, type, TIF and expiry, so the engine keeps one per combination (see
``SymbolBook.static``) instead of building one per order.  ``terms`` holds the
fields that most orders have at their defaults: for an order that is not a stop and
whose limit price came in ticks it is the shared ``PLAIN_TERMS``.  Every field a
state holds costs on each change (loading it to build the next state) and in each
young garbage collection (visited three times), hence the few fields.

Quantities are integer lots and prices integer ticks (exact, since every order is
validated against the instrument's lot and tick size); ``notional`` is the sum of
lots x ticks over the fills; OrderID is ``O<h + 1>``.  A price given in ticks is kept as ``None`` next to its
ticks and turned into a Decimal when a snapshot is read.  ``entry`` is the queue entry
the order rests under (see ``book.py``), ``NOT_QUEUED`` when it rests nowhere: a
working order that is not an untriggered stop always rests between commands, at the
level of its limit ticks.  Codes are the Enum values (FIX-like strings), so a state
holds no Enum member and the garbage collector can untrack it.  ``closed`` quantity is
``qty_lots - cum - leaves``.
"""

from __future__ import annotations

from exchange.engine.types import OrderState, OrderType, Side, TimeInForce

new_snapshot = tuple.__new__  # new_snapshot(OrderSnapshot, state)
ENTRY = 12  # index of the queue entry in a state
CODE = 11  # index of the state code
PLAIN_TERMS = (None, None, 0, False)  # terms of a non-stop order priced in ticks

# codes (the very objects stored in snapshots, so identity tests are safe)
BUY_CODE = Side.BUY._value_
SELL_CODE = Side.SELL._value_
MARKET_CODE = OrderType.MARKET._value_
LIMIT_CODE = OrderType.LIMIT._value_
STOP_CODE = OrderType.STOP._value_
STOP_LIMIT_CODE = OrderType.STOP_LIMIT._value_
DAY_CODE = TimeInForce.DAY._value_
GTC_CODE = TimeInForce.GTC._value_
IOC_CODE = TimeInForce.IOC._value_
FOK_CODE = TimeInForce.FOK._value_
GTD_CODE = TimeInForce.GTD._value_
NEW_CODE = OrderState.NEW._value_
PARTIAL_CODE = OrderState.PARTIALLY_FILLED._value_
FILLED_CODE = OrderState.FILLED._value_
CANCELED_CODE = OrderState.CANCELED._value_
EXPIRED_CODE = OrderState.EXPIRED._value_
PENDING_CODE = OrderState.PENDING_TRIGGER._value_


def is_working(state_code: str) -> bool:
    """Can the order still trade or be changed?"""
    return state_code is NEW_CODE or state_code is PARTIAL_CODE or state_code is PENDING_CODE


__all__ = ["new_snapshot", "is_working", "PLAIN_TERMS"]
