"""Pre-trade checks, table-driven: passing cases return None, denied cases render exactly."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from domain_stubs import instrument, place

from oms.domain.calendar import TradingCalendar
from oms.domain.enums import AccountStatus, OrderType, Side, TimeInForce
from oms.domain.errors import InvalidValue
from oms.domain.risk import (
    AccountLimits,
    Denial,
    FeeSchedule,
    KillSwitches,
    PreTradeContext,
    RateLimiter,
    ReasonCode,
    Resubmission,
    check_account,
    check_buying_power,
    check_collar,
    check_instrument,
    check_kill_switches,
    check_limits,
    check_new_order,
    check_order_shape,
    check_position,
    check_rate,
    check_trading_hours,
    compare_submission,
    duplicate_denial,
    required_cash,
)
from oms.domain.values import AccountId, Symbol

D = Decimal
LIMITS = AccountLimits(max_order_qty=D("1000"), max_order_notional=D("50000"), price_collar_pct=D("0.10"),
                       market_order_collar_pct=D("0.05"))
FEES = FeeSchedule(rate=D("0.001"), minimum=D("1.00"))
NO_FEES = FeeSchedule()


def rendered(denial: Denial | None) -> str | None:
    return None if denial is None else str(denial)


def test_denial_rendering_and_fix_codes() -> None:
    denial = Denial(ReasonCode.INSUFFICIENT_BUYING_POWER, {"required": "1000.50", "available": "999.00"})
    assert str(denial) == "INSUFFICIENT_BUYING_POWER: required=1000.50, available=999.00"
    assert denial.fix_ord_rej_reason == 3
    assert str(Denial(ReasonCode.KILL_SWITCH)) == "KILL_SWITCH"
    assert hash(denial) == hash(Denial(ReasonCode.INSUFFICIENT_BUYING_POWER,
                                       {"required": "1000.50", "available": "999.00"}))


@pytest.mark.parametrize(
    ("reason", "ord_rej_reason", "cxl_rej_reason"),
    [
        (ReasonCode.UNKNOWN_SYMBOL, 1, 2),
        (ReasonCode.MARKET_CLOSED, 2, 2),
        (ReasonCode.MAX_ORDER_NOTIONAL, 3, 2),
        (ReasonCode.UNKNOWN_ORDER, 5, 1),
        (ReasonCode.DUPLICATE_CL_ORD_ID, 6, 6),
        (ReasonCode.REQUEST_MISMATCH, 0, 2),
        (ReasonCode.INVALID_PRICE, 11, 2),
        (ReasonCode.INVALID_QUANTITY, 13, 2),
        (ReasonCode.RATE_LIMITED, 99, 2),
        (ReasonCode.KILL_SWITCH, 0, 2),
        (ReasonCode.ORDER_NOT_CANCELABLE, 0, 0),
        (ReasonCode.ORDER_ALREADY_PENDING, 0, 3),
    ],
)
def test_reason_fix_codes(reason: ReasonCode, ord_rej_reason: int, cxl_rej_reason: int) -> None:
    assert (reason.fix_ord_rej_reason, reason.fix_cxl_rej_reason) == (ord_rej_reason, cxl_rej_reason)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, None),
        ({"order_type": OrderType.MARKET, "limit_price": None}, None),
        ({"order_type": OrderType.STOP, "limit_price": None, "stop_price": D("11.00")}, None),
        ({"order_type": OrderType.STOP_LIMIT, "stop_price": D("11.00")}, None),
        ({"tif": TimeInForce.GTD, "expire_date": date(2024, 3, 8)}, None),
        ({"qty": D("0")}, "INVALID_QUANTITY: qty=0, rule=positive"),
        ({"qty": D("-5")}, "INVALID_QUANTITY: qty=-5, rule=positive"),
        ({"qty": D("NaN")}, "INVALID_QUANTITY: qty=NaN, rule=positive"),
        ({"qty": D("Infinity")}, "INVALID_QUANTITY: qty=Infinity, rule=positive"),
        ({"qty": D("1.5")}, "INVALID_QUANTITY: qty=1.5, step=1"),
        ({"limit_price": None}, "INVALID_PRICE: limit_price=missing, order_type=LIMIT"),
        ({"order_type": OrderType.MARKET}, "INVALID_PRICE: limit_price=not_allowed, order_type=MARKET"),
        ({"order_type": OrderType.STOP, "limit_price": None}, "INVALID_PRICE: stop_price=missing, order_type=STOP"),
        ({"stop_price": D("9")}, "INVALID_PRICE: stop_price=not_allowed, order_type=LIMIT"),
        ({"limit_price": D("10.005")}, "INVALID_PRICE: limit_price=10.005, tick=0.01"),
        ({"limit_price": D("-1")}, "INVALID_PRICE: limit_price=-1, rule=positive"),
        ({"limit_price": D("sNaN")}, "INVALID_PRICE: limit_price=sNaN, rule=positive"),
        ({"tif": TimeInForce.GTD}, "INVALID_EXPIRE_DATE: expire_date=missing, tif=GTD"),
        ({"tif": TimeInForce.GTD, "expire_date": date(2024, 3, 1)},
         "INVALID_EXPIRE_DATE: expire_date=2024-03-01, today=2024-03-04"),
        ({"expire_date": date(2024, 3, 8)}, "INVALID_EXPIRE_DATE: expire_date=not_allowed, tif=DAY"),
    ],
)
def test_check_order_shape(overrides: dict[str, object], expected: str | None) -> None:
    assert rendered(check_order_shape(place(**overrides), instrument(), today=date(2024, 3, 4))) == expected


@pytest.mark.parametrize(
    ("qty", "expected"),
    [(D("0.125"), None), (D("0.0001"), None), (D("0.00001"), "INVALID_QUANTITY: qty=0.00001, step=0.0001")],
)
def test_check_order_shape_fractional(qty: Decimal, expected: str | None) -> None:
    fractional = instrument(fractional=True, qty_decimals=4)
    assert rendered(check_order_shape(place(qty=qty), fractional)) == expected


@pytest.mark.parametrize(
    ("overrides", "reference", "expected"),
    [
        ({}, D("10"), None),
        ({"qty": D("1000"), "limit_price": D("50.00")}, D("50"), None),
        ({"qty": D("1001")}, D("10"), "MAX_ORDER_QTY: qty=1001, max=1000"),
        ({"qty": D("1000"), "limit_price": D("50.01")}, D("50"), "MAX_ORDER_NOTIONAL: notional=50010.00, max=50000.00"),
        ({"order_type": OrderType.MARKET, "limit_price": None, "qty": D("900")}, D("60"),
         "MAX_ORDER_NOTIONAL: notional=54000.00, max=50000.00"),
        ({"order_type": OrderType.MARKET, "limit_price": None}, None, "NO_REFERENCE_PRICE: check=notional"),
    ],
)
def test_check_limits(overrides: dict[str, object], reference: Decimal | None, expected: str | None) -> None:
    assert rendered(check_limits(place(**overrides), LIMITS, reference)) == expected


@pytest.mark.parametrize(
    ("side", "limit_price", "reference", "expected"),
    [
        (Side.BUY, D("110.00"), D("100"), None),
        (Side.BUY, D("50.00"), D("100"), None),  # passive, far from the market: fine
        (Side.BUY, D("110.01"), D("100"), "PRICE_OUTSIDE_COLLAR: limit_price=110.01, max_price=110.00, "
                                          "reference_price=100"),
        (Side.SELL, D("90.00"), D("100"), None),
        (Side.SELL, D("200.00"), D("100"), None),  # passive
        (Side.SELL, D("89.99"), D("100"), "PRICE_OUTSIDE_COLLAR: limit_price=89.99, min_price=90.00, "
                                          "reference_price=100"),
        (Side.BUY, D("10.00"), None, "NO_REFERENCE_PRICE: check=collar"),
        (Side.BUY, None, None, None),  # market orders are bounded by the reservation collar instead
    ],
)
def test_check_collar(side: Side, limit_price: Decimal | None, reference: Decimal | None, expected: str | None) -> None:
    order_type = OrderType.LIMIT if limit_price is not None else OrderType.MARKET
    order = place(side=side, order_type=order_type, limit_price=limit_price)
    assert rendered(check_collar(order, reference, D("0.10"))) == expected


@pytest.mark.parametrize(
    ("side", "stop_price", "limit_price", "expected"),
    [
        (Side.BUY, D("250.00"), D("251.00"), None),  # triggers at 250: its limit is judged against the stop
        (Side.BUY, D("250.00"), D("275.01"), "PRICE_OUTSIDE_COLLAR: limit_price=275.01, max_price=275.0000, "
                                             "stop_price=250.00"),
        (Side.BUY, D("90.00"), D("110.01"), "PRICE_OUTSIDE_COLLAR: limit_price=110.01, max_price=110.00, "
                                            "reference_price=100"),  # a stop already reached: the market rules
        (Side.SELL, D("50.00"), D("49.00"), None),
        (Side.SELL, D("50.00"), D("44.99"), "PRICE_OUTSIDE_COLLAR: limit_price=44.99, min_price=45.0000, "
                                            "stop_price=50.00"),
    ],
)
def test_a_stop_limit_is_collared_against_its_stop_once_the_stop_is_beyond_the_market(
    side: Side, stop_price: Decimal, limit_price: Decimal, expected: str | None
) -> None:
    order = place(side=side, order_type=OrderType.STOP_LIMIT, limit_price=limit_price, stop_price=stop_price)
    assert rendered(check_collar(order, D("100"), D("0.10"))) == expected


@pytest.mark.parametrize(
    ("overrides", "reference", "fees", "expected"),
    [
        ({"qty": D("100"), "limit_price": D("10.00")}, D("10"), NO_FEES, D("1000.00")),
        ({"qty": D("100"), "limit_price": D("10.00")}, D("10"), FEES, D("1001.00")),  # minimum fee
        ({"qty": D("3000"), "limit_price": D("10.00")}, D("10"), FEES, D("30030.00")),  # 0.1 %
        ({"qty": D("7"), "limit_price": D("0.333")}, None, FeeSchedule(rate=D("0.0015")), D("2.34")),  # 2.331 up
        ({"order_type": OrderType.MARKET, "limit_price": None, "qty": D("3")}, D("10.01"), NO_FEES, D("31.54")),
        ({"order_type": OrderType.STOP, "limit_price": None, "stop_price": D("12.00"), "qty": D("10")}, D("10"),
         NO_FEES, D("126.00")),
        ({"side": Side.SELL}, D("10"), FEES, D("0.00")),
    ],
)
def test_required_cash(overrides: dict[str, object], reference: Decimal | None, fees: FeeSchedule,
                       expected: Decimal) -> None:
    assert required_cash(place(**overrides), reference, D("0.05"), fees) == expected


def test_required_cash_rounds_up_to_cents() -> None:
    # 3 x 10.01 x 1.05 = 31.5315 -> 31.54, never 31.53
    order = place(order_type=OrderType.MARKET, limit_price=None, qty=D("3"))
    assert required_cash(order, D("10.01"), D("0.05"), NO_FEES) == D("31.54")


def test_required_cash_without_reference_raises() -> None:
    with pytest.raises(InvalidValue, match="no reference price"):
        required_cash(place(order_type=OrderType.MARKET, limit_price=None), None, D("0.05"), NO_FEES)


@pytest.mark.parametrize(
    ("overrides", "available", "already_reserved", "expected"),
    [
        ({"qty": D("100"), "limit_price": D("10.00")}, D("1001.00"), D("0"), None),
        ({"qty": D("100"), "limit_price": D("10.00")}, D("1000.99"), D("0"),
         "INSUFFICIENT_BUYING_POWER: required=1001.00, available=1000.99"),
        ({"qty": D("99"), "limit_price": D("10.10")}, D("999.00"), D("0"),
         "INSUFFICIENT_BUYING_POWER: required=1000.90, available=999.00"),
        ({"qty": D("150"), "limit_price": D("10.00")}, D("500.50"), D("1001.00"), None),  # a replace adds 500.50
        ({"qty": D("150"), "limit_price": D("10.00")}, D("500.00"), D("1000.00"),
         "INSUFFICIENT_BUYING_POWER: required=501.50, available=500.00"),
        ({"order_type": OrderType.MARKET, "limit_price": None}, D("1e6"), D("0"),
         "NO_REFERENCE_PRICE: check=buying_power"),
        ({"side": Side.SELL}, D("0"), D("0"), None),
    ],
)
def test_check_buying_power(overrides: dict[str, object], available: Decimal, already_reserved: Decimal,
                            expected: str | None) -> None:
    reference = None if overrides.get("order_type") is OrderType.MARKET else D("10")
    denial = check_buying_power(place(**overrides), reference_price=reference, market_collar_pct=D("0.05"),
                                fee_schedule=FEES, available_cash=available, already_reserved=already_reserved)
    assert rendered(denial) == expected


def test_buying_power_message_keeps_sub_cent_precision() -> None:
    denial = check_buying_power(place(), reference_price=D("10"), market_collar_pct=D("0.05"), fee_schedule=NO_FEES,
                                available_cash=D("999.005"))
    assert rendered(denial) == "INSUFFICIENT_BUYING_POWER: required=1000.00, available=999.005"


@pytest.mark.parametrize(
    ("side", "qty", "available", "already_reserved", "expected"),
    [
        (Side.SELL, D("100"), D("100"), D("0"), None),
        (Side.SELL, D("101"), D("100"), D("0"), "INSUFFICIENT_POSITION: required=101, available=100"),
        (Side.SELL, D("0.5"), D("0.25"), D("0"), "INSUFFICIENT_POSITION: required=0.5, available=0.25"),
        (Side.SELL, D("150"), D("50"), D("100"), None),
        (Side.BUY, D("100"), D("0"), D("0"), None),
    ],
)
def test_check_position(side: Side, qty: Decimal, available: Decimal, already_reserved: Decimal,
                        expected: str | None) -> None:
    assert rendered(check_position(place(side=side, qty=qty), available, already_reserved)) == expected


@pytest.mark.parametrize(
    ("notional", "expected"),
    [(D("0"), D("0.00")), (D("100"), D("1.00")), (D("1500"), D("1.50")), (D("1234.5"), D("1.23")),
     (D("1235"), D("1.24")), (D("1234.9999"), D("1.23"))],
)
def test_fee_for_rounds_half_up_with_minimum(notional: Decimal, expected: Decimal) -> None:
    assert FEES.fee_for(notional) == expected


def test_fees_of_fills_add_up_to_the_order_fee() -> None:
    fills = [D("100"), D("250.5"), D("2000"), D("3.33")]
    charged, cum = D(0), D(0)
    for notional in fills:
        charged += FEES.fee_for_fill(cum, notional)
        cum += notional
    assert charged == FEES.fee_for(cum) == D("2.35")


@pytest.mark.parametrize(
    ("switches", "expected"),
    [
        (KillSwitches(), None),
        (KillSwitches(halt_all=True), "KILL_SWITCH: scope=all"),
        (KillSwitches(accounts=frozenset({AccountId("ACC-1")})), "KILL_SWITCH: scope=account, account=ACC-1"),
        (KillSwitches(symbols=frozenset({Symbol("AAPL")})), "KILL_SWITCH: scope=symbol, symbol=AAPL"),
        (KillSwitches(symbols=frozenset({Symbol("MSFT")})), None),
    ],
)
def test_check_kill_switches(switches: KillSwitches, expected: str | None) -> None:
    assert rendered(check_kill_switches(switches, AccountId("ACC-1"), Symbol("AAPL"))) == expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (AccountStatus.ACTIVE, None),
        (None, "UNKNOWN_ACCOUNT: account=ACC-1"),
        (AccountStatus.SUSPENDED, "ACCOUNT_NOT_ACTIVE: account=ACC-1, status=suspended"),
        (AccountStatus.CLOSED, "ACCOUNT_NOT_ACTIVE: account=ACC-1, status=closed"),
    ],
)
def test_check_account(status: AccountStatus | None, expected: str | None) -> None:
    assert rendered(check_account(AccountId("ACC-1"), status)) == expected


@pytest.mark.parametrize(
    ("known", "expected"),
    [
        (instrument(), None),
        (None, "UNKNOWN_SYMBOL: symbol=AAPL"),
        (instrument(tradable=False), "SYMBOL_NOT_TRADABLE: symbol=AAPL"),
    ],
)
def test_check_instrument(known: object, expected: str | None) -> None:
    assert rendered(check_instrument(Symbol("AAPL"), known)) == expected  # type: ignore[arg-type]


NYSE = TradingCalendar.weekdays("America/New_York", time(9, 30), time(16, 0),
                                holidays=frozenset({date(2024, 7, 4)}), early_closes={date(2024, 7, 3): time(13, 0)})


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2024, 3, 4, 14, 30, tzinfo=UTC), None),  # Monday 09:30 EST: open is inclusive
        (datetime(2024, 3, 4, 14, 29, 59, tzinfo=UTC), "MARKET_CLOSED: time=2024-03-04T14:29:59+00:00, "
                                                       "timezone=America/New_York"),
        (datetime(2024, 3, 4, 21, 0, tzinfo=UTC), "MARKET_CLOSED: time=2024-03-04T21:00:00+00:00, "
                                                  "timezone=America/New_York"),  # 16:00: close is exclusive
        (datetime(2024, 7, 1, 19, 59, tzinfo=UTC), None),  # 15:59 EDT, summer time handled
        (datetime(2024, 7, 3, 17, 30, tzinfo=UTC), "MARKET_CLOSED: time=2024-07-03T17:30:00+00:00, "
                                                   "timezone=America/New_York"),  # early close 13:00
        (datetime(2024, 7, 4, 15, 0, tzinfo=UTC), "MARKET_CLOSED: time=2024-07-04T15:00:00+00:00, "
                                                  "timezone=America/New_York"),  # holiday
        (datetime(2024, 3, 9, 15, 0, tzinfo=UTC), "MARKET_CLOSED: time=2024-03-09T15:00:00+00:00, "
                                                  "timezone=America/New_York"),  # Saturday
    ],
)
def test_check_trading_hours(now: datetime, expected: str | None) -> None:
    assert rendered(check_trading_hours(NYSE, now)) == expected


def test_always_open_calendar() -> None:
    assert check_trading_hours(TradingCalendar(always_open=True), datetime(2024, 3, 9, 3, 0, tzinfo=UTC)) is None


def test_calendar_refuses_naive_time_and_bad_sessions() -> None:
    with pytest.raises(InvalidValue, match="timezone-aware"):
        NYSE.is_open(datetime(2024, 3, 4, 15, 0))
    with pytest.raises(InvalidValue, match="open < close"):
        TradingCalendar(sessions={0: (time(16, 0), time(9, 30))})
    with pytest.raises(InvalidValue, match="unknown timezone"):
        TradingCalendar(timezone="Mars/Olympus")


def test_rate_limiter_token_bucket() -> None:
    t0 = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)
    limiter = RateLimiter.per_second(2)
    results = []
    for offset_ms in (0, 0, 0, 499, 500, 1500, 1500, 1500):
        limiter, denial = check_rate(limiter, t0 + timedelta(milliseconds=offset_ms))
        results.append(rendered(denial))
    denied = "RATE_LIMITED: max_per_second=2"
    assert results == [None, None, denied, denied, None, None, None, denied]


def test_rate_limiter_ignores_a_clock_stepping_back() -> None:
    t0 = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)
    limiter, _ = RateLimiter.per_second(1).acquire(t0)
    limiter, allowed = limiter.acquire(t0 - timedelta(seconds=10))
    assert not allowed and limiter.updated_at == t0


def test_compare_submission() -> None:
    original = place()
    assert compare_submission(None, original) is Resubmission.NEW
    assert compare_submission(original, place()) is Resubmission.IDENTICAL
    assert compare_submission(original, place(qty=D("101"))) is Resubmission.CONFLICT
    assert str(duplicate_denial(original.account, original.cl_ord_id)) == (
        "DUPLICATE_CL_ORD_ID: account=ACC-1, cl_ord_id=C-1")


def _context(**overrides: object) -> PreTradeContext:
    fields: dict[str, object] = {
        "account_status": AccountStatus.ACTIVE,
        "instrument": instrument(),
        "limits": LIMITS,
        "kill_switches": KillSwitches(),
        "calendar": NYSE,
        "fee_schedule": FEES,
        "available_cash": D("5000"),
        "available_shares": D("0"),
        "now": datetime(2024, 3, 4, 15, 0, tzinfo=UTC),
    }
    fields.update(overrides)
    return PreTradeContext(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("order_overrides", "context_overrides", "expected"),
    [
        ({}, {}, None),
        ({}, {"kill_switches": KillSwitches(halt_all=True), "account_status": None}, "KILL_SWITCH: scope=all"),
        ({}, {"instrument": None}, "UNKNOWN_SYMBOL: symbol=AAPL"),
        ({"qty": D("0")}, {"now": datetime(2024, 3, 9, tzinfo=UTC)}, "INVALID_QUANTITY: qty=0, rule=positive"),
        ({}, {"available_cash": D("10")}, "INSUFFICIENT_BUYING_POWER: required=1001.00, available=10.00"),
        ({"side": Side.SELL}, {}, "INSUFFICIENT_POSITION: required=100, available=0"),
        ({"limit_price": D("11.01")}, {}, "PRICE_OUTSIDE_COLLAR: limit_price=11.01, max_price=11.0000, "
                                          "reference_price=10.00"),
    ],
)
def test_check_new_order(order_overrides: dict[str, object], context_overrides: dict[str, object],
                         expected: str | None) -> None:
    assert rendered(check_new_order(place(**order_overrides), _context(**context_overrides))) == expected


def test_account_limits_validation() -> None:
    with pytest.raises(InvalidValue, match="price_collar_pct is a fraction below 1"):
        AccountLimits(max_order_qty=D(1), max_order_notional=D(1), price_collar_pct=D("10"))
    with pytest.raises(InvalidValue, match="float"):
        AccountLimits(max_order_qty=1.0, max_order_notional=D(1))  # type: ignore[arg-type]
