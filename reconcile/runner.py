"""One reconciliation run: compare, optionally repair what is safe, compare again, check the ledger.

The comparison reads our books in one transaction (one snapshot: REPEATABLE READ on PostgreSQL; SQLite's
transactions are serialized already), so fills, orders and ledger balances agree with each other, and hands
plain values to the pure matcher and checks. Repairs go through ``CommandExecutor`` (the live fill path) in one transaction; the run then compares
again, so what it reports is what is still open.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property

from sqlalchemy import select

from oms.db.models import Execution
from oms.ledger.verify import verify_ledger
from oms.service.executor import CommandExecutor
from oms.service.orders import ServiceConfig
from oms.service.uow import Database
from reconcile import loader
from reconcile.checks import day_checks, ledger_checks, ours_by_account, venue_by_account
from reconcile.matcher import match
from reconcile.model import Break, BreakKind, Matching, VenueTrade
from reconcile.repair import Refusal, Repair, plan_repairs

DERIVED = frozenset({BreakKind.POSITION_MISMATCH, BreakKind.CASH_MISMATCH})
TRADE_KINDS = frozenset({BreakKind.MISSING_OURS, BreakKind.MISSING_VENUE, BreakKind.QTY_MISMATCH,
                         BreakKind.PRICE_MISMATCH, BreakKind.SIDE_MISMATCH, BreakKind.SYMBOL_MISMATCH,
                         BreakKind.DUPLICATE_OURS})


@dataclass(frozen=True)
class Comparison:
    """Our books against the report at one moment: the breaks, and what a repair could book."""

    matching: Matching
    breaks: tuple[Break, ...]
    repairs: tuple[Repair, ...]
    refusals: tuple[Refusal, ...]
    our_fills: int

    def note(self, key: str) -> str:
        """What happens to a break: repaired by ``--apply``, explained by trade breaks, or why it needs a human."""
        found = self._by_key.get(key)
        if found is not None and found.kind in DERIVED and found.account_id in self._accounts_with_trade_breaks:
            return "follows from the trade breaks of this account"
        if key in self._repairable:
            return "repairable: --apply books the missed fill"
        reason = self._refused.get(key)
        return "needs a human" if reason is None else f"needs a human: {reason}"

    @cached_property
    def _by_key(self) -> dict[str, Break]:
        return {b.key: b for b in self.breaks}

    @cached_property
    def _accounts_with_trade_breaks(self) -> set[str | None]:
        return {b.account_id for b in self.breaks if b.kind in TRADE_KINDS}

    @cached_property
    def _repairable(self) -> set[str]:
        return {repair.break_key for repair in self.repairs}

    @cached_property
    def _refused(self) -> dict[str, str]:
        return {refusal.break_key: refusal.reason for refusal in self.refusals}


@dataclass(frozen=True)
class RepairOutcome:
    break_key: str
    exec_id: str
    account_id: str
    order_id: str
    outcome: str  # applied | ignored (already booked) | quarantined
    journal_entry_id: str | None
    detail: str | None = None


@dataclass(frozen=True)
class RunResult:
    trade_date: date
    source: str
    report_rows: int
    comparison: Comparison
    repairs: tuple[RepairOutcome, ...] = ()
    ledger_violations: tuple[str, ...] = field(default=())

    @property
    def breaks(self) -> tuple[Break, ...]:
        return self.comparison.breaks

    @property
    def clean(self) -> bool:
        return not self.breaks and not self.ledger_violations


def compare(database: Database, trade_date: date, rows: Sequence[VenueTrade]) -> Comparison:
    with database.engine.connect() as connection:
        if database.engine.dialect.name == "postgresql":
            connection.execution_options(isolation_level="REPEATABLE READ")
        ours = loader.day_executions(connection, trade_date)
        orders = loader.order_index(connection, rows)
        currency_of = loader.currencies(connection)
        ledger = loader.ledger_snapshot(connection)
        all_time = ours_by_account(loader.all_fills(connection), currency_of, with_fees=True)
    matching = match(ours, rows)
    breaks = _with_accounts(matching, orders)
    breaks += day_checks(ours_by_account(ours, currency_of, with_fees=False),
                         venue_by_account(matching.venue_unique, orders.account_of, currency_of))
    breaks += ledger_checks(ledger, all_time)
    repairs, refusals = plan_repairs(matching.missing_ours, orders.order_of)
    return Comparison(matching, tuple(breaks), tuple(repairs), tuple(refusals), len(ours))


def _with_accounts(matching: Matching, orders: loader.OrderIndex) -> list[Break]:
    """A missed fill names no account of ours until the order index maps the venue's ids to one."""
    rows = {row.exec_id: row for row in matching.missing_ours}
    found: list[Break] = []
    for item in matching.breaks:
        row = rows.get(item.exec_id or "") if item.kind is BreakKind.MISSING_OURS else None
        account = None if row is None else orders.account_of(row)
        found.append(item if account is None else dataclasses.replace(item, account_id=account))
    return found


def run(database: Database, trade_date: date, rows: Sequence[VenueTrade], *, source: str, apply: bool,
        config: ServiceConfig | None = None) -> RunResult:
    first = compare(database, trade_date, rows)
    outcomes: tuple[RepairOutcome, ...] = ()
    final = first
    if apply and first.repairs:
        outcomes = _book(database, first.repairs, config)
        final = compare(database, trade_date, rows)
    with database.engine.connect() as connection:
        violations = tuple(str(v) for v in verify_ledger(connection))
    return RunResult(trade_date, source, len(rows), final, outcomes, violations)


def _book(database: Database, repairs: Sequence[Repair], config: ServiceConfig | None) -> tuple[RepairOutcome, ...]:
    executor = CommandExecutor(database, config)
    results = executor.execute([repair.command for repair in repairs])
    executions = Execution.__table__
    exec_ids = [str(repair.command.venue_exec_id) for repair in repairs]
    with database.engine.connect() as connection:
        entries = dict(connection.execute(
            select(executions.c.venue_exec_id, executions.c.journal_entry_id).where(
                executions.c.venue_exec_id.in_(exec_ids))).all())
    return tuple(
        RepairOutcome(repair.break_key, str(repair.command.venue_exec_id), repair.account_id, repair.order_id,
                      str(result.outcome), entries.get(str(repair.command.venue_exec_id)), result.detail)
        for repair, result in zip(repairs, results, strict=True)
    )
