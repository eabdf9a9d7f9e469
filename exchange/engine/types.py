"""Public value types of the simulated exchange's matching engine.

Everything here is plain Python (no FIX, no OMS, no database) so the FIX acceptor
(`exchange/fix_app.py`) can translate to and from wire messages without the engine
knowing about QuickFIX.

* Commands are frozen dataclasses fed to :meth:`MatchingEngine.process`.
* Events are immutable records returned, in order, by ``process`` in a *compact* form,
  plain tuples ``(EventClass, seq, timestamp, ...)`` (see "events" below for why);
  :func:`typed_events` gives their typed view: read-only fields by name, equality by
  value, ``_replace``.  Every event has an engine-wide, strictly increasing ``seq``
  (use it to build ExecID) and the ``timestamp`` of the command that caused it.
  Order-related events carry the order's state at the moment the event happened; the
  typed view shows it as an :class:`OrderSnapshot` (stored compactly, converted to
  Decimals and Enums when a field is read).
* Money and quantities are :class:`~decimal.Decimal`, never float.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from operator import itemgetter
from typing import Union


class Side(str, Enum):
    """Order side; values match FIX Side(54)."""

    BUY = "1"
    SELL = "2"


class OrderType(str, Enum):
    """Order type; values match FIX OrdType(40)."""

    MARKET = "1"
    LIMIT = "2"
    STOP = "3"
    STOP_LIMIT = "4"


class TimeInForce(str, Enum):
    """Time in force; values match FIX TimeInForce(59)."""

    DAY = "0"
    GTC = "1"
    IOC = "3"
    FOK = "4"
    GTD = "6"


class OrderState(str, Enum):
    """Order status; values match FIX OrdStatus(39).

    PENDING_TRIGGER is an untriggered stop: it is reported as New ("0") on the wire,
    hence the same value is *not* used -- the FIX layer maps it explicitly.
    """

    NEW = "0"
    PARTIALLY_FILLED = "1"
    FILLED = "2"
    CANCELED = "4"
    REPLACED = "5"
    REJECTED = "8"
    EXPIRED = "C"
    PENDING_TRIGGER = "PT"

    @property
    def is_done(self) -> bool:
        """True when the order can no longer trade (terminal state)."""
        return self in _DONE_STATES


_DONE_STATES = frozenset(
    {OrderState.FILLED, OrderState.CANCELED, OrderState.REJECTED, OrderState.EXPIRED}
)


class RejectReason(str, Enum):
    """Why a new order was rejected. ``fix_code`` gives FIX OrdRejReason(103)."""

    UNKNOWN_SYMBOL = "UNKNOWN_SYMBOL"
    EXCHANGE_CLOSED = "EXCHANGE_CLOSED"
    TOO_LATE = "TOO_LATE"
    UNKNOWN_ORDER = "UNKNOWN_ORDER"
    DUPLICATE_ORDER = "DUPLICATE_ORDER"
    UNSUPPORTED = "UNSUPPORTED"
    INVALID_QTY = "INVALID_QTY"
    INVALID_PRICE = "INVALID_PRICE"
    INVALID_EXPIRE_DATE = "INVALID_EXPIRE_DATE"
    OTHER = "OTHER"

    @property
    def fix_code(self) -> int:
        """FIX OrdRejReason(103) value."""
        return _ORD_REJ_CODES[self]


_ORD_REJ_CODES = {
    RejectReason.UNKNOWN_SYMBOL: 1,
    RejectReason.EXCHANGE_CLOSED: 2,
    RejectReason.TOO_LATE: 4,
    RejectReason.UNKNOWN_ORDER: 5,
    RejectReason.DUPLICATE_ORDER: 6,
    RejectReason.UNSUPPORTED: 11,
    RejectReason.INVALID_QTY: 13,
    RejectReason.INVALID_PRICE: 99,
    RejectReason.INVALID_EXPIRE_DATE: 99,
    RejectReason.OTHER: 99,
}


class CancelRejectReason(str, Enum):
    """Why a cancel or replace was rejected. ``fix_code`` gives FIX CxlRejReason(102)."""

    TOO_LATE_TO_CANCEL = "TOO_LATE_TO_CANCEL"
    UNKNOWN_ORDER = "UNKNOWN_ORDER"
    ALREADY_PENDING = "ALREADY_PENDING"  # never produced by the synchronous engine
    DUPLICATE_CL_ORD_ID = "DUPLICATE_CL_ORD_ID"
    INVALID = "INVALID"  # bad qty/price, side/symbol mismatch, unsupported change

    @property
    def fix_code(self) -> int:
        """FIX CxlRejReason(102) value."""
        return _CXL_REJ_CODES[self]


_CXL_REJ_CODES = {
    CancelRejectReason.TOO_LATE_TO_CANCEL: 0,
    CancelRejectReason.UNKNOWN_ORDER: 1,
    CancelRejectReason.ALREADY_PENDING: 3,
    CancelRejectReason.DUPLICATE_CL_ORD_ID: 6,
    CancelRejectReason.INVALID: 99,
}


# --------------------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class SubmitOrder:
    """A new order. ``owner`` is the broker's CompID; ``cl_ord_id`` unique per owner.

    ``limit_price`` / ``stop_price`` are Decimals, or ``int`` numbers of the
    instrument's ticks when the caller has already converted them (a FIX layer
    converting once per message; the engine works in ticks and then skips the
    Decimal conversion).  Snapshots report such prices as Decimals (ticks x tick size).
    """

    owner: str
    cl_ord_id: str
    symbol: str
    side: Side
    order_type: OrderType
    qty: Decimal
    limit_price: Decimal | None
    stop_price: Decimal | None
    tif: TimeInForce
    expire_date: date | None
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class CancelOrder:
    """Cancel the order currently known as ``orig_cl_ord_id``."""

    owner: str
    cl_ord_id: str
    orig_cl_ord_id: str
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class ReplaceOrder:
    """Cancel/replace. ``side``/``symbol`` (optional) must match the order if given.

    Prices may be ``int`` ticks, as for :class:`SubmitOrder`.
    """

    owner: str
    cl_ord_id: str
    orig_cl_ord_id: str
    qty: Decimal
    limit_price: Decimal | None
    stop_price: Decimal | None
    timestamp: datetime
    side: Side | None = None
    symbol: str | None = None


@dataclass(frozen=True, slots=True)
class EndOfDay:
    """Expire DAY orders and GTD orders with ``expire_date <= trade_date``."""

    trade_date: date
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class BustTrade:
    """Cancel a trade (FIX ExecType=H for both orders)."""

    trade_id: str
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class CorrectTrade:
    """Correct a trade's qty (only downwards) and/or price (FIX ExecType=G)."""

    trade_id: str
    qty: Decimal
    price: Decimal
    timestamp: datetime


Command = Union[SubmitOrder, CancelOrder, ReplaceOrder, EndOfDay, BustTrade, CorrectTrade]  # noqa: UP007  # a runtime alias: kept a typing.Union


# ------------------------------------------------------------------------- snapshots


_SIDE_BY_CODE = {m._value_: m for m in Side}
_TYPE_BY_CODE = {m._value_: m for m in OrderType}
_TIF_BY_CODE = {m._value_: m for m in TimeInForce}
_STATE_BY_CODE = {m._value_: m for m in OrderState}
_ZERO = Decimal(0)


def lots_to_qty(lots: int, lot: Decimal) -> Decimal:
    """Integer lots back to a Decimal quantity (exact: lots x lot size)."""
    return Decimal(lots) * lot if lots else _ZERO


class OrderSnapshot(tuple):  # type: ignore[type-arg]
    """Immutable picture of an order at the time of an event.

    The engine builds one state tuple per order change, so a snapshot is that state in
    the engine's compact form (see ``order.py``: one flat tuple of integer lots/ticks,
    codes instead of Enum members, so the garbage collector untracks it) and the public
    fields below are computed only when read.  Built through the public constructor
    (all 18 fields, like the NamedTuple it replaces) it holds the given values as they
    are.  ``qty == cum_qty + leaves_qty + closed_qty`` always holds (``closed_qty`` =
    canceled / expired / busted quantity).
    """

    __slots__ = ()

    _fields = (
        "order_id", "owner", "cl_ord_id", "orig_cl_ord_id", "symbol", "side", "order_type",
        "tif", "qty", "limit_price", "stop_price", "cum_qty", "leaves_qty", "avg_px", "state",
        "closed_qty", "expire_date", "triggered",
    )

    def __new__(
        cls,
        order_id: str,
        owner: str,
        cl_ord_id: str,
        orig_cl_ord_id: str | None,
        symbol: str,
        side: Side,
        order_type: OrderType,
        tif: TimeInForce,
        qty: Decimal,
        limit_price: Decimal | None,
        stop_price: Decimal | None,
        cum_qty: Decimal,
        leaves_qty: Decimal,
        avg_px: Decimal,
        state: OrderState,
        closed_qty: Decimal,
        expire_date: date | None,
        triggered: bool,
    ) -> OrderSnapshot:
        # "given values" form: lot size None marks it; values are kept as passed
        static = (owner, symbol, side, order_type, tif, expire_date, None, None, None, None)
        terms = (limit_price, stop_price, None, triggered)
        return tuple.__new__(cls, (
            order_id, static, cl_ord_id, orig_cl_ord_id, qty, None, None, terms, cum_qty,
            leaves_qty, (avg_px, closed_qty), state, None,
        ))

    # -- fields (engine form: codes and integer lots are converted on the way out)
    @property
    def order_id(self) -> str:
        return self[0] if self[1][6] is None else f"O{self[0] + 1}"  # type: ignore[no-any-return]

    @property
    def owner(self) -> str:
        return self[1][0]  # type: ignore[no-any-return]

    @property
    def symbol(self) -> str:
        return self[1][1]  # type: ignore[no-any-return]

    @property
    def side(self) -> Side:
        static = self[1]
        return static[2] if static[6] is None else _SIDE_BY_CODE[static[2]]  # type: ignore[no-any-return]

    @property
    def order_type(self) -> OrderType:
        static = self[1]
        return static[3] if static[6] is None else _TYPE_BY_CODE[static[3]]  # type: ignore[no-any-return]

    @property
    def tif(self) -> TimeInForce:
        static = self[1]
        return static[4] if static[6] is None else _TIF_BY_CODE[static[4]]  # type: ignore[no-any-return]

    @property
    def expire_date(self) -> date | None:
        return self[1][5]  # type: ignore[no-any-return]

    @property
    def cl_ord_id(self) -> str:
        return self[2]  # type: ignore[no-any-return]

    @property
    def orig_cl_ord_id(self) -> str | None:
        return self[3]  # type: ignore[no-any-return]

    @property
    def qty(self) -> Decimal:
        return self[4]  # type: ignore[no-any-return]

    @property
    def limit_price(self) -> Decimal | None:
        price = self[7][0]
        if price is None and self[6]:  # engine form, price given in ticks
            return Decimal(self[6]) * self[1][7]  # type: ignore[no-any-return]
        return price  # type: ignore[no-any-return]

    @property
    def stop_price(self) -> Decimal | None:
        terms = self[7]
        if terms[1] is None and terms[2]:  # engine form, price given in ticks
            return Decimal(terms[2]) * self[1][7]  # type: ignore[no-any-return]
        return terms[1]  # type: ignore[no-any-return]

    @property
    def triggered(self) -> bool:
        return self[7][3]  # type: ignore[no-any-return]

    @property
    def cum_qty(self) -> Decimal:
        lot = self[1][6]
        return self[8] if lot is None else lots_to_qty(self[8], lot)  # type: ignore[no-any-return]

    @property
    def leaves_qty(self) -> Decimal:
        lot = self[1][6]
        return self[9] if lot is None else lots_to_qty(self[9], lot)  # type: ignore[no-any-return]

    @property
    def closed_qty(self) -> Decimal:
        lot = self[1][6]
        if lot is None:
            return self[10][1]  # type: ignore[no-any-return]
        return lots_to_qty(self[5] - self[8] - self[9], lot)

    @property
    def avg_px(self) -> Decimal:
        static = self[1]
        if static[6] is None:
            return self[10][0]  # type: ignore[no-any-return]
        cum = self[8]
        # notional is in lots x ticks: value = notional*lot*tick, so avg = notional*tick/cum
        return Decimal(self[10]) * static[7] / Decimal(cum) if cum else _ZERO

    @property
    def state(self) -> OrderState:
        return self[11] if self[1][6] is None else _STATE_BY_CODE[self[11]]  # type: ignore[no-any-return]

    # -- NamedTuple-like helpers
    def as_tuple(self) -> tuple[object, ...]:
        """The 18 public fields in declaration order."""
        return tuple(getattr(self, name) for name in self._fields)

    def _asdict(self) -> dict[str, object]:
        return dict(zip(self._fields, self.as_tuple()))  # noqa: B905  # one value per field; no strict= check added in the engine's types

    def _replace(self, **changes: object) -> OrderSnapshot:
        fields = self._asdict()
        unknown = set(changes) - set(fields)
        if unknown:
            raise ValueError(f"unknown OrderSnapshot fields: {sorted(unknown)}")
        fields.update(changes)
        return OrderSnapshot(**fields)  # type: ignore[arg-type]

    def __getnewargs__(self) -> tuple[object, ...]:  # copy / pickle rebuild the given form
        return self.as_tuple()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OrderSnapshot):
            return NotImplemented
        return self.as_tuple() == other.as_tuple()

    def __ne__(self, other: object) -> bool:
        if not isinstance(other, OrderSnapshot):
            return NotImplemented
        return self.as_tuple() != other.as_tuple()

    def __hash__(self) -> int:
        return hash(self.as_tuple())

    def __repr__(self) -> str:
        body = ", ".join(f"{n}={v!r}" for n, v in zip(self._fields, self.as_tuple()))  # noqa: B905  # one value per field; no strict= check added in the engine's types
        return f"OrderSnapshot({body})"


@dataclass(frozen=True, slots=True)
class TradeReport:
    """One trade as kept by the engine for end-of-day reporting.

    ``fee`` is charged to *each* side (same rule both sides); ``busted`` trades are
    kept (with their last qty/price) so reports can show them.
    """

    trade_id: str
    trade_date: date
    symbol: str
    qty: Decimal
    price: Decimal
    buy_order_id: str
    sell_order_id: str
    buy_owner: str
    sell_owner: str
    buy_cl_ord_id: str
    sell_cl_ord_id: str
    aggressor_side: Side
    timestamp: datetime
    fee: Decimal
    busted: bool
    corrected: bool


# ---------------------------------------------------------------------------- events
#
# Events are made by the million, so ``MatchingEngine.process`` returns them *compact*:
# a plain tuple ``(EventClass, seq, timestamp, order_state, *other fields)`` -- one
# tuple from the interpreter's free list, where an instance of a tuple subclass costs
# ~1,600 more CPU instructions to make and free.  ``order_state`` is the engine's own
# immutable state tuple of the order (shared, not copied).  The event classes below are
# the *typed view* of the same data, for consumers that want fields by name:
# :func:`typed_event` / :func:`typed_events` turn a compact event into its class (one
# slice, no conversion: the class stores the fields after the first, in declaration
# order).  In the typed view each field is a property (an ``itemgetter``); ``order`` is
# wrapped in an :class:`OrderSnapshot` only when read, and an OrderFilled's ``trade_id``
# is stored as the trade number (``T<n>`` is built when read).  Equality, hashing,
# ``repr``, pickling and ``_replace`` work on the public field values, as they did for
# the frozen dataclasses these replace.

_tuple_new = tuple.__new__


def _order_field(self: tuple) -> OrderSnapshot | None:  # type: ignore[type-arg]
    o = self[2]
    return _tuple_new(OrderSnapshot, o) if type(o) is tuple else o  # type: ignore[no-any-return]


class _Event(tuple):  # type: ignore[type-arg]
    """Base of the engine's events: the field values, in declaration order."""

    __slots__ = ()
    _fields: tuple[str, ...] = ()

    def __new__(cls, *args: object, **kwargs: object) -> _Event:
        fields = cls._fields
        if len(args) > len(fields):
            raise TypeError(f"{cls.__name__}() takes {len(fields)} arguments, {len(args)} given")
        values = list(args)
        for name in fields[len(args):]:
            if name not in kwargs:
                raise TypeError(f"{cls.__name__}() missing argument {name!r}")
            values.append(kwargs.pop(name))
        if kwargs:
            raise TypeError(f"{cls.__name__}() got unexpected arguments {sorted(kwargs)}")
        return _tuple_new(cls, values)

    def _values(self) -> tuple[object, ...]:
        """The public field values (``order`` as an OrderSnapshot)."""
        return tuple(getattr(self, name) for name in self._fields)

    def _asdict(self) -> dict[str, object]:
        return dict(zip(self._fields, self._values()))  # noqa: B905  # one value per field; no strict= check added in the engine's types

    def _replace(self, **changes: object) -> _Event:
        """A copy with some fields changed (like ``dataclasses.replace``)."""
        values = self._asdict()
        unknown = set(changes) - set(values)
        if unknown:
            raise TypeError(f"unknown {type(self).__name__} fields: {sorted(unknown)}")
        values.update(changes)
        return type(self)(**values)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _Event):
            # a plain tuple must not compare equal through tuple's own (reflected) __eq__
            return False if isinstance(other, tuple) else NotImplemented
        return type(self) is type(other) and self._values() == other._values()

    def __ne__(self, other: object) -> bool:
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._values()))

    def __repr__(self) -> str:
        body = ", ".join(f"{n}={v!r}" for n, v in zip(self._fields, self._values()))  # noqa: B905  # one value per field; no strict= check added in the engine's types
        return f"{type(self).__name__}({body})"

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), self._values())


def _trade_id_field(self: tuple) -> str:  # type: ignore[type-arg]
    n = self[3]
    return f"T{n}" if type(n) is int else n  # type: ignore[no-any-return]


def _lots_field(i: int) -> property:
    """A quantity field the engine stores in lots of the order's instrument (converted when read)."""

    def get(self: tuple) -> Decimal:  # type: ignore[type-arg]
        value = self[i]
        if type(value) is int:
            lot = self[2][1][6]  # the order's lot size (engine-form state)
            if lot is not None:
                return lots_to_qty(value, lot)
        return value  # type: ignore[no-any-return]

    return property(get, doc="Quantity (the engine stores lots; Decimal when read).")


_LOTS_FIELDS = {"canceled_qty", "last_qty"}  # stored in lots by the engine


def _event(cls: type) -> type:
    """Give an event class its field list (from the annotations) and field properties."""
    fields = tuple(cls.__annotations__)
    cls._fields = fields  # type: ignore[attr-defined]
    cls.__match_args__ = fields  # type: ignore[attr-defined, misc]
    for i, name in enumerate(fields):
        if name == "order":
            assert i == 2, "the engine stores order at index 2"
            setattr(cls, name, property(_order_field, doc="Order state at the event (OrderSnapshot)."))
        elif name in _LOTS_FIELDS:
            setattr(cls, name, _lots_field(i))
        elif name == "trade_id" and i == 3:
            # the engine stores the trade number; the id text is built when read
            setattr(cls, name, property(_trade_id_field, doc="Trade id, T<n>."))
        else:
            setattr(cls, name, property(itemgetter(i)))
    return cls


@_event
class OrderAccepted(_Event):
    """Order accepted (FIX ExecType=New). For stops, state is PENDING_TRIGGER."""

    __slots__ = ()

    seq: int
    timestamp: datetime
    order: OrderSnapshot


@_event
class OrderRejected(_Event):
    """New order rejected; nothing entered the book. ``order.order_id`` is "NONE"."""

    __slots__ = ()

    seq: int
    timestamp: datetime
    order: OrderSnapshot
    reason: RejectReason
    text: str


@_event
class OrderFilled(_Event):
    """One side of one trade (FIX ExecType=Trade). ``aggressor`` = liquidity taker."""

    __slots__ = ()

    seq: int
    timestamp: datetime
    order: OrderSnapshot
    trade_id: str
    last_qty: Decimal
    last_px: Decimal
    aggressor: bool


@_event
class OrderCanceled(_Event):
    """Order canceled: on request (cl_ord_id = cancel's id) or unsolicited (IOC/FOK/market rest)."""

    __slots__ = ()

    seq: int
    timestamp: datetime
    order: OrderSnapshot
    canceled_qty: Decimal
    text: str


@_event
class CancelRejected(_Event):
    """Cancel request refused. ``order`` is None when the order is unknown."""

    __slots__ = ()

    seq: int
    timestamp: datetime
    order: OrderSnapshot | None
    owner: str
    cl_ord_id: str
    orig_cl_ord_id: str
    reason: CancelRejectReason
    text: str


@_event
class OrderReplaced(_Event):
    """Replace accepted (FIX ExecType=Replaced): new cl_ord_id, same order_id."""

    __slots__ = ()

    seq: int
    timestamp: datetime
    order: OrderSnapshot
    lost_priority: bool


@_event
class ReplaceRejected(_Event):
    """Cancel/replace request refused; the original order is unchanged."""

    __slots__ = ()

    seq: int
    timestamp: datetime
    order: OrderSnapshot | None
    owner: str
    cl_ord_id: str
    orig_cl_ord_id: str
    reason: CancelRejectReason
    text: str


@_event
class OrderExpired(_Event):
    """DAY/GTD order expired at end of day (FIX ExecType=Expired)."""

    __slots__ = ()

    seq: int
    timestamp: datetime
    order: OrderSnapshot
    expired_qty: Decimal


@_event
class OrderTriggered(_Event):
    """Stop order triggered by last trade price (FIX ExecType=L); now MARKET/LIMIT."""

    __slots__ = ()

    seq: int
    timestamp: datetime
    order: OrderSnapshot
    trigger_price: Decimal


@_event
class TradeBusted(_Event):
    """A trade was canceled; one event per side. Busted qty is not put back on the book."""

    __slots__ = ()

    seq: int
    timestamp: datetime
    order: OrderSnapshot
    trade_id: str
    qty: Decimal
    price: Decimal


@_event
class TradeCorrected(_Event):
    """A trade's qty/price was corrected; one event per side."""

    __slots__ = ()

    seq: int
    timestamp: datetime
    order: OrderSnapshot
    trade_id: str
    old_qty: Decimal
    old_price: Decimal
    qty: Decimal
    price: Decimal


@_event
class TradeActionRejected(_Event):
    """A BustTrade/CorrectTrade could not be applied (unknown/busted trade, bad values)."""

    __slots__ = ()

    seq: int
    timestamp: datetime
    trade_id: str
    text: str


Event = Union[  # noqa: UP007  # a runtime alias: kept a typing.Union
    OrderAccepted,
    OrderRejected,
    OrderFilled,
    OrderCanceled,
    CancelRejected,
    OrderReplaced,
    ReplaceRejected,
    OrderExpired,
    OrderTriggered,
    TradeBusted,
    TradeCorrected,
    TradeActionRejected,
]

RawEvent = tuple  # a compact event: (EventClass, seq, timestamp, ...); see above


def typed_event(event: RawEvent | Event) -> Event:
    """The typed view of a compact event (a typed event is returned as it is)."""
    if type(event) is tuple:
        return _tuple_new(event[0], event[1:])  # type: ignore[no-any-return]
    return event  # type: ignore[return-value]


def typed_events(events: Iterable[RawEvent | Event]) -> list[Event]:
    """The typed view of what ``process`` returned (already typed events pass through)."""
    return [_tuple_new(e[0], e[1:]) if type(e) is tuple else e for e in events]  # type: ignore[misc]


__all__ = [
    "Side", "OrderType", "TimeInForce", "OrderState", "RejectReason", "CancelRejectReason",
    "SubmitOrder", "CancelOrder", "ReplaceOrder", "EndOfDay", "BustTrade", "CorrectTrade",
    "Command", "OrderSnapshot", "TradeReport", "OrderAccepted", "OrderRejected",
    "OrderFilled", "OrderCanceled", "CancelRejected", "OrderReplaced", "ReplaceRejected",
    "OrderExpired", "OrderTriggered", "TradeBusted", "TradeCorrected",
    "TradeActionRejected", "Event", "RawEvent", "typed_event", "typed_events",
]
