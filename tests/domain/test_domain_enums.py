"""Enums are lower-case strings for the database and translate both ways to FIX codes."""

from __future__ import annotations

import pytest

from oms.domain.enums import ExecType, OrderStatus, OrderType, Side, TimeInForce
from oms.domain.errors import InvalidValue

ORD_STATUS_FIX = [
    (OrderStatus.NEW, "0"),
    (OrderStatus.PARTIALLY_FILLED, "1"),
    (OrderStatus.FILLED, "2"),
    (OrderStatus.DONE_FOR_DAY, "3"),
    (OrderStatus.CANCELED, "4"),
    (OrderStatus.REPLACED, "5"),
    (OrderStatus.PENDING_CANCEL, "6"),
    (OrderStatus.REJECTED, "8"),
    (OrderStatus.PENDING_NEW, "A"),
    (OrderStatus.EXPIRED, "C"),
    (OrderStatus.PENDING_REPLACE, "E"),
]


@pytest.mark.parametrize(("status", "code"), ORD_STATUS_FIX)
def test_ord_status_fix_codes_both_ways(status: OrderStatus, code: str) -> None:
    assert status.fix_code == code
    assert OrderStatus.from_fix(code) is status


def test_every_status_has_a_fix_code() -> None:
    assert {status for status, _ in ORD_STATUS_FIX} == set(OrderStatus)


@pytest.mark.parametrize(
    ("member", "code"),
    [
        (Side.BUY, "1"),
        (Side.SELL, "2"),
        (OrderType.MARKET, "1"),
        (OrderType.LIMIT, "2"),
        (OrderType.STOP, "3"),
        (OrderType.STOP_LIMIT, "4"),
        (TimeInForce.DAY, "0"),
        (TimeInForce.GTC, "1"),
        (TimeInForce.IOC, "3"),
        (TimeInForce.FOK, "4"),
        (TimeInForce.GTD, "6"),
        (ExecType.TRADE, "F"),
        (ExecType.RESTATED, "D"),
    ],
)
def test_other_fix_codes(member: Side | OrderType | TimeInForce | ExecType, code: str) -> None:
    assert member.fix_code == code
    assert type(member).from_fix(code) is member


def test_unknown_fix_code_refused() -> None:
    with pytest.raises(InvalidValue, match="unsupported FIX OrderStatus code '7'"):
        OrderStatus.from_fix("7")


def test_values_are_lower_snake_strings() -> None:
    assert OrderStatus.PENDING_NEW == "pending_new"
    assert str(OrderStatus.DONE_FOR_DAY) == "done_for_day"
    assert OrderStatus("partially_filled") is OrderStatus.PARTIALLY_FILLED


def test_terminal_statuses() -> None:
    terminal = {status for status in OrderStatus if status.is_terminal}
    assert terminal == {
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.REPLACED,
        OrderStatus.REJECTED,
        OrderStatus.EXPIRED,
        OrderStatus.DONE_FOR_DAY,
    }
