"""PostgreSQL: a fill batch finds its orders' pending holds without reading the day's resolved ones.

PostgreSQL picks a plan from the table statistics. Once most holds are posted, ``status = 'pending'`` looks
rare, and with only ``ix_reservations_order_id`` the planner read the whole reservations table and filtered
it: 1.8 ms per fill batch after ten thousand orders in the REST bench, growing with every order of the day.
``ix_reservations_pending_order`` holds the pending holds alone. The plans are asked for after a few thousand
orders placed and filled through the service, the tables analysed as autovacuum would, with the values a
batch really sends. (At this size a read of the whole ``orders`` table is the planner's right choice for some
other lookups, so only the holds are checked here; SQLite's plans are in ``test_query_plans``.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import text

from oms.domain.enums import ExecType, OrderStatus
from oms.service import uow
from oms.service.executor import CommandExecutor
from oms.service.orders import Outcome
from oms.service.uow import Database
from tests.conftest import _fresh_postgres
from tests.service.factories import NO_FEES, buy, funded_account, report, setup_database

ACCOUNTS = [f"H{index:02d}" for index in range(20)]
FILLED_PER_ACCOUNT = 150  # 3,000 orders of history, each with a posted hold and an execution
BATCH = 64  # a fill batch's size in the REST bench


@dataclass(frozen=True)
class Batch:
    """What a batch of fills for working orders looks up: their venue ClOrdIDs and order ids."""

    venue_cl_ord_ids: list[str]
    order_ids: list[str]


@pytest.fixture(scope="module")  # one database for the module: the history takes seconds to build
def history(request: pytest.FixtureRequest) -> Iterator[tuple[Database, Batch]]:
    urls = _fresh_postgres(request)
    database = setup_database(next(urls))
    executor = CommandExecutor(database, NO_FEES)
    for account in ACCOUNTS:
        funded_account(database, account, "10000000")
    for start in range(0, FILLED_PER_ACCOUNT, 50):
        placed = executor.execute([buy(a, f"F{n}", "1", "190.00") for a in ACCOUNTS for n in range(start, start + 50)])
        assert all(result.outcome is Outcome.ACCEPTED for result in placed)
        fills = [
            report(str(result.venue_cl_ord_id), ExecType.TRADE, OrderStatus.FILLED, last_qty="1", last_px="190.00")
            for result in placed
        ]
        assert all(result.outcome is Outcome.APPLIED for result in executor.execute(fills))
    working = executor.execute([buy(ACCOUNTS[n % len(ACCOUNTS)], f"W{n}", "1", "190.00") for n in range(BATCH)])
    with database.engine.begin() as connection:
        connection.execute(text("ANALYZE"))
        rows = connection.execute(
            text("SELECT id FROM orders WHERE venue_cl_ord_id = ANY(:ids)"),
            {"ids": [result.venue_cl_ord_id for result in working]},
        ).all()
    batch = Batch(
        venue_cl_ord_ids=[str(result.venue_cl_ord_id) for result in working],
        order_ids=[row[0] for row in rows],
    )
    yield database, batch
    database.dispose()
    next(urls, None)


PENDING_HOLD_LOOKUPS: dict[str, Callable[[Batch], tuple[Any, ...]]] = {
    "_PG_PENDING_RESERVATIONS_BY_VENUE_CL": lambda b: (b.venue_cl_ord_ids, b.venue_cl_ord_ids),
    "_PG_PENDING_RESERVATIONS": lambda b: (b.order_ids,),
}


@pytest.mark.parametrize("name", list(PENDING_HOLD_LOOKUPS))
def test_a_fill_batch_finds_its_holds_without_reading_resolved_ones(history: tuple[Database, Batch], name: str) -> None:
    database, batch = history
    plan = _plan(database, getattr(uow, name), PENDING_HOLD_LOOKUPS[name](batch))
    assert "Seq Scan on reservations" not in plan, plan
    assert "ix_reservations_pending_order" in plan, plan


def _plan(database: Database, sql: str, params: tuple[Any, ...]) -> str:
    """The plan PostgreSQL picks for ``sql`` with these values (the custom plan a first execution gets)."""
    connection = database.engine.raw_connection()
    driver = connection.driver_connection
    assert driver is not None
    try:
        with driver.cursor() as cursor:
            cursor.execute("EXPLAIN " + sql, params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        driver.rollback()
    finally:
        connection.close()
    return plan
