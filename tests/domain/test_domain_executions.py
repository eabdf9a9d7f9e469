"""ExecutionReports translate into the order event their ExecType means."""

from __future__ import annotations

from decimal import Decimal

import pytest
from domain_stubs import T0, new_order

from oms.domain.commands import ApplyExecution, PlaceOrder
from oms.domain.enums import ExecType, OrderStatus
from oms.domain.errors import InvalidValue
from oms.domain.events import (
    OrderAccepted,
    OrderCanceled,
    OrderCancelPending,
    OrderDoneForDay,
    OrderExpired,
    OrderFilled,
    OrderPendingNew,
    OrderRejected,
    OrderReplaced,
    OrderReplacePending,
    OrderRestated,
)
from oms.domain.executions import UnsupportedExecution, event_for_execution


def execution(exec_type: ExecType, **overrides: object) -> ApplyExecution:
    fields: dict[str, object] = {
        "venue_exec_id": "VX-1",
        "cl_ord_id": "C-1",
        "venue_order_id": "V-1",
        "exec_type": exec_type,
        "ord_status": OrderStatus.NEW,
        "transact_time": T0,
        "text": "why",
    }
    fields.update(overrides)
    return ApplyExecution(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("exec_type", "event_type"),
    [
        (ExecType.PENDING_NEW, OrderPendingNew),
        (ExecType.NEW, OrderAccepted),
        (ExecType.PENDING_CANCEL, OrderCancelPending),
        (ExecType.CANCELED, OrderCanceled),
        (ExecType.PENDING_REPLACE, OrderReplacePending),
        (ExecType.REPLACED, OrderReplaced),
        (ExecType.REJECTED, OrderRejected),
        (ExecType.EXPIRED, OrderExpired),
        (ExecType.DONE_FOR_DAY, OrderDoneForDay),
        (ExecType.RESTATED, OrderRestated),
    ],
)
def test_exec_type_to_event(exec_type: ExecType, event_type: type) -> None:
    event = event_for_execution("O-1", execution(exec_type), event_id="e1", our_time=T0)
    assert type(event) is event_type and event.venue_time == T0  # type: ignore[union-attr]


def test_trade_becomes_fill_with_our_fee() -> None:
    report = execution(ExecType.TRADE, last_qty=Decimal("40"), last_px=Decimal("10.01"), fee=Decimal("0.02"))
    event = event_for_execution("O-1", report, event_id="e1", our_time=T0, fee=Decimal("1.00"))
    assert isinstance(event, OrderFilled)
    assert (event.exec_id, event.last_qty, event.last_px, event.fee) == ("VX-1", 40, Decimal("10.01"), 1)
    order = new_order().apply(event)
    assert (order.status, order.cum_qty) == (OrderStatus.PARTIALLY_FILLED, 40)


def test_status_report_changes_nothing_and_busts_are_refused() -> None:
    assert event_for_execution("O-1", execution(ExecType.ORDER_STATUS), event_id="e", our_time=T0) is None
    with pytest.raises(UnsupportedExecution, match="TRADE_CANCEL"):
        event_for_execution("O-1", execution(ExecType.TRADE_CANCEL), event_id="e", our_time=T0)


def test_ack_without_venue_order_id_refused() -> None:
    with pytest.raises(InvalidValue, match="without a venue order id"):
        event_for_execution("O-1", execution(ExecType.NEW, venue_order_id=None), event_id="e", our_time=T0)


def test_execution_needs_an_order_reference_and_aware_time() -> None:
    with pytest.raises(InvalidValue, match="must reference the order"):
        execution(ExecType.NEW, cl_ord_id=None, venue_order_id=None)
    with pytest.raises(InvalidValue, match="timezone-aware"):
        execution(ExecType.NEW, transact_time=T0.replace(tzinfo=None))
    with pytest.raises(InvalidValue, match="last_qty: expected Decimal, got float"):
        execution(ExecType.TRADE, last_qty=1.0)


def test_commands_refuse_floats_and_bad_ids() -> None:
    base = {"account": "ACC-1", "cl_ord_id": "C-1", "symbol": "AAPL", "side": "buy", "order_type": "limit"}
    with pytest.raises(InvalidValue, match="side: expected Side"):
        PlaceOrder(**base, qty=Decimal(1))  # type: ignore[arg-type]
    from oms.domain.enums import OrderType, Side

    typed = {**base, "side": Side.BUY, "order_type": OrderType.LIMIT}
    with pytest.raises(InvalidValue, match="qty: expected Decimal, got float"):
        PlaceOrder(**typed, qty=1.0)  # type: ignore[arg-type]
    with pytest.raises(InvalidValue, match="ClOrdID 'a b'"):
        PlaceOrder(**{**typed, "cl_ord_id": "a b"}, qty=Decimal(1))  # type: ignore[arg-type]
