"""Imperative commands: what a FIX client, a REST client or the venue session asks the OMS to do.

Construction checks only types and identifiers (ids are coerced through their value types, `float` is refused).
Whether an order makes business sense (positive quantity, price on tick, GTD with a date...) is a pre-trade check
in `risk` that returns a `Denial` value, so the client gets a proper reject instead of an exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from oms.domain.enums import ExecType, OrderSource, OrderStatus, OrderType, Side, TimeInForce
from oms.domain.errors import InvalidValue
from oms.domain.values import AccountId, ClOrdId, ExecId, Symbol, VenueOrderId

__all__ = ["ApplyExecution", "CancelOrder", "PlaceOrder", "ReplaceOrder", "require_aware"]


def _decimal_or_none(value: object, field: str) -> None:
    """Refuse anything that is neither a Decimal nor None (float above all)."""
    if value is not None and not isinstance(value, Decimal):
        raise InvalidValue(f"{field}: expected Decimal or None, got {type(value).__name__}")


def _decimal(value: object, field: str) -> None:
    if not isinstance(value, Decimal):
        raise InvalidValue(f"{field}: expected Decimal, got {type(value).__name__}")


def _enum(value: object, enum_type: type, field: str) -> None:
    if not isinstance(value, enum_type):
        raise InvalidValue(f"{field}: expected {enum_type.__name__}, got {value!r}")


def require_aware(value: object, field: str) -> None:
    """Timestamps are timezone-aware so venue time and our time compare safely."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidValue(f"{field}: expected a timezone-aware datetime, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaceOrder:
    """Open a new order for `account`."""

    account: AccountId
    cl_ord_id: ClOrdId
    symbol: Symbol
    side: Side
    order_type: OrderType
    qty: Decimal
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    tif: TimeInForce = TimeInForce.DAY
    expire_date: date | None = None
    source: OrderSource = OrderSource.REST
    origin: str | None = None  # the FIX session that sent it (its reports go back there); None from REST

    def __post_init__(self) -> None:
        object.__setattr__(self, "account", AccountId(self.account))
        object.__setattr__(self, "cl_ord_id", ClOrdId(self.cl_ord_id))
        object.__setattr__(self, "symbol", Symbol(self.symbol))
        if self.origin is not None and (not isinstance(self.origin, str) or not self.origin):
            raise InvalidValue(f"origin: expected a session name, got {self.origin!r}")
        _enum(self.side, Side, "side")
        _enum(self.order_type, OrderType, "order_type")
        _enum(self.tif, TimeInForce, "tif")
        _enum(self.source, OrderSource, "source")
        _decimal(self.qty, "qty")
        _decimal_or_none(self.limit_price, "limit_price")
        _decimal_or_none(self.stop_price, "stop_price")
        if self.expire_date is not None and (
            not isinstance(self.expire_date, date) or isinstance(self.expire_date, datetime)
        ):
            raise InvalidValue(f"expire_date: expected a date, got {self.expire_date!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelOrder:
    """Cancel the order known as `orig_cl_ord_id`; `cl_ord_id` identifies this request.

    `symbol` and `side`, when given (FIX requests carry them), must be the order's: a request that names
    them differently is about another order and is refused, never applied to this one.
    """

    account: AccountId
    cl_ord_id: ClOrdId
    orig_cl_ord_id: ClOrdId
    symbol: Symbol | None = None
    side: Side | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "account", AccountId(self.account))
        object.__setattr__(self, "cl_ord_id", ClOrdId(self.cl_ord_id))
        object.__setattr__(self, "orig_cl_ord_id", ClOrdId(self.orig_cl_ord_id))
        _order_identity(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplaceOrder:
    """Amend quantity, prices or time in force of `orig_cl_ord_id`; the order continues as `cl_ord_id`.

    Side, symbol and order type cannot change: that is a cancel and a new order. When the request names them
    (FIX requests do), they must be the order's, else it is refused.
    """

    account: AccountId
    cl_ord_id: ClOrdId
    orig_cl_ord_id: ClOrdId
    qty: Decimal
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    tif: TimeInForce = TimeInForce.DAY
    expire_date: date | None = None
    symbol: Symbol | None = None
    side: Side | None = None
    order_type: OrderType | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "account", AccountId(self.account))
        object.__setattr__(self, "cl_ord_id", ClOrdId(self.cl_ord_id))
        object.__setattr__(self, "orig_cl_ord_id", ClOrdId(self.orig_cl_ord_id))
        _order_identity(self)
        if self.order_type is not None:
            _enum(self.order_type, OrderType, "order_type")
        _enum(self.tif, TimeInForce, "tif")
        _decimal(self.qty, "qty")
        _decimal_or_none(self.limit_price, "limit_price")
        _decimal_or_none(self.stop_price, "stop_price")


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplyExecution:
    """Book one venue ExecutionReport. The order is found by our venue ClOrdID and/or the venue's order id.

    Quantities and prices are the venue's, already parsed with `parse_decimal`; `fee` is in the instrument currency.
    """

    venue_exec_id: ExecId
    cl_ord_id: ClOrdId | None
    venue_order_id: VenueOrderId | None
    exec_type: ExecType
    ord_status: OrderStatus
    last_qty: Decimal = Decimal(0)
    last_px: Decimal = Decimal(0)
    cum_qty: Decimal = Decimal(0)
    leaves_qty: Decimal = Decimal(0)
    avg_px: Decimal = Decimal(0)
    fee: Decimal = Decimal(0)
    text: str = ""
    transact_time: datetime | None = None
    orig_cl_ord_id: ClOrdId | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "venue_exec_id", ExecId(self.venue_exec_id))
        if self.cl_ord_id is None and self.venue_order_id is None:
            raise InvalidValue("execution must reference the order by cl_ord_id or venue_order_id")
        if self.cl_ord_id is not None:
            object.__setattr__(self, "cl_ord_id", ClOrdId(self.cl_ord_id))
        if self.orig_cl_ord_id is not None:
            object.__setattr__(self, "orig_cl_ord_id", ClOrdId(self.orig_cl_ord_id))
        if self.venue_order_id is not None:
            object.__setattr__(self, "venue_order_id", VenueOrderId(self.venue_order_id))
        _enum(self.exec_type, ExecType, "exec_type")
        _enum(self.ord_status, OrderStatus, "ord_status")
        for field in ("last_qty", "last_px", "cum_qty", "leaves_qty", "avg_px", "fee"):
            _decimal(getattr(self, field), field)
        if self.transact_time is not None:
            require_aware(self.transact_time, "transact_time")


def _order_identity(command: CancelOrder | ReplaceOrder) -> None:
    """The optional symbol and side a cancel or replace names its order by, checked as a PlaceOrder's are."""
    if command.symbol is not None:
        object.__setattr__(command, "symbol", Symbol(command.symbol))
    if command.side is not None:
        _enum(command.side, Side, "side")
