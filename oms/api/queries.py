"""Read-side queries for the API, always filtered to the caller's accounts.

Lists use keyset (cursor) pagination: the cursor is an opaque token holding the last row's sort key, so
pages stay stable while new rows arrive and no page costs an OFFSET scan.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    FromClause,
    Select,
    String,
    and_,
    column,
    or_,
    select,
    true,
    values,
)

from oms.api.problems import Problem
from oms.api.render import order_json, text, timestamp
from oms.db.models import Account, Execution, Instrument
from oms.db.models import Order as OrderRow
from oms.ledger.balances import statement_select
from oms.service.order_rows import ORDER_COLUMNS, OrderRecord, record_from_row

_orders = OrderRow.__table__
_executions = Execution.__table__
MAX_PAGE = 500
MAX_SEQUENCE = 2**62  # ids are BIGINT: a bigger cursor is not one we issued

OPEN_STATUSES = ("pending_new", "new", "partially_filled", "pending_cancel", "pending_replace")
CLOSED_STATUSES = ("filled", "canceled", "replaced", "rejected", "expired", "done_for_day")
ALL_STATUSES = OPEN_STATUSES + CLOSED_STATUSES


def encode_cursor(*parts: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        parts = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(parts, list) or len(parts) != arity:
            raise ValueError
        return parts
    except (ValueError, UnicodeDecodeError, TypeError):
        raise Problem(400, "INVALID_CURSOR", "cursor is not one this API issued") from None




def _db_time(connection: Connection, value: datetime) -> datetime:
    value = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    try:
        value = value.astimezone(UTC)
    except OverflowError:
        raise Problem(422, "VALIDATION_FAILED", f"time {value.isoformat()} is out of range") from None
    return value.replace(tzinfo=None) if connection.dialect.name == "sqlite" else value


def _select_orders() -> Any:
    return select(*(_orders.c[name] for name in ORDER_COLUMNS))


def order_by_id(connection: Connection, accounts: Iterable[str], order_id: str) -> OrderRecord | None:
    row = connection.execute(_select_orders().where((_orders.c.id == order_id) & _orders.c.account_id.in_(list(accounts)))).first()
    return None if row is None else record_from_row(row)


def order_by_client_id(connection: Connection, accounts: Iterable[str], client_order_id: str) -> list[OrderRecord]:
    rows = connection.execute(
        _select_orders().where((_orders.c.cl_ord_id == client_order_id) & _orders.c.account_id.in_(sorted(accounts)))
    )
    return [record_from_row(row) for row in rows]


@dataclass(frozen=True, slots=True)
class OrderFilter:
    accounts: list[str]
    statuses: list[str] | None = None
    symbol: str | None = None
    after: datetime | None = None
    until: datetime | None = None
    limit: int = 50
    cursor: str | None = None


def first_per_account(dialect: str, table: FromClause, columns: Sequence[ColumnElement[Any]], accounts: list[str],
                      condition: ColumnElement[bool], order: list[tuple[str, bool]], limit: int) -> Select[Any]:  # fmt: skip
    """The first ``limit`` rows of ``accounts`` matching ``condition`` in ``order`` ((column, descending) pairs).

    With several accounts on PostgreSQL, each account's first ``limit`` rows come from its own
    ``(account_id, created_at)`` index range (a LATERAL subquery per account) and the first ``limit`` of those
    are kept. With ``account_id IN (...)`` the planner read every row of every listed account and sorted them
    all for each page: a retail backend's key is bound to many accounts. SQLite and one account keep the plain
    query, which already reads one index range.
    """

    def sort(source: Any) -> list[Any]:
        return [source.c[name].desc() if descending else source.c[name] for name, descending in order]

    if dialect != "postgresql" or len(accounts) <= 1:
        where = table.c.account_id.in_(accounts) & condition
        return select(*columns).where(where).order_by(*sort(table)).limit(limit)
    wanted = values(column("account_id", String), name="wanted").data([(account,) for account in accounts])
    first = (select(*columns).where((table.c.account_id == wanted.c.account_id) & condition)
             .order_by(*sort(table)).limit(limit).lateral("first"))  # fmt: skip
    return select(first).select_from(wanted.join(first, true())).order_by(*sort(first)).limit(limit)


def list_orders(connection: Connection, query: OrderFilter) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first; ``after``/``until`` bound ``created_at`` (inclusive after, exclusive until)."""
    condition: ColumnElement[bool] = true()
    if query.statuses:
        condition = condition & _orders.c.status.in_(query.statuses)
    if query.symbol:
        condition = condition & (_orders.c.symbol == query.symbol)
    if query.after is not None:
        condition = condition & (_orders.c.created_at >= _db_time(connection, query.after))
    if query.until is not None:
        condition = condition & (_orders.c.created_at < _db_time(connection, query.until))
    if query.cursor:
        created_text, last_id = decode_cursor(query.cursor, 2)
        created = _parse_cursor_time(created_text)
        created = _db_time(connection, created)
        # The bare bound restates what the OR implies, so the index range starts at the cursor: without it a
        # page deep in an account's history walked that account's newer orders first.
        condition = condition & (_orders.c.created_at <= created) & or_(
            _orders.c.created_at < created, and_(_orders.c.created_at == created, _orders.c.id < str(last_id))
        )
    columns = [_orders.c[name] for name in ORDER_COLUMNS]
    newest_first = [("created_at", True), ("id", True)]
    rows = connection.execute(first_per_account(connection.dialect.name, _orders, columns, query.accounts, condition,
                                                newest_first, query.limit + 1)).all()  # fmt: skip
    records = [record_from_row(row) for row in rows[: query.limit]]
    cursor = None
    if len(rows) > query.limit:
        last = records[-1]
        cursor = encode_cursor(last.order.created_at.astimezone(UTC).isoformat(), last.id)
    return [order_json(record) for record in records], cursor


def _parse_cursor_time(value: Any) -> datetime:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise Problem(400, "INVALID_CURSOR", "cursor is not one this API issued") from None


def list_executions(
    connection: Connection, accounts: list[str], *, order_id: str | None, symbol: str | None, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """Oldest first (booking order), so a client can follow them with the cursor."""
    columns = _executions.c
    condition: ColumnElement[bool] = true()
    if order_id:
        condition = condition & (columns.order_id == order_id)
    if symbol:
        condition = condition & (columns.symbol == symbol)
    if cursor:
        created_text, last_id = decode_cursor(cursor, 2)
        created = _db_time(connection, _parse_cursor_time(created_text))
        condition = condition & (columns.created_at >= created) & or_(  # the bare bound: see list_orders
            columns.created_at > created, and_(columns.created_at == created, columns.id > str(last_id))
        )
    shown = [columns.id, columns.order_id, columns.account_id, columns.exec_type, columns.symbol, columns.side,
             columns.last_qty, columns.last_px, columns.fee, columns.cum_qty, columns.leaves_qty,
             columns.transact_time, columns.created_at]  # fmt: skip
    oldest_first = [("created_at", False), ("id", False)]
    rows = connection.execute(first_per_account(connection.dialect.name, _executions, shown, accounts, condition,
                                                oldest_first, limit + 1)).all()  # fmt: skip
    page = rows[:limit]
    items = [
        {
            "id": row[0], "order_id": row[1], "account": row[2], "exec_type": row[3], "symbol": row[4],
            "side": row[5], "qty": text(row[6]), "price": text(row[7]), "fee": text(row[8]),
            "filled_qty": text(row[9]), "leaves_qty": text(row[10]), "transact_time": timestamp(row[11]),
        }
        for row in page
    ]  # fmt: skip
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        created = last[12] if last[12].tzinfo else last[12].replace(tzinfo=UTC)
        next_cursor = encode_cursor(created.isoformat(), last[0])
    return items, next_cursor


def account_row(connection: Connection, account_id: str) -> Any:
    table = Account.__table__
    return connection.execute(
        select(table.c.id, table.c.status, table.c.currency, table.c.created_at).where(table.c.id == account_id)
    ).first()


def statement_page(connection: Connection, account_id: str, *, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """The account's postings in booking order with their journal entries."""
    after = 0
    if cursor:
        (after,) = decode_cursor(cursor, 1)
        if not isinstance(after, int) or isinstance(after, bool) or not 0 <= after < MAX_SEQUENCE:
            raise Problem(400, "INVALID_CURSOR", "cursor is not one this API issued")
    rows = connection.execute(statement_select(connection.dialect.name, account_id, after_posting_id=after, limit=limit + 1)).all()
    page = rows[:limit]
    lines = [
        {"id": row[0], "entry_id": row[1], "created_at": timestamp(row[2]), "kind": row[3], "reference": row[4],
         "ledger_account": row[5], "asset": row[6], "amount": text(row[7]), "memo": row[8]}
        for row in page
    ]  # fmt: skip
    return lines, encode_cursor(page[-1][0]) if len(rows) > limit else None


def instruments(connection: Connection, symbol: str | None = None) -> list[Any]:
    table = Instrument.__table__
    query = select(
        table.c.symbol, table.c.currency, table.c.tick_size, table.c.lot_size, table.c.fractional,
        table.c.qty_decimals, table.c.tradable, table.c.reference_price, table.c.reference_updated_at,
    ).order_by(table.c.symbol)  # fmt: skip
    if symbol is not None:
        query = query.where(table.c.symbol == symbol)
    return list(connection.execute(query))


def instrument_json(row: Any) -> dict[str, Any]:
    return {"symbol": row[0], "currency": row[1], "tick_size": text(row[2]), "lot_size": text(row[3]),
            "fractional": bool(row[4]), "qty_decimals": int(row[5]), "tradable": bool(row[6])}  # fmt: skip


def quote_json(row: Any) -> dict[str, Any]:
    return {"symbol": row[0], "reference_price": text(row[7]), "updated_at": timestamp(row[8])}
