"""Group commit: many threads' commands share commits, and a result is only handed out once it is durable."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from oms.domain.enums import ExecType, OrderStatus
from oms.service.executor import CommandExecutor, GroupCommitter
from oms.service.orders import Outcome
from oms.service.uow import Database
from tests.service.factories import NO_FEES, buy, cash, count_rows, funded_database, ledger_violations, report

THREADS = 8
ORDERS_PER_THREAD = 10


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    with funded_database(database_url, [f"G{i}" for i in range(THREADS)]) as database:
        yield database


@pytest.mark.parametrize("committers", [1, 2])
def test_concurrent_clients_place_and_fill_through_shared_commits(database: Database, committers: int) -> None:
    committer = GroupCommitter(CommandExecutor(database, NO_FEES), max_batch=16, committers=committers)
    failures: list[str] = []

    def client(index: int) -> None:
        for n in range(ORDERS_PER_THREAD):
            placed = committer.execute(buy(f"G{index}", f"C{n}", "1", "190.00"))
            if placed.outcome is not Outcome.ACCEPTED or placed.venue_cl_ord_id is None:
                failures.append(f"place G{index}/C{n}: {placed.outcome}")
                continue
            # The order is durable by now: a fresh connection sees it before the fill is even sent.
            if count_rows(database, "orders", f"WHERE venue_cl_ord_id = '{placed.venue_cl_ord_id}'") != 1:
                failures.append(f"G{index}/C{n} acknowledged before it was committed")
            fill = report(placed.venue_cl_ord_id, ExecType.TRADE, OrderStatus.FILLED, last_qty="1", last_px="190.00")
            filled = committer.execute(fill)
            if filled.outcome is not Outcome.APPLIED:
                failures.append(f"fill G{index}/C{n}: {filled.outcome} {filled.detail}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(THREADS)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        committer.close()
    assert failures == []
    assert count_rows(database, "orders", "WHERE status = 'filled'") == THREADS * ORDERS_PER_THREAD
    assert cash(database, "G0") == (100000 - 190 * ORDERS_PER_THREAD, 0, 0)
    assert ledger_violations(database) == []


def test_a_group_committer_needs_at_least_one_committer(database: Database) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        GroupCommitter(CommandExecutor(database, NO_FEES), committers=0)


def test_the_executor_raises_the_young_gc_threshold_but_never_lowers_it(database: Database) -> None:
    import gc

    from oms.service.executor import GC_YOUNG_THRESHOLD

    saved = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        CommandExecutor(database, NO_FEES)
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, 20, 100)
        gc.set_threshold(GC_YOUNG_THRESHOLD * 2, 30, 200)
        CommandExecutor(database, NO_FEES)
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD * 2, 30, 200)
        gc.set_threshold(700, 10, 10)
        CommandExecutor(database, NO_FEES, tune_gc=False)
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.set_threshold(*saved)
