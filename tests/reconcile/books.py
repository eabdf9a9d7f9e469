"""Our side of the books for reconciliation tests, built only through the real service functions, and the venue's
CSV report written with the venue's own writer."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, select

from exchange.trade_report import TradeRow, write_csv
from oms.db.models import Execution, JournalEntry, Order
from oms.domain.commands import ApplyExecution
from oms.domain.enums import ExecType, OrderStatus
from oms.ledger.verify import verify_ledger
from oms.service.executor import CommandExecutor
from oms.service.uow import Database
from tests.service.factories import WITH_FEES, buy, funded_account, sell, setup_database

TRADE_DAY = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)
DATE = TRADE_DAY.date().isoformat()


class Books:
    """One database, one account (or more), orders placed and filled through ``CommandExecutor``."""

    def __init__(self, url: str) -> None:
        self.database: Database = setup_database(url)
        self.executor = CommandExecutor(self.database, WITH_FEES, clock=lambda: TRADE_DAY)
        self.venue_ids: dict[str, tuple[str, str]] = {}  # client ClOrdID -> (venue ClOrdID, venue order id)
        self._seconds = 0

    def account(self, name: str = "ACC1", cash: str = "100000") -> str:
        return funded_account(self.database, name, cash)

    def order(self, account: str, cl_ord_id: str, side: str, qty: str, price: str, symbol: str = "AAPL") -> str:
        command = (buy if side == "buy" else sell)(account, cl_ord_id, qty, price, symbol=symbol)
        result = self.executor.one(command)
        assert result.ok and result.venue_cl_ord_id, result
        venue_order_id = f"V{len(self.venue_ids) + 1}"
        self.venue_ids[cl_ord_id] = (result.venue_cl_ord_id, venue_order_id)
        acked = self.executor.one(ApplyExecution(
            venue_exec_id=f"ACK-{venue_order_id}", cl_ord_id=result.venue_cl_ord_id, venue_order_id=venue_order_id,
            exec_type=ExecType.NEW, ord_status=OrderStatus.NEW, transact_time=TRADE_DAY))  # type: ignore[arg-type]
        assert acked.ok, acked
        return result.venue_cl_ord_id

    def fill(self, cl_ord_id: str, exec_id: str, qty: str, price: str) -> None:
        """Apply a fill as the venue session would (the live fill path)."""
        venue_cl, venue_order_id = self.venue_ids[cl_ord_id]
        result = self.executor.one(ApplyExecution(
            venue_exec_id=exec_id, cl_ord_id=venue_cl, venue_order_id=venue_order_id, exec_type=ExecType.TRADE,
            ord_status=OrderStatus.PARTIALLY_FILLED, last_qty=Decimal(qty), last_px=Decimal(price),
            transact_time=self.moment()))  # type: ignore[arg-type]
        assert result.ok, result

    def moment(self) -> datetime:
        self._seconds += 1
        return TRADE_DAY + timedelta(seconds=self._seconds)

    def row(self, cl_ord_id: str, exec_id: str, side: str, qty: str, price: str, symbol: str = "AAPL") -> TradeRow:
        """The venue's report row for a fill of one of our orders."""
        venue_cl, venue_order_id = self.venue_ids[cl_ord_id]
        return TradeRow(exec_id, venue_order_id, venue_cl, "OMS", symbol, side.upper(), Decimal(qty), Decimal(price),
                        (Decimal(qty) * Decimal(price) * Decimal("0.0005")).quantize(Decimal("0.01")),
                        self.moment(), f"T-{exec_id}")

    def counts(self) -> tuple[int, int, int]:
        """(executions, journal entries, orders): what a second run must leave unchanged."""
        with self.database.engine.connect() as connection:
            return tuple(connection.execute(select(func.count()).select_from(model.__table__)).scalar_one()
                         for model in (Execution, JournalEntry, Order))  # type: ignore[return-value]

    def order_row(self, cl_ord_id: str) -> tuple[str, Decimal, Decimal]:
        venue_cl, _ = self.venue_ids[cl_ord_id]
        table = Order.__table__
        with self.database.engine.connect() as connection:
            status, cum, leaves = connection.execute(select(table.c.status, table.c.cum_qty, table.c.leaves_qty).where(
                table.c.venue_cl_ord_id == venue_cl)).one()
        return status, cum, leaves

    def ledger_violations(self) -> list[str]:
        with self.database.engine.connect() as connection:
            return [str(v) for v in verify_ledger(connection)]

    def close(self) -> None:
        self.database.dispose()


def write_report(path: Path, rows: Iterable[TradeRow]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        write_csv(rows, handle)
    return path
