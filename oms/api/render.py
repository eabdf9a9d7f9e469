"""OMS records to the JSON the API returns: decimals as strings, enums as their lower-case names."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from oms.ledger.balances import Balances
from oms.service.order_rows import OrderRecord


def text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def order_json(record: OrderRecord) -> dict[str, Any]:
    order = record.order
    pending = order.pending_replace
    return {
        "id": record.id,
        "client_order_id": str(order.cl_ord_id),
        "account": str(order.account),
        "symbol": str(order.symbol),
        "side": order.side.value,
        "type": order.order_type.value,
        "qty": text(order.qty),
        "time_in_force": order.tif.value,
        "limit_price": text(order.limit_price),
        "stop_price": text(order.stop_price),
        "expire_date": None if order.expire_date is None else order.expire_date.isoformat(),
        "status": order.status.value,
        "filled_qty": text(order.cum_qty),
        "filled_avg_price": text(order.avg_px) if order.cum_qty else None,
        "leaves_qty": text(order.leaves_qty),
        "fees": text(order.cum_fees),
        "source": order.source.value,
        "replaces": record.replaces_order_id,
        "replaced_by": record.replaced_by_order_id,
        "pending_replace_client_order_id": None
        if pending is None or record.replaced_by_order_id is not None
        else str(pending.cl_ord_id),
        "reject_reason": record.text,
        "created_at": timestamp(order.created_at),
        "updated_at": timestamp(order.updated_at),
    }


def balance_json(balances: Balances, currency: str) -> dict[str, Any]:
    cash = balances.in_currency(currency)
    return {
        "account": balances.account_id,
        "currency": currency,
        "available": text(cash.available),
        "reserved": text(cash.reserved),
        "unsettled": text(cash.unsettled),
        "withdrawable": text(cash.withdrawable),
        "total": text(cash.total),
    }
