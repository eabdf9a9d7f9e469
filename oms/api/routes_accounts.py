"""Accounts, balances, deposits and withdrawals, positions and the ledger statement."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import JSONResponse

from oms.api import queries, writes
from oms.api.deps import Fingerprint, Funder, IdempotencyKey, Reader, State, write_context
from oms.api.json_body import JsonBodyRoute
from oms.api.keys import Principal
from oms.api.positions import positions
from oms.api.problems import not_found
from oms.api.render import balance_json, timestamp
from oms.api.responses import ok, problems, respond
from oms.api.schemas import AccountOut, BalanceOut, MoneyOut, MoneyRequest, PositionOut, StatementPage
from oms.ledger.balances import account_balances

router = APIRouter(prefix="/v1/accounts", tags=["accounts"], route_class=JsonBodyRoute)


def _account_body(state: State, principal: Principal, account: str) -> dict[str, object]:
    if account not in principal.accounts:
        raise not_found(f"account {account}")
    with state.database.engine.connect() as connection:
        row = queries.account_row(connection, account)
        if row is None:
            raise not_found(f"account {account}")
        balances = account_balances(connection, account, row[2])
    return {"id": row[0], "status": row[1], "currency": row[2], "created_at": timestamp(row[3]),
            "balances": balance_json(balances, row[2])}  # fmt: skip


@router.get("", response_model=list[AccountOut], responses=problems())
def list_accounts(state: State, principal: Reader) -> JSONResponse:
    """The accounts this API key acts for, with their cash balances."""
    return ok([_account_body(state, principal, account) for account in sorted(principal.accounts)])


@router.get("/{account}", response_model=AccountOut, responses=problems(404))
def get_account(account: str, state: State, principal: Reader) -> JSONResponse:
    return ok(_account_body(state, principal, account))


@router.get("/{account}/balances", response_model=BalanceOut, responses=problems(404))
def get_balances(account: str, state: State, principal: Reader) -> JSONResponse:
    """Cash: available, reserved (held for open buys), unsettled (sale proceeds before T+2), withdrawable, total."""
    return ok(_account_body(state, principal, account)["balances"])


def _money(kind: str, account: str, body: MoneyRequest, state: State, principal: Principal, key: str | None, fingerprint: str) -> JSONResponse:
    action = writes.move_money(principal, account, kind, body)
    stored, replayed = writes.run_write(write_context(state, principal), key, fingerprint, {account}, action)
    return respond(stored, replayed)


@router.post("/{account}/deposits", status_code=201, response_model=MoneyOut, responses=problems(404, 409, 413))
def deposit(account: str, body: MoneyRequest, state: State, principal: Funder, key: IdempotencyKey, fingerprint: Fingerprint) -> JSONResponse:
    """Money in from the bank (scope ``fund``)."""
    return _money("deposit", account, body, state, principal, key, fingerprint)


@router.post("/{account}/withdrawals", status_code=201, response_model=MoneyOut, responses=problems(404, 409, 413))
def withdraw(account: str, body: MoneyRequest, state: State, principal: Funder, key: IdempotencyKey, fingerprint: Fingerprint) -> JSONResponse:
    """Money out to the bank: at most the withdrawable (settled, unreserved) cash; else ``INSUFFICIENT_FUNDS``."""
    return _money("withdrawal", account, body, state, principal, key, fingerprint)


@router.get("/{account}/positions", response_model=list[PositionOut], responses=problems(404))
def get_positions(account: str, state: State, principal: Reader) -> JSONResponse:
    """Quantity, average cost, market value, unrealized and realized P&L at the reference prices."""
    if account not in principal.accounts:
        raise not_found(f"account {account}")
    with state.database.engine.connect() as connection:
        row = queries.account_row(connection, account)
        if row is None:
            raise not_found(f"account {account}")
        return ok(positions(connection, account, account_balances(connection, account, row[2])))


@router.get("/{account}/statement", response_model=StatementPage, responses=problems(404))
def get_statement(
    account: str,
    state: State,
    principal: Reader,
    limit: Annotated[int, Query(ge=1, le=queries.MAX_PAGE)] = 100,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> JSONResponse:
    """The account's ledger postings in booking order, each with its journal entry."""
    if account not in principal.accounts:
        raise not_found(f"account {account}")
    with state.database.engine.connect() as connection:
        lines, next_cursor = queries.statement_page(connection, account, limit=limit, cursor=cursor)
    return ok({"lines": lines, "next_cursor": next_cursor})
