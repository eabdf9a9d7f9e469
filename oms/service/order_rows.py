"""Translation between the domain ``Order`` snapshot and a row of the ``orders`` table."""

from __future__ import annotations

from dataclasses import dataclass
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
    "text", "created_at", "updated_at",
)  # fmt: skip
# Columns that change after insert; the rest are fixed when the order is created.
MUTABLE_ORDER_COLUMNS = (
    "status", "cum_qty", "leaves_qty", "cum_notional", "cum_fees", "venue_order_id", "previous_status",
    "pending_cl_ord_id", "pending_replace", "pending_venue_cl_ord_id", "replaced_by_order_id", "text", "updated_at",
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

    @property
    def id(self) -> str:
        return str(self.order.order_id)

    @property
    def account_id(self) -> str:
        return str(self.order.account)


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
    order = record.order
    return {
        "id": str(order.order_id),
        "account_id": str(order.account),
        "cl_ord_id": str(order.cl_ord_id),
        "source": order.source.value,
        "symbol": str(order.symbol),
        "side": order.side.value,
        "order_type": order.order_type.value,
        "time_in_force": order.tif.value,
        "qty": order.qty,
        "limit_price": order.limit_price,
        "stop_price": order.stop_price,
        "expire_date": order.expire_date,
        "status": order.status.value,
        "cum_qty": order.cum_qty,
        "leaves_qty": order.leaves_qty,
        "cum_notional": order.cum_notional,
        "cum_fees": order.cum_fees,
        "venue_order_id": None if order.venue_order_id is None else str(order.venue_order_id),
        "previous_status": None if order.previous_status is None else order.previous_status.value,
        "pending_cl_ord_id": None if order.pending_cl_ord_id is None else str(order.pending_cl_ord_id),
        "pending_replace": _terms_to_json(order.pending_replace),
        "orig_cl_ord_id": None if order.orig_cl_ord_id is None else str(order.orig_cl_ord_id),
        "venue_cl_ord_id": record.venue_cl_ord_id,
        "pending_venue_cl_ord_id": record.pending_venue_cl_ord_id,
        "replaces_order_id": record.replaces_order_id,
        "replaced_by_order_id": record.replaced_by_order_id,
        "fingerprint": record.fingerprint,
        "text": record.text,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
    }


def record_from_row(row: Any) -> OrderRecord:
    """Rebuild the record from a row selected with ``ORDER_COLUMNS`` in that order."""
    data = dict(zip(ORDER_COLUMNS, row, strict=True))
    venue_order_id, pending_cl_ord_id, orig_cl_ord_id = data["venue_order_id"], data["pending_cl_ord_id"], data["orig_cl_ord_id"]
    previous_status = data["previous_status"]
    order = Order.from_stored(  # a row we wrote from a validated snapshot: only the invariants are re-checked
        order_id=OrderId.stored(data["id"]),
        account=AccountId.stored(data["account_id"]),
        cl_ord_id=ClOrdId.stored(data["cl_ord_id"]),
        symbol=Symbol.stored(data["symbol"]),
        side=Side(data["side"]),
        order_type=OrderType(data["order_type"]),
        qty=data["qty"],
        limit_price=data["limit_price"],
        stop_price=data["stop_price"],
        tif=TimeInForce(data["time_in_force"]),
        expire_date=data["expire_date"],
        status=OrderStatus(data["status"]),
        cum_qty=data["cum_qty"],
        leaves_qty=data["leaves_qty"],
        cum_notional=data["cum_notional"],
        cum_fees=data["cum_fees"],
        venue_order_id=None if venue_order_id is None else VenueOrderId.stored(venue_order_id),
        created_at=_aware(data["created_at"]),
        updated_at=_aware(data["updated_at"]),
        source=OrderSource(data["source"]),
        previous_status=None if previous_status is None else OrderStatus(previous_status),
        pending_cl_ord_id=None if pending_cl_ord_id is None else ClOrdId.stored(pending_cl_ord_id),
        pending_replace=_terms_from_json(data["pending_replace"]),
        orig_cl_ord_id=None if orig_cl_ord_id is None else ClOrdId.stored(orig_cl_ord_id),
    )
    return OrderRecord(
        order=order,
        venue_cl_ord_id=data["venue_cl_ord_id"],
        fingerprint=data["fingerprint"],
        pending_venue_cl_ord_id=data["pending_venue_cl_ord_id"],
        replaces_order_id=data["replaces_order_id"],
        replaced_by_order_id=data["replaced_by_order_id"],
        text=data["text"],
    )


def _aware(value: Any) -> Any:
    """SQLite hands back naive datetimes for timezone-aware columns; they were stored as UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
