"""Read models over the ledger: an account's balances and positions, and its journal as a statement."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection, select

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


def statement(connection: Connection, account_id: str, *, limit: int = 1000, after_posting_id: int = 0) -> Iterator[StatementLine]:
    """The account's postings in booking order, each with its journal entry: what moved, when and why."""
    postings = Posting.__table__
    entries = JournalEntry.__table__
    accounts = LedgerAccount.__table__
    query = (
        select(
            postings.c.id,
            entries.c.id,
            entries.c.created_at,
            entries.c.kind,
            entries.c.reference,
            postings.c.ledger_account,
            postings.c.asset,
            postings.c.amount,
            entries.c.memo,
        )
        .join(entries, entries.c.id == postings.c.entry_id)
        .join(accounts, accounts.c.key == postings.c.ledger_account)
        .where(accounts.c.owner == account_id, postings.c.id > after_posting_id)
        .order_by(postings.c.id)
        .limit(limit)
    )
    for row in connection.execute(query):
        yield StatementLine(row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8])
