"""Checks of every ledger invariant of DESIGN.md, returning violations as values (never raising).

1. Every journal entry balances per asset, and no entry is empty.
2. Every posting belongs to a journal entry and a ledger account that exist (the schema leaves these references
   to the ledger's single writer, migration 0004_postings_fk), and its asset is its ledger account's asset.
3. Stored customer balances equal the sum of their postings.
4. Customer available and reserved balances (cash and shares) are never below zero.
5. Reservations follow the order: pending reservations add up to the reserved balances, and a finished
   order holds no pending reservation.
6. Executions: an order's cumulative quantity equals the sum of its fills.

On PostgreSQL (NUMERIC: exact) the per-posting sums run in the database, which keeps a large ledger's check
to a few seconds; on SQLite (amounts stored as decimal text) they are summed in Python with ``Decimal``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Connection, func, select

from oms.db.models import Execution, JournalEntry, LedgerAccount, Order, Posting, Reservation
from oms.ledger.chart import CASH_RESERVED, NON_NEGATIVE_NAMES, SHARES_RESERVED, ledger_key

ZERO = Decimal(0)
TERMINAL_STATUSES = frozenset({"filled", "canceled", "replaced", "rejected", "expired", "done_for_day"})
FILL_EXEC_TYPES = frozenset({"trade"})


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken invariant: a stable code for machines, a detail for people."""

    code: str
    detail: str

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"


def verify_ledger(connection: Connection) -> list[Violation]:
    """Run every check; an empty list means the ledger is sound."""
    violations: list[Violation] = []
    violations.extend(_entries_balance(connection))
    violations.extend(_posting_references(connection))
    balances, assets = _posting_sums(connection, violations)
    violations.extend(_stored_balances(connection, balances, assets))
    violations.extend(_reservations(connection, balances))
    violations.extend(_order_fills(connection))
    return violations


def _in_database(connection: Connection) -> bool:
    return connection.dialect.name == "postgresql"


def _entries_balance(connection: Connection) -> Iterator[Violation]:
    if _in_database(connection):
        yield from _entries_balance_in_database(connection)
        return
    postings = Posting.__table__
    entries = JournalEntry.__table__
    query = select(postings.c.entry_id, postings.c.asset, postings.c.amount).order_by(postings.c.entry_id)
    current: str | None = None
    totals: dict[str, Decimal] = defaultdict(lambda: ZERO)
    seen: set[str] = set()

    def unbalanced(entry_id: str) -> Iterator[Violation]:
        for asset, total in sorted(totals.items()):
            if total != ZERO:
                yield Violation("UNBALANCED_ENTRY", f"entry {entry_id} sums to {total} {asset}")

    for entry_id, asset, amount in connection.execution_options(yield_per=10_000).execute(query):
        if entry_id != current:
            if current is not None:
                yield from unbalanced(current)
            current, totals = entry_id, defaultdict(lambda: ZERO)
            seen.add(entry_id)
        totals[asset] += amount
    if current is not None:
        yield from unbalanced(current)
    for (entry_id,) in connection.execute(select(entries.c.id)):
        if entry_id not in seen:
            yield Violation("EMPTY_ENTRY", f"entry {entry_id} has no postings")


def _entries_balance_in_database(connection: Connection) -> Iterator[Violation]:
    postings = Posting.__table__
    entries = JournalEntry.__table__
    total = func.sum(postings.c.amount)
    unbalanced = (select(postings.c.entry_id, postings.c.asset, total)
                  .group_by(postings.c.entry_id, postings.c.asset).having(total != ZERO)
                  .order_by(postings.c.entry_id, postings.c.asset))
    for entry_id, asset, amount in connection.execute(unbalanced):
        yield Violation("UNBALANCED_ENTRY", f"entry {entry_id} sums to {amount} {asset}")
    empty = (select(entries.c.id).where(~select(postings.c.id).where(postings.c.entry_id == entries.c.id).exists())
             .order_by(entries.c.id))
    for (entry_id,) in connection.execute(empty):
        yield Violation("EMPTY_ENTRY", f"entry {entry_id} has no postings")


def _posting_references(connection: Connection) -> Iterator[Violation]:
    """Postings whose journal entry or ledger account does not exist (what a foreign key would refuse)."""
    postings = Posting.__table__
    entries = JournalEntry.__table__
    accounts = LedgerAccount.__table__
    orphans = (select(postings.c.id, postings.c.entry_id)
               .where(~select(entries.c.id).where(entries.c.id == postings.c.entry_id).exists())
               .order_by(postings.c.id))  # fmt: skip
    for posting_id, entry_id in connection.execute(orphans):
        yield Violation("POSTING_WITHOUT_ENTRY", f"posting {posting_id} belongs to missing entry {entry_id}")
    unknown = (select(postings.c.id, postings.c.ledger_account)
               .where(~select(accounts.c.key).where(accounts.c.key == postings.c.ledger_account).exists())
               .order_by(postings.c.id))  # fmt: skip
    for posting_id, key in connection.execute(unknown):
        yield Violation("POSTING_WITHOUT_ACCOUNT", f"posting {posting_id} books on missing ledger account {key}")


def _posting_sums(
    connection: Connection, violations: list[Violation]
) -> tuple[dict[str, Decimal], dict[str, str]]:
    postings = Posting.__table__
    accounts = LedgerAccount.__table__
    assets = {key: asset for key, asset in connection.execute(select(accounts.c.key, accounts.c.asset))}
    if _in_database(connection):
        return _posting_sums_in_database(connection, violations), assets
    sums: dict[str, Decimal] = defaultdict(lambda: ZERO)
    query = select(postings.c.id, postings.c.ledger_account, postings.c.asset, postings.c.amount)
    for posting_id, key, asset, amount in connection.execution_options(yield_per=10_000).execute(query):
        sums[key] += amount
        if assets.get(key) != asset:
            violations.append(
                Violation("ASSET_MISMATCH", f"posting {posting_id} books {asset} on {key} ({assets.get(key)})")
            )
    return sums, assets


def _posting_sums_in_database(connection: Connection, violations: list[Violation]) -> dict[str, Decimal]:
    postings = Posting.__table__
    accounts = LedgerAccount.__table__
    mismatched = (select(postings.c.id, postings.c.ledger_account, postings.c.asset, accounts.c.asset)
                  .outerjoin(accounts, accounts.c.key == postings.c.ledger_account)
                  .where((accounts.c.asset.is_(None)) | (accounts.c.asset != postings.c.asset))
                  .order_by(postings.c.id))
    for posting_id, key, asset, account_asset in connection.execute(mismatched):
        violations.append(Violation("ASSET_MISMATCH", f"posting {posting_id} books {asset} on {key} ({account_asset})"))
    sums = select(postings.c.ledger_account, func.sum(postings.c.amount)).group_by(postings.c.ledger_account)
    return defaultdict(lambda: ZERO, {key: Decimal(total) for key, total in connection.execute(sums)})


def _stored_balances(
    connection: Connection, sums: dict[str, Decimal], assets: dict[str, str]
) -> Iterator[Violation]:
    accounts = LedgerAccount.__table__
    query = select(accounts.c.key, accounts.c.name, accounts.c.keeps_balance, accounts.c.balance)
    for key, name, keeps_balance, balance in connection.execute(query):
        derived = sums.get(key, ZERO)
        if keeps_balance and balance != derived:
            yield Violation("BALANCE_MISMATCH", f"{key} stores {balance} but its postings sum to {derived}")
        if name in NON_NEGATIVE_NAMES and derived < ZERO:
            yield Violation("NEGATIVE_BALANCE", f"{key} is {derived}")


def _reservations(connection: Connection, sums: dict[str, Decimal]) -> Iterator[Violation]:
    reservations = Reservation.__table__
    orders = Order.__table__
    pending: dict[str, Decimal] = defaultdict(lambda: ZERO)
    query = (
        select(
            reservations.c.id,
            reservations.c.account_id,
            reservations.c.asset,
            reservations.c.remaining,
            reservations.c.order_id,
            orders.c.status,
            orders.c.symbol,
        )
        .join(orders, orders.c.id == reservations.c.order_id)
        .where(reservations.c.status == "pending")
    )
    for reservation_id, account_id, asset, remaining, order_id, status, symbol in connection.execute(query):
        name = SHARES_RESERVED if asset == symbol else CASH_RESERVED
        pending[ledger_key(account_id, name, asset)] += remaining
        if status in TERMINAL_STATUSES:
            yield Violation(
                "RESERVATION_ON_FINISHED_ORDER",
                f"order {order_id} is {status} but reservation {reservation_id} still holds {remaining} {asset}",
            )
    reserved_keys = {key for key in sums if key.split("/", 2)[1] in (CASH_RESERVED, SHARES_RESERVED)}
    for key in sorted(reserved_keys | set(pending)):
        if sums.get(key, ZERO) != pending.get(key, ZERO):
            yield Violation(
                "RESERVATION_MISMATCH",
                f"{key} holds {sums.get(key, ZERO)} but pending reservations add up to {pending.get(key, ZERO)}",
            )


def _order_fills(connection: Connection) -> Iterator[Violation]:
    executions = Execution.__table__
    orders = Order.__table__
    filled: dict[str, Decimal] = defaultdict(lambda: ZERO)
    fills = executions.c.exec_type.in_(FILL_EXEC_TYPES)
    if _in_database(connection):
        summed = select(executions.c.order_id, func.sum(executions.c.last_qty)).where(fills).group_by(
            executions.c.order_id)
        filled.update({order_id: Decimal(total) for order_id, total in connection.execute(summed)})
    else:
        for order_id, last_qty in connection.execute(select(executions.c.order_id, executions.c.last_qty).where(fills)):
            filled[order_id] += last_qty
    rows = connection.execute(
        select(orders.c.id, orders.c.cum_qty, orders.c.qty, orders.c.replaces_order_id)
    ).all()
    replaces = {order_id: parent for order_id, _, _, parent in rows}
    for order_id, cum_qty, qty, _parent in rows:
        if cum_qty > qty:
            yield Violation("OVERFILLED_ORDER", f"order {order_id} has cum_qty {cum_qty} > qty {qty}")
        expected = _chain_fills(order_id, replaces, filled)
        if expected != cum_qty:
            yield Violation(
                "FILLS_MISMATCH", f"order {order_id} has cum_qty {cum_qty} but its fills add up to {expected}"
            )


def _chain_fills(order_id: str, replaces: dict[str, str | None], filled: dict[str, Decimal]) -> Decimal:
    """A replacing order carries the cumulative quantity of the orders it replaced: sum the whole chain."""
    total = ZERO
    current: str | None = order_id
    steps = 0
    while current is not None and steps < 10_000:
        total += filled.get(current, ZERO)
        current = replaces.get(current)
        steps += 1
    return total
