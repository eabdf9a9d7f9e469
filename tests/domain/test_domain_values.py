"""Value types refuse bad input with a clear message; money refuses to mix currencies."""

from __future__ import annotations

from decimal import Decimal

import pytest

from oms.domain.values import (
    AccountId,
    ClOrdId,
    CurrencyMismatch,
    ExecId,
    InvalidValue,
    Money,
    OrderId,
    Symbol,
    parse_decimal,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", Decimal("1")),
        ("10.50", Decimal("10.50")),
        ("-5.25", Decimal("-5.25")),
        (".5", Decimal("0.5")),
        ("1E+2", Decimal("100")),
        ("12.3e-3", Decimal("0.0123")),
        ("-0", Decimal("0")),
        ("1.500000000000000000", Decimal("1.500000000000")),
        (Decimal("7.10"), Decimal("7.10")),
        (3, Decimal("3")),
    ],
)
def test_parse_decimal_accepts(value: object, expected: Decimal) -> None:
    parsed = parse_decimal(value, "qty")
    assert parsed == expected and str(parsed) == str(expected)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1.5, "qty: float is not accepted"),
        (True, "qty: bool is not accepted"),
        ("", "qty: empty string"),
        ("NaN", "qty: 'NaN' is not a decimal number"),
        ("inf", "qty: 'inf' is not a decimal number"),
        ("-Infinity", "is not a decimal number"),
        (Decimal("NaN"), "qty: NaN is not finite"),
        (Decimal("-Infinity"), "qty: -Infinity is not finite"),
        ("1E+999999", "is not a decimal number"),
        (Decimal("1E+999999"), "more than 15 integer digits"),
        (Decimal("1E-999999"), "more than 12 decimal places"),
        ("0.0000000000001", "more than 12 decimal places"),
        ("1.0000000000000000000000000000001", "more than 12 decimal places"),
        (" 1", "is not a decimal number"),
        ("1_000", "is not a decimal number"),
        ("\u0663", "is not a decimal number"),  # Arabic-Indic 3: Decimal() would take it, FIX and the CLI must not
        ("\uff11\uff10", "is not a decimal number"),  # full-width 10
        ("1,5", "is not a decimal number"),
        ("1" * 65, "is not a decimal number"),
        (None, "qty: NoneType is not a decimal number"),
    ],
)
def test_parse_decimal_refuses(value: object, message: str) -> None:
    with pytest.raises(InvalidValue, match=message.replace("(", r"\(").replace("+", r"\+")):
        parse_decimal(value, "qty")


@pytest.mark.parametrize(
    ("value", "kwargs", "message"),
    [
        ("-1", {"allow_negative": False}, "qty: must not be negative, got -1"),
        ("0", {"allow_zero": False}, "qty: must not be zero"),
        ("1.001", {"max_places": 2}, "qty: 1.001 has more than 2 decimal places"),
    ],
)
def test_parse_decimal_sign_and_scale_rules(value: str, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidValue, match=message):
        parse_decimal(value, "qty", **kwargs)  # type: ignore[arg-type]


def test_invalid_value_is_a_value_error() -> None:
    assert issubclass(InvalidValue, ValueError)


@pytest.mark.parametrize("id_type", [AccountId, ClOrdId, OrderId, ExecId])
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "must not be empty"),
        ("a b", "has characters outside"),
        ("x\x01y", "has characters outside"),
        ("a,b", "has characters outside"),
        ("a=b", "has characters outside"),
        ("é", "has characters outside"),
        ("x" * 65, "longer than 64 characters"),
        (12, "must be a string, got int"),
    ],
)
def test_identifiers_refuse(id_type: type, value: object, message: str) -> None:
    with pytest.raises(InvalidValue, match=message):
        id_type(value)


def test_identifier_is_a_cheap_string() -> None:
    cl_ord_id = ClOrdId("ord-2024/01:A.b_c#1+x@y")
    assert cl_ord_id == "ord-2024/01:A.b_c#1+x@y"
    assert ClOrdId(cl_ord_id) is cl_ord_id
    assert repr(cl_ord_id) == "ClOrdId('ord-2024/01:A.b_c#1+x@y')"
    assert {cl_ord_id: 1}["ord-2024/01:A.b_c#1+x@y"] == 1


@pytest.mark.parametrize("value", ["AAPL", "BRK.B", "BTC/USD", "ES_F", "7203"])
def test_symbol_accepts(value: str) -> None:
    assert Symbol(value) == value


@pytest.mark.parametrize(
    ("value", "message"),
    [("aapl", "outside upper-case"), (".A", "outside upper-case"), ("A" * 25, "longer than 24"), ("", "empty")],
)
def test_symbol_refuses(value: str, message: str) -> None:
    with pytest.raises(InvalidValue, match=message):
        Symbol(value)


def test_money_arithmetic_in_one_currency() -> None:
    a = Money(Decimal("10.25"), "USD")
    b = Money(Decimal("0.75"), "USD")
    assert a + b == Money(Decimal("11.00"), "USD")
    assert a - b == Money(Decimal("9.50"), "USD")
    assert -a == Money(Decimal("-10.25"), "USD")
    assert a * 2 == Money(Decimal("20.50"), "USD")
    assert b < a and a >= b
    assert Money(Decimal("1.005"), "USD").rounded() == Money(Decimal("1.01"), "USD")
    assert str(a) == "10.25 USD"


@pytest.mark.parametrize(
    "operation",
    [
        lambda a, b: a + b,
        lambda a, b: a - b,
        lambda a, b: a < b,
        lambda a, b: a >= b,
    ],
)
def test_money_refuses_to_mix_currencies(operation) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CurrencyMismatch, match="currency mismatch: USD vs EUR"):
        operation(Money(Decimal(1), "USD"), Money(Decimal(1), "EUR"))


def test_money_equality_across_currencies_is_false_not_an_error() -> None:
    assert Money(Decimal(1), "USD") != Money(Decimal(1), "EUR")


@pytest.mark.parametrize(
    ("amount", "currency", "error", "message"),
    [
        (1.0, "USD", InvalidValue, "amount: float is not accepted"),
        (Decimal("NaN"), "USD", InvalidValue, "not finite"),
        (Decimal(1), "usd", InvalidValue, "three upper-case letters"),
        (Decimal(1), "US", InvalidValue, "three upper-case letters"),
    ],
)
def test_money_refuses_bad_construction(amount: object, currency: str, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        Money(amount, currency)  # type: ignore[arg-type]


def test_money_refuses_float_factor() -> None:
    with pytest.raises(TypeError, match="float"):
        Money(Decimal(1), "USD") * 1.5  # type: ignore[operator]
