"""Static checks of order parameters against an instrument (no book state needed)."""

from __future__ import annotations

from decimal import Decimal

from exchange.engine.types import RejectReason

_ZERO = Decimal(0)


def check_qty(qty: object, lot: Decimal) -> str | None:
    """Return an error text, or None when ``qty`` is a positive multiple of ``lot``."""
    if type(qty) is not Decimal:
        return "quantity must be a Decimal"
    if not qty.is_finite() or qty <= _ZERO:
        return "quantity must be positive"
    if qty % lot:
        return f"quantity must be a multiple of the lot size {lot}"
    return None


def price_ticks(price: object, tick: Decimal, what: str) -> tuple[int, str | None]:
    """Convert a price to integer ticks; the text is set when the price is invalid."""
    if price is None:
        return 0, f"{what} is required"
    if type(price) is not Decimal:
        return 0, f"{what} must be a Decimal"
    if not price.is_finite() or price <= _ZERO:
        return 0, f"{what} must be positive"
    ticks, rest = divmod(price, tick)
    if rest:
        return 0, f"{what} {price} is not a multiple of the tick size {tick}"
    return int(ticks), None


INVALID_QTY = RejectReason.INVALID_QTY
INVALID_PRICE = RejectReason.INVALID_PRICE
