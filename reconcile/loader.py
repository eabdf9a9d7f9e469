"""Reading our side of the books for a run: the day's fills, the orders the report names, the ledger.

Queries stream (``yield_per``) and sums are done in Python with ``Decimal`` so SQLite (decimal text) and
PostgreSQL (NUMERIC) give the same exact answers.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection, select

from oms.db.models import Execution, Instrument, JournalEntry, LedgerAccount, Order, Posting
from oms.ledger.chart import BROKER
from reconcile.checks import LedgerSnapshot
from reconcile.model import ZERO, Break, BreakKind, OrderRef, OurExecution, VenueTrade

FILL = "trade"
MONEY_IN_OUT_KINDS = ("deposit", "withdrawal")
CHUNK = 500
DEFAULT_CURRENCY = "USD"


def day_executions(connection: Connection, trade_date: date) -> list[OurExecution]:
    """Our fills with that trade date (the venue's transact time, in UTC)."""
    return list(_executions(connection, Execution.__table__.c.trade_date == trade_date))


def all_fills(connection: Connection) -> Iterator[OurExecution]:
    return _executions(connection, None)


def _executions(connection: Connection, condition: object) -> Iterator[OurExecution]:
    executions, orders = Execution.__table__, Order.__table__
    query = (
        select(executions.c.venue_exec_id, executions.c.order_id, executions.c.account_id, orders.c.venue_cl_ord_id,
               executions.c.venue_order_id, orders.c.venue_order_id, executions.c.symbol, executions.c.side,
               executions.c.last_qty, executions.c.last_px, executions.c.fee, executions.c.transact_time)
        .join(orders, orders.c.id == executions.c.order_id)
        .where(executions.c.exec_type == FILL)
        .order_by(executions.c.transact_time, executions.c.venue_exec_id)
    )
    if condition is not None:
        query = query.where(condition)  # type: ignore[arg-type]
    for row in connection.execute(query, execution_options={"yield_per": 10_000}):
        (exec_id, order_id, account, venue_cl, exec_venue_order, order_venue_order, symbol, side, qty, price, fee,
         moment) = row
        yield OurExecution(exec_id, order_id, account, venue_cl, exec_venue_order or order_venue_order, symbol,
                           side, qty, price, fee, moment)


@dataclass(frozen=True)
class OrderIndex:
    """Our orders named by a report, by venue-facing ClOrdID and by venue order id."""

    by_cl_ord_id: dict[str, OrderRef]
    by_venue_order_id: dict[str, OrderRef]

    def order_of(self, row: VenueTrade) -> OrderRef | None:
        """The ClOrdID is ours and unique; the venue's order id is the fallback (a replaced order's fills)."""
        return self.by_cl_ord_id.get(row.cl_ord_id) or self.by_venue_order_id.get(row.order_id)

    def account_of(self, row: VenueTrade) -> str | None:
        order = self.order_of(row)
        return None if order is None else order.account_id

    def name_accounts(self, breaks: Iterable[Break], missing: Iterable[VenueTrade]) -> list[Break]:
        """A missed fill names no account of ours until this index maps the venue's ids to one."""
        rows = {row.exec_id: row for row in missing}
        found: list[Break] = []
        for item in breaks:
            row = rows.get(item.exec_id or "") if item.kind is BreakKind.MISSING_OURS else None
            account = None if row is None else self.account_of(row)
            found.append(item if account is None else dataclasses.replace(item, account_id=account))
        return found


def order_index(connection: Connection, rows: Sequence[VenueTrade]) -> OrderIndex:
    orders = Order.__table__
    columns = (orders.c.id, orders.c.account_id, orders.c.venue_cl_ord_id, orders.c.venue_order_id, orders.c.symbol,
               orders.c.side, orders.c.qty, orders.c.cum_qty, orders.c.leaves_qty, orders.c.status)
    by_cl: dict[str, OrderRef] = {}
    by_venue: dict[str, OrderRef] = {}
    wanted_cl = sorted({row.cl_ord_id for row in rows})
    wanted_venue = sorted({row.order_id for row in rows})
    for column, wanted in ((orders.c.venue_cl_ord_id, wanted_cl), (orders.c.venue_order_id, wanted_venue)):
        for start in range(0, len(wanted), CHUNK):
            for values in connection.execute(select(*columns).where(column.in_(wanted[start:start + CHUNK]))):
                ref = OrderRef(*values)
                by_cl[ref.venue_cl_ord_id] = ref
                if ref.venue_order_id:
                    by_venue[ref.venue_order_id] = ref
    return OrderIndex(by_cl, by_venue)


def currencies(connection: Connection) -> Callable[[str], str]:
    table = Instrument.__table__
    known = dict(connection.execute(select(table.c.symbol, table.c.currency)).tuples().all())
    return lambda symbol: known.get(symbol, DEFAULT_CURRENCY)


def ledger_snapshot(connection: Connection) -> LedgerSnapshot:
    accounts = LedgerAccount.__table__
    shares: dict[tuple[str, str], object] = defaultdict(lambda: ZERO)
    cash: dict[tuple[str, str], object] = defaultdict(lambda: ZERO)
    query = select(accounts.c.owner, accounts.c.name, accounts.c.asset, accounts.c.balance).where(
        accounts.c.owner != BROKER)
    for owner, name, asset, balance in connection.execute(query):
        target = cash if name.startswith("cash:") else shares
        target[(owner, asset)] += balance  # type: ignore[operator]
    postings, entries = Posting.__table__, JournalEntry.__table__
    flows: dict[tuple[str, str], object] = defaultdict(lambda: ZERO)
    query = (
        select(accounts.c.owner, postings.c.asset, postings.c.amount)
        .join(accounts, accounts.c.key == postings.c.ledger_account)
        .join(entries, entries.c.id == postings.c.entry_id)
        .where(entries.c.kind.in_(MONEY_IN_OUT_KINDS), accounts.c.owner != BROKER)
    )
    for owner, asset, amount in connection.execute(query, execution_options={"yield_per": 10_000}):
        flows[(owner, asset)] += amount  # type: ignore[operator]
    return LedgerSnapshot(_nonzero(shares), _nonzero(cash), _nonzero(flows))  # type: ignore[arg-type]


def _nonzero(values: dict) -> dict:  # type: ignore[type-arg]
    return {key: value for key, value in values.items() if value != ZERO}
