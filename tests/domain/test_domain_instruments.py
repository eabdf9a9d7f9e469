"""Instrument quantity and price grids."""

from __future__ import annotations

from decimal import Decimal

import pytest
from domain_stubs import instrument

from oms.domain.errors import InvalidValue

D = Decimal


@pytest.mark.parametrize(
    ("overrides", "qty", "fits"),
    [
        ({}, D("1"), True),
        ({}, D("100"), True),
        ({}, D("0"), False),
        ({}, D("-1"), False),
        ({}, D("1.5"), False),
        ({}, D("NaN"), False),
        ({}, D("Infinity"), False),
        ({"lot_size": D("100")}, D("300"), True),
        ({"lot_size": D("100")}, D("250"), False),
        ({"fractional": True, "qty_decimals": 6}, D("0.000001"), True),
        ({"fractional": True, "qty_decimals": 6}, D("0.0000001"), False),
        ({"fractional": True, "qty_decimals": 2, "lot_size": D("100")}, D("1.25"), True),
        ({}, D("1E+40"), False),
    ],
)
def test_qty_fits(overrides: dict[str, object], qty: Decimal, fits: bool) -> None:
    assert instrument(**overrides).qty_fits(qty) is fits


@pytest.mark.parametrize(
    ("tick", "price", "on_tick"),
    [
        (D("0.01"), D("10.01"), True),
        (D("0.01"), D("10.010"), True),
        (D("0.01"), D("10.015"), False),
        (D("0.05"), D("10.05"), True),
        (D("0.05"), D("10.07"), False),
        (D("0.01"), D("0"), False),
        (D("0.01"), D("-0.01"), False),
        (D("0.0001"), D("0.1234"), True),
    ],
)
def test_price_on_tick(tick: Decimal, price: Decimal, on_tick: bool) -> None:
    assert instrument(tick_size=tick).price_on_tick(price) is on_tick


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"tick_size": D("0")}, "tick_size: must not be zero"),
        ({"lot_size": D("-1")}, "lot_size: must not be negative"),
        ({"tick_size": 0.01}, "tick_size: float is not accepted"),
        ({"currency": "dollars"}, "three upper-case letters"),
        ({"fractional": True}, "needs qty_decimals > 0"),
        ({"reference_price": D("NaN")}, "reference_price: NaN is not finite"),
        ({"symbol": "aapl"}, "symbol 'aapl'"),
    ],
)
def test_instrument_validation(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidValue, match=message):
        instrument(**overrides)
