"""A unit of work's reads and writes in few round trips: the placement prefetch and the commit.

On PostgreSQL ``prefetch_placements`` sends the batch's reads in one pipeline and ``commit`` sends the
buffered writes, the event-id read-back and any deferred statements in another; on SQLite both run one
statement after another. Either way a handler sees the same working set and the database the same rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event

from oms.db import bulk as bulk_module
from oms.db.bulk import DeferredStatement
from oms.ledger.chart import CASH_AVAILABLE
from oms.service import uow as uow_module
from oms.service.orders import Outcome, place_order
from oms.service.uow import Database, UnitOfWork
from tests.service.factories import (
    NO_FEES,
    buy,
    count_rows,
    executor,
    fill,
    funded_account,
    ledger_violations,
    setup_database,
)


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    database = setup_database(database_url)
    funded_account(database, "ACC1", "100000")
    funded_account(database, "ACC2", "50000")
    yield database
    database.dispose()


@pytest.fixture
def pg_database(postgres_url: str) -> Iterator[Database]:
    """PostgreSQL alone (deferred statements and the report prefetch are its), ACC1 funded."""
    database = setup_database(postgres_url)
    funded_account(database, "ACC1", "100000")
    yield database
    database.dispose()


def _place(database: Database, account: str, cl_ord_id: str) -> None:
    with UnitOfWork(database) as uow:
        assert place_order(uow, buy(account, cl_ord_id, "10", "100.00"), NO_FEES, datetime.now(UTC)).outcome is Outcome.ACCEPTED
        uow.commit()


def _working_set(uow: UnitOfWork, since: datetime) -> dict[str, Any]:
    """What the handlers will read from the unit of work, without any further statement."""
    return {
        "accounts": {a: (r.id, r.event_seq) if r is not None else None for a, r in sorted(uow.accounts.items())},
        "cash": {a: uow.ledger.balance(a, CASH_AVAILABLE, "USD") for a in ("ACC1", "ACC2")},
        "orders": {key: uow.order_by_client(*key) is not None for key in [("ACC1", "C1"), ("ACC1", "NEW"), ("ACC2", "C2")]},
        "counts": {a: uow.recent_order_count(a, since) for a in ("ACC1", "ACC2")},
        "kill": uow.global_kill_switch(),
    }


def test_the_placement_prefetch_reads_what_the_one_by_one_reads_do(database: Database) -> None:
    _place(database, "ACC1", "C1")
    _place(database, "ACC2", "C2")
    since = datetime.now(UTC) - timedelta(minutes=5)
    keys = [("ACC1", "C1"), ("ACC1", "NEW"), ("ACC2", "C2")]

    with UnitOfWork(database) as uow:
        uow.lock_accounts(["ACC1", "ACC2", "NOBODY"])
        uow.prefetch_orders_by_client(keys)
        uow.prefetch_recent_order_counts(["ACC1", "ACC2"], since)
        expected = _working_set(uow, since)
    with UnitOfWork(database) as uow:
        uow.prefetch_placements(["ACC1", "ACC2", "NOBODY"], keys, since)
        assert _working_set(uow, since) == expected

    assert expected["accounts"]["NOBODY"] is None
    assert expected["orders"] == {("ACC1", "C1"): True, ("ACC1", "NEW"): False, ("ACC2", "C2"): True}
    assert expected["counts"] == {"ACC1": 1, "ACC2": 1}
    assert expected["cash"]["ACC1"] == Decimal("99000.00")


def test_a_placement_after_the_prefetch_is_refused_as_a_duplicate_without_another_lookup(database: Database) -> None:
    _place(database, "ACC1", "C1")
    with UnitOfWork(database) as uow:
        uow.prefetch_placements(["ACC1"], [("ACC1", "C1")], None)
        result = place_order(uow, buy("ACC1", "C1", "10", "100.00"), NO_FEES, datetime.now(UTC))
        uow.commit()
    assert result.outcome is Outcome.DUPLICATE
    assert count_rows(database, "orders") == 1


@pytest.mark.parametrize("pipelined", [True, False], ids=["pipelined", "copy"])
def test_the_commit_gives_each_written_event_the_id_the_database_assigned(
    database: Database, pipelined: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not pipelined:  # PostgreSQL writes big commits with COPY, then reads the ids back in the pipeline
        monkeypatch.setattr(uow_module, "PIPELINED_WRITE_MAX_ROWS", 0)
    with UnitOfWork(database) as uow:
        uow.collect_events = True
        uow.prefetch_placements(["ACC1", "ACC2"], [("ACC1", "E1"), ("ACC2", "E2")], None)
        for account, cl_ord_id in (("ACC1", "E1"), ("ACC2", "E2"), ("ACC1", "E3")):
            place_order(uow, buy(account, cl_ord_id, "1", "100.00"), NO_FEES, datetime.now(UTC))
        uow.commit()
        written = [(row["id"], row["account_id"], row["account_seq"]) for row in uow.written_events]
    with database.engine.connect() as connection:
        stored = {tuple(row) for row in connection.exec_driver_sql("SELECT id, account_id, account_seq FROM order_events")}
    assert written and all(event_id is not None for event_id, _, _ in written)
    assert set(written) <= stored
    assert ledger_violations(database) == []


@pytest.mark.parametrize("refuses", [True, False], ids=["checked-before-commit", "commit-in-the-same-trip"])
def test_deferred_statements_travel_with_the_writes_and_their_check_sees_the_rows(pg_database: Database, refuses: bool) -> None:
    """A check that may refuse runs before the COMMIT; one that cannot lets the COMMIT join the round trip,
    and then runs once the transaction is visible to everyone."""
    seen: list[tuple[list[Any], int]] = []

    def check(rows: list[Any]) -> None:
        seen.append((rows, count_rows(pg_database, "orders")))  # another connection: committed rows only

    with UnitOfWork(pg_database) as uow:
        place_order(uow, buy("ACC1", "C1", "10", "100.00"), NO_FEES, datetime.now(UTC))
        uow.defer(DeferredStatement("SELECT count(*) FROM orders WHERE cl_ord_id = %s", ("C1",), check, refuses))
        uow.commit()
    assert seen == [([(1,)], 0 if refuses else 1)]
    assert count_rows(pg_database, "orders") == 1
    assert ledger_violations(pg_database) == []


def test_a_deferred_check_that_refuses_rolls_back_every_write_of_the_transaction(pg_database: Database) -> None:

    def refuse(rows: list[Any]) -> None:
        raise LookupError(f"expected no rows, got {rows}")

    with UnitOfWork(pg_database) as uow, pytest.raises(LookupError):
        place_order(uow, buy("ACC1", "C1", "10", "100.00"), NO_FEES, datetime.now(UTC))
        uow.defer(DeferredStatement("SELECT 1", (), refuse))
        uow.commit()
    assert count_rows(pg_database, "orders") == 0
    assert count_rows(pg_database, "reservations") == 0
    assert ledger_violations(pg_database) == []


def test_statements_read_with_the_prefetch_get_their_rows_after_the_lock(pg_database: Database) -> None:
    seen: list[list[Any]] = []
    with UnitOfWork(pg_database) as uow:
        also = [DeferredStatement("SELECT id FROM accounts WHERE id = %s", ("ACC1",), seen.append)]
        uow.prefetch_placements(["ACC1"], [], None, also=also)
        assert uow.accounts["ACC1"] is not None
    assert seen == [[("ACC1",)]]


def test_the_report_prefetch_loads_what_a_fill_reads_so_applying_it_needs_no_other_lookup(
    pg_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The executor's PostgreSQL prefetch for venue reports: the order's account locked and its ledger read,
    the order found by the ClOrdID we sent, its pending reservation, and which ExecIDs are already applied,
    all from one pipeline; reading them afterwards issues no statement."""
    runner = executor(pg_database)
    placed = runner.one(buy("ACC1", "C1", "10", "100.00"))
    venue_cl = placed.venue_cl_ord_id
    assert venue_cl is not None
    assert runner.one(fill(venue_cl, "4", "100.00", exec_id="X1", venue_order_id="V1")).outcome is Outcome.APPLIED

    statements: list[str] = []

    def spy(connection: Any, sql: str, params: Any) -> list[Any]:
        statements.append(sql)
        return []

    def seen(_connection: Any, _cursor: Any, sql: str, *_rest: Any) -> None:
        statements.append(sql)

    monkeypatch.setattr(uow_module, "pg_rows", spy)  # the unit of work's own lookups
    monkeypatch.setattr(bulk_module, "pg_rows", spy)  # the ledger's, through BulkReader
    event.listen(pg_database.engine, "before_cursor_execute", seen)  # anything through SQLAlchemy
    try:
        with UnitOfWork(pg_database) as uow:
            uow.pg_prefetch_batch([], (), [venue_cl], ["X1", "X2"])
            order = uow.order_by_venue_cl_ord_id(venue_cl)
            assert order is not None and order.account_id == "ACC1"
            assert uow.accounts["ACC1"] is not None
            assert uow.ledger.balance("ACC1", CASH_AVAILABLE, "USD") == Decimal("99000.00")
            reservation = uow.reservation_for(order.id)
            assert reservation is not None and reservation.remaining == Decimal("600.00")
            assert uow.exec_id_applied("X1") and not uow.exec_id_applied("X2")
            assert statements == []
    finally:
        event.remove(pg_database.engine, "before_cursor_execute", seen)
