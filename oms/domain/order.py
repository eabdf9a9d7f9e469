"""The order: an immutable snapshot whose only way forward is `apply(event) -> Order`.

`apply` returns the NEXT snapshot and leaves the receiver untouched, so a refused event (illegal transition,
overfill) can never leave a half-applied order behind: `order = order.apply(event)`. Every snapshot checks the
quantity invariants on construction (0 <= cum_qty <= qty, leaves_qty = qty - cum_qty while live, 0 when finished).

Fill math is exact Decimal: the order keeps `cum_notional` (sum of last_qty * last_px), and `avg_px` is derived
from it, so repeated partial fills never accumulate rounding error.

A replace ends the old order as REPLACED; `successor` builds the order that continues under the new ClOrdID and
carries cum_qty, notional and fees forward.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Final

from oms.domain.commands import PlaceOrder, require_aware
from oms.domain.enums import OrderSource, OrderStatus, OrderType, Side, TimeInForce
from oms.domain.errors import IllegalTransition, InvalidValue, OrderMismatch, Overfill
from oms.domain.events import (
    OrderAccepted,
    OrderCancelRequested,
    OrderEvent,
    OrderFilled,
    OrderReplaced,
    OrderReplaceRequested,
)
from oms.domain.state_machine import OrderEventKind, fill_kind, transition
from oms.domain.values import AccountId, ClOrdId, OrderId, Symbol, VenueOrderId, parse_decimal

__all__ = ["AVG_PX_PLACES", "Order", "ReplaceTerms"]

AVG_PX_PLACES: Final = 8
_AVG_PX_UNIT: Final = Decimal(1).scaleb(-AVG_PX_PLACES)
# Kinds that also move the working status hidden beneath a pending cancel/replace (and are validated against it).
_UNDERLYING_KINDS: Final = frozenset(
    {
        OrderEventKind.NEW_PENDING,
        OrderEventKind.ACCEPTED,
        OrderEventKind.REJECTED,
        OrderEventKind.FILLED_PARTIALLY,
        OrderEventKind.FILLED,
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplaceTerms:
    """The terms an outstanding replace request asks for."""

    cl_ord_id: ClOrdId
    qty: Decimal
    limit_price: Decimal | None
    stop_price: Decimal | None
    tif: TimeInForce
    expire_date: date | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Order:
    """One order (one ClOrdID) as the OMS knows it."""

    order_id: OrderId
    account: AccountId
    cl_ord_id: ClOrdId
    symbol: Symbol
    side: Side
    order_type: OrderType
    qty: Decimal
    limit_price: Decimal | None
    stop_price: Decimal | None
    tif: TimeInForce
    expire_date: date | None
    status: OrderStatus
    cum_qty: Decimal
    leaves_qty: Decimal
    cum_notional: Decimal
    cum_fees: Decimal
    venue_order_id: VenueOrderId | None
    created_at: datetime
    updated_at: datetime
    source: OrderSource = OrderSource.REST
    previous_status: OrderStatus | None = None  # the working status beneath a pending cancel/replace
    pending_cl_ord_id: ClOrdId | None = None  # ClOrdID of the outstanding cancel/replace request
    pending_replace: ReplaceTerms | None = None  # terms of the outstanding (or, once REPLACED, applied) replace
    orig_cl_ord_id: ClOrdId | None = None  # the order this one replaced
    origin: str | None = None  # the FIX session that placed it (a replacing order keeps it); None from REST

    def __post_init__(self) -> None:
        positive = {"allow_negative": False, "allow_zero": False}
        if self.qty <= 0:
            raise InvalidValue(f"order {self.order_id}: qty must be positive, got {self.qty}")
        for name in ("limit_price", "stop_price"):
            value = getattr(self, name)
            if value is not None:
                parse_decimal(value, name, **positive)
        require_aware(self.created_at, "created_at")
        require_aware(self.updated_at, "updated_at")
        self._check_quantities()
        self._check_pending()

    def _check_quantities(self) -> None:
        """The quantity invariants every snapshot keeps."""
        if not Decimal(0) <= self.cum_qty <= self.qty:
            raise InvalidValue(f"order {self.order_id}: cum_qty {self.cum_qty} outside 0..{self.qty}")
        expected_leaves = Decimal(0) if self.status.is_terminal else self.qty - self.cum_qty
        if self.leaves_qty != expected_leaves:
            raise InvalidValue(
                f"order {self.order_id}: leaves_qty {self.leaves_qty} != {expected_leaves} in {self.status.name}"
            )
        if (self.status is OrderStatus.FILLED) != (self.cum_qty == self.qty):
            raise InvalidValue(f"order {self.order_id}: {self.status.name} with cum_qty {self.cum_qty} of {self.qty}")
        if self.cum_notional < 0 or self.cum_fees < 0 or (self.cum_qty == 0 and self.cum_notional != 0):
            raise InvalidValue(f"order {self.order_id}: inconsistent cum_notional/cum_fees")

    def _check_pending(self) -> None:
        """previous_status is present exactly while a cancel/replace request is outstanding."""
        if self.status.is_pending_request:
            if self.previous_status is None or not self.previous_status.is_working:
                raise InvalidValue(f"order {self.order_id}: {self.status.name} needs a working previous_status")
            if self.pending_cl_ord_id is None:
                raise InvalidValue(f"order {self.order_id}: {self.status.name} needs pending_cl_ord_id")
        elif self.previous_status is not None or self.pending_cl_ord_id is not None:
            raise InvalidValue(f"order {self.order_id}: no request is pending in {self.status.name}")
        if self.status is OrderStatus.PENDING_REPLACE and self.pending_replace is None:
            raise InvalidValue(f"order {self.order_id}: PENDING_REPLACE needs pending_replace terms")

    # ----------------------------------------------------------------------------------------------------------------
    @classmethod
    def place(cls, order_id: OrderId, command: PlaceOrder, now: datetime) -> Order:
        """A new order in PENDING_NEW from a command that passed the pre-trade checks."""
        return cls(
            order_id=OrderId(order_id),
            account=command.account,
            cl_ord_id=command.cl_ord_id,
            symbol=command.symbol,
            side=command.side,
            order_type=command.order_type,
            qty=parse_decimal(command.qty, "qty", allow_negative=False, allow_zero=False),
            limit_price=command.limit_price,
            stop_price=command.stop_price,
            tif=command.tif,
            expire_date=command.expire_date,
            status=OrderStatus.PENDING_NEW,
            cum_qty=Decimal(0),
            leaves_qty=command.qty,
            cum_notional=Decimal(0),
            cum_fees=Decimal(0),
            venue_order_id=None,
            created_at=now,
            updated_at=now,
            source=command.source,
            origin=command.origin,
        )

    @property
    def avg_px(self) -> Decimal:
        """Quantity-weighted average fill price, rounded half-even to AVG_PX_PLACES; 0 before the first fill."""
        if self.cum_qty == 0:
            return Decimal(0)
        return (self.cum_notional / self.cum_qty).quantize(_AVG_PX_UNIT, rounding=ROUND_HALF_EVEN)

    @property
    def is_open(self) -> bool:
        """Not terminal: may still trade, so it holds a reservation."""
        return not self.status.is_terminal

    # ----------------------------------------------------------------------------------------------------------------
    def apply(self, event: OrderEvent) -> Order:
        """The next snapshot after `event`; raises IllegalTransition, Overfill or OrderMismatch and changes nothing."""
        if event.order_id != self.order_id:
            raise OrderMismatch(f"event {event.event_id} is for order {event.order_id}, not {self.order_id}")
        if isinstance(event, OrderFilled):
            return self._fill(event)
        changes = _SPECIFIC.get(type(event), _no_changes)(self, event)
        return self._moved(event.kind, event, changes)

    def _moved(self, kind: OrderEventKind, event: OrderEvent, changes: dict[str, object]) -> Order:
        """Run the state machine for `kind` and build the next snapshot with `changes`."""
        status = transition(self.status, kind, self.previous_status)
        fields: dict[str, object] = {"status": status, "updated_at": event.our_time}
        if self.status.is_pending_request and kind in _UNDERLYING_KINDS:
            underlying = transition(self.previous_status, kind)  # type: ignore[arg-type]
            fields["previous_status"] = underlying if status.is_pending_request else None
        if self.status.is_pending_request and not status.is_pending_request:
            fields.update(previous_status=None, pending_cl_ord_id=None)
            if status is not OrderStatus.REPLACED:
                fields["pending_replace"] = None
        if status.is_terminal:
            fields["leaves_qty"] = Decimal(0)
        fields.update(changes)
        return self._evolve(fields)

    def _evolve(self, changes: dict[str, object]) -> Order:
        """The next snapshot with ``changes``, re-checking only what an event can change.

        An event never changes qty, prices or created_at, and its own values (times, quantities, ids) were
        validated when the event was built, so the next snapshot re-checks the quantity and pending-request
        invariants (the ones an event can break) and skips re-parsing the fields it copies unchanged. Any other
        change goes through the full constructor.
        """
        if not changes.keys() <= _EVENT_FIELDS:
            return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
        new = _copy(self)
        set_field = object.__setattr__
        for name, value in changes.items():
            set_field(new, name, value)
        new._check_quantities()
        new._check_pending()
        return new

    @classmethod
    def from_stored(cls, **fields: object) -> Order:
        """A snapshot read back from the OMS's own store, where only validated snapshots are written.

        The quantity and pending-request invariants are still checked (cheap, and they catch a row edited
        by hand); the per-field parsing of new input is not repeated.
        """
        new = _from_fields(fields)
        new._check_quantities()
        new._check_pending()
        return new

    def _fill(self, event: OrderFilled) -> Order:
        cum_qty = self.cum_qty + event.last_qty
        kind = fill_kind(cum_qty, self.qty)
        transition(self.status, kind, self.previous_status)  # an illegal fill is refused before the overfill check
        if event.last_qty > self.leaves_qty:
            raise Overfill(self.order_id, self.leaves_qty, event.last_qty)
        changes: dict[str, object] = {
            "cum_qty": cum_qty,
            "leaves_qty": self.qty - cum_qty,
            "cum_notional": self.cum_notional + event.last_qty * event.last_px,
            "cum_fees": self.cum_fees + event.fee,
        }
        return self._moved(kind, event, changes)

    # ----------------------------------------------------------------------------------------------------------------
    def successor(self, order_id: OrderId, event: OrderReplaced) -> Order:
        """The order that continues under the new ClOrdID after `event` replaced this one.

        Filled quantity, notional and fees carry over; the successor is NEW, PARTIALLY_FILLED, or FILLED when the
        new quantity equals what is already done. A new quantity below cum_qty (fills raced the replace) is an
        Overfill for the service to quarantine.
        """
        if self.status is not OrderStatus.REPLACED or self.pending_replace is None:
            raise IllegalTransition(self.status, OrderEventKind.REPLACED, "successor needs a REPLACED order")
        if event.order_id != self.order_id:
            raise OrderMismatch(f"event {event.event_id} is for order {event.order_id}, not {self.order_id}")
        terms = self.pending_replace
        if terms.qty < self.cum_qty:
            raise Overfill(order_id, terms.qty, self.cum_qty)  # already done exceeds the new quantity
        if self.cum_qty == terms.qty:
            status = OrderStatus.FILLED
        else:
            status = OrderStatus.PARTIALLY_FILLED if self.cum_qty > 0 else OrderStatus.NEW
        return dataclasses.replace(
            self,
            order_id=OrderId(order_id),
            cl_ord_id=terms.cl_ord_id,
            orig_cl_ord_id=self.cl_ord_id,
            qty=terms.qty,
            limit_price=terms.limit_price,
            stop_price=terms.stop_price,
            tif=terms.tif,
            expire_date=terms.expire_date,
            status=status,
            leaves_qty=terms.qty - self.cum_qty,
            venue_order_id=event.venue_order_id or self.venue_order_id,
            created_at=event.our_time,
            updated_at=event.our_time,
            previous_status=None,
            pending_cl_ord_id=None,
            pending_replace=None,
        )


_FIELD_NAMES: Final = tuple(field.name for field in dataclasses.fields(Order))
_DEFAULTS: Final = {
    field.name: field.default for field in dataclasses.fields(Order) if field.default is not dataclasses.MISSING
}
# Fields an event may change (see `Order._moved` and the `_SPECIFIC` handlers); each comes from a validated event.
_EVENT_FIELDS: Final = frozenset(
    {
        "status", "updated_at", "previous_status", "pending_cl_ord_id", "pending_replace", "leaves_qty",
        "venue_order_id", "cum_qty", "cum_notional", "cum_fees",
    }
)  # fmt: skip
_allocate: Final = object.__new__


def _compile_copy() -> Callable[[object], Order]:
    """``source -> Order`` with every field read off ``source`` by name: one generated function with a line
    per field, instead of a loop of ``getattr`` / ``in`` tests per snapshot (each fill builds two)."""
    lines = ["def copy(source):", "    new = allocate(Order)"]
    lines += [f"    set_field(new, {name!r}, source.{name})" for name in _FIELD_NAMES]
    lines.append("    return new")
    namespace: dict[str, object] = {"allocate": _allocate, "Order": Order, "set_field": object.__setattr__}
    exec("\n".join(lines), namespace)  # noqa: S102 - built from the dataclass's own field names
    return namespace["copy"]  # type: ignore[return-value]


def _compile_from_fields() -> Callable[[dict[str, object]], Order]:
    """``fields -> Order`` from a dict of field values, the dataclass defaults filling in what is missing."""
    lines = ["def from_fields(fields):", "    new = allocate(Order)", "    get = fields.get"]
    for name in _FIELD_NAMES:
        value = f"get({name!r}, defaults[{name!r}])" if name in _DEFAULTS else f"fields[{name!r}]"
        lines.append(f"    set_field(new, {name!r}, {value})")
    lines.append("    return new")
    namespace: dict[str, object] = {
        "allocate": _allocate, "Order": Order, "set_field": object.__setattr__, "defaults": _DEFAULTS,
    }  # fmt: skip
    exec("\n".join(lines), namespace)  # noqa: S102 - built from the dataclass's own field names
    return namespace["from_fields"]  # type: ignore[return-value]


_copy: Final = _compile_copy()
_from_fields: Final = _compile_from_fields()


# --- event-specific field changes, applied after the state machine accepted the event ---------------------------------


def _no_changes(order: Order, event: OrderEvent) -> dict[str, object]:
    return {}


def _accepted(order: Order, event: OrderEvent) -> dict[str, object]:
    assert isinstance(event, OrderAccepted)
    if order.venue_order_id is not None and order.venue_order_id != event.venue_order_id:
        raise OrderMismatch(
            f"order {order.order_id}: venue order id {event.venue_order_id} differs from {order.venue_order_id}"
        )
    return {"venue_order_id": event.venue_order_id}


def _cancel_requested(order: Order, event: OrderEvent) -> dict[str, object]:
    assert isinstance(event, OrderCancelRequested)
    _check_new_cl_ord_id(order, event.cl_ord_id)
    return {"previous_status": order.status, "pending_cl_ord_id": event.cl_ord_id}


def _replace_requested(order: Order, event: OrderEvent) -> dict[str, object]:
    assert isinstance(event, OrderReplaceRequested)
    _check_new_cl_ord_id(order, event.cl_ord_id)
    if event.qty < order.cum_qty:
        raise InvalidValue(f"order {order.order_id}: replace qty {event.qty} below cum_qty {order.cum_qty}")
    terms = ReplaceTerms(
        cl_ord_id=event.cl_ord_id,
        qty=event.qty,
        limit_price=event.limit_price,
        stop_price=event.stop_price,
        tif=event.tif,
        expire_date=event.expire_date,
    )
    return {"previous_status": order.status, "pending_cl_ord_id": event.cl_ord_id, "pending_replace": terms}


def _check_new_cl_ord_id(order: Order, cl_ord_id: ClOrdId) -> None:
    if cl_ord_id == order.cl_ord_id:
        raise InvalidValue(f"order {order.order_id}: a cancel/replace needs a new ClOrdID, got {cl_ord_id}")


_SPECIFIC: Final[dict[type[OrderEvent], Callable[[Order, OrderEvent], dict[str, object]]]] = {
    OrderAccepted: _accepted,
    OrderCancelRequested: _cancel_requested,
    OrderReplaceRequested: _replace_requested,
}
