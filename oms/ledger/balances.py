"""Read models over the ledger: an account's balances and positions, and its journal as a statement."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Select, select, true

from oms.db.models import JournalEntry, LedgerAccount, Posting
from oms.ledger.chart import CASH_AVAILABLE, CASH_RESERVED, CASH_UNSETTLED, SHARES_AVAILABLE, SHARES_RESERVED

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Position:
    symbol: str
    available: Decimal
    reserved: Decimal

    @property
    def total(self) -> Decimal:
        return self.available + self.reserved


@dataclass(frozen=True, slots=True)
class CashBalance:
    currency: str
    available: Decimal
    reserved: Decimal
    unsettled: Decimal

    @property
    def withdrawable(self) -> Decimal:
        """Only settled, unreserved cash may leave the broker."""
        return self.available

    @property
    def total(self) -> Decimal:
        return self.available + self.reserved + self.unsettled


@dataclass(frozen=True, slots=True)
class Balances:
    account_id: str
    cash: dict[str, CashBalance] = field(default_factory=dict)
    positions: dict[str, Position] = field(default_factory=dict)

    def in_currency(self, currency: str) -> CashBalance:
        return self.cash.get(currency, CashBalance(currency, ZERO, ZERO, ZERO))

    def position(self, symbol: str) -> Position:
        return self.positions.get(symbol, Position(symbol, ZERO, ZERO))


def account_balances(connection: Connection, account_id: str, currency: str = "USD") -> Balances:
    """Balances of one customer account, read from the balances kept beside the postings."""
    table = LedgerAccount.__table__
    rows = connection.execute(
        select(table.c.name, table.c.asset, table.c.balance).where(table.c.owner == account_id)
    ).all()
    cash: dict[str, dict[str, Decimal]] = {currency: {}}
    shares: dict[str, dict[str, Decimal]] = {}
    for name, asset, balance in rows:
        if name.startswith("cash:"):
            cash.setdefault(asset, {})[name] = balance
        else:
            shares.setdefault(asset, {})[name] = balance
    return Balances(
        account_id=account_id,
        cash={
            cur: CashBalance(cur, v.get(CASH_AVAILABLE, ZERO), v.get(CASH_RESERVED, ZERO), v.get(CASH_UNSETTLED, ZERO))
            for cur, v in cash.items()
        },
        positions={
            sym: Position(sym, v.get(SHARES_AVAILABLE, ZERO), v.get(SHARES_RESERVED, ZERO))
            for sym, v in sorted(shares.items())
            if v.get(SHARES_AVAILABLE, ZERO) or v.get(SHARES_RESERVED, ZERO)
        },
    )


@dataclass(frozen=True, slots=True)
class StatementLine:
    entry_id: str
    created_at: datetime
    kind: str
    reference: str
    ledger_account: str
    asset: str
    amount: Decimal
    memo: str | None


def statement_select(dialect: str, account_id: str, *, after_posting_id: int, limit: int) -> Select[Any]:
    """The account's next ``limit`` postings after ``after_posting_id`` in booking order, each with its entry:
    (posting id, entry id, entry time, kind, reference, ledger account, asset, amount, memo).

    PostgreSQL reads, for each ledger account of the owner, its next ``limit`` postings from
    ``ix_postings_ledger_account_id`` (a LATERAL subquery), keeps the first ``limit`` of those and only then
    joins their entries: a page costs the same whatever the size of the postings table. Joined the plain way,
    the planner walked the postings table in id order from the cursor, filtering by owner, and read all of it
    when the account's postings were sparse (migration 0006_postings_by_ledger_account). SQLite has no LATERAL
    and keeps the plain join.
    """
    postings = Posting.__table__
    entries = JournalEntry.__table__
    accounts = LedgerAccount.__table__
    if dialect == "postgresql":
        following = (
            select(postings.c.id, postings.c.entry_id, postings.c.ledger_account, postings.c.asset, postings.c.amount)
            .where((postings.c.ledger_account == accounts.c.key) & (postings.c.id > after_posting_id))
            .order_by(postings.c.id)
            .limit(limit)
            .lateral("following")
        )
        page: Any = (  # the owner's postings already: the outer query only adds their entries
            select(following)
            .select_from(accounts.join(following, true()))
            .where(accounts.c.owner == account_id)
            .order_by(following.c.id)
            .limit(limit)
            .subquery("page")
        )
        source: Any = page
        owned: Any = true()
    else:
        page = postings
        source = postings.join(accounts, accounts.c.key == postings.c.ledger_account)
        owned = (accounts.c.owner == account_id) & (postings.c.id > after_posting_id)
    return (
        select(page.c.id, entries.c.id, entries.c.created_at, entries.c.kind, entries.c.reference,
               page.c.ledger_account, page.c.asset, page.c.amount, entries.c.memo)
        .select_from(source.join(entries, entries.c.id == page.c.entry_id))
        .where(owned)
        .order_by(page.c.id)
        .limit(limit)
    )  # fmt: skip


def statement(connection: Connection, account_id: str, *, limit: int = 1000, after_posting_id: int = 0) -> Iterator[StatementLine]:
    """The account's postings in booking order, each with its journal entry: what moved, when and why."""
    query = statement_select(connection.dialect.name, account_id, after_posting_id=after_posting_id, limit=limit)
    for row in connection.execute(query):
        yield StatementLine(row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8])
