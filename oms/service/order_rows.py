"""Translation between the domain ``Order`` snapshot and a row of the ``orders`` table."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date
from decimal import Decimal
from typing import Any

from oms.domain.enums import OrderSource, OrderStatus, OrderType, Side, TimeInForce
from oms.domain.order import Order, ReplaceTerms
from oms.domain.values import AccountId, ClOrdId, OrderId, Symbol, VenueOrderId

ORDER_COLUMNS = (
    "id", "account_id", "cl_ord_id", "source", "symbol", "side", "order_type", "time_in_force", "qty",
    "limit_price", "stop_price", "expire_date", "status", "cum_qty", "leaves_qty", "cum_notional", "cum_fees",
    "venue_order_id", "previous_status", "pending_cl_ord_id", "pending_replace", "orig_cl_ord_id",
    "venue_cl_ord_id", "pending_venue_cl_ord_id", "replaces_order_id", "replaced_by_order_id", "fingerprint",
    "text", "created_at", "updated_at", "origin", "request_cl_ord_id",
)  # fmt: skip
# Columns that change after insert; the rest are fixed when the order is created.
MUTABLE_ORDER_COLUMNS = (
    "status", "cum_qty", "leaves_qty", "cum_notional", "cum_fees", "venue_order_id", "previous_status",
    "pending_cl_ord_id", "pending_replace", "pending_venue_cl_ord_id", "replaced_by_order_id", "text", "updated_at",
    "request_cl_ord_id",
)  # fmt: skip


@dataclass(slots=True)
class OrderRecord:
    """The domain order plus the routing facts the database keeps beside it; mutable in one unit of work."""

    order: Order
    venue_cl_ord_id: str
    fingerprint: str
    pending_venue_cl_ord_id: str | None = None
    replaces_order_id: str | None = None
    replaced_by_order_id: str | None = None
    text: str | None = None
    request_cl_ord_id: str | None = None  # the ClOrdID of its latest cancel/replace request, pending or done
    # The order's id and account as plain strings, fixed for the record's life (handlers read them often).
    id: str = field(init=False)
    account_id: str = field(init=False)

    def __post_init__(self) -> None:
        self.id = str(self.order.order_id)
        self.account_id = str(self.order.account)


def _terms_to_json(terms: ReplaceTerms | None) -> dict[str, Any] | None:
    if terms is None:
        return None
    return {
        "cl_ord_id": str(terms.cl_ord_id),
        "qty": str(terms.qty),
        "limit_price": None if terms.limit_price is None else str(terms.limit_price),
        "stop_price": None if terms.stop_price is None else str(terms.stop_price),
        "tif": terms.tif.value,
        "expire_date": None if terms.expire_date is None else terms.expire_date.isoformat(),
    }


def _terms_from_json(data: dict[str, Any] | None) -> ReplaceTerms | None:
    if data is None:
        return None
    return ReplaceTerms(
        cl_ord_id=ClOrdId(data["cl_ord_id"]),
        qty=Decimal(data["qty"]),
        limit_price=None if data["limit_price"] is None else Decimal(data["limit_price"]),
        stop_price=None if data["stop_price"] is None else Decimal(data["stop_price"]),
        tif=TimeInForce(data["tif"]),
        expire_date=None if data["expire_date"] is None else date.fromisoformat(data["expire_date"]),
    )


def record_to_row(record: OrderRecord) -> dict[str, Any]:
    """The whole row: the columns fixed when the order is placed, then what ``record_update_row`` keeps current."""
    order = record.order
    row = {
        "account_id": str(order.account),
        "cl_ord_id": str(order.cl_ord_id),
        "source": order.source._value_,
        "symbol": str(order.symbol),
        "side": order.side._value_,
        "order_type": order.order_type._value_,
        "time_in_force": order.tif._value_,
        "qty": order.qty,
        "limit_price": order.limit_price,
        "stop_price": order.stop_price,
        "expire_date": order.expire_date,
        "orig_cl_ord_id": None if order.orig_cl_ord_id is None else str(order.orig_cl_ord_id),
        "venue_cl_ord_id": record.venue_cl_ord_id,
        "replaces_order_id": record.replaces_order_id,
        "fingerprint": record.fingerprint,
        "created_at": order.created_at,
        "origin": order.origin,
    }
    row.update(record_update_row(record))
    return row


def _by_value(enum: type[Any]) -> Any:
    """``enum(value)`` through a plain dict (an enum call by value runs Python code); unknown values still
    go through ``enum(value)``, which raises as before."""
    members = dict(enum._value2member_map_)

    def lookup(value: Any) -> Any:
        member = members.get(value)
        return member if member is not None else enum(value)

    return lookup


_side, _order_type, _tif = _by_value(Side), _by_value(OrderType), _by_value(TimeInForce)
_status, _source = _by_value(OrderStatus), _by_value(OrderSource)


def record_update_row(record: OrderRecord) -> dict[str, Any]:
    """The row's key and its ``MUTABLE_ORDER_COLUMNS``, as ``record_to_row`` has them (an UPDATE's values)."""
    order = record.order
    return {
        "id": record.id,
        "status": order.status._value_,
        "cum_qty": order.cum_qty,
        "leaves_qty": order.leaves_qty,
        "cum_notional": order.cum_notional,
        "cum_fees": order.cum_fees,
        "venue_order_id": None if order.venue_order_id is None else str(order.venue_order_id),
        "previous_status": None if order.previous_status is None else order.previous_status._value_,
        "pending_cl_ord_id": None if order.pending_cl_ord_id is None else str(order.pending_cl_ord_id),
        "pending_replace": _terms_to_json(order.pending_replace),
        "pending_venue_cl_ord_id": record.pending_venue_cl_ord_id,
        "replaced_by_order_id": record.replaced_by_order_id,
        "text": record.text,
        "updated_at": order.updated_at,
        "request_cl_ord_id": record.request_cl_ord_id,
    }


def record_from_row(row: Any) -> OrderRecord:
    """Rebuild the record from a row selected with ``ORDER_COLUMNS`` in that order."""
    (
        id_, account_id, cl_ord_id, source, symbol, side, order_type, time_in_force, qty, limit_price, stop_price,
        expire_date, status, cum_qty, leaves_qty, cum_notional, cum_fees, venue_order_id, previous_status,
        pending_cl_ord_id, pending_replace, orig_cl_ord_id, venue_cl_ord_id, pending_venue_cl_ord_id,
        replaces_order_id, replaced_by_order_id, fingerprint, text, created_at, updated_at, origin, request_cl_ord_id,
    ) = row  # fmt: skip
    order = Order.from_stored(  # a row we wrote from a validated snapshot: only the invariants are re-checked
        order_id=OrderId.stored(id_),
        account=AccountId.stored(account_id),
        cl_ord_id=ClOrdId.stored(cl_ord_id),
        symbol=Symbol.stored(symbol),
        side=_side(side),
        order_type=_order_type(order_type),
        qty=qty,
        limit_price=limit_price,
        stop_price=stop_price,
        tif=_tif(time_in_force),
        expire_date=expire_date,
        status=_status(status),
        cum_qty=cum_qty,
        leaves_qty=leaves_qty,
        cum_notional=cum_notional,
        cum_fees=cum_fees,
        venue_order_id=None if venue_order_id is None else VenueOrderId.stored(venue_order_id),
        created_at=_aware(created_at),
        updated_at=_aware(updated_at),
        source=_source(source),
        previous_status=None if previous_status is None else _status(previous_status),
        pending_cl_ord_id=None if pending_cl_ord_id is None else ClOrdId.stored(pending_cl_ord_id),
        pending_replace=_terms_from_json(pending_replace),
        orig_cl_ord_id=None if orig_cl_ord_id is None else ClOrdId.stored(orig_cl_ord_id),
        origin=origin,
    )
    return OrderRecord(
        order=order,
        venue_cl_ord_id=venue_cl_ord_id,
        fingerprint=fingerprint,
        pending_venue_cl_ord_id=pending_venue_cl_ord_id,
        replaces_order_id=replaces_order_id,
        replaced_by_order_id=replaced_by_order_id,
        text=text,
        request_cl_ord_id=request_cl_ord_id,
    )


def _aware(value: Any) -> Any:
    """SQLite hands back naive datetimes for timezone-aware columns; they were stored as UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
