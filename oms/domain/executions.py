"""Translate a venue ExecutionReport (`ApplyExecution`) into the order event it means.

The FIX layer has already parsed tags into `ApplyExecution`; this decides which past-tense event follows from the
ExecType. OrderCancelReject is not an ExecutionReport: the service builds `CancelRejected`/`ReplaceRejected`
directly. Trade corrections and busts change booked fills and are refused here for operations to handle.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Final

from oms.domain.commands import ApplyExecution
from oms.domain.enums import ExecType
from oms.domain.errors import DomainError, InvalidValue
from oms.domain.events import (
    OrderAccepted,
    OrderCanceled,
    OrderCancelPending,
    OrderDoneForDay,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderPendingNew,
    OrderRejected,
    OrderReplaced,
    OrderReplacePending,
    OrderRestated,
)
from oms.domain.values import OrderId

__all__ = ["UnsupportedExecution", "event_for_execution"]


class UnsupportedExecution(DomainError):
    """An ExecType the OMS does not book automatically (trade correction or bust): quarantine it."""


def event_for_execution(
    order_id: OrderId,
    execution: ApplyExecution,
    *,
    event_id: str,
    our_time: datetime,
    fee: Decimal | None = None,
) -> OrderEvent | None:
    """The event for `execution` on our order `order_id`, or None for a status report that changes nothing.

    `fee` overrides the venue's fee with what we charge the customer for a trade.
    """
    base = {"event_id": event_id, "order_id": order_id, "our_time": our_time, "venue_time": execution.transact_time}
    build = _BUILDERS.get(execution.exec_type)
    if build is None:
        if execution.exec_type is ExecType.ORDER_STATUS:
            return None
        raise UnsupportedExecution(f"ExecType {execution.exec_type.name} is not booked automatically")
    return build(execution, base, fee)


def _accepted(execution: ApplyExecution, base: dict[str, object], fee: Decimal | None) -> OrderEvent:
    if execution.venue_order_id is None:
        raise InvalidValue(f"execution {execution.venue_exec_id}: ExecType=New without a venue order id")
    return OrderAccepted(**base, venue_order_id=execution.venue_order_id)  # type: ignore[arg-type]


def _filled(execution: ApplyExecution, base: dict[str, object], fee: Decimal | None) -> OrderEvent:
    return OrderFilled(
        **base,  # type: ignore[arg-type]
        exec_id=execution.venue_exec_id,
        last_qty=execution.last_qty,
        last_px=execution.last_px,
        fee=execution.fee if fee is None else fee,
    )


def _simple(event_type: type[OrderEvent]) -> Callable[[ApplyExecution, dict[str, object], Decimal | None], OrderEvent]:
    def build(execution: ApplyExecution, base: dict[str, object], fee: Decimal | None) -> OrderEvent:
        return event_type(**base)  # type: ignore[arg-type]

    return build


def _with_reason(event_type: type[OrderEvent]) -> Callable[[ApplyExecution, dict[str, object], Decimal | None], OrderEvent]:
    def build(execution: ApplyExecution, base: dict[str, object], fee: Decimal | None) -> OrderEvent:
        return event_type(**base, reason=execution.text)  # type: ignore[call-arg, arg-type]

    return build


def _replaced(execution: ApplyExecution, base: dict[str, object], fee: Decimal | None) -> OrderEvent:
    return OrderReplaced(**base, venue_order_id=execution.venue_order_id)  # type: ignore[arg-type]


_BUILDERS: Final[dict[ExecType, Callable[[ApplyExecution, dict[str, object], Decimal | None], OrderEvent]]] = {
    ExecType.PENDING_NEW: _simple(OrderPendingNew),
    ExecType.NEW: _accepted,
    ExecType.TRADE: _filled,
    ExecType.PENDING_CANCEL: _simple(OrderCancelPending),
    ExecType.CANCELED: _with_reason(OrderCanceled),
    ExecType.PENDING_REPLACE: _simple(OrderReplacePending),
    ExecType.REPLACED: _replaced,
    ExecType.REJECTED: _with_reason(OrderRejected),
    ExecType.EXPIRED: _simple(OrderExpired),
    ExecType.DONE_FOR_DAY: _simple(OrderDoneForDay),
    ExecType.RESTATED: _with_reason(OrderRestated),
}
