"""The one order state machine (invariant 5): a single table of legal (status, event kind) -> next status.

Aligned with the FIX 4.4 order state change matrices (Volume 4, Appendix D). Rows that look surprising but happen
at real venues are commented "real world possibility". Anything not in the table is refused with
`IllegalTransition`; the service logs and quarantines it, it is never applied.

Leaving a pending cancel/replace after a reject must return to the status the order would have had without the
request. The table marks those rows with `RESUME`; `transition` then needs `previous`, the working status kept on
the order (`Order.previous_status`), which the order keeps current while the request is pending (an ack or a
partial fill that arrives meanwhile moves it from PENDING_NEW to NEW, or to PARTIALLY_FILLED).

Whether a fill is FILLED_PARTIALLY or FILLED is decided by the caller from quantities (`fill_kind`): a "partial"
fill that completes the order is FILLED.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from enum import Enum, StrEnum
from types import MappingProxyType
from typing import Final

from oms.domain.enums import OrderStatus
from oms.domain.errors import IllegalTransition

__all__ = [
    "IllegalTransition",
    "OrderEventKind",
    "RESUME",
    "Resume",
    "TRANSITIONS",
    "fill_kind",
    "is_legal",
    "transition",
]


class OrderEventKind(StrEnum):
    """What happened to an order. Our own actions and the venue's answers are distinct kinds."""

    SUBMITTED = "submitted"  # we sent NewOrderSingle to the venue
    DENIED = "denied"  # our pre-trade risk refused it before sending
    NEW_PENDING = "new_pending"  # venue ExecType=PendingNew
    ACCEPTED = "accepted"  # venue ExecType=New
    REJECTED = "rejected"  # venue ExecType=Rejected
    FILLED_PARTIALLY = "filled_partially"  # venue ExecType=Trade, order not complete
    FILLED = "filled"  # venue ExecType=Trade completing the order
    CANCEL_REQUESTED = "cancel_requested"  # we sent OrderCancelRequest
    CANCEL_PENDING = "cancel_pending"  # venue ExecType=PendingCancel
    CANCEL_REJECTED = "cancel_rejected"  # venue OrderCancelReject for a cancel
    CANCELED = "canceled"  # venue ExecType=Canceled (requested or unsolicited)
    REPLACE_REQUESTED = "replace_requested"  # we sent OrderCancelReplaceRequest
    REPLACE_PENDING = "replace_pending"  # venue ExecType=PendingReplace
    REPLACE_REJECTED = "replace_rejected"  # venue OrderCancelReject for a replace
    REPLACED = "replaced"  # venue ExecType=Replaced
    EXPIRED = "expired"  # venue ExecType=Expired
    DONE_FOR_DAY = "done_for_day"  # venue ExecType=DoneForDay
    RESTATED = "restated"  # venue ExecType=Restated, status unchanged


class Resume(Enum):
    """Table marker: go back to the working status held before the cancel/replace request."""

    RESUME = "resume"


RESUME: Final = Resume.RESUME

S = OrderStatus
K = OrderEventKind

_TABLE: dict[tuple[OrderStatus, OrderEventKind], OrderStatus | Resume] = {
    # --- PENDING_NEW: committed, sent or about to be sent, no venue answer yet
    (S.PENDING_NEW, K.SUBMITTED): S.PENDING_NEW,
    (S.PENDING_NEW, K.NEW_PENDING): S.PENDING_NEW,
    (S.PENDING_NEW, K.DENIED): S.REJECTED,
    (S.PENDING_NEW, K.ACCEPTED): S.NEW,
    (S.PENDING_NEW, K.REJECTED): S.REJECTED,
    (S.PENDING_NEW, K.FILLED_PARTIALLY): S.PARTIALLY_FILLED,  # real world possibility: trade before (or without) the ack
    (S.PENDING_NEW, K.FILLED): S.FILLED,  # real world possibility: marketable order filled before the ack
    (S.PENDING_NEW, K.CANCEL_REQUESTED): S.PENDING_CANCEL,  # FIX allows cancelling an unacknowledged order
    (S.PENDING_NEW, K.CANCELED): S.CANCELED,  # real world possibility: IOC/FOK with nothing done, never rests
    (S.PENDING_NEW, K.EXPIRED): S.EXPIRED,  # real world possibility: GTD already past, IOC reported as expired
    # --- NEW: acknowledged, nothing filled
    (S.NEW, K.FILLED_PARTIALLY): S.PARTIALLY_FILLED,
    (S.NEW, K.FILLED): S.FILLED,
    (S.NEW, K.CANCEL_REQUESTED): S.PENDING_CANCEL,
    (S.NEW, K.REPLACE_REQUESTED): S.PENDING_REPLACE,
    (S.NEW, K.CANCELED): S.CANCELED,  # unsolicited cancel by the venue
    (S.NEW, K.EXPIRED): S.EXPIRED,
    (S.NEW, K.DONE_FOR_DAY): S.DONE_FOR_DAY,
    (S.NEW, K.RESTATED): S.NEW,
    # --- PARTIALLY_FILLED
    (S.PARTIALLY_FILLED, K.ACCEPTED): S.PARTIALLY_FILLED,  # real world possibility: the ack overtaken by a fill
    (S.PARTIALLY_FILLED, K.FILLED_PARTIALLY): S.PARTIALLY_FILLED,
    (S.PARTIALLY_FILLED, K.FILLED): S.FILLED,
    (S.PARTIALLY_FILLED, K.CANCEL_REQUESTED): S.PENDING_CANCEL,
    (S.PARTIALLY_FILLED, K.REPLACE_REQUESTED): S.PENDING_REPLACE,
    (S.PARTIALLY_FILLED, K.CANCELED): S.CANCELED,  # unsolicited cancel of the remainder (IOC rest, venue action)
    (S.PARTIALLY_FILLED, K.EXPIRED): S.EXPIRED,
    (S.PARTIALLY_FILLED, K.DONE_FOR_DAY): S.DONE_FOR_DAY,
    (S.PARTIALLY_FILLED, K.RESTATED): S.PARTIALLY_FILLED,
    # --- PENDING_CANCEL: our cancel request is outstanding
    (S.PENDING_CANCEL, K.CANCEL_PENDING): S.PENDING_CANCEL,
    (S.PENDING_CANCEL, K.NEW_PENDING): S.PENDING_CANCEL,  # real world possibility: venue PendingNew crosses our cancel
    (S.PENDING_CANCEL, K.ACCEPTED): S.PENDING_CANCEL,  # real world possibility: the ack crosses our cancel request
    (S.PENDING_CANCEL, K.REJECTED): S.REJECTED,  # real world possibility: the new order rejected while cancel pending
    (S.PENDING_CANCEL, K.FILLED_PARTIALLY): S.PENDING_CANCEL,  # real world possibility: fill while cancel pending
    (S.PENDING_CANCEL, K.FILLED): S.FILLED,  # real world possibility: fill completes the order before the cancel
    (S.PENDING_CANCEL, K.CANCELED): S.CANCELED,
    (S.PENDING_CANCEL, K.CANCEL_REJECTED): RESUME,  # back to PENDING_NEW/NEW/PARTIALLY_FILLED as it stands now
    (S.PENDING_CANCEL, K.EXPIRED): S.EXPIRED,  # real world possibility: expiry crosses our cancel request
    (S.PENDING_CANCEL, K.DONE_FOR_DAY): S.DONE_FOR_DAY,  # real world possibility: end of day crosses the cancel
    (S.PENDING_CANCEL, K.RESTATED): S.PENDING_CANCEL,
    # --- PENDING_REPLACE: our replace request is outstanding
    (S.PENDING_REPLACE, K.REPLACE_PENDING): S.PENDING_REPLACE,
    (S.PENDING_REPLACE, K.FILLED_PARTIALLY): S.PENDING_REPLACE,  # real world possibility: fill while replace pending
    (S.PENDING_REPLACE, K.FILLED): S.FILLED,  # real world possibility: fill completes the order before the replace
    (S.PENDING_REPLACE, K.REPLACED): S.REPLACED,
    (S.PENDING_REPLACE, K.REPLACE_REJECTED): RESUME,  # back to NEW/PARTIALLY_FILLED as it stands now
    (S.PENDING_REPLACE, K.CANCELED): S.CANCELED,  # real world possibility: unsolicited cancel crosses our replace
    (S.PENDING_REPLACE, K.EXPIRED): S.EXPIRED,  # real world possibility: expiry crosses our replace request
    (S.PENDING_REPLACE, K.DONE_FOR_DAY): S.DONE_FOR_DAY,  # real world possibility: end of day crosses the replace
    (S.PENDING_REPLACE, K.RESTATED): S.PENDING_REPLACE,
    # --- terminal statuses: only a late answer to a request that crossed the final event, a no-op
    (S.FILLED, K.CANCEL_REJECTED): S.FILLED,  # real world possibility: "too late to cancel" after the last fill
    (S.FILLED, K.REPLACE_REJECTED): S.FILLED,  # real world possibility: "too late to replace" after the last fill
    (S.CANCELED, K.CANCEL_REJECTED): S.CANCELED,  # real world possibility: unsolicited cancel beat ours
    (S.CANCELED, K.REPLACE_REJECTED): S.CANCELED,  # real world possibility: unsolicited cancel beat our replace
    (S.EXPIRED, K.CANCEL_REJECTED): S.EXPIRED,  # real world possibility: expiry beat our cancel
    (S.EXPIRED, K.REPLACE_REJECTED): S.EXPIRED,  # real world possibility: expiry beat our replace
    (S.DONE_FOR_DAY, K.CANCEL_REJECTED): S.DONE_FOR_DAY,  # real world possibility: end of day beat our cancel
    (S.DONE_FOR_DAY, K.REPLACE_REJECTED): S.DONE_FOR_DAY,  # real world possibility: end of day beat our replace
    (S.REJECTED, K.CANCEL_REJECTED): S.REJECTED,  # real world possibility: cancel of a new order the venue rejected
}
# Deliberately absent: any fill after CANCELED/EXPIRED/REJECTED/REPLACED/DONE_FOR_DAY. Their reservation is already
# released (invariant 3), so such a trade is quarantined for operations and reconciliation rather than booked.

TRANSITIONS: Final[Mapping[tuple[OrderStatus, OrderEventKind], OrderStatus | Resume]] = MappingProxyType(_TABLE)

_RESUMABLE: Final = frozenset({S.PENDING_NEW, S.NEW, S.PARTIALLY_FILLED})

del S, K


def transition(status: OrderStatus, kind: OrderEventKind, previous: OrderStatus | None = None) -> OrderStatus:
    """Next status for `kind` in `status`, or raise `IllegalTransition`.

    `previous` is the working status beneath a pending cancel/replace; it is required only by RESUME rows.
    """
    target = _TABLE.get((status, kind))
    if target is None:
        raise IllegalTransition(status, kind)
    if target is RESUME:
        if previous not in _RESUMABLE:
            raise IllegalTransition(status, kind, f"cannot resume to previous status {previous}")
        return previous  # type: ignore[return-value]
    return target  # type: ignore[return-value]


def is_legal(status: OrderStatus, kind: OrderEventKind) -> bool:
    """Whether the table has a row for (status, kind)."""
    return (status, kind) in _TABLE


def fill_kind(cum_qty_after: Decimal, order_qty: Decimal) -> OrderEventKind:
    """FILLED when the fill completes the order, otherwise FILLED_PARTIALLY."""
    return OrderEventKind.FILLED if cum_qty_after >= order_qty else OrderEventKind.FILLED_PARTIALLY
