"""Immutable, past-tense order events: the only things that change an order (`Order.apply`).

Every event carries its own id (`event_id`, unique; chosen by the service, e.g. a UUID or the venue ExecID for
executions), the order it belongs to, the venue's time when the venue reported it (`venue_time`, None for our own
actions) and our time (`our_time`, when we recorded it). Each class names the state machine kind it drives;
`OrderFilled` is the exception, its kind depends on whether it completes the order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import ClassVar

from oms.domain.commands import require_aware
from oms.domain.enums import TimeInForce
from oms.domain.errors import InvalidValue
from oms.domain.state_machine import OrderEventKind
from oms.domain.values import ClOrdId, ExecId, OrderId, VenueOrderId, parse_decimal

__all__ = [
    "CancelRejected",
    "OrderAccepted",
    "OrderCancelPending",
    "OrderCancelRequested",
    "OrderCanceled",
    "OrderDenied",
    "OrderDoneForDay",
    "OrderEvent",
    "OrderExpired",
    "OrderFilled",
    "OrderPendingNew",
    "OrderRejected",
    "OrderReplacePending",
    "OrderReplaceRequested",
    "OrderReplaced",
    "OrderRestated",
    "OrderSubmitted",
    "ReplaceRejected",
]

_MAX_EVENT_ID_CHARS = 128
_MAX_TEXT_CHARS = 512


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderEvent:
    """Fields shared by every order event."""

    kind: ClassVar[OrderEventKind]

    event_id: str
    order_id: OrderId
    our_time: datetime
    venue_time: datetime | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.event_id, str) or not 0 < len(self.event_id) <= _MAX_EVENT_ID_CHARS:
            raise InvalidValue(f"event_id must be a non-empty string of at most {_MAX_EVENT_ID_CHARS} characters")
        object.__setattr__(self, "order_id", OrderId(self.order_id))
        require_aware(self.our_time, "our_time")
        if self.venue_time is not None:
            require_aware(self.venue_time, "venue_time")


def _text(value: object, field: str) -> None:
    if not isinstance(value, str) or len(value) > _MAX_TEXT_CHARS:
        raise InvalidValue(f"{field}: expected a string of at most {_MAX_TEXT_CHARS} characters")


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderSubmitted(OrderEvent):
    """We sent the NewOrderSingle to the venue (after the order row was committed: invariant 6)."""

    kind = OrderEventKind.SUBMITTED


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderDenied(OrderEvent):
    """Our pre-trade risk refused the order; `reason` is the rendered `Denial` (`REASON_CODE: key=value`)."""

    kind = OrderEventKind.DENIED
    reason: str

    def __post_init__(self) -> None:
        OrderEvent.__post_init__(self)
        _text(self.reason, "reason")


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderPendingNew(OrderEvent):
    """The venue acknowledged receipt but has not accepted yet (ExecType=PendingNew)."""

    kind = OrderEventKind.NEW_PENDING


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderAccepted(OrderEvent):
    """The venue accepted the order (ExecType=New) and named it `venue_order_id`."""

    kind = OrderEventKind.ACCEPTED
    venue_order_id: VenueOrderId

    def __post_init__(self) -> None:
        OrderEvent.__post_init__(self)
        object.__setattr__(self, "venue_order_id", VenueOrderId(self.venue_order_id))


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRejected(OrderEvent):
    """The venue rejected the order (ExecType=Rejected)."""

    kind = OrderEventKind.REJECTED
    reason: str = ""
    ord_rej_reason: int | None = None

    def __post_init__(self) -> None:
        OrderEvent.__post_init__(self)
        _text(self.reason, "reason")


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderFilled(OrderEvent):
    """A trade (ExecType=Trade) of `last_qty` at `last_px`; `fee` is what we charge for it, in the order currency."""

    kind = OrderEventKind.FILLED_PARTIALLY  # the order decides FILLED vs FILLED_PARTIALLY from quantities
    exec_id: ExecId
    last_qty: Decimal
    last_px: Decimal
    fee: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        OrderEvent.__post_init__(self)
        object.__setattr__(self, "exec_id", ExecId(self.exec_id))
        object.__setattr__(self, "last_qty", parse_decimal(self.last_qty, "last_qty", allow_negative=False, allow_zero=False))
        object.__setattr__(self, "last_px", parse_decimal(self.last_px, "last_px", allow_negative=False, allow_zero=False))
        object.__setattr__(self, "fee", parse_decimal(self.fee, "fee", allow_negative=False))


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCancelRequested(OrderEvent):
    """We sent an OrderCancelRequest identified by `cl_ord_id`."""

    kind = OrderEventKind.CANCEL_REQUESTED
    cl_ord_id: ClOrdId

    def __post_init__(self) -> None:
        OrderEvent.__post_init__(self)
        object.__setattr__(self, "cl_ord_id", ClOrdId(self.cl_ord_id))


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCancelPending(OrderEvent):
    """The venue has our cancel request in hand (ExecType=PendingCancel)."""

    kind = OrderEventKind.CANCEL_PENDING


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelRejected(OrderEvent):
    """The venue refused our cancel (OrderCancelReject, CxlRejResponseTo=1)."""

    kind = OrderEventKind.CANCEL_REJECTED
    reason: str = ""

    def __post_init__(self) -> None:
        OrderEvent.__post_init__(self)
        _text(self.reason, "reason")


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCanceled(OrderEvent):
    """The venue canceled the order's remainder, on our request or unsolicited (ExecType=Canceled)."""

    kind = OrderEventKind.CANCELED
    reason: str = ""

    def __post_init__(self) -> None:
        OrderEvent.__post_init__(self)
        _text(self.reason, "reason")


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderReplaceRequested(OrderEvent):
    """We sent an OrderCancelReplaceRequest: the order is to continue as `cl_ord_id` with these terms."""

    kind = OrderEventKind.REPLACE_REQUESTED
    cl_ord_id: ClOrdId
    qty: Decimal
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    tif: TimeInForce = TimeInForce.DAY
    expire_date: date | None = None

    def __post_init__(self) -> None:
        OrderEvent.__post_init__(self)
        object.__setattr__(self, "cl_ord_id", ClOrdId(self.cl_ord_id))
        object.__setattr__(self, "qty", parse_decimal(self.qty, "qty", allow_negative=False, allow_zero=False))
        for field in ("limit_price", "stop_price"):
            value = getattr(self, field)
            if value is not None:
                object.__setattr__(self, field, parse_decimal(value, field, allow_negative=False, allow_zero=False))
        if not isinstance(self.tif, TimeInForce):
            raise InvalidValue(f"tif: expected TimeInForce, got {self.tif!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderReplacePending(OrderEvent):
    """The venue has our replace request in hand (ExecType=PendingReplace)."""

    kind = OrderEventKind.REPLACE_PENDING


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplaceRejected(OrderEvent):
    """The venue refused our replace (OrderCancelReject, CxlRejResponseTo=2)."""

    kind = OrderEventKind.REPLACE_REJECTED
    reason: str = ""

    def __post_init__(self) -> None:
        OrderEvent.__post_init__(self)
        _text(self.reason, "reason")


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderReplaced(OrderEvent):
    """The venue applied our replace (ExecType=Replaced); it may have given the order a new venue id."""

    kind = OrderEventKind.REPLACED
    venue_order_id: VenueOrderId | None = None

    def __post_init__(self) -> None:
        OrderEvent.__post_init__(self)
        if self.venue_order_id is not None:
            object.__setattr__(self, "venue_order_id", VenueOrderId(self.venue_order_id))


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderExpired(OrderEvent):
    """The order's time in force ran out (ExecType=Expired)."""

    kind = OrderEventKind.EXPIRED


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderDoneForDay(OrderEvent):
    """The venue will not execute the order any more today (ExecType=DoneForDay); terminal for us."""

    kind = OrderEventKind.DONE_FOR_DAY


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRestated(OrderEvent):
    """The venue restated the order without changing its status or quantities (ExecType=Restated)."""

    kind = OrderEventKind.RESTATED
    reason: str = ""

    def __post_init__(self) -> None:
        OrderEvent.__post_init__(self)
        _text(self.reason, "reason")
