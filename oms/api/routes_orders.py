"""Orders (place, get, list, cancel, replace) and executions: HTTP to OMS commands and queries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BeforeValidator
from starlette.responses import JSONResponse

from oms.api import queries, writes
from oms.api.deps import Fingerprint, IdempotencyKey, Reader, State, Trader, write_context
from oms.api.json_body import JsonBodyRoute
from oms.api.keys import Principal
from oms.api.problems import Problem, not_found
from oms.api.render import order_json
from oms.api.responses import ok, problems, respond
from oms.api.schemas import ExecutionPage, OrderOut, OrderPage, OrderRequest, ReplaceRequest

router = APIRouter(prefix="/v1", tags=["orders"], route_class=JsonBodyRoute)

def _iso_8601(value: object) -> object:
    """A query time must be ISO 8601 text, as the OpenAPI document says: pydantic alone would also take a bare
    number as seconds since 1970."""
    if isinstance(value, str):
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("must be an ISO 8601 date-time, e.g. 2026-11-23T09:30:00Z") from None
    return value


Instant = Annotated[datetime, BeforeValidator(_iso_8601)]

StatusFilter = Annotated[
    str | None,
    Query(max_length=200, description="Comma-separated statuses, or 'open' / 'closed'.", pattern=r"^[a-z_,]+$"),
]


def _accounts(principal: Principal, account: str | None) -> list[str]:
    if account is None:
        return sorted(principal.accounts)
    if account not in principal.accounts:
        raise not_found(f"account {account}")
    return [account]


def _statuses(value: str | None) -> list[str] | None:
    if value is None:
        return None
    wanted: list[str] = []
    for part in filter(None, value.split(",")):
        if part == "open":
            wanted.extend(queries.OPEN_STATUSES)
        elif part == "closed":
            wanted.extend(queries.CLOSED_STATUSES)
        elif part in queries.ALL_STATUSES:
            wanted.append(part)
        else:
            raise Problem(422, "VALIDATION_FAILED", f"unknown status {part!r}",
                          errors=[{"field": "status", "message": f"one of open, closed, {', '.join(queries.ALL_STATUSES)}"}])  # fmt: skip
    return wanted or None


@router.post("/orders", status_code=201, response_model=OrderOut, responses={
    200: {"model": OrderOut, "description": "The existing order: its client_order_id was sent again with the same terms."},
    **problems(404, 409, 413, 503),
})
def place_order(body: OrderRequest, state: State, principal: Trader, key: IdempotencyKey, fingerprint: Fingerprint) -> JSONResponse:
    """Place an order. 201 with the new order (``pending_new`` until the venue acknowledges it); 200 with the
    original when the same ``client_order_id`` is sent again with the same terms; a pre-trade denial is a
    problem whose ``code`` is the FIX reason code (and ``order_id`` the rejected order)."""
    action = writes.place(principal, body, state.config)
    account = writes.own_account(principal, body.account)
    stored, replayed = writes.run_write(write_context(state, principal), key, fingerprint, {account}, action)
    return respond(stored, replayed)


@router.get("/orders", response_model=OrderPage, responses=problems(404))
def list_orders(
    state: State,
    principal: Reader,
    account: Annotated[str | None, Query(max_length=64)] = None,
    status: StatusFilter = None,
    symbol: Annotated[str | None, Query(max_length=32)] = None,
    after: Annotated[Instant | None, Query(description="created_at >= after (ISO 8601)")] = None,
    until: Annotated[Instant | None, Query(description="created_at < until (ISO 8601)")] = None,
    limit: Annotated[int, Query(ge=1, le=queries.MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> JSONResponse:
    """Newest first; follow ``next_cursor`` for the next page (null on the last one)."""
    query = queries.OrderFilter(_accounts(principal, account), _statuses(status), symbol, after, until, limit, cursor)
    with state.database.engine.connect() as connection:
        orders, next_cursor = queries.list_orders(connection, query)
    return ok({"orders": orders, "next_cursor": next_cursor})


@router.get("/orders/by-client-id/{client_order_id:path}", response_model=OrderOut, responses=problems(404))
def get_order_by_client_id(
    client_order_id: str, state: State, principal: Reader, account: Annotated[str | None, Query(max_length=64)] = None
) -> JSONResponse:
    """An order by its ``client_order_id`` (unique per account; say ``account`` if the key has several).

    The id may contain ``/`` (placing accepts it), sent as is or as ``%2F``: the parameter takes the rest of
    the path."""
    accounts = _accounts(principal, account)
    with state.database.engine.connect() as connection:
        found = queries.order_by_client_id(connection, accounts, client_order_id)
    if not found:
        raise not_found(f"order with client_order_id {client_order_id}")
    if len(found) > 1:
        raise Problem(409, "AMBIGUOUS_CLIENT_ORDER_ID", "several of your accounts use this client_order_id: pass 'account'")
    return ok(order_json(found[0]))


@router.get("/orders/{order_id}", response_model=OrderOut, responses=problems(404))
def get_order(order_id: str, state: State, principal: Reader) -> JSONResponse:
    with state.database.engine.connect() as connection:
        record = queries.order_by_id(connection, principal.accounts, order_id)
    if record is None:
        raise not_found(f"order {order_id}")
    return ok(order_json(record))


@router.delete("/orders/{order_id}", status_code=202, response_model=OrderOut, responses=problems(404, 409, 413, 503))
def cancel_order(order_id: str, state: State, principal: Trader, key: IdempotencyKey, fingerprint: Fingerprint) -> JSONResponse:
    """Request a cancel: 202 with the order in ``pending_cancel``; the venue's answer arrives on the event stream."""
    action = writes.cancel(principal, order_id, state.config)
    stored, replayed = writes.run_write(write_context(state, principal), key, fingerprint, set(principal.accounts), action)
    return respond(stored, replayed)


@router.post("/orders/{order_id}/replace", status_code=202, response_model=OrderOut, responses=problems(404, 409, 413, 503))
def replace_order(
    order_id: str, body: ReplaceRequest, state: State, principal: Trader, key: IdempotencyKey, fingerprint: Fingerprint
) -> JSONResponse:
    """Request a replace: 202 with the order in ``pending_replace`` and the replacing order's client id in
    ``pending_replace_client_order_id``. When the venue confirms, the replacing order exists with
    ``replaces`` = this order's id, and this order shows ``replaced_by`` = its id."""
    action = writes.replace(principal, order_id, body, state.config)
    stored, replayed = writes.run_write(write_context(state, principal), key, fingerprint, set(principal.accounts), action)
    return respond(stored, replayed)


@router.get("/executions", response_model=ExecutionPage, responses=problems(404), tags=["executions"])
def list_executions(
    state: State,
    principal: Reader,
    account: Annotated[str | None, Query(max_length=64)] = None,
    order_id: Annotated[str | None, Query(max_length=64)] = None,
    symbol: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=queries.MAX_PAGE)] = 100,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> JSONResponse:
    """Execution reports applied to your orders, oldest first."""
    with state.database.engine.connect() as connection:
        items, next_cursor = queries.list_executions(
            connection, _accounts(principal, account), order_id=order_id, symbol=symbol, limit=limit, cursor=cursor
        )
    return ok({"executions": items, "next_cursor": next_cursor})
