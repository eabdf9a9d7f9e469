"""REST writes: each runs an OMS service function and its Idempotency-Key row in ONE unit of work.

The service functions never commit; like ``CommandExecutor`` the ``WriteBatcher`` opens the unit of work,
locks the accounts, runs the actions built here, records each response against its key and commits once.
A business refusal (a denial) is a response like any other: it is stored with the key and replayed. An
unexpected failure rolls everything back and releases the key so the client may retry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from oms.api.batcher import Action, WriteBatcher
from oms.api.idempotency import StoredResponse
from oms.api.keys import Principal
from oms.api.problems import Problem, from_denial, not_found
from oms.api.render import balance_json, order_json
from oms.api.schemas import MoneyRequest, OrderRequest, ReplaceRequest
from oms.db.models import OrderEvent
from oms.domain.commands import CancelOrder, PlaceOrder, ReplaceOrder
from oms.domain.enums import OrderSource, OrderStatus, OrderType, Side, TimeInForce
from oms.domain.errors import DomainError
from oms.domain.values import AccountId, ClOrdId, Symbol, cash_amount_problem
from oms.ledger import movements
from oms.ledger.balances import account_balances
from oms.ledger.chart import CASH_AVAILABLE
from oms.service.orders import Outcome, ServiceConfig, cancel_order, place_order, replace_order
from oms.service.uow import Database, UnitOfWork, new_id


@dataclass(frozen=True, slots=True)
class WriteContext:
    """What a write needs: where to write, the order path's parameters, who asks, whom to wake, the committer."""

    database: Database
    config: ServiceConfig
    principal: Principal
    notify: Callable[[set[str]], None]
    batcher: WriteBatcher


def run_write(context: WriteContext, key: str | None, fingerprint: str, accounts: set[str], action: Action) -> tuple[StoredResponse, bool]:
    """Run ``action`` once per Idempotency-Key (group-committed with other writes); returns (response, replayed)."""
    principal = context.principal
    if key is None:
        response, replayed = context.batcher.run(action, principal.key_id, None, accounts), False
    else:  # the key is claimed, the write done and its response stored in one group-committed transaction
        response, replayed = context.batcher.run_keyed(action, principal.key_id, key, fingerprint, accounts)
    return _written(context, accounts, response, replayed)


async def run_write_async(context: WriteContext, key: str | None, fingerprint: str, accounts: set[str],
                          action: Action) -> tuple[StoredResponse, bool]:  # fmt: skip
    """:func:`run_write` for the event loop: the same answers, without a worker thread blocked on the commit."""
    principal = context.principal
    if key is None:
        response, replayed = await context.batcher.run_async(action, principal.key_id, None, accounts), False
    else:
        response, replayed = await context.batcher.run_keyed_async(action, principal.key_id, key, fingerprint, accounts)
    return _written(context, accounts, response, replayed)


def _written(context: WriteContext, accounts: set[str], response: StoredResponse, replayed: bool) -> tuple[StoredResponse, bool]:
    """Wake the accounts' event streams when the write booked something (a replay booked nothing new)."""
    if replayed:
        return response, True
    if response.status < 400 or response.body.get("order_id"):
        context.notify(accounts)
    return response, False


def own_account(principal: Principal, account: str | None) -> str:
    """The account a request acts for: one of the key's accounts, else 404 (never reveal others)."""
    if account is None:
        if len(principal.accounts) == 1:
            return next(iter(principal.accounts))
        raise Problem(422, "ACCOUNT_REQUIRED", "this API key acts for several accounts: say which in 'account'")
    if account not in principal.accounts:
        raise not_found(f"account {account}")
    return account


def _order_record(uow: UnitOfWork, principal: Principal, order_id: str) -> Any:
    if len(order_id) > 64:
        raise not_found(f"order {order_id}")
    record = uow.order(order_id)
    if record is None or record.account_id not in principal.accounts:
        raise not_found(f"order {order_id}")
    return record


def _denied(uow: UnitOfWork, result: Any) -> StoredResponse:
    extra = {}
    if result.order is not None:
        extra["order_id"] = str(result.order.order_id)
    problem = from_denial(result.denial, **extra)
    return StoredResponse(problem.status, problem.body())


def place(principal: Principal, request: OrderRequest, config: ServiceConfig) -> Action:
    account = own_account(principal, request.account)

    cl_ord_id = request.client_order_id or new_id()

    def action(uow: UnitOfWork, now: datetime) -> StoredResponse:
        try:
            command = PlaceOrder(
                account=AccountId(account),
                cl_ord_id=ClOrdId(cl_ord_id),
                symbol=Symbol(request.symbol),
                side=Side(request.side),
                order_type=OrderType(request.type),
                qty=request.qty,
                limit_price=request.limit_price,
                stop_price=request.stop_price,
                tif=TimeInForce(request.time_in_force),
                expire_date=request.expire_date,
                source=OrderSource.REST,
            )
        except DomainError as error:
            raise Problem(422, "VALIDATION_FAILED", str(error)) from None
        uow.lock_accounts([account])
        result = place_order(uow, command, config, now)
        if result.outcome is Outcome.DENIED:
            return _denied(uow, result)
        assert result.order is not None  # not DENIED: there is an order
        record = uow.order(str(result.order.order_id))
        assert record is not None  # the order just placed (or the one it repeats)
        status = 201 if result.outcome is Outcome.ACCEPTED else 200
        return StoredResponse(status, order_json(record))

    action.command = _Hint(account, cl_ord_id)  # type: ignore[attr-defined] # what the batcher prefetches
    return action


@dataclass(frozen=True, slots=True)
class _Hint:
    """The order a placement will look up, so the batcher loads a whole batch's with one statement."""

    account: str
    cl_ord_id: str


def cancel(principal: Principal, order_id: str, config: ServiceConfig) -> Action:
    def action(uow: UnitOfWork, now: datetime) -> StoredResponse:
        record = _order_record(uow, principal, order_id)
        uow.lock_accounts([record.account_id])
        _refuse_if_replaced(record)
        command = CancelOrder(account=record.account_id, cl_ord_id=ClOrdId(new_id()), orig_cl_ord_id=record.order.cl_ord_id)
        result = cancel_order(uow, command, config, now)
        if result.outcome is Outcome.DENIED:
            return _denied(uow, result)
        changed = uow.order(order_id)
        assert changed is not None  # _order_record found it in this same transaction
        return StoredResponse(202, order_json(changed))

    return action


def replace(principal: Principal, order_id: str, request: ReplaceRequest, config: ServiceConfig) -> Action:
    def action(uow: UnitOfWork, now: datetime) -> StoredResponse:
        record = _order_record(uow, principal, order_id)
        uow.lock_accounts([record.account_id])
        _refuse_if_replaced(record)
        order = record.order
        new_cl = request.client_order_id or new_id()
        uow.prefetch_orders_by_client([(record.account_id, new_cl)])
        fields = request.model_fields_set
        tif = TimeInForce(request.time_in_force) if request.time_in_force else order.tif
        # A date left out is the order's own only while it stays GTD: replaced to GTC or DAY it has none, and
        # keeping it would refuse the replace for a date the client never sent.
        kept_date = order.expire_date if tif is TimeInForce.GTD else None
        try:
            command = ReplaceOrder(
                account=record.account_id,
                cl_ord_id=ClOrdId(new_cl),
                orig_cl_ord_id=order.cl_ord_id,
                qty=request.qty if request.qty is not None else order.qty,
                limit_price=request.limit_price if "limit_price" in fields else order.limit_price,
                stop_price=request.stop_price if "stop_price" in fields else order.stop_price,
                tif=tif,
                expire_date=request.expire_date if "expire_date" in fields else kept_date,
            )
        except DomainError as error:
            raise Problem(422, "VALIDATION_FAILED", str(error)) from None
        result = replace_order(uow, command, config, now)
        if result.outcome is Outcome.DENIED:
            return _denied(uow, result)
        changed = uow.order(order_id)
        assert changed is not None  # _order_record found it in this same transaction
        return StoredResponse(202, order_json(changed))

    return action


def _refuse_if_replaced(record: Any) -> None:
    if record.replaced_by_order_id is not None or record.order.status is OrderStatus.REPLACED:
        raise Problem(409, "ORDER_NOT_CANCELABLE", f"ORDER_NOT_CANCELABLE: status=replaced, replaced_by={record.replaced_by_order_id}")


def move_money(principal: Principal, account: str, kind: str, request: MoneyRequest) -> Action:
    """A deposit or withdrawal, booked with the same ledger movements as ``oms.service.accounts``."""
    assert kind in ("deposit", "withdrawal")
    own_account(principal, account)
    amount: Decimal = request.amount

    def action(uow: UnitOfWork, now: datetime) -> StoredResponse:
        record = uow.account(account)
        if record is None:
            raise not_found(f"account {account}")
        currency = record.currency
        problem = cash_amount_problem(amount, currency, kind)
        if problem is not None:
            raise Problem(422, "INVALID_AMOUNT", problem)
        if kind == "withdrawal":
            withdrawable = uow.ledger.balance(account, CASH_AVAILABLE, currency)
            if amount > withdrawable:
                raise Problem(422, "INSUFFICIENT_FUNDS", f"INSUFFICIENT_FUNDS: requested={amount}, withdrawable={withdrawable}")
            legs = movements.withdraw(account, currency, amount)
        else:
            legs = movements.deposit(account, currency, amount)
        entry_id = uow.ledger.post(kind, new_id(), legs, account_id=account, created_at=now)
        uow.flush()
        balances = balance_json(account_balances(uow.connection, account, currency), currency)
        uow.insert(
            OrderEvent,
            {"account_id": account, "kind": f"balance.{kind}", "order_id": None, "created_at": now,
             "payload": {"entry_id": entry_id, "amount": format(amount, "f"), "currency": currency, "balances": balances}},
        )  # fmt: skip
        body = {"id": entry_id, "account": account, "kind": kind, "amount": format(amount, "f"), "currency": currency,
                "balances": balances}  # fmt: skip
        return StoredResponse(201, body)

    return action


