"""Cost of reading an account's positions as its trade history grows: every trade folded, or a checkpoint.

Usage: python bench/positions_bench.py [--backend sqlite|postgresql|both] [--trades N ...] [--reads R]

For each history size N, one account trades N times through the OMS service (``PlaceOrder`` and a full
``ApplyExecution`` each, the default fee schedule), three symbols, in rounds of 300: 200 buys, then 100 sales. The history is
then dated ten minutes back (``created_at``), as a day-old history would be, so that it is older than the
positions read's checkpoint lag. Timed, in-process, on a fresh connection each time:

* ``full fold``: the read with the account's checkpoint rows deleted first and checkpoints switched off (what
  every read cost before migration ``0009_position_checkpoints``);
* ``first read``: the read that finds no checkpoint, folds everything and saves one;
* ``later reads``: median of ``R`` reads after it, with a few new trades beyond the checkpoint.

Each timed read's answer is compared with the full fold's; a difference aborts the bench.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Table, bindparam, create_engine, delete, select, text, update  # noqa: E402

from bench.service_bench import INSTRUMENTS, ORDER_TERMS, full_fill  # noqa: E402
from oms.api import positions as positions_module  # noqa: E402
from oms.db.migrate import upgrade  # noqa: E402
from oms.db.models import Execution, PositionCheckpoint  # noqa: E402
from oms.domain.commands import PlaceOrder  # noqa: E402
from oms.domain.enums import OrderSource, OrderType, Side, TimeInForce  # noqa: E402
from oms.domain.values import AccountId, ClOrdId, Symbol  # noqa: E402
from oms.ledger.balances import account_balances  # noqa: E402
from oms.service.accounts import AccountLimitsConfig, create_account, deposit, upsert_instruments  # noqa: E402
from oms.service.executor import CommandExecutor  # noqa: E402
from oms.service.orders import Outcome, ServiceConfig  # noqa: E402
from oms.service.uow import Database  # noqa: E402

ACCOUNT = "HIST"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _place_and_fill(executor: CommandExecutor, places: list[PlaceOrder], tag: str) -> None:
    fills = []
    for command, result in zip(places, executor.execute(places), strict=True):
        if result.outcome is not Outcome.ACCEPTED or result.venue_cl_ord_id is None:
            raise SystemExit(f"order refused: {result.denial or result.detail}")
        assert command.limit_price is not None
        fills.append(full_fill(result.venue_cl_ord_id, f"{tag}E{command.cl_ord_id}", command.qty, command.limit_price))
    if not all(result.ok for result in executor.execute(fills)):
        raise SystemExit("a fill was refused")


def trade(database: Database, count: int, tag: str) -> None:
    """``count`` orders placed and fully filled, in rounds of up to 300: buys, then sales of half of them."""
    executor = CommandExecutor(database, ServiceConfig())
    done = 0
    while done < count:
        size = min(300, count - done)
        buys = [_order(f"{tag}{done + index}", Side.BUY, index) for index in range(size - size // 3)]
        _place_and_fill(executor, buys, tag)
        sells = [_order(f"{tag}{done + len(buys) + index}", Side.SELL, 2 * index) for index in range(size // 3)]
        _place_and_fill(executor, sells, tag)
        done += size


def _order(cl_ord_id: str, side: Side, index: int) -> PlaceOrder:
    symbol, price, qty = ORDER_TERMS[index % len(ORDER_TERMS)]
    return PlaceOrder(account=AccountId(ACCOUNT), cl_ord_id=ClOrdId(cl_ord_id), symbol=Symbol(symbol), side=side,
                      order_type=OrderType.LIMIT, qty=qty, limit_price=price, tif=TimeInForce.DAY,
                      source=OrderSource.REST)  # fmt: skip


def backdate(database: Database, by: timedelta) -> None:
    """Moves every execution's ``created_at`` back by ``by`` (in Python: SQLite keeps it as text)."""
    table = cast(Table, Execution.__table__)
    with database.engine.begin() as connection:
        rows = connection.execute(select(table.c.id, table.c.created_at)).all()
        connection.execute(update(table).where(table.c.id == bindparam("row_id")).values(created_at=bindparam("moved")),
                           [{"row_id": row_id, "moved": created - by} for row_id, created in rows])  # fmt: skip


def read(database: Database) -> tuple[float, list[dict[str, Any]]]:
    with database.engine.connect() as connection:
        started = time.perf_counter()
        balances = account_balances(connection, ACCOUNT, "USD")
        answer = positions_module.positions(connection, ACCOUNT, balances)
        return time.perf_counter() - started, answer


def full_fold(database: Database) -> tuple[float, list[dict[str, Any]]]:
    saved = positions_module.position_checkpoints.load
    with database.engine.begin() as connection:
        connection.execute(delete(cast(Table, PositionCheckpoint.__table__)))
    positions_module.position_checkpoints.load = lambda connection, account: ({}, None)  # type: ignore[assignment]
    every = positions_module.CHECKPOINT_EVERY
    positions_module.CHECKPOINT_EVERY = 10**12  # and none saved
    try:
        return read(database)
    finally:
        positions_module.position_checkpoints.load = saved  # type: ignore[assignment]
        positions_module.CHECKPOINT_EVERY = every


def run(backend: str, url: str, sizes: list[int], reads: int) -> None:
    for size in sizes:
        if backend == "postgresql":
            name = f"bench_positions_{os.getpid()}_{size}"
            admin = create_engine(url, isolation_level="AUTOCOMMIT")
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
            database_url = url.rsplit("/", 1)[0] + "/" + name
        else:
            admin, name = None, ""
            database_url = f"sqlite:///{tempfile.mkdtemp(prefix='bench_positions_')}/oms.db"
        database = Database.from_url(database_url)
        try:
            upgrade(database.engine)
            upsert_instruments(database, INSTRUMENTS)
            create_account(database, ACCOUNT, limits=AccountLimitsConfig(max_orders_per_second=0))  # history, not a rate
            deposit(database, ACCOUNT, Decimal("1000000000"))
            trade(database, size, "H")
            backdate(database, timedelta(minutes=10))  # an older history: beyond the checkpoint lag
            fold_s, truth = full_fold(database)
            first_s, first = read(database)
            trade(database, 20, "N")  # a few fresh trades beyond the checkpoint
            _, truth_now = full_fold(database)
            read(database)  # saves the checkpoint again (full_fold deleted it)
            later = []
            for _ in range(reads):
                seconds, answer = read(database)
                if answer != truth_now:
                    raise SystemExit("a read through the checkpoint differs from the full fold")
                later.append(seconds)
            if first != truth:
                raise SystemExit("the first read differs from the full fold")
            print(f"[{backend}] {size:>7,} trades: full fold {1000 * fold_s:8.1f} ms, first read {1000 * first_s:8.1f} ms"
                  f" (saves the checkpoint), later reads median {1000 * statistics.median(later):6.2f} ms"
                  f" ({reads} reads, 20 trades beyond the checkpoint)")  # fmt: skip
        finally:
            database.dispose()
            if admin is not None:
                with admin.connect() as connection:
                    connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--trades", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--reads", type=int, default=20)
    args = parser.parse_args()
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for backend in (["sqlite", "postgresql"] if args.backend == "both" else [args.backend]):
        run(backend, args.pg_url, args.trades, args.reads)


if __name__ == "__main__":
    main()
