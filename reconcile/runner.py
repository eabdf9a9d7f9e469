"""One reconciliation run: compare, optionally repair what is safe, compare again, check the ledger.

The comparison reads our books in one transaction (one snapshot: REPEATABLE READ on PostgreSQL, shared with the
second connection of the set-based path; SQLite's transactions are serialized already), so fills, orders and
ledger balances agree with each other. Two ways to
compare, same results: report rows in memory handed to the pure matcher and checks (``compare``), or, for a
CSV report on PostgreSQL, the report streamed into a temporary table and compared set-based
(``pg_report`` + ``set_compare``). Repairs go through ``CommandExecutor`` (the live fill path) in one
transaction; the run then compares again, so what it reports is what is still open.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path

from sqlalchemy import select

from oms.db.models import Execution
from oms.ledger.verify import verify_ledger
from oms.service.executor import CommandExecutor
from oms.service.orders import ServiceConfig
from oms.service.uow import Database
from reconcile import loader, pg_report, set_compare
from reconcile.checks import day_checks, ledger_checks, ours_by_account, venue_by_account
from reconcile.matcher import match
from reconcile.model import Break, BreakKind, Matching, VenueTrade
from reconcile.pg_report import Progress
from reconcile.repair import Refusal, Repair, plan_repairs
from reconcile.report_file import read_report

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
    matched: int  # pairs found (the set-based path does not bring them back one by one)

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
    breaks = orders.name_accounts(matching.breaks, matching.missing_ours)
    breaks += day_checks(ours_by_account(ours, currency_of, with_fees=False),
                         venue_by_account(matching.venue_unique, orders.account_of, currency_of))
    breaks += ledger_checks(ledger, all_time)
    repairs, refusals = plan_repairs(matching.missing_ours, orders.order_of)
    return Comparison(matching, tuple(breaks), tuple(repairs), tuple(refusals), len(ours), len(matching.pairs))


def run(database: Database, trade_date: date, rows: Sequence[VenueTrade], *, source: str, apply: bool,
        config: ServiceConfig | None = None) -> RunResult:
    """A run on report rows already in memory (TradeCaptureReports, or any report on SQLite)."""
    return _run(database, trade_date, lambda: compare(database, trade_date, rows), source=source,
                report_rows=len(rows), apply=apply, config=config)


def run_file(database: Database, trade_date: date, path: Path, *, comp_id: str | None, apply: bool,
             config: ServiceConfig | None = None, progress: Progress | None = None) -> RunResult:
    """A run on the venue's CSV report. On PostgreSQL the report is streamed into a temporary table and compared
    set-based (a million rows in seconds), while the ledger is verified on another connection; elsewhere it is
    read into memory and matched row by row. Either way a bad report raises ``ReportError`` before anything is
    booked, and the results are the same."""
    if database.engine.dialect.name != "postgresql" or not os.access(path, os.R_OK) or not path.is_file():
        rows = read_report(path, trade_date, progress)  # (an unreadable path: the reader words the error)
        kept = rows if comp_id is None else [row for row in rows if row.broker_comp_id == comp_id]
        return run(database, trade_date, kept, source=_source(path, len(rows) - len(kept)), apply=apply,
                   config=config)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="reconcile-verify") as pool, \
            database.engine.connect() as connection:
        driver = connection.connection.driver_connection
        try:
            loaded = pg_report.load_report(driver, path, trade_date, progress, comp_id)  # type: ignore[arg-type]
            # The ledger verification reads only committed books (the load changes none). It starts now, not
            # before the load: the load keeps both cores busy (our check of the text, the server's COPY) and the
            # verification's Python would take turns with the check for the GIL; the join leaves one core free.
            early_verify = pool.submit(_verify, database)

            def compare_loaded() -> Comparison:
                connection.execution_options(isolation_level="REPEATABLE READ")
                try:
                    found = set_compare.compare_loaded(connection, trade_date, loaded.rows, loaded.repeated)
                finally:
                    connection.rollback()
                return Comparison(found.matching, tuple(found.breaks), tuple(found.repairs), tuple(found.refusals),
                                  found.our_fills, found.matched)

            return _run(database, trade_date, compare_loaded, source=_source(path, loaded.skipped),
                        report_rows=loaded.rows, apply=apply, config=config, verified=early_verify.result)
        finally:
            connection.rollback()
            # The session's local buffers grew to the report's size: close it rather than pool it.
            connection.invalidate()


def _source(path: Path, skipped: int) -> str:
    return str(path) + (f" ({skipped} rows of other brokers skipped)" if skipped else "")


def _run(database: Database, trade_date: date, compare_now: Callable[[], Comparison], *, source: str,
         report_rows: int, apply: bool, config: ServiceConfig | None,
         verified: Callable[[], tuple[str, ...]] | None = None) -> RunResult:
    """Compare, repair what is safe, compare again; ``verified`` gives the ledger verification of the books as
    they were before any repair (run meanwhile), used when nothing was booked."""
    first = compare_now()
    outcomes: tuple[RepairOutcome, ...] = ()
    final = first
    if apply and first.repairs:
        outcomes = _book(database, first.repairs, config)
        final = compare_now()
    booked = any(outcome.outcome == "applied" for outcome in outcomes)
    violations = verified() if verified is not None and not booked else _verify(database)
    return RunResult(trade_date, source, report_rows, final, outcomes, violations)


def _verify(database: Database) -> tuple[str, ...]:
    with database.engine.connect() as connection:
        return tuple(str(v) for v in verify_ledger(connection))


def _book(database: Database, repairs: Sequence[Repair], config: ServiceConfig | None) -> tuple[RepairOutcome, ...]:
    executor = CommandExecutor(database, config)
    results = executor.execute([repair.command for repair in repairs])
    executions = Execution.__table__
    exec_ids = [str(repair.command.venue_exec_id) for repair in repairs]
    with database.engine.connect() as connection:
        entries = dict(connection.execute(
            select(executions.c.venue_exec_id, executions.c.journal_entry_id).where(
                executions.c.venue_exec_id.in_(exec_ids))).tuples().all())
    return tuple(
        RepairOutcome(repair.break_key, str(repair.command.venue_exec_id), repair.account_id, repair.order_id,
                      str(result.outcome), entries.get(str(repair.command.venue_exec_id)), result.detail)
        for repair, result in zip(repairs, results, strict=True)
    )
