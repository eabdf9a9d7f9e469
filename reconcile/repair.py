"""What a repair may book, decided without I/O: a fill we missed, on an order we know that still has room for it.

A ``missing_ours`` break is safe to repair when the venue's row names one of our orders (by our venue-facing
ClOrdID or the venue's order id), the symbol and side agree, the order is still working, and its leaves quantity
covers the fill (several missed fills of one order are taken in venue time order against the running leaves).
The repair is an ``ApplyExecution`` with the venue's ExecID: the live fill path books it, and that path applies
an ExecID once, so a second run finds the fill matched and books nothing. Everything else (trades missing on the
venue's side, mismatches, duplicates, fills for unknown or finished orders) is left open for a human.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from oms.domain.commands import ApplyExecution
from oms.domain.enums import ExecType, OrderStatus
from oms.domain.errors import DomainError
from reconcile.model import TERMINAL_STATUSES, ZERO, OrderRef, VenueTrade


@dataclass(frozen=True, slots=True)
class Repair:
    """A missed fill to book through the live fill path, and the break it closes."""

    break_key: str
    command: ApplyExecution
    account_id: str
    order_id: str


@dataclass(frozen=True, slots=True)
class Refusal:
    """A missed fill that stays an open break, and why a human must look at it."""

    break_key: str
    reason: str


def plan_repairs(missing: Iterable[VenueTrade], order_of: Callable[[VenueTrade], OrderRef | None]
                 ) -> tuple[list[Repair], list[Refusal]]:
    repairs: list[Repair] = []
    refusals: list[Refusal] = []
    booked: dict[str, tuple] = {}  # order id -> (cum, leaves) after the repairs planned so far
    for row in sorted(missing, key=lambda r: (r.transact_time, r.exec_id)):
        key = f"missing_ours:{row.exec_id}"
        order = order_of(row)
        reason = _unsafe(row, order)
        if reason is not None or order is None:
            refusals.append(Refusal(key, reason or "order unknown"))
            continue
        cum, leaves = booked.get(order.order_id, (order.cum_qty, order.leaves_qty))
        if row.qty > leaves:
            refusals.append(Refusal(key, f"fill of {row.qty} exceeds the order's leaves quantity {leaves}"))
            continue
        cum, leaves = cum + row.qty, leaves - row.qty
        try:
            command = ApplyExecution(
                venue_exec_id=row.exec_id,  # type: ignore[arg-type]
                cl_ord_id=order.venue_cl_ord_id,  # type: ignore[arg-type]
                venue_order_id=row.order_id or None,  # type: ignore[arg-type]
                exec_type=ExecType.TRADE,
                ord_status=OrderStatus.FILLED if leaves == ZERO else OrderStatus.PARTIALLY_FILLED,
                last_qty=row.qty,
                last_px=row.price,
                cum_qty=cum,
                leaves_qty=leaves,
                fee=row.fee,
                text=f"reconcile repair of {key}",
                transact_time=row.transact_time,
            )
        except DomainError as error:
            refusals.append(Refusal(key, f"the venue's ids cannot be booked: {error}"))
            continue
        booked[order.order_id] = (cum, leaves)
        repairs.append(Repair(key, command, order.account_id, order.order_id))
    return repairs, refusals


def _unsafe(row: VenueTrade, order: OrderRef | None) -> str | None:
    if order is None:
        return f"no order of ours has ClOrdID {row.cl_ord_id} or venue order id {row.order_id}"
    if order.symbol != row.symbol:
        return f"our order {order.order_id} is for {order.symbol}, the venue's trade for {row.symbol}"
    if order.side != row.side:
        return f"our order {order.order_id} is a {order.side}, the venue's trade a {row.side}"
    if order.status in TERMINAL_STATUSES:
        return f"our order {order.order_id} is {order.status}"
    if row.qty <= ZERO or row.price <= ZERO:
        return "the venue's quantity and price must be positive"
    return None
