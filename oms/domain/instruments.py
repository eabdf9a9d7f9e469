"""Tradable instruments and the quantity/price grid they impose."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from oms.domain.errors import InvalidValue
from oms.domain.values import Symbol, parse_currency, parse_decimal

__all__ = ["Instrument"]

_MAX_QTY_DECIMALS = 12


def _is_multiple(value: Decimal, step: Decimal) -> bool:
    """Exact divisibility test; a quotient too large for the context counts as not fitting."""
    try:
        return value % step == 0
    except InvalidOperation:
        return False


@dataclass(frozen=True, slots=True, kw_only=True)
class Instrument:
    """An instrument as the OMS needs it for pre-trade checks.

    Whole-share instruments trade in multiples of `lot_size`. Fractional ones accept any positive quantity with at
    most `qty_decimals` decimal places (the lot size is then ignored). `reference_price` is the last known price
    used for collars and market-order reservations; None when there is none yet.
    """

    symbol: Symbol
    currency: str
    tick_size: Decimal
    lot_size: Decimal = Decimal(1)
    fractional: bool = False
    tradable: bool = True
    reference_price: Decimal | None = None
    qty_decimals: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "symbol", Symbol(self.symbol))
        parse_currency(self.currency)
        positive = {"allow_negative": False, "allow_zero": False}
        object.__setattr__(self, "tick_size", parse_decimal(self.tick_size, "tick_size", **positive))
        object.__setattr__(self, "lot_size", parse_decimal(self.lot_size, "lot_size", **positive))
        if self.reference_price is not None:
            object.__setattr__(
                self, "reference_price", parse_decimal(self.reference_price, "reference_price", **positive)
            )
        if not isinstance(self.qty_decimals, int) or not 0 <= self.qty_decimals <= _MAX_QTY_DECIMALS:
            raise InvalidValue(f"qty_decimals must be an int from 0 to {_MAX_QTY_DECIMALS}")
        if self.fractional and self.qty_decimals == 0:
            raise InvalidValue(f"{self.symbol}: a fractional instrument needs qty_decimals > 0")

    @property
    def qty_step(self) -> Decimal:
        """Smallest quantity increment: the lot, or 10**-qty_decimals for fractional instruments."""
        return Decimal(1).scaleb(-self.qty_decimals) if self.fractional else self.lot_size

    def qty_fits(self, qty: Decimal) -> bool:
        """Positive, finite, and on the quantity grid."""
        if not isinstance(qty, Decimal) or not qty.is_finite() or qty <= 0:
            return False
        return _is_multiple(qty, self.qty_step)

    def price_on_tick(self, price: Decimal) -> bool:
        """Positive, finite, and a whole number of ticks (a single tick size; no price-banded tick tables yet)."""
        if not isinstance(price, Decimal) or not price.is_finite() or price <= 0:
            return False
        return _is_multiple(price, self.tick_size)
