"""Small factories for domain tests: one line builds a valid order, event or instrument."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from oms.domain.commands import PlaceOrder
from oms.domain.enums import OrderType, Side, TimeInForce
from oms.domain.events import (
    CancelRejected,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRequested,
    OrderFilled,
    OrderReplaced,
    OrderReplaceRequested,
    ReplaceRejected,
)
from oms.domain.instruments import Instrument
from oms.domain.order import Order

T0 = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)
ORDER_ID = "O-1"
_ids = itertools.count(1)


def event_kwargs(**overrides: object) -> dict[str, object]:
    n = next(_ids)
    base: dict[str, object] = {"event_id": f"ev-{n}", "order_id": ORDER_ID, "our_time": T0 + timedelta(seconds=n)}
    base.update(overrides)
    return base


def place(**overrides: object) -> PlaceOrder:
    fields: dict[str, object] = {
        "account": "ACC-1",
        "cl_ord_id": "C-1",
        "symbol": "AAPL",
        "side": Side.BUY,
        "order_type": OrderType.LIMIT,
        "qty": Decimal("100"),
        "limit_price": Decimal("10.00"),
        "tif": TimeInForce.DAY,
    }
    fields.update(overrides)
    return PlaceOrder(**fields)  # type: ignore[arg-type]


def new_order(**overrides: object) -> Order:
    return Order.place(ORDER_ID, place(**overrides), T0)


def accepted(**overrides: object) -> OrderAccepted:
    return OrderAccepted(**event_kwargs(**{"venue_order_id": "V-1", **overrides}))  # type: ignore[arg-type]


def filled(qty: str, px: str = "10.00", fee: str = "0") -> OrderFilled:
    n = next(_ids)
    return OrderFilled(**event_kwargs(exec_id=f"X-{n}", last_qty=Decimal(qty), last_px=Decimal(px), fee=Decimal(fee)))  # type: ignore[arg-type]


def cancel_requested(cl_ord_id: str = "C-2") -> OrderCancelRequested:
    return OrderCancelRequested(**event_kwargs(cl_ord_id=cl_ord_id))  # type: ignore[arg-type]


def cancel_rejected() -> CancelRejected:
    return CancelRejected(**event_kwargs(reason="too late"))  # type: ignore[arg-type]


def canceled() -> OrderCanceled:
    return OrderCanceled(**event_kwargs())  # type: ignore[arg-type]


def replace_requested(qty: str = "150", price: str = "10.50", cl_ord_id: str = "C-3") -> OrderReplaceRequested:
    return OrderReplaceRequested(
        **event_kwargs(cl_ord_id=cl_ord_id, qty=Decimal(qty), limit_price=Decimal(price))  # type: ignore[arg-type]
    )


def replace_rejected() -> ReplaceRejected:
    return ReplaceRejected(**event_kwargs())  # type: ignore[arg-type]


def replaced(venue_order_id: str | None = None) -> OrderReplaced:
    return OrderReplaced(**event_kwargs(venue_order_id=venue_order_id))  # type: ignore[arg-type]


def instrument(**overrides: object) -> Instrument:
    fields: dict[str, object] = {
        "symbol": "AAPL",
        "currency": "USD",
        "tick_size": Decimal("0.01"),
        "lot_size": Decimal("1"),
        "reference_price": Decimal("10.00"),
    }
    fields.update(overrides)
    return Instrument(**fields)  # type: ignore[arg-type]
