"""Exceptions raised by the order domain.

One small hierarchy so the service can catch `DomainError` at its boundary and decide: a bad input becomes a
reject, an illegal transition or an overfill is logged and quarantined, never applied.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - imports for annotations only
    from oms.domain.enums import OrderStatus
    from oms.domain.state_machine import OrderEventKind


class DomainError(Exception):
    """Base class of every error the domain raises on purpose."""


class InvalidValue(DomainError, ValueError):
    """A value refused on construction (bad id, NaN, float, absurd exponent, wrong sign...)."""


class CurrencyMismatch(InvalidValue):
    """Two amounts in different currencies were combined or compared."""

    def __init__(self, left: str, right: str) -> None:
        super().__init__(f"currency mismatch: {left} vs {right}")
        self.left = left
        self.right = right


class IllegalTransition(DomainError):
    """An event that the order state machine does not allow in the current status (invariant 5)."""

    def __init__(self, from_status: OrderStatus, kind: OrderEventKind, detail: str = "") -> None:
        message = f"illegal transition: {from_status.name} + {kind.name}"
        if detail:
            message = f"{message} ({detail})"
        super().__init__(message)
        self.from_status = from_status
        self.kind = kind


class Overfill(DomainError):
    """A fill larger than the order's leaves quantity; the service quarantines it instead of booking it."""

    def __init__(self, order_id: str, leaves_qty: Decimal, fill_qty: Decimal) -> None:
        super().__init__(f"overfill on order {order_id}: fill_qty={fill_qty} > leaves_qty={leaves_qty}")
        self.order_id = order_id
        self.leaves_qty = leaves_qty
        self.fill_qty = fill_qty


class OrderMismatch(DomainError):
    """An event addressed to another order was applied to this one."""
