"""Worker for the double-spend race test: runs in a spawned process with its own engine and executor."""

from __future__ import annotations

from typing import Any

from oms.service.orders import ServiceConfig
from oms.service.uow import Database
from tests.service.factories import WITH_FEES, buy, executor, sell

_start_line: Any = None


def init_worker(barrier: Any) -> None:
    """Pool initializer: remember the barrier every worker waits at before its first order."""
    global _start_line
    _start_line = barrier


def place_orders(url: str, side: str, account: str, cl_ord_ids: list[str], qty: str, price: str) -> list[tuple[str, str, str | None]]:
    """Place each order alone once every worker is connected; returns (cl_ord_id, outcome, reason) per order."""
    database = Database.from_url(url)
    config: ServiceConfig = WITH_FEES
    runner = executor(database, config)
    with database.engine.connect() as connection:  # connect and load the instruments before the start line
        database.instruments(connection)
    results: list[tuple[str, str, str | None]] = []
    _start_line.wait(timeout=30)
    try:
        for cl_ord_id in cl_ord_ids:
            command = buy(account, cl_ord_id, qty, price) if side == "buy" else sell(account, cl_ord_id, qty, price)
            result = runner.one(command)
            results.append((cl_ord_id, result.outcome.value, None if result.denial is None else result.denial.reason.name))
    finally:
        database.dispose()
    return results
