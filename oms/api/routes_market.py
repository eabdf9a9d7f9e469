"""Instruments and quotes (reference prices); setting a reference price is an admin operation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from sqlalchemy import update
from starlette.responses import JSONResponse

from oms.api import queries, writes
from oms.api.deps import Admin, Fingerprint, IdempotencyKey, Reader, State, write_context
from oms.api.idempotency import StoredResponse
from oms.api.json_body import JsonBodyRoute
from oms.api.problems import not_found
from oms.api.responses import ok, problems, respond
from oms.api.schemas import InstrumentOut, QuoteOut, QuoteRequest
from oms.db.models import Instrument
from oms.service.uow import UnitOfWork

router = APIRouter(prefix="/v1", tags=["market"], route_class=JsonBodyRoute)


@router.get("/instruments", response_model=list[InstrumentOut], responses=problems())
def list_instruments(state: State, principal: Reader) -> JSONResponse:
    """What may be traded and in which increments (``fractional`` instruments take ``qty_decimals`` places)."""
    with state.database.engine.connect() as connection:
        return ok([queries.instrument_json(row) for row in queries.instruments(connection)])


@router.get("/instruments/{symbol}", response_model=InstrumentOut, responses=problems(404))
def get_instrument(symbol: str, state: State, principal: Reader) -> JSONResponse:
    return ok(queries.instrument_json(_instrument_row(state, symbol)))


def _instrument_row(state: State, symbol: str) -> Any:
    with state.database.engine.connect() as connection:
        rows = queries.instruments(connection, symbol)
    if not rows:
        raise not_found(f"instrument {symbol}")
    return rows[0]


@router.get("/quotes", response_model=list[QuoteOut], responses=problems())
def list_quotes(state: State, principal: Reader) -> JSONResponse:
    """Reference prices: what collars, market-order reservations and position values use."""
    with state.database.engine.connect() as connection:
        return ok([queries.quote_json(row) for row in queries.instruments(connection)])


@router.get("/quotes/{symbol}", response_model=QuoteOut, responses=problems(404))
def get_quote(symbol: str, state: State, principal: Reader) -> JSONResponse:
    return ok(queries.quote_json(_instrument_row(state, symbol)))


@router.put("/quotes/{symbol}", response_model=QuoteOut, responses=problems(404, 409, 413))
def set_quote(symbol: str, body: QuoteRequest, state: State, principal: Admin, key: IdempotencyKey, fingerprint: Fingerprint) -> JSONResponse:
    """Set a reference price (scope ``admin``)."""
    table = Instrument.__table__

    def action(uow: UnitOfWork, now: datetime) -> StoredResponse:
        changed = uow.connection.execute(
            update(table).where(table.c.symbol == symbol).values(reference_price=body.price, reference_updated_at=now)
        )
        if changed.rowcount == 0:
            raise not_found(f"instrument {symbol}")
        return StoredResponse(200, queries.quote_json(queries.instruments(uow.connection, symbol)[0]))

    stored, replayed = writes.run_write(write_context(state, principal), key, fingerprint, set(), action)
    state.database.invalidate_instruments()
    return respond(stored, replayed)
