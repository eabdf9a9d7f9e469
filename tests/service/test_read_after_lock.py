"""Reads after the account lock (PostgreSQL, READ COMMITTED): a batch that waited for another transaction's
account lock acts on what that transaction committed, never on what it read before the wait.

Each test holds the account lock in one connection with uncommitted work, starts the executor's batch in a
thread (it blocks on the lock), waits until PostgreSQL shows it waiting, then commits the first connection.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from oms.domain.enums import ExecType, OrderStatus
from oms.ledger.chart import CASH_AVAILABLE
from oms.service.executor import CommandExecutor, _prefetch
from oms.service.orders import OrderResult, Outcome, apply_execution, place_order
from oms.service.uow import Database, UnitOfWork
from tests.service.factories import (
    NO_FEES,
    buy,
    count_rows,
    executor,
    fill,
    funded_account,
    ledger_violations,
    new_ack,
    report,
    setup_database,
)


@pytest.fixture
def database(postgres_url: str) -> Iterator[Database]:
    database = setup_database(postgres_url)
    funded_account(database, "ACC1", "100000")
    yield database
    database.dispose()


def _waiting_on_a_lock(database: Database) -> int:
    with database.engine.connect() as connection:
        return int(
            connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
        )


def _run_behind_lock(database: Database, holder: Callable[[UnitOfWork], None], waiter: Callable[[], object]) -> object:
    """Run ``holder`` in a transaction that locks ACC1, start ``waiter`` while it is uncommitted, then commit."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["result"] = waiter()
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            outcome["error"] = error

    with UnitOfWork(database) as uow:
        uow.lock_accounts(["ACC1"])
        holder(uow)
        uow.flush()
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while _waiting_on_a_lock(database) == 0:
            assert thread.is_alive(), outcome
            assert time.monotonic() < deadline, "the batch never waited for the account lock"
            time.sleep(0.02)
        uow.commit()
    thread.join(30)
    assert "error" not in outcome, outcome.get("error")
    return outcome["result"]


def test_a_batch_waiting_on_the_lock_returns_the_order_the_holder_committed_with_the_same_cl_ord_id(
    database: Database,
) -> None:
    now = datetime.now(UTC)
    first: list[OrderResult] = []
    result = _run_behind_lock(
        database,
        lambda uow: first.append(place_order(uow, buy("ACC1", "C1", "10", "100.00"), NO_FEES, now)),
        lambda: executor(database).execute([buy("ACC1", "C1", "10", "100.00"), buy("ACC1", "C2", "1", "100.00")]),
    )
    assert first[0].outcome is Outcome.ACCEPTED
    assert isinstance(result, list)
    assert [r.outcome for r in result] == [Outcome.DUPLICATE, Outcome.ACCEPTED]
    assert result[0].order is not None and first[0].order is not None
    assert result[0].order.order_id == first[0].order.order_id
    assert count_rows(database, "orders") == 2
    assert count_rows(database, "reservations") == 2
    assert ledger_violations(database) == []


def test_the_prefetch_itself_reads_after_the_lock_no_retry_needed(database: Database) -> None:
    """The unit of work alone (no executor retry): a place behind the lock sees the committed ClOrdID."""
    now = datetime.now(UTC)

    def waiter() -> OrderResult:
        command = buy("ACC1", "C1", "10", "100.00")
        with UnitOfWork(database) as uow:
            _prefetch(uow, [command], NO_FEES, now)
            result = place_order(uow, command, NO_FEES, now)
            uow.commit()
        return result

    result = _run_behind_lock(
        database, lambda uow: place_order(uow, buy("ACC1", "C1", "10", "100.00"), NO_FEES, now), waiter
    )
    assert isinstance(result, OrderResult)
    assert result.outcome is Outcome.DUPLICATE
    assert count_rows(database, "orders") == 1


def test_the_pipelined_placement_prefetch_reads_the_orders_balances_and_counts_committed_behind_the_lock(
    database: Database,
) -> None:
    """``prefetch_placements`` sends its reads behind the ``FOR UPDATE`` in one pipeline: each one still sees
    what the lock holder committed (the ClOrdID, the reserved cash, the order in the rate window)."""
    now = datetime.now(UTC)

    def waiter() -> tuple[OrderResult, Decimal, int]:
        command = buy("ACC1", "C1", "10", "100.00")
        with UnitOfWork(database) as uow:
            uow.prefetch_placements(["ACC1"], [("ACC1", "C1")], now - timedelta(seconds=5))
            available = uow.ledger.balance("ACC1", CASH_AVAILABLE, "USD")
            recent = uow.recent_order_count("ACC1", now - timedelta(seconds=5))
            result = place_order(uow, command, NO_FEES, now)
            uow.commit()
        return result, available, recent

    outcome = _run_behind_lock(
        database, lambda uow: place_order(uow, buy("ACC1", "C1", "10", "100.00"), NO_FEES, now), waiter
    )
    assert isinstance(outcome, tuple)
    result, available, recent = outcome
    assert result.outcome is Outcome.DUPLICATE
    assert available == Decimal("99000.00")
    assert recent == 1
    assert count_rows(database, "orders") == 1


def _accepted_order(database: Database) -> str:
    runner = executor(database)
    placed = runner.one(buy("ACC1", "C1", "10", "100.00"))
    assert placed.venue_cl_ord_id is not None
    assert runner.one(new_ack(placed.venue_cl_ord_id, venue_order_id="V1")).outcome is Outcome.APPLIED
    return placed.venue_cl_ord_id


def test_the_same_exec_id_committed_while_the_batch_waited_is_ignored_not_booked_twice(database: Database) -> None:
    venue_cl = _accepted_order(database)
    now = datetime.now(UTC)
    the_fill = fill(venue_cl, "4", "100.00", exec_id="X1", venue_order_id="V1")
    result = _run_behind_lock(
        database,
        lambda uow: apply_execution(uow, the_fill, NO_FEES, now),
        lambda: executor(database).execute([the_fill]),
    )
    assert isinstance(result, list)
    assert result[0].outcome is Outcome.IGNORED
    assert count_rows(database, "executions", "WHERE venue_exec_id = 'X1'") == 1
    assert ledger_violations(database) == []


@pytest.mark.parametrize("by_venue_order_id_only", [False, True])
def test_a_fill_behind_the_lock_sees_the_fill_committed_before_it_and_refuses_the_overfill(
    database: Database, by_venue_order_id_only: bool
) -> None:
    """The holder fills 6 of 10; a second fill of 10 that waited must see leaves 4, not the stale 10."""
    venue_cl = _accepted_order(database)
    now = datetime.now(UTC)
    first = fill(venue_cl, "6", "100.00", exec_id="X1", venue_order_id="V1")
    second = report(
        venue_cl, ExecType.TRADE, OrderStatus.FILLED, last_qty="10", last_px="100.00", exec_id="X2", venue_order_id="V1"
    )
    if by_venue_order_id_only:  # found by the venue's order id: the account is known only after reading the order
        second = report(
            "unknown-cl", ExecType.TRADE, OrderStatus.FILLED, last_qty="10", last_px="100.00", exec_id="X2",
            venue_order_id="V1",
        )  # fmt: skip
        object.__setattr__(second, "cl_ord_id", None)
    runner: CommandExecutor = executor(database)
    result = _run_behind_lock(database, lambda uow: apply_execution(uow, first, NO_FEES, now), lambda: runner.execute([second]))
    assert isinstance(result, list)
    assert result[0].outcome is Outcome.QUARANTINED
    with database.engine.connect() as connection:
        cum_qty = connection.execute(text("SELECT cum_qty FROM orders")).scalar_one()
    assert Decimal(cum_qty) == Decimal("6")
    assert ledger_violations(database) == []
