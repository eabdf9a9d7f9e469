"""Pre-trade risk checks as pure functions that return a `Denial` value or None.

Denials are our own refusals, kept apart from the venue's rejections. Each has a reason from the closed
`ReasonCode` enum and renders as `REASON_CODE: key=value, key=value`, the text FIX clients get in Text (58) and
REST clients in the problem body; `fix_ord_rej_reason` is the OrdRejReason (103) sent alongside.

Amounts in the details: money is shown to the cent when it has no finer digits ("999.00"), otherwise in full, so a
denial never hides the precision that decided it.

Fees: `FeeSchedule.fee_for` rounds ROUND_HALF_UP to the cent, the usual broker convention. Reservations use
`required_cash`, which rounds the whole worst-case cost UP (toward the customer paying more) so a reservation
always covers the fills. Charge fills with `fee_for_fill` so the fees of all fills of an order add up to
`fee_for(total notional)`, never more than was reserved, however the order is split.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, ROUND_UP, Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Final, Protocol

from oms.domain.calendar import TradingCalendar
from oms.domain.commands import PlaceOrder
from oms.domain.enums import AccountStatus, OrderType, Side, TimeInForce
from oms.domain.errors import InvalidValue
from oms.domain.instruments import Instrument
from oms.domain.values import CENT, AccountId, ClOrdId, Symbol, parse_decimal

__all__ = [
    "AccountLimits",
    "Denial",
    "FeeSchedule",
    "KillSwitches",
    "OrderTerms",
    "RateLimiter",
    "ReasonCode",
    "Resubmission",
    "check_account",
    "check_buying_power",
    "check_collar",
    "check_instrument",
    "check_kill_switches",
    "check_limits",
    "check_order_shape",
    "check_position",
    "check_rate",
    "check_trading_hours",
    "compare_submission",
    "check_new_order",
    "denials",
    "PreTradeContext",
    "duplicate_denial",
    "first_denial",
    "required_cash",
    "worst_case_price",
]


class ReasonCode(StrEnum):
    """Why we refused a request. Closed: add a member (and its FIX codes below) rather than free text."""

    INSUFFICIENT_BUYING_POWER = "insufficient_buying_power"
    INSUFFICIENT_POSITION = "insufficient_position"
    UNKNOWN_SYMBOL = "unknown_symbol"
    UNKNOWN_ACCOUNT = "unknown_account"
    DUPLICATE_CL_ORD_ID = "duplicate_cl_ord_id"
    PRICE_OUTSIDE_COLLAR = "price_outside_collar"
    MAX_ORDER_QTY = "max_order_qty"
    MAX_ORDER_NOTIONAL = "max_order_notional"
    ACCOUNT_NOT_ACTIVE = "account_not_active"
    SYMBOL_NOT_TRADABLE = "symbol_not_tradable"
    INVALID_QUANTITY = "invalid_quantity"
    INVALID_PRICE = "invalid_price"
    INVALID_EXPIRE_DATE = "invalid_expire_date"
    UNSUPPORTED_ORDER_TYPE = "unsupported_order_type"
    MARKET_CLOSED = "market_closed"
    RATE_LIMITED = "rate_limited"
    KILL_SWITCH = "kill_switch"
    VENUE_UNAVAILABLE = "venue_unavailable"
    VENUE_RECOVERING = "venue_recovering"
    UNKNOWN_ORDER = "unknown_order"
    ORDER_NOT_CANCELABLE = "order_not_cancelable"
    ORDER_ALREADY_PENDING = "order_already_pending"
    NO_REFERENCE_PRICE = "no_reference_price"
    REQUEST_MISMATCH = "request_mismatch"  # a cancel/replace names a side, symbol or type the order does not have

    @property
    def fix_ord_rej_reason(self) -> int:
        """FIX OrdRejReason (103) for an ExecutionReport reject (codes that exist since FIX 4.2/4.3)."""
        return _ORD_REJ_REASON.get(self, 0)

    @property
    def fix_cxl_rej_reason(self) -> int:
        """FIX CxlRejReason (102) for an OrderCancelReject: 0 too late, 1 unknown order, 2 broker option, 3 pending,
        6 duplicate ClOrdID (FIX 4.4; a FIX 4.2 session gets 2, see ``oms.gateway.translate.cxl_rej_reason``)."""
        return _CXL_REJ_REASON.get(self, 2)


R = ReasonCode
# 0 broker/exchange option, 1 unknown symbol, 2 exchange closed, 3 order exceeds limit, 5 unknown order,
# 6 duplicate order, 11 unsupported order characteristic, 13 incorrect quantity, 99 other.
_ORD_REJ_REASON: Final[Mapping[ReasonCode, int]] = MappingProxyType(
    {
        R.INSUFFICIENT_BUYING_POWER: 3,
        R.INSUFFICIENT_POSITION: 3,
        R.UNKNOWN_SYMBOL: 1,
        R.UNKNOWN_ACCOUNT: 0,
        R.DUPLICATE_CL_ORD_ID: 6,
        R.PRICE_OUTSIDE_COLLAR: 0,
        R.MAX_ORDER_QTY: 3,
        R.MAX_ORDER_NOTIONAL: 3,
        R.ACCOUNT_NOT_ACTIVE: 0,
        R.SYMBOL_NOT_TRADABLE: 0,
        R.INVALID_QUANTITY: 13,
        R.INVALID_PRICE: 11,
        R.INVALID_EXPIRE_DATE: 11,
        R.UNSUPPORTED_ORDER_TYPE: 11,
        R.MARKET_CLOSED: 2,
        R.RATE_LIMITED: 99,
        R.KILL_SWITCH: 0,
        R.VENUE_UNAVAILABLE: 0,
        R.VENUE_RECOVERING: 0,
        R.UNKNOWN_ORDER: 5,
        R.ORDER_NOT_CANCELABLE: 0,
        R.ORDER_ALREADY_PENDING: 0,
        R.NO_REFERENCE_PRICE: 0,
        R.REQUEST_MISMATCH: 0,
    }
)
_CXL_REJ_REASON: Final[Mapping[ReasonCode, int]] = MappingProxyType(
    {R.ORDER_NOT_CANCELABLE: 0, R.UNKNOWN_ORDER: 1, R.ORDER_ALREADY_PENDING: 3, R.DUPLICATE_CL_ORD_ID: 6}
)
assert set(_ORD_REJ_REASON) == set(ReasonCode), "every reason code needs an OrdRejReason"
del R


@dataclass(frozen=True, slots=True)
class Denial:
    """A refused request: a closed reason plus ordered details, rendered `REASON_CODE: key=value, key=value`."""

    reason: ReasonCode
    details: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.reason, ReasonCode):
            raise InvalidValue(f"reason must be a ReasonCode, got {self.reason!r}")
        object.__setattr__(self, "details", MappingProxyType({str(k): str(v) for k, v in self.details.items()}))

    def __str__(self) -> str:
        if not self.details:
            return self.reason.name
        return f"{self.reason.name}: " + ", ".join(f"{key}={value}" for key, value in self.details.items())

    def __hash__(self) -> int:
        return hash((self.reason, tuple(self.details.items())))

    @property
    def fix_ord_rej_reason(self) -> int:
        return self.reason.fix_ord_rej_reason


def _amount(value: Decimal) -> str:
    """Money text: two decimals unless finer digits matter."""
    cents = value.quantize(CENT) if value == value.quantize(CENT, rounding=ROUND_HALF_UP) else value
    return f"{cents:f}"


def _number(value: Decimal) -> str:
    """A quantity or price as given, never in exponent notation."""
    return f"{value:f}"


def first_denial(*denials: Denial | None) -> Denial | None:
    """The first non-None denial, for composing checks in priority order."""
    return next((denial for denial in denials if denial is not None), None)


# --- inputs -------------------------------------------------------------------------------------------------------------


class OrderTerms(Protocol):
    """What the checks read from an order: `PlaceOrder`, and the new terms of a replace, both fit."""

    @property
    def side(self) -> Side: ...
    @property
    def order_type(self) -> OrderType: ...
    @property
    def qty(self) -> Decimal: ...
    @property
    def limit_price(self) -> Decimal | None: ...
    @property
    def stop_price(self) -> Decimal | None: ...
    @property
    def tif(self) -> TimeInForce: ...
    @property
    def expire_date(self) -> date | None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountLimits:
    """Per-account limits; percentages are fractions (Decimal("0.10") is 10 %)."""

    max_order_qty: Decimal
    max_order_notional: Decimal
    price_collar_pct: Decimal = Decimal("0.10")
    market_order_collar_pct: Decimal = Decimal("0.05")
    max_orders_per_second: int = 10

    def __post_init__(self) -> None:
        positive = {"allow_negative": False, "allow_zero": False}
        for name in ("max_order_qty", "max_order_notional"):
            object.__setattr__(self, name, parse_decimal(getattr(self, name), name, **positive))
        for name in ("price_collar_pct", "market_order_collar_pct"):
            value = parse_decimal(getattr(self, name), name, allow_negative=False)
            if value >= 1:
                raise InvalidValue(f"{name} is a fraction below 1, got {value}")
            object.__setattr__(self, name, value)
        if isinstance(self.max_orders_per_second, bool) or not isinstance(self.max_orders_per_second, int) or (
            self.max_orders_per_second <= 0
        ):
            raise InvalidValue("max_orders_per_second must be a positive int")


@dataclass(frozen=True, slots=True, kw_only=True)
class FeeSchedule:
    """Commission: `rate` times notional, at least `minimum` per order; rounded ROUND_HALF_UP to the cent."""

    rate: Decimal = Decimal(0)
    minimum: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rate", parse_decimal(self.rate, "rate", allow_negative=False))
        object.__setattr__(self, "minimum", parse_decimal(self.minimum, "minimum", allow_negative=False))

    def fee_for(self, notional: Decimal) -> Decimal:
        """Fee for an order with this total traded notional; no trade, no fee."""
        if notional <= 0:
            return Decimal("0.00")
        return max(notional * self.rate, self.minimum).quantize(CENT, rounding=ROUND_HALF_UP)

    def fee_for_fill(self, cum_notional_before: Decimal, last_notional: Decimal) -> Decimal:
        """Incremental fee of one fill, so an order's fills together pay exactly `fee_for(total)`."""
        return self.fee_for(cum_notional_before + last_notional) - self.fee_for(cum_notional_before)


@dataclass(frozen=True, slots=True, kw_only=True)
class KillSwitches:
    """Operator halts: everything, some accounts, or some symbols."""

    halt_all: bool = False
    accounts: frozenset[AccountId] = frozenset()
    symbols: frozenset[Symbol] = frozenset()


# --- checks ---------------------------------------------------------------------------------------------------------------


def check_kill_switches(switches: KillSwitches, account: AccountId, symbol: Symbol) -> Denial | None:
    """Refuse when an operator halted all trading, this account or this symbol."""
    if switches.halt_all:
        return Denial(ReasonCode.KILL_SWITCH, {"scope": "all"})
    if account in switches.accounts:
        return Denial(ReasonCode.KILL_SWITCH, {"scope": "account", "account": account})
    if symbol in switches.symbols:
        return Denial(ReasonCode.KILL_SWITCH, {"scope": "symbol", "symbol": symbol})
    return None


def check_account(account: AccountId, status: AccountStatus | None) -> Denial | None:
    """Refuse unknown (status None) and non-active accounts."""
    if status is None:
        return Denial(ReasonCode.UNKNOWN_ACCOUNT, {"account": account})
    if status is not AccountStatus.ACTIVE:
        return Denial(ReasonCode.ACCOUNT_NOT_ACTIVE, {"account": account, "status": status.value})
    return None


def check_instrument(symbol: Symbol, instrument: Instrument | None) -> Denial | None:
    """Refuse unknown and non-tradable symbols."""
    if instrument is None:
        return Denial(ReasonCode.UNKNOWN_SYMBOL, {"symbol": symbol})
    if not instrument.tradable:
        return Denial(ReasonCode.SYMBOL_NOT_TRADABLE, {"symbol": symbol})
    return None


def _positive_finite(value: object) -> bool:
    return isinstance(value, Decimal) and value.is_finite() and value > 0


def check_order_shape(order: OrderTerms, instrument: Instrument, today: date | None = None) -> Denial | None:
    """Quantity and prices positive, finite and on the instrument's grid; the fields each order type and time in
    force need are present and the others absent; a GTD date is not in the past (when `today` is given)."""
    return first_denial(_check_qty_shape(order, instrument), _check_price_shape(order, instrument),
                        _check_tif_shape(order, today))


def _check_qty_shape(order: OrderTerms, instrument: Instrument) -> Denial | None:
    if not _positive_finite(order.qty):
        return Denial(ReasonCode.INVALID_QUANTITY, {"qty": str(order.qty), "rule": "positive"})
    if not instrument.qty_fits(order.qty):
        return Denial(ReasonCode.INVALID_QUANTITY, {"qty": _number(order.qty), "step": _number(instrument.qty_step)})
    return None


def _check_price_shape(order: OrderTerms, instrument: Instrument) -> Denial | None:
    for name, needed in (
        ("limit_price", order.order_type.needs_limit_price),
        ("stop_price", order.order_type.needs_stop_price),
    ):
        price = getattr(order, name)
        if needed and price is None:
            return Denial(ReasonCode.INVALID_PRICE, {name: "missing", "order_type": order.order_type.name})
        if not needed and price is not None:
            return Denial(ReasonCode.INVALID_PRICE, {name: "not_allowed", "order_type": order.order_type.name})
        if price is None:
            continue
        if not _positive_finite(price):
            return Denial(ReasonCode.INVALID_PRICE, {name: str(price), "rule": "positive"})
        if not instrument.price_on_tick(price):
            return Denial(ReasonCode.INVALID_PRICE, {name: _number(price), "tick": _number(instrument.tick_size)})
    return None


def _check_tif_shape(order: OrderTerms, today: date | None) -> Denial | None:
    if order.tif is TimeInForce.GTD:
        if order.expire_date is None:
            return Denial(ReasonCode.INVALID_EXPIRE_DATE, {"expire_date": "missing", "tif": "GTD"})
        if today is not None and order.expire_date < today:
            return Denial(ReasonCode.INVALID_EXPIRE_DATE, {"expire_date": order.expire_date.isoformat(),
                                                           "today": today.isoformat()})
    elif order.expire_date is not None:
        return Denial(ReasonCode.INVALID_EXPIRE_DATE, {"expire_date": "not_allowed", "tif": order.tif.name})
    return None


def _notional_price(order: OrderTerms, reference_price: Decimal | None) -> Decimal | None:
    """The price used to value an order against limits: its limit, else its stop, else the reference price."""
    if order.limit_price is not None:
        return order.limit_price
    return order.stop_price if order.stop_price is not None else reference_price


def check_limits(order: OrderTerms, limits: AccountLimits, reference_price: Decimal | None) -> Denial | None:
    """Refuse orders above the account's maximum quantity or notional (market orders valued at the reference)."""
    if order.qty > limits.max_order_qty:
        return Denial(ReasonCode.MAX_ORDER_QTY, {"qty": _number(order.qty), "max": _number(limits.max_order_qty)})
    price = _notional_price(order, reference_price)
    if price is None:
        return Denial(ReasonCode.NO_REFERENCE_PRICE, {"check": "notional"})
    notional = price * order.qty
    if notional > limits.max_order_notional:
        return Denial(
            ReasonCode.MAX_ORDER_NOTIONAL,
            {"notional": _amount(notional), "max": _amount(limits.max_order_notional)},
        )
    return None


def check_collar(order: OrderTerms, reference_price: Decimal | None, collar_pct: Decimal) -> Denial | None:
    """Refuse aggressive limit prices far through the market (fat fingers).

    A buy above reference x (1 + collar) or a sell below reference x (1 - collar) is denied; passive prices far from
    the market are fine. Orders without a limit price pass (market orders are bounded by the reservation collar).
    Without a reference price a limit order cannot be checked and is denied (NO_REFERENCE_PRICE).

    A stop-limit trades only once the market has reached its stop, so its limit is judged against where the
    market will be then: the stop, where that is beyond the reference (above it for a buy, below for a sell).
    """
    if order.limit_price is None:
        return None
    if reference_price is None:
        return Denial(ReasonCode.NO_REFERENCE_PRICE, {"check": "collar"})
    anchor, named = reference_price, "reference_price"
    if order.order_type is OrderType.STOP_LIMIT and order.stop_price is not None and (
            order.stop_price > reference_price if order.side is Side.BUY else order.stop_price < reference_price):
        anchor, named = order.stop_price, "stop_price"
    if order.side is Side.BUY:
        bound = anchor * (1 + collar_pct)
        if order.limit_price > bound:
            return Denial(ReasonCode.PRICE_OUTSIDE_COLLAR, {"limit_price": _number(order.limit_price),
                                                            "max_price": _number(bound), named: _number(anchor)})
    else:
        bound = anchor * (1 - collar_pct)
        if order.limit_price < bound:
            return Denial(ReasonCode.PRICE_OUTSIDE_COLLAR, {"limit_price": _number(order.limit_price),
                                                            "min_price": _number(bound), named: _number(anchor)})
    return None


def worst_case_price(order: OrderTerms, reference_price: Decimal | None, market_collar_pct: Decimal) -> Decimal | None:
    """The highest price a buy can trade at: its limit, else (reference, or the stop if higher) x (1 + collar).

    None when a market or stop order has no reference price to bound it.
    """
    if order.limit_price is not None:
        return order.limit_price
    if reference_price is None:
        return None
    base = max(reference_price, order.stop_price) if order.stop_price is not None else reference_price
    return base * (1 + market_collar_pct)


def required_cash(
    order: OrderTerms, reference_price: Decimal | None, market_collar_pct: Decimal, fee_schedule: FeeSchedule
) -> Decimal:
    """Worst-case cash a buy can consume (price x qty plus fee), rounded UP to the cent; 0 for a sell.

    Raises `InvalidValue` when a market or stop buy has no reference price (check for NO_REFERENCE_PRICE first, or
    use `check_buying_power`, which does).
    """
    if order.side is Side.SELL:
        return Decimal("0.00")
    price = worst_case_price(order, reference_price, market_collar_pct)
    if price is None:
        raise InvalidValue(f"no reference price to bound a {order.order_type.name} buy")
    notional = price * order.qty
    return (notional + fee_schedule.fee_for(notional)).quantize(CENT, rounding=ROUND_UP)


def check_buying_power(
    order: OrderTerms,
    *,
    reference_price: Decimal | None,
    market_collar_pct: Decimal,
    fee_schedule: FeeSchedule,
    available_cash: Decimal,
    already_reserved: Decimal = Decimal(0),
) -> Denial | None:
    """Refuse a buy whose worst-case cost exceeds available cash.

    For a replace, pass the cash the order already holds as `already_reserved`: only the increase must be available.
    """
    if order.side is Side.SELL:
        return None
    if worst_case_price(order, reference_price, market_collar_pct) is None:
        return Denial(ReasonCode.NO_REFERENCE_PRICE, {"check": "buying_power"})
    required = required_cash(order, reference_price, market_collar_pct, fee_schedule)
    if required - already_reserved > available_cash:
        return Denial(
            ReasonCode.INSUFFICIENT_BUYING_POWER,
            {"required": _amount(required - already_reserved), "available": _amount(available_cash)},
        )
    return None


def check_position(
    order: OrderTerms, available_shares: Decimal, already_reserved: Decimal = Decimal(0)
) -> Denial | None:
    """Refuse a sell of more shares than are available (no naked sales); a replace counts its own reservation."""
    if order.side is Side.BUY:
        return None
    if order.qty - already_reserved > available_shares:
        return Denial(
            ReasonCode.INSUFFICIENT_POSITION,
            {"required": _number(order.qty - already_reserved), "available": _number(available_shares)},
        )
    return None


def check_trading_hours(calendar: TradingCalendar, now: datetime) -> Denial | None:
    """Refuse outside the market's sessions."""
    if calendar.is_open(now):
        return None
    return Denial(ReasonCode.MARKET_CLOSED, {"time": now.isoformat(), "timezone": calendar.timezone})


# --- rate limiting ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimiter:
    """A token bucket as a value: `acquire(now)` returns the next bucket and whether a token was taken.

    Pure arithmetic on the instants passed in; a clock that steps backwards refills nothing. Keep one per account or
    session in the process that owns it.
    """

    capacity: Decimal
    refill_per_second: Decimal
    tokens: Decimal
    updated_at: datetime | None = None

    @classmethod
    def per_second(cls, rate: int, burst: int | None = None) -> RateLimiter:
        """A full bucket allowing `rate` per second with bursts of `burst` (default: `rate`)."""
        capacity = Decimal(burst if burst is not None else rate)
        if rate <= 0 or capacity <= 0:
            raise InvalidValue("rate and burst must be positive")
        return cls(capacity=capacity, refill_per_second=Decimal(rate), tokens=capacity)

    def acquire(self, now: datetime) -> tuple[RateLimiter, bool]:
        """Refill for the time elapsed since the last call, then take one token if there is one."""
        tokens = self.tokens
        if self.updated_at is not None and now > self.updated_at:
            elapsed = now - self.updated_at
            seconds = Decimal(elapsed.days * 86_400 + elapsed.seconds) + Decimal(elapsed.microseconds).scaleb(-6)
            tokens = min(self.capacity, tokens + seconds * self.refill_per_second)
        updated_at = now if self.updated_at is None or now > self.updated_at else self.updated_at
        if tokens >= 1:
            return RateLimiter(capacity=self.capacity, refill_per_second=self.refill_per_second,
                               tokens=tokens - 1, updated_at=updated_at), True
        return RateLimiter(capacity=self.capacity, refill_per_second=self.refill_per_second,
                           tokens=tokens, updated_at=updated_at), False


def check_rate(limiter: RateLimiter, now: datetime) -> tuple[RateLimiter, Denial | None]:
    """Take a token for one order; the caller keeps the returned bucket either way."""
    limiter, allowed = limiter.acquire(now)
    if allowed:
        return limiter, None
    return limiter, Denial(ReasonCode.RATE_LIMITED, {"max_per_second": _number(limiter.refill_per_second)})


# --- duplicates -------------------------------------------------------------------------------------------------------


class Resubmission(StrEnum):
    """How a PlaceOrder relates to an order already stored under the same (account, ClOrdID) (invariant 4)."""

    NEW = "new"  # no such order: proceed
    IDENTICAL = "identical"  # same content: return the original order, do nothing
    CONFLICT = "conflict"  # different content: refuse with DUPLICATE_CL_ORD_ID


def compare_submission(existing: PlaceOrder | None, incoming: PlaceOrder) -> Resubmission:
    """Classify a resubmission by content (the source may differ: FIX and REST retries are the same order)."""
    if existing is None:
        return Resubmission.NEW
    same = (existing.account, existing.cl_ord_id, existing.symbol, existing.side, existing.order_type,
            existing.qty, existing.limit_price, existing.stop_price, existing.tif, existing.expire_date) == (
        incoming.account, incoming.cl_ord_id, incoming.symbol, incoming.side, incoming.order_type,
        incoming.qty, incoming.limit_price, incoming.stop_price, incoming.tif, incoming.expire_date)
    return Resubmission.IDENTICAL if same else Resubmission.CONFLICT


def duplicate_denial(account: AccountId, cl_ord_id: ClOrdId) -> Denial:
    """The denial for a ClOrdID reused with different content."""
    return Denial(ReasonCode.DUPLICATE_CL_ORD_ID, {"account": account, "cl_ord_id": cl_ord_id})


def denials(*checks: Denial | None) -> Iterable[Denial]:
    """All denials among `checks`, for reports that list every failed check."""
    return tuple(denial for denial in checks if denial is not None)


# --- all checks for a new order -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PreTradeContext:
    """Everything the checks of one new order read, loaded by the service inside its transaction."""

    account_status: AccountStatus | None
    instrument: Instrument | None
    limits: AccountLimits
    kill_switches: KillSwitches
    calendar: TradingCalendar
    fee_schedule: FeeSchedule
    available_cash: Decimal
    available_shares: Decimal
    now: datetime
    reference_price: Decimal | None = None  # defaults to the instrument's


def check_new_order(order: PlaceOrder, context: PreTradeContext) -> Denial | None:
    """Run every pre-trade check for a new order in priority order and return the first denial.

    Rate limiting and duplicate detection need state outside this snapshot: the service does them first
    (`check_rate`, `compare_submission`).
    """
    denial = first_denial(
        check_kill_switches(context.kill_switches, order.account, order.symbol),
        check_account(order.account, context.account_status),
        check_instrument(order.symbol, context.instrument),
    )
    if denial is not None or context.instrument is None:
        return denial
    reference = context.reference_price if context.reference_price is not None else context.instrument.reference_price
    return (
        check_order_shape(order, context.instrument, context.calendar.local_date(context.now))
        or check_trading_hours(context.calendar, context.now)
        or check_limits(order, context.limits, reference)
        or check_collar(order, reference, context.limits.price_collar_pct)
        or check_buying_power(
            order,
            reference_price=reference,
            market_collar_pct=context.limits.market_order_collar_pct,
            fee_schedule=context.fee_schedule,
            available_cash=context.available_cash,
        )
        or check_position(order, context.available_shares)
    )
