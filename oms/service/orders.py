"""Order handlers: plain functions of (unit of work, command) shared by FIX, REST and the venue session.

Each handler checks everything first and only then buffers writes, so a denial or a quarantined execution
leaves nothing half-booked even though many commands share one transaction. Handlers never commit.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from typing import Any

import structlog
from sqlalchemy import select

from oms.db.models import Execution, OrderEvent, OutboxMessage, PendingSettlement, QuarantinedExecution
from oms.domain.calendar import TradingCalendar, add_business_days
from oms.domain.commands import ApplyExecution, CancelOrder, PlaceOrder, ReplaceOrder
from oms.domain.enums import AccountStatus, ExecType, OrderStatus, Side
from oms.domain.errors import DomainError
from oms.domain.events import (
    CancelRejected,
    OrderAccepted,
    OrderCanceled,
    OrderCancelPending,
    OrderCancelRequested,
    OrderDenied,
    OrderDoneForDay,
    OrderExpired,
    OrderFilled,
    OrderPendingNew,
    OrderRejected,
    OrderReplaced,
    OrderReplacePending,
    OrderReplaceRequested,
    OrderRestated,
    ReplaceRejected,
)
from oms.domain.events import OrderEvent as DomainEvent
from oms.domain.ids import new_row_id as new_id  # time-ordered: the ids of rows this module creates
from oms.domain.instruments import Instrument
from oms.domain.order import Order
from oms.domain.risk import (
    AccountLimits,
    Denial,
    FeeSchedule,
    KillSwitches,
    PreTradeContext,
    ReasonCode,
    check_buying_power,
    check_collar,
    check_kill_switches,
    check_limits,
    check_new_order,
    check_order_shape,
    check_position,
    check_trading_hours,
    duplicate_denial,
    required_cash,
)
from oms.domain.values import OrderId
from oms.ledger import movements
from oms.ledger.chart import CASH_AVAILABLE, SHARES_AVAILABLE
from oms.service.order_rows import OrderRecord
from oms.service.uow import AccountRecord, ReservationRecord, UnitOfWork
from oms.settings import Settings

log = structlog.get_logger(__name__)

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """Broker-wide parameters of the order path."""

    fee_schedule: FeeSchedule = FeeSchedule(rate=Decimal("0.0005"))
    calendar: TradingCalendar = TradingCalendar(always_open=True)
    settlement_days: int = 2
    # Orders per second per account when the account sets no limit of its own; 0 = no limit.
    max_orders_per_second: int = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> ServiceConfig:
        """The order path's parameters as configured (``OMS_TRADING_CALENDAR``, fees, rate, settlement)."""
        return cls(
            fee_schedule=FeeSchedule(rate=settings.fee_rate, minimum=settings.fee_minimum),
            calendar=trading_calendar(settings.trading_calendar, settings.holidays),
            settlement_days=settings.settlement_days,
            max_orders_per_second=settings.max_orders_per_second,
        )


US_EQUITIES_SESSION = (time(9, 30), time(16, 0))


def trading_calendar(name: str, holidays: frozenset[date] = frozenset()) -> TradingCalendar:
    """The calendar a setting names: ``always`` (24x7, simulator and demo) or ``us-equities``."""
    if name == "always":
        return TradingCalendar(always_open=True, holidays=holidays)
    if name == "us-equities":
        return TradingCalendar.weekdays("America/New_York", *US_EQUITIES_SESSION, holidays=holidays)
    raise ValueError(f"unknown trading calendar {name!r}")


class Outcome(StrEnum):
    ACCEPTED = "accepted"  # a new order, cancel or replace request was committed and queued for the venue
    DENIED = "denied"  # refused by a pre-trade check; nothing reserved
    DUPLICATE = "duplicate"  # an identical resubmission: the original order, nothing new
    APPLIED = "applied"  # an execution report changed our books
    IGNORED = "ignored"  # an execution report already applied (same ExecID)
    QUARANTINED = "quarantined"  # an execution report we cannot book safely, kept for a human
    # The command raised and was rolled back: nothing of it is booked (``detail`` says why). Not a success;
    # resubmitting is safe (a command is idempotent by ClOrdID / ExecID).
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class OrderResult:
    """What a command did; ``order`` is the snapshot after it (the successor after a replace)."""

    outcome: Outcome
    order: Order | None = None
    denial: Denial | None = None
    venue_cl_ord_id: str | None = None
    detail: str | None = None
    fill_qty: Decimal | None = None
    fill_px: Decimal | None = None
    original: Order | None = None

    @property
    def ok(self) -> bool:
        return self.outcome in (Outcome.ACCEPTED, Outcome.DUPLICATE, Outcome.APPLIED, Outcome.IGNORED)


def fingerprint(command: PlaceOrder | ReplaceOrder) -> str:
    """Content hash of an order request: an identical resubmission has the same one (invariant 4)."""
    parts = [
        getattr(command, "symbol", ""),
        getattr(getattr(command, "side", None), "value", ""),
        getattr(getattr(command, "order_type", None), "value", ""),
        format(command.qty.normalize(), "f"),
        "" if command.limit_price is None else format(command.limit_price.normalize(), "f"),
        "" if command.stop_price is None else format(command.stop_price.normalize(), "f"),
        command.tif.value,
        "" if command.expire_date is None else command.expire_date.isoformat(),
    ]
    return hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=16).hexdigest()


# ---------------------------------------------------------------------------------------------------------------------
# Places, cancels and replaces from clients
# ---------------------------------------------------------------------------------------------------------------------


def place_order(uow: UnitOfWork, command: PlaceOrder, config: ServiceConfig, now: datetime) -> OrderResult:
    account = uow.account(command.account)
    if account is None:
        return OrderResult(Outcome.DENIED, denial=Denial(ReasonCode.UNKNOWN_ACCOUNT, {"account": command.account}))
    unbookable = _value_denial(command)
    if unbookable is not None:  # no order can carry these values: deny, store nothing, count nothing
        return OrderResult(Outcome.DENIED, denial=unbookable)
    print_ = fingerprint(command)
    existing = uow.cl_ord_id_taken_by(command.account, command.cl_ord_id)
    if existing is not None:
        if existing.order.cl_ord_id == command.cl_ord_id and existing.fingerprint == print_ and existing.replaces_order_id is None:
            return OrderResult(Outcome.DUPLICATE, order=existing.order, venue_cl_ord_id=existing.venue_cl_ord_id)
        return OrderResult(Outcome.DENIED, denial=duplicate_denial(command.account, command.cl_ord_id))
    instrument = uow.instruments().get(command.symbol)
    currency = instrument.currency if instrument is not None else account.currency
    rate_denial = _rate_denial(uow, account, config, now)
    if rate_denial is not None:  # "not now": like a venue that is down, it writes nothing, so the same
        return OrderResult(Outcome.DENIED, denial=rate_denial)  # ClOrdID may be sent again once the window moves
    context = PreTradeContext(
        account_status=AccountStatus(account.status),
        instrument=instrument,
        limits=_limits(account),
        kill_switches=_kill_switches(uow, account),
        calendar=config.calendar,
        fee_schedule=config.fee_schedule,
        available_cash=uow.ledger.balance(account.id, CASH_AVAILABLE, currency),
        available_shares=uow.ledger.balance(account.id, SHARES_AVAILABLE, command.symbol),
        now=now,
    )
    denial = check_new_order(command, context)
    order = Order.place(OrderId(new_id()), command, now)
    record = OrderRecord(order=order, venue_cl_ord_id=str(order.order_id), fingerprint=print_)
    if denial is not None:
        record.order = order.apply(OrderDenied(event_id=new_id(), order_id=order.order_id, our_time=now, reason=str(denial)))
        record.text = str(denial)
        uow.add_order(record)
        _event(uow, record, "order.rejected", now, {"reason": str(denial)})
        return OrderResult(Outcome.DENIED, order=record.order, denial=denial)
    assert instrument is not None
    _reserve_for_new_order(uow, record, instrument, account, config, now)
    uow.add_order(record)
    _outbox(uow, record, "new", now, _new_order_payload(record))
    _event(uow, record, "order.pending_new", now)
    return OrderResult(Outcome.ACCEPTED, order=record.order, venue_cl_ord_id=record.venue_cl_ord_id)


def _value_denial(command: PlaceOrder | ReplaceOrder) -> Denial | None:
    """Quantity and prices that are not positive finite numbers (0, negative, NaN, infinity).

    An ``Order`` refuses them on construction, so they are denied before one is built (the usual
    INVALID_QUANTITY / INVALID_PRICE codes) instead of raising mid-batch.
    """
    if not _positive_finite(command.qty):
        return Denial(ReasonCode.INVALID_QUANTITY, {"qty": str(command.qty), "rule": "positive"})
    for name in ("limit_price", "stop_price"):
        price = getattr(command, name)
        if price is not None and not _positive_finite(price):
            return Denial(ReasonCode.INVALID_PRICE, {name: str(price), "rule": "positive"})
    return None


def _positive_finite(value: Decimal) -> bool:
    return value.is_finite() and value > 0


def _reserve_for_new_order(
    uow: UnitOfWork,
    record: OrderRecord,
    instrument: Instrument,
    account: AccountRecord,
    config: ServiceConfig,
    now: datetime,
) -> None:
    """Reserve the worst-case cost of a buy or the shares of a sell (invariant 3)."""
    order = record.order
    if order.side is Side.BUY:
        asset = instrument.currency
        amount = required_cash(order, instrument.reference_price, account.market_collar_pct, config.fee_schedule)
        legs = movements.reserve_cash(account.id, asset, amount)
    else:
        asset = str(order.symbol)
        amount = order.qty
        legs = movements.reserve_shares(account.id, asset, amount)
    reservation = ReservationRecord(
        id=new_id(),
        order_id=record.id,
        account_id=account.id,
        asset=asset,
        amount=amount,
        remaining=amount,
        status="pending",
        created_at=now,
        resolved_at=None,
    )
    uow.ledger.post("reserve", reservation.id, legs, account_id=account.id, created_at=now)
    uow.add_reservation(reservation)


def cancel_order(uow: UnitOfWork, command: CancelOrder, config: ServiceConfig, now: datetime) -> OrderResult:
    record, denial = _working_order(uow, command)
    if denial is not None or record is None:
        return OrderResult(Outcome.DENIED, order=record.order if record else None, denial=denial)
    try:
        updated = record.order.apply(
            OrderCancelRequested(event_id=new_id(), order_id=record.order.order_id, our_time=now, cl_ord_id=command.cl_ord_id)
        )
    except DomainError as error:
        return _not_cancelable(record, str(error))
    record.order = updated
    record.pending_venue_cl_ord_id = new_id()
    record.request_cl_ord_id = str(command.cl_ord_id)
    uow.index_order(record)
    uow.order_changed(record)
    _outbox(uow, record, "cancel", now, _cancel_payload(record))
    _event(uow, record, "order.pending_cancel", now)
    return OrderResult(Outcome.ACCEPTED, order=record.order, venue_cl_ord_id=record.pending_venue_cl_ord_id)


def replace_order(uow: UnitOfWork, command: ReplaceOrder, config: ServiceConfig, now: datetime) -> OrderResult:
    unbookable = _value_denial(command)
    if unbookable is not None:
        return OrderResult(Outcome.DENIED, denial=unbookable)
    record, denial = _working_order(uow, command)
    if denial is not None or record is None:
        return OrderResult(Outcome.DENIED, order=record.order if record else None, denial=denial)
    order = record.order
    account = uow.accounts[record.account_id]
    assert account is not None
    instrument = uow.instruments().get(order.symbol)
    if instrument is None:
        return OrderResult(Outcome.DENIED, order=order, denial=Denial(ReasonCode.UNKNOWN_SYMBOL, {"symbol": order.symbol}))
    terms = _Terms.after_replace(order, command)
    reference = instrument.reference_price
    limits = _limits(account)
    denial = (
        # New terms are new risk (more shares, a price through the market): a halt refuses them, and so do the
        # market's closed hours (a 24x7 venue would trade them after the close), as for a new order. Cancels
        # stay allowed.
        check_kill_switches(_kill_switches(uow, account), account.id, order.symbol)  # type: ignore[arg-type]
        or check_order_shape(terms, instrument, config.calendar.local_date(now))  # the market's date, as for a new order
        or check_trading_hours(config.calendar, now)
        or check_limits(terms, limits, reference)
        or check_collar(terms, reference, limits.price_collar_pct)
    )
    if denial is None and command.qty <= order.cum_qty:
        denial = Denial(ReasonCode.INVALID_QUANTITY, {"qty": str(command.qty), "cum_qty": str(order.cum_qty)})
    reservation = uow.reservation_for(record.id)
    held = reservation.remaining if reservation is not None else ZERO
    remaining_terms = _Terms.after_replace(order, command, qty=command.qty - order.cum_qty)
    if denial is None and order.side is Side.BUY:
        denial = check_buying_power(
            remaining_terms,
            reference_price=reference,
            market_collar_pct=account.market_collar_pct,
            fee_schedule=config.fee_schedule,
            available_cash=uow.ledger.balance(account.id, CASH_AVAILABLE, instrument.currency),
            already_reserved=held,
        )
    elif denial is None:
        denial = check_position(
            remaining_terms, uow.ledger.balance(account.id, SHARES_AVAILABLE, order.symbol), already_reserved=held
        )
    if denial is not None:
        return OrderResult(Outcome.DENIED, order=order, denial=denial)
    try:
        updated = order.apply(
            OrderReplaceRequested(
                event_id=new_id(),
                order_id=order.order_id,
                our_time=now,
                cl_ord_id=command.cl_ord_id,
                qty=command.qty,
                limit_price=command.limit_price,
                stop_price=command.stop_price,
                tif=command.tif,
                expire_date=command.expire_date,
            )
        )
    except DomainError as error:
        return _not_cancelable(record, str(error))
    if reservation is not None:
        needed = _needed(remaining_terms, instrument, account, config)
        if needed > reservation.remaining:
            _adjust_reservation(uow, reservation, needed - reservation.remaining, now, f"{record.id}:{command.cl_ord_id}")
    record.order = updated
    record.pending_venue_cl_ord_id = new_id()
    record.request_cl_ord_id = str(command.cl_ord_id)
    uow.index_order(record)
    uow.order_changed(record)
    _outbox(uow, record, "replace", now, _replace_payload(record, command))
    _event(uow, record, "order.pending_replace", now)
    return OrderResult(Outcome.ACCEPTED, order=record.order, venue_cl_ord_id=record.pending_venue_cl_ord_id)


@dataclass(frozen=True, slots=True)
class _Terms:
    """Order terms as the pre-trade checks read them: after a replace, or for what is still open."""

    side: Side
    order_type: Any
    qty: Decimal
    limit_price: Decimal | None
    stop_price: Decimal | None
    tif: Any
    expire_date: date | None

    @classmethod
    def after_replace(cls, order: Order, command: ReplaceOrder, qty: Decimal | None = None) -> _Terms:
        return cls(order.side, order.order_type, command.qty if qty is None else qty, command.limit_price,
                   command.stop_price, command.tif, command.expire_date)  # fmt: skip

    @classmethod
    def remaining(cls, order: Order) -> _Terms:
        return cls(order.side, order.order_type, order.leaves_qty, order.limit_price, order.stop_price,
                   order.tif, order.expire_date)  # fmt: skip


def _working_order(uow: UnitOfWork, command: CancelOrder | ReplaceOrder) -> tuple[OrderRecord | None, Denial | None]:
    """The working order a cancel or replace is about, or why the request is refused."""
    account_id, orig_cl_ord_id, request_cl_ord_id = command.account, command.orig_cl_ord_id, command.cl_ord_id
    account = uow.account(account_id)
    if account is None:
        return None, Denial(ReasonCode.UNKNOWN_ACCOUNT, {"account": account_id})
    record = uow.order_by_client(account_id, orig_cl_ord_id)
    if record is None or record.replaced_by_order_id is not None:
        return None, Denial(ReasonCode.UNKNOWN_ORDER, {"orig_cl_ord_id": orig_cl_ord_id})
    if uow.cl_ord_id_taken_by(account_id, request_cl_ord_id) is not None or request_cl_ord_id == orig_cl_ord_id:
        return record, duplicate_denial(account.id, request_cl_ord_id)  # type: ignore[arg-type]
    status = record.order.status
    if status.is_terminal:
        return record, Denial(ReasonCode.ORDER_NOT_CANCELABLE, {"status": status.value})
    if status in (OrderStatus.PENDING_CANCEL, OrderStatus.PENDING_REPLACE):
        return record, Denial(ReasonCode.ORDER_ALREADY_PENDING, {"status": status.value})
    return record, _identity_mismatch(record.order, command)


def _identity_mismatch(order: Order, command: CancelOrder | ReplaceOrder) -> Denial | None:
    """A request naming a side, symbol or order type the order does not have is about another order (FIX 4.4:
    a replace cannot change side or symbol; here not the order type either): refused, never applied."""
    named = (("symbol", command.symbol, order.symbol), ("side", command.side, order.side),
             ("order_type", getattr(command, "order_type", None), order.order_type))  # fmt: skip
    for name, asked, actual in named:
        if asked is not None and asked != actual:
            return Denial(ReasonCode.REQUEST_MISMATCH,
                          {"field": name, "order": getattr(actual, "value", actual), "request": getattr(asked, "value", asked)})  # fmt: skip
    return None


def _not_cancelable(record: OrderRecord, why: str) -> OrderResult:
    denial = Denial(ReasonCode.ORDER_NOT_CANCELABLE, {"status": record.order.status.value})
    log.info("cancel_or_replace_refused", order_id=record.id, reason=why)
    return OrderResult(Outcome.DENIED, order=record.order, denial=denial)


# ---------------------------------------------------------------------------------------------------------------------
# Execution reports from the venue
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplyCancelReject:
    """The venue refused our cancel or replace request (OrderCancelReject, 35=9)."""

    venue_cl_ord_id: str
    orig_venue_cl_ord_id: str | None = None
    venue_order_id: str | None = None
    response_to: str = "cancel"  # or "replace"
    reason: str = ""


def find_order_for_report(uow: UnitOfWork, cl_ord_id: str | None, orig_cl_ord_id: str | None, venue_order_id: str | None) -> OrderRecord | None:
    """Find our order from the ClOrdIDs we sent the venue, falling back to the venue's order id."""
    for candidate in (cl_ord_id, orig_cl_ord_id):
        if candidate:
            record = uow.order_by_venue_cl_ord_id(candidate)
            if record is not None:
                return record
    if venue_order_id:
        return uow.order_by_venue_order_id(venue_order_id)
    return None


def apply_execution(uow: UnitOfWork, command: ApplyExecution, config: ServiceConfig, now: datetime) -> OrderResult:
    exec_id = str(command.venue_exec_id)
    if exec_id in uow.applied_exec_ids:
        return _already_applied(uow, command, now)
    record = find_order_for_report(
        uow,
        None if command.cl_ord_id is None else str(command.cl_ord_id),
        None if command.orig_cl_ord_id is None else str(command.orig_cl_ord_id),
        None if command.venue_order_id is None else str(command.venue_order_id),
    )
    if record is None:
        return _quarantine(uow, command, "UNKNOWN_ORDER", now)
    if command.exec_type in (ExecType.TRADE_CANCEL, ExecType.TRADE_CORRECT):
        return _quarantine(uow, command, "TRADE_BUST_OR_CORRECTION_NEEDS_REVIEW", now)
    if record.account_id not in uow.accounts:  # the batch prefetch locked it already, as a rule
        uow.lock_accounts([record.account_id])  # re-reads the order if it was read before the lock
    if uow.exec_id_applied(exec_id):  # applied by a transaction that committed before we held the lock
        return _already_applied(uow, command, now)
    venue_time = command.transact_time or now
    try:
        if command.exec_type is ExecType.TRADE:
            result = _apply_fill(uow, record, command, config, now, venue_time)
        elif command.exec_type is ExecType.REPLACED:
            result = _apply_replaced(uow, record, command, config, now, venue_time)
        elif command.exec_type is ExecType.ORDER_STATUS:
            result = OrderResult(Outcome.APPLIED, order=record.order, detail="status report")
        else:
            result = _apply_status_change(uow, record, command, now, venue_time)
    except DomainError as error:
        log.warning("execution_refused", exec_id=exec_id, order_id=record.id, error=str(error))
        return _quarantine(uow, command, type(error).__name__.upper(), now, str(error))
    uow.applied_exec_ids.add(exec_id)
    uow.applied_here[exec_id] = (command.exec_type.value, command.last_qty, command.last_px)
    if command.exec_type is not ExecType.TRADE:
        _execution_row(uow, record, command, now, journal_entry_id=None, fee=ZERO)
    return result


_STATUS_EVENTS: dict[ExecType, type[DomainEvent]] = {
    ExecType.PENDING_NEW: OrderPendingNew,
    ExecType.CANCELED: OrderCanceled,
    ExecType.REJECTED: OrderRejected,
    ExecType.EXPIRED: OrderExpired,
    ExecType.DONE_FOR_DAY: OrderDoneForDay,
    ExecType.PENDING_CANCEL: OrderCancelPending,
    ExecType.PENDING_REPLACE: OrderReplacePending,
    ExecType.RESTATED: OrderRestated,
}


def _apply_status_change(
    uow: UnitOfWork, record: OrderRecord, command: ApplyExecution, now: datetime, venue_time: datetime
) -> OrderResult:
    order = record.order
    base: dict[str, Any] = {"event_id": str(command.venue_exec_id), "order_id": order.order_id, "our_time": now, "venue_time": venue_time}
    if command.exec_type is ExecType.NEW:
        if command.venue_order_id is None:
            raise _MissingVenueOrderId(f"order {record.id}: ExecType=New without OrderID")
        event: DomainEvent = OrderAccepted(**base, venue_order_id=command.venue_order_id)
    else:
        event_type = _STATUS_EVENTS.get(command.exec_type)
        if event_type is None:
            raise _MissingVenueOrderId(f"unsupported ExecType {command.exec_type.value}")
        if event_type in (OrderCanceled, OrderRejected, OrderRestated):
            base["reason"] = command.text[:512]
        event = event_type(**base)
    record.order = order.apply(event)
    if record.order.status is not OrderStatus.PENDING_CANCEL and record.order.status is not OrderStatus.PENDING_REPLACE:
        record.pending_venue_cl_ord_id = None
    if command.text and record.order.status is OrderStatus.REJECTED:
        record.text = command.text[:512]
    uow.order_changed(record)
    if record.order.status.is_terminal:
        _release(uow, record, now)
    _event(uow, record, f"order.{record.order.status.value}", now)
    return OrderResult(Outcome.APPLIED, order=record.order)


class _MissingVenueOrderId(DomainError):
    pass


def _apply_fill(
    uow: UnitOfWork,
    record: OrderRecord,
    command: ApplyExecution,
    config: ServiceConfig,
    now: datetime,
    venue_time: datetime,
) -> OrderResult:
    order = record.order
    instrument = uow.instruments().get(order.symbol)
    currency = instrument.currency if instrument is not None else "USD"
    last_qty, last_px = command.last_qty, command.last_px
    notional = last_qty * last_px
    fee = config.fee_schedule.fee_for_fill(order.cum_notional, notional)
    event = OrderFilled(
        event_id=str(command.venue_exec_id),
        order_id=order.order_id,
        our_time=now,
        venue_time=venue_time,
        exec_id=command.venue_exec_id,
        last_qty=last_qty,
        last_px=last_px,
        fee=fee,
    )
    if order.venue_order_id is None and command.venue_order_id is not None:
        order = order.apply(OrderAccepted(event_id=new_id(), order_id=order.order_id, our_time=now, venue_order_id=command.venue_order_id)) if order.status is OrderStatus.PENDING_NEW else order
    updated = order.apply(event)
    account = record.account_id
    reservation = uow.reservation_for(record.id)
    held = reservation.remaining if reservation is not None else ZERO
    if order.side is Side.BUY:
        from_reserved = min(notional + fee, held)
        legs = movements.buy_fill(account, currency, str(order.symbol), last_qty, notional, fee, from_reserved)
        consumed = from_reserved
    else:
        from_reserved = min(last_qty, held)
        legs = movements.sell_fill(account, currency, str(order.symbol), last_qty, notional, fee)
        if from_reserved < last_qty:
            legs.extend(_shares_from_available(account, str(order.symbol), last_qty - from_reserved))
        consumed = from_reserved
    if reservation is not None:
        reservation.remaining -= consumed
        uow.reservation_changed(reservation)
    if updated.status.is_terminal and reservation is not None and reservation.remaining:
        legs.extend(_release_legs(uow, reservation))
        reservation.remaining = ZERO
    overdraft = order.side is Side.BUY and notional + fee > held
    entry_id = uow.ledger.post(
        "fill",
        str(command.venue_exec_id),
        legs,
        account_id=account,
        created_at=now,
        memo=command.text or None,  # e.g. the reconciliation break a repaired fill settles
        allow_negative=overdraft,
    )
    if overdraft:
        log.warning("fill_exceeds_reservation", order_id=record.id, exec_id=str(command.venue_exec_id), held=str(held))
    if reservation is not None and updated.status.is_terminal:
        _resolve(uow, reservation, now, consumed=True)
    if order.side is Side.SELL:
        # The market's own date (New York for us-equities): a fill at 20:30 New York traded today, although
        # UTC already says tomorrow, and T+N counts from it.
        trade_date = config.calendar.local_date(venue_time)
        uow.insert(
            PendingSettlement,
            {
                "id": new_id(),
                "account_id": account,
                "currency": currency,
                "amount": notional - fee,
                "trade_date": trade_date,
                "settle_date": add_business_days(trade_date, config.settlement_days, config.calendar.holidays),
                "source_entry_id": entry_id,
                "settled_entry_id": None,
            },
        )
    record.order = updated
    uow.order_changed(record)
    _execution_row(uow, record, command, now, journal_entry_id=entry_id, fee=fee)
    _event(
        uow,
        record,
        f"order.{updated.status.value}",
        now,
        {"exec_id": str(command.venue_exec_id), "last_qty": str(last_qty), "last_px": str(last_px), "fee": str(fee)},
    )
    return OrderResult(Outcome.APPLIED, order=updated, fill_qty=last_qty, fill_px=last_px)


def _shares_from_available(account: str, symbol: str, qty: Decimal) -> list[Any]:
    """A sell filled beyond its reservation (should not happen): take the rest from available shares."""
    from oms.ledger.book import transfer
    from oms.ledger.chart import SHARES_RESERVED

    return list(transfer((account, SHARES_AVAILABLE), (account, SHARES_RESERVED), symbol, qty))


def _apply_replaced(
    uow: UnitOfWork,
    record: OrderRecord,
    command: ApplyExecution,
    config: ServiceConfig,
    now: datetime,
    venue_time: datetime,
) -> OrderResult:
    original = record.order
    event = OrderReplaced(
        event_id=str(command.venue_exec_id),
        order_id=original.order_id,
        our_time=now,
        venue_time=venue_time,
        venue_order_id=command.venue_order_id,
    )
    replaced = original.apply(event)
    successor_order = replaced.successor(OrderId(new_id()), event)
    new_venue_cl = record.pending_venue_cl_ord_id or str(command.cl_ord_id)
    successor = OrderRecord(
        order=successor_order,
        venue_cl_ord_id=new_venue_cl,
        fingerprint=record.fingerprint,
        replaces_order_id=record.id,
    )
    record.order = replaced
    record.pending_venue_cl_ord_id = None
    record.replaced_by_order_id = successor.id
    uow.order_changed(record)
    uow.add_order(successor)
    reservation = uow.reservation_for(record.id)
    if reservation is not None:
        uow.move_reservation(reservation, successor.id)
        instrument = uow.instruments().get(original.symbol)
        account = uow.accounts[record.account_id]
        if successor_order.status.is_terminal:
            _release(uow, successor, now)
        elif instrument is not None and account is not None:
            needed = _needed(_Terms.remaining(successor_order), instrument, account, config)
            surplus = reservation.remaining - needed
            if surplus > 0:
                _adjust_reservation(uow, reservation, -surplus, now, f"{successor.id}:trim")
    _event(uow, record, "order.replaced", now, {"replaced_by": successor.id})
    _event(uow, successor, f"order.{successor_order.status.value}", now, {"replaces": record.id})
    return OrderResult(Outcome.APPLIED, order=successor_order, original=replaced)


def apply_cancel_reject(uow: UnitOfWork, command: ApplyCancelReject, config: ServiceConfig, now: datetime) -> OrderResult:
    record = find_order_for_report(uow, command.venue_cl_ord_id, command.orig_venue_cl_ord_id, command.venue_order_id)
    if record is None:
        log.warning("cancel_reject_for_unknown_order", venue_cl_ord_id=command.venue_cl_ord_id)
        return OrderResult(Outcome.IGNORED, detail="unknown order")
    uow.lock_accounts([record.account_id])
    event_type = ReplaceRejected if command.response_to == "replace" else CancelRejected
    try:
        record.order = record.order.apply(
            event_type(event_id=new_id(), order_id=record.order.order_id, our_time=now, reason=command.reason[:512])
        )
    except DomainError as error:
        log.info("cancel_reject_ignored", order_id=record.id, error=str(error))
        return OrderResult(Outcome.IGNORED, order=record.order, detail=str(error))
    record.pending_venue_cl_ord_id = None
    uow.order_changed(record)
    _event(uow, record, f"order.{command.response_to}_rejected", now, {"reason": command.reason})
    return OrderResult(Outcome.APPLIED, order=record.order, detail=command.reason)


# ---------------------------------------------------------------------------------------------------------------------
# Reservations
# ---------------------------------------------------------------------------------------------------------------------


def _needed(terms: Any, instrument: Instrument, account: AccountRecord, config: ServiceConfig) -> Decimal:
    if terms.side is Side.BUY:
        return required_cash(terms, instrument.reference_price, account.market_collar_pct, config.fee_schedule)
    return Decimal(terms.qty)


def _adjust_reservation(uow: UnitOfWork, reservation: ReservationRecord, change: Decimal, now: datetime, reference: str) -> None:
    """Grow (change > 0) or shrink a pending reservation, booking the move between available and reserved."""
    is_cash = _is_cash(uow, reservation)
    if change > 0:
        legs = (movements.reserve_cash if is_cash else movements.reserve_shares)(reservation.account_id, reservation.asset, change)
    else:
        legs = (movements.release_cash if is_cash else movements.release_shares)(reservation.account_id, reservation.asset, -change)
    uow.ledger.post("reserve" if change > 0 else "release", reference, legs, account_id=reservation.account_id, created_at=now)
    reservation.amount += change
    reservation.remaining += change
    uow.reservation_changed(reservation)


def _is_cash(uow: UnitOfWork, reservation: ReservationRecord) -> bool:
    """A reservation holds cash (a buy) unless its asset is the instrument's symbol (a sell)."""
    return reservation.asset not in uow.instruments()


def _release_legs(uow: UnitOfWork, reservation: ReservationRecord) -> list[Any]:
    release = movements.release_cash if _is_cash(uow, reservation) else movements.release_shares
    return release(reservation.account_id, reservation.asset, reservation.remaining)


def _release(uow: UnitOfWork, record: OrderRecord, now: datetime) -> None:
    """A finished order gives back whatever its reservation still holds (invariant 3)."""
    reservation = uow.reservation_for(record.id)
    if reservation is None:
        return
    untouched = reservation.remaining == reservation.amount
    if reservation.remaining:
        uow.ledger.post("release", reservation.id, _release_legs(uow, reservation), account_id=record.account_id, created_at=now)
        reservation.remaining = ZERO
    _resolve(uow, reservation, now, consumed=not untouched)


def _resolve(uow: UnitOfWork, reservation: ReservationRecord, now: datetime, *, consumed: bool) -> None:
    """Close the two-phase hold exactly once: posted if anything was consumed, voided if nothing was."""
    reservation.status = "posted" if consumed else "voided"
    reservation.resolved_at = now
    uow.reservation_changed(reservation)


# ---------------------------------------------------------------------------------------------------------------------
# Rows beside the order: outbox, events, executions, quarantine
# ---------------------------------------------------------------------------------------------------------------------


def _limits(account: AccountRecord) -> AccountLimits:
    return _account_limits(
        account.max_order_qty, account.max_order_notional, account.price_collar_pct, account.market_collar_pct,
        max(account.max_orders_per_second, 1),
    )  # fmt: skip


@lru_cache(maxsize=4096)
def _account_limits(qty: Decimal, notional: Decimal, collar: Decimal, market_collar: Decimal, rate: int) -> AccountLimits:
    """Limits are validated values; accounts share a handful of limit sets, so build each once."""
    return AccountLimits(
        max_order_qty=qty,
        max_order_notional=notional,
        price_collar_pct=collar,
        market_order_collar_pct=market_collar,
        max_orders_per_second=rate,
    )


RATE_WINDOW = timedelta(seconds=1)


def rate_limit(account: AccountRecord, config: ServiceConfig) -> int:
    """Orders per second the account may place: its own limit, else the broker's; 0 = unlimited."""
    return account.max_orders_per_second if account.max_orders_per_second > 0 else config.max_orders_per_second


def _rate_denial(uow: UnitOfWork, account: AccountRecord, config: ServiceConfig, now: datetime) -> Denial | None:
    """A sliding one-second window over the account's orders in the database (no per-process state).

    The caller holds the account lock, so concurrent gateway processes see and extend the same window.
    """
    limit = rate_limit(account, config)
    if limit <= 0:
        return None
    since = now - RATE_WINDOW
    if uow.recent_order_count(account.id, since) >= limit:
        return Denial(ReasonCode.RATE_LIMITED, {"max_per_second": str(limit)})
    uow.count_recent_order(account.id, since)
    return None


def _kill_switches(uow: UnitOfWork, account: AccountRecord) -> KillSwitches:
    return KillSwitches(
        halt_all=uow.global_kill_switch(),
        accounts=frozenset({account.id}) if account.kill_switch else frozenset(),  # type: ignore[arg-type]
    )


def _decimal_text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _new_order_payload(record: OrderRecord) -> dict[str, Any]:
    order = record.order
    return {
        "cl_ord_id": record.venue_cl_ord_id,
        "account": str(order.account),
        "symbol": str(order.symbol),
        "side": order.side._value_,
        "order_type": order.order_type._value_,
        "qty": _decimal_text(order.qty),
        "limit_price": _decimal_text(order.limit_price),
        "stop_price": _decimal_text(order.stop_price),
        "tif": order.tif._value_,
        "expire_date": None if order.expire_date is None else order.expire_date.isoformat(),
    }


def _cancel_payload(record: OrderRecord) -> dict[str, Any]:
    order = record.order
    return {
        "cl_ord_id": record.pending_venue_cl_ord_id,
        "orig_cl_ord_id": record.venue_cl_ord_id,
        "venue_order_id": None if order.venue_order_id is None else str(order.venue_order_id),
        "symbol": str(order.symbol),
        "side": order.side.value,
        "qty": _decimal_text(order.qty),
    }


def _replace_payload(record: OrderRecord, command: ReplaceOrder) -> dict[str, Any]:
    payload = _cancel_payload(record)
    payload.update(
        order_type=record.order.order_type.value,
        qty=_decimal_text(command.qty),
        limit_price=_decimal_text(command.limit_price),
        stop_price=_decimal_text(command.stop_price),
        tif=command.tif.value,
        expire_date=None if command.expire_date is None else command.expire_date.isoformat(),
    )
    return payload


def _outbox(uow: UnitOfWork, record: OrderRecord, kind: str, now: datetime, payload: dict[str, Any]) -> None:
    uow.insert(OutboxMessage, {"order_id": record.id, "kind": kind, "payload": payload, "created_at": now, "sent_at": None, "attempts": 0})


# Row and payload builders read enum values as ``member._value_``: the same string as ``member.value`` without
# the ``value`` property's descriptor call, which adds up over the dozen enum fields of an order's rows.
def _event(uow: UnitOfWork, record: OrderRecord, kind: str, now: datetime, extra: dict[str, Any] | None = None) -> None:
    order = record.order
    payload: dict[str, Any] = {
        "order_id": record.id,
        "cl_ord_id": str(order.cl_ord_id),
        "symbol": str(order.symbol),
        "side": order.side._value_,
        "status": order.status._value_,
        "qty": _decimal_text(order.qty),
        "cum_qty": _decimal_text(order.cum_qty),
        "leaves_qty": _decimal_text(order.leaves_qty),
        "avg_px": _decimal_text(order.avg_px),
    }
    if extra:
        payload.update(extra)
    uow.insert(OrderEvent, {"account_id": record.account_id, "kind": kind, "order_id": record.id, "payload": payload, "created_at": now})


def _execution_row(
    uow: UnitOfWork,
    record: OrderRecord,
    command: ApplyExecution,
    now: datetime,
    *,
    journal_entry_id: str | None,
    fee: Decimal,
) -> None:
    transact = command.transact_time or now
    uow.insert(
        Execution,
        {
            "id": new_id(),
            "venue_exec_id": str(command.venue_exec_id),
            "order_id": record.id,
            "account_id": record.account_id,
            "exec_type": command.exec_type._value_,
            "symbol": str(record.order.symbol),
            "side": record.order.side._value_,
            "last_qty": command.last_qty,
            "last_px": command.last_px,
            "fee": fee,
            "cum_qty": record.order.cum_qty,
            "leaves_qty": record.order.leaves_qty,
            "venue_order_id": None if command.venue_order_id is None else str(command.venue_order_id),
            "journal_entry_id": journal_entry_id,
            "transact_time": transact,
            "trade_date": transact.astimezone(UTC).date(),
            "created_at": now,
        },
    )


def _already_applied(uow: UnitOfWork, command: ApplyExecution, now: datetime) -> OrderResult:
    """A report whose ExecID is booked already. A resend says the same thing (same ExecType; for a trade the
    same quantity and price): ignored. Anything else is a venue reusing an ExecID (its ids restarted, or two
    venues share the database): quarantined for a human, never dropped unseen."""
    table = Execution.__table__.c
    stored = uow.applied_here.get(str(command.venue_exec_id)) or uow.connection.execute(
        select(table.exec_type, table.last_qty, table.last_px).where(table.venue_exec_id == str(command.venue_exec_id))
    ).first()
    if stored is None or (stored[0] == command.exec_type.value and (
            command.exec_type is not ExecType.TRADE or (stored[1], stored[2]) == (command.last_qty, command.last_px))):
        return OrderResult(Outcome.IGNORED, detail="execution already applied")
    detail = f"booked as {stored[0]} {stored[1]}@{stored[2]}, now {command.exec_type.value}"
    return _quarantine(uow, command, "EXEC_ID_REUSED", now, detail)


def _quarantine(uow: UnitOfWork, command: ApplyExecution, reason: str, now: datetime, detail: str = "") -> OrderResult:
    log.warning("execution_quarantined", exec_id=str(command.venue_exec_id), reason=reason, detail=detail)
    uow.insert(
        QuarantinedExecution,
        {"venue_exec_id": str(command.venue_exec_id), "reason": reason, "payload": _command_json(command, detail), "created_at": now},
    )
    return OrderResult(Outcome.QUARANTINED, detail=f"{reason}: {detail}" if detail else reason)


def _command_json(command: ApplyExecution, detail: str) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name in command.__slots__:  # type: ignore[attr-defined]
        value = getattr(command, name)
        data[name] = value.isoformat() if isinstance(value, (datetime, date)) else None if value is None else str(value)
    data["detail"] = detail
    return data
