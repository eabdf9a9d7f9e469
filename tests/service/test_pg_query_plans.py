"""PostgreSQL: the lookups of the order path, the event stream and the statement read what they need, not the day.

PostgreSQL picks a plan from the table statistics. Once most holds are posted, ``status = 'pending'`` looks
rare, and with only ``ix_reservations_order_id`` the planner read the whole reservations table and filtered
it: 1.8 ms per fill batch after ten thousand orders in the REST bench, growing with every order of the day.
``ix_reservations_pending_order`` holds the pending holds alone. The plans are asked for after a few thousand
orders placed and filled through the service, the tables analysed as autovacuum would, with the values a
batch really sends. (At this size a read of the whole ``orders`` table is the planner's right choice for some
other lookups, so only the plans that went wrong at a day's size are checked here; SQLite's plans are in
``test_query_plans``.)

Found the same way, at 150,000 orders (half a million events, a million postings):

* a commit's read-back of its event ids (``_PG_EVENT_IDS``, run with every commit that publishes its events)
  was keyed by each account's first new ``account_seq``; the planner guessed a third of each account's events
  and, for a batch of many accounts, read the whole order_events table (150 ms);
* a statement page walked ``pk_postings`` from the cursor, filtering by owner: the whole postings table
  (770 ms) for an account with few postings;
* the event stream's catch-up and polls for several accounts (``account_id IN (...)``) walked ``pk_order_events``
  from the resume point, and ``max(id)`` where a stream starts walked it back: every event of every account
  since the last one of theirs.

The statement and the stream are checked on a second history, of 200 accounts (a broker has many; with few,
reading a twentieth of a table in id order is the planner's right choice), with pages of ``PAGE``: two
accounts (``QUIET``) placed one order each before the others' 2,000 and nothing since, and a statement or a
stream of theirs must not read what was written after.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import anyio
import pytest
from sqlalchemy import event, text

from oms.api import queries
from oms.api.events import fetch_events
from oms.api.routes_events import _latest
from oms.domain.enums import ExecType, OrderStatus
from oms.service import uow
from oms.service.executor import CommandExecutor
from oms.service.orders import Outcome
from oms.service.uow import Database, UnitOfWork
from tests.conftest import _fresh_postgres
from tests.service.factories import NO_FEES, buy, funded_account, report, setup_database
from tests.service.plans import explain, rows_examined

ACCOUNTS = [f"H{index:02d}" for index in range(20)]
CROWD = [f"C{index:03d}" for index in range(200)]  # many accounts (ten filled orders each), as a broker has
QUIET = ["Q00", "Q01"]  # one order each, placed and filled before the crowd's
# A page as large a share of an account's history as a page of 100 postings or 500 events is at a day's size
# (3,500 postings and 1,700 events per account): the planner weighs the same choice on this small history.
PAGE = 4
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


@pytest.fixture(scope="module")
def crowd(request: pytest.FixtureRequest) -> Iterator[Database]:
    """Two quiet accounts' orders, then the crowd's: 2,000 orders, each with its events and postings."""
    urls = _fresh_postgres(request)
    database = setup_database(next(urls))
    executor = CommandExecutor(database, NO_FEES)
    for account in CROWD + QUIET:
        funded_account(database, account, "10000000")
    _place_and_fill(executor, [buy(account, "E0", "1", "190.00") for account in QUIET])
    for n in range(10):
        _place_and_fill(executor, [buy(account, f"F{n}", "1", "190.00") for account in CROWD])
    with database.engine.begin() as connection:
        connection.execute(text("ANALYZE"))
    yield database
    database.dispose()
    next(urls, None)


def _place_and_fill(executor: CommandExecutor, orders: list[Any]) -> None:
    placed = executor.execute(orders)
    assert all(result.outcome is Outcome.ACCEPTED for result in placed)
    fills = [
        report(str(result.venue_cl_ord_id), ExecType.TRADE, OrderStatus.FILLED, last_qty="1", last_px="190.00")
        for result in placed
    ]
    assert all(result.outcome is Outcome.APPLIED for result in executor.execute(fills))


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


def test_a_commit_reads_back_its_event_ids_by_their_keys(history: tuple[Database, Batch]) -> None:
    database, batch = history
    with database.engine.connect() as connection:
        written = connection.execute(  # what a commit of one order per account wrote
            text("SELECT DISTINCT ON (account_id) account_id, account_seq FROM order_events WHERE order_id = ANY(:ids) "
                 "ORDER BY account_id, account_seq"),
            {"ids": batch.order_ids},
        ).mappings().all()
    assert len(written) == len(ACCOUNTS)
    unit = UnitOfWork(database)
    try:
        unit.written_events = [dict(row) for row in written]
        sql, params = unit._pg_event_ids_query()
    finally:
        unit.close()
    plan = _plan(database, sql, params)
    assert "Seq Scan on order_events" not in plan, plan
    assert "uq_order_events_account_seq" in plan, plan


def test_a_statement_page_reads_its_own_postings_not_the_day(crowd: Database) -> None:
    database = crowd

    def page() -> None:
        with database.engine.connect() as connection:
            queries.statement_page(connection, QUIET[0], limit=PAGE, cursor=None)

    plan = _plan(database, *_sent(database, page))
    assert "pk_postings" not in plan, plan
    assert "ix_postings_ledger_account_id" in plan, plan


BY_ACCOUNT = ("ix_order_events_account_id_id", "uq_order_events_account_seq")  # order_events by account, then id/seq


def test_an_event_stream_of_quiet_accounts_reads_their_events_not_the_day(crowd: Database) -> None:
    database = crowd
    plan = _plan(database, *_sent(database, lambda: fetch_events(database, QUIET, 0, PAGE)))
    assert "pk_order_events" not in plan, plan
    assert any(index in plan for index in BY_ACCOUNT), plan  # each account's own events


def test_an_event_stream_starts_at_its_accounts_newest_event_without_reading_back_the_day(crowd: Database) -> None:
    database = crowd
    state = SimpleNamespace(database=database)
    plan = _plan(database, *_sent(database, lambda: anyio.run(_latest, state, QUIET)))  # type: ignore[arg-type]
    assert "pk_order_events" not in plan, plan
    assert any(index in plan for index in BY_ACCOUNT), plan


def _sent(database: Database, call: Callable[[], object]) -> tuple[str, Any]:
    """The one statement ``call`` sends, with its parameters."""
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        sent.append((statement, parameters))

    event.listen(database.engine, "before_cursor_execute", record)
    try:
        call()
    finally:
        event.remove(database.engine, "before_cursor_execute", record)
    assert len(sent) == 1, sent
    return sent[0]


def _plan(database: Database, sql: str, params: Any) -> str:
    """The plan PostgreSQL picks for ``sql`` with these values (the custom plan a first execution gets)."""
    return "\n".join(row[0] for row in explain(database, "", sql, params))


Listing = Callable[[Any, str | None], tuple[list[Any], str | None]]  # (connection, cursor) -> (page, next cursor)


def _deep_page_plan(database: Database, listing: Listing) -> str:
    """The plan of the page half-way through ``listing`` (an account's history, PAGE rows a page)."""
    cursor: str | None = None
    with database.engine.connect() as connection:
        for _ in range(FILLED_PER_ACCOUNT // (2 * PAGE)):
            _, cursor = listing(connection, cursor)
    assert cursor is not None

    def page() -> None:
        with database.engine.connect() as connection:
            listing(connection, cursor)

    return _plan(database, *_sent(database, page))


def test_an_execution_page_deep_in_an_accounts_day_starts_at_its_cursor(history: tuple[Database, Batch]) -> None:
    database, _ = history

    def listing(connection: Any, cursor: str | None) -> tuple[list[Any], str | None]:
        return queries.list_executions(connection, [ACCOUNTS[0]], order_id=None, symbol=None, limit=PAGE, cursor=cursor)

    plan = _deep_page_plan(database, listing)
    assert "ix_executions_account_created" in plan, plan
    assert "Sort" not in plan, plan  # read in index order from the cursor, not all of the account's and sorted
    assert "created_at >=" in plan, plan  # the range starts at the cursor


def test_an_order_page_deep_in_an_accounts_day_starts_at_its_cursor(history: tuple[Database, Batch]) -> None:
    database, _ = history

    def listing(connection: Any, cursor: str | None) -> tuple[list[Any], str | None]:
        return queries.list_orders(connection, queries.OrderFilter(accounts=[ACCOUNTS[0]], limit=PAGE, cursor=cursor))

    plan = _deep_page_plan(database, listing)
    assert "ix_orders_account_created" in plan, plan
    assert "created_at <=" in plan, plan  # the range starts at the cursor, not at the account's newest order


MANY = CROWD + QUIET  # a retail backend's key is bound to many accounts (ten orders each here)


def test_an_order_page_of_many_accounts_reads_each_accounts_newest_not_all_their_orders(crowd: Database) -> None:
    database = crowd

    def page() -> None:
        with database.engine.connect() as connection:
            queries.list_orders(connection, queries.OrderFilter(accounts=MANY, limit=PAGE))

    read = rows_examined(database, *_sent(database, page), "orders")
    # a page and one more per account, plus one: the index has no id, so the sort on (created_at, id) reads
    # on to the end of the last created_at; not the 2,002 orders of these accounts
    assert read <= len(MANY) * (PAGE + 2), read


def test_an_execution_page_of_many_accounts_reads_each_accounts_oldest_not_all_their_executions(crowd: Database) -> None:
    database = crowd

    def page() -> None:
        with database.engine.connect() as connection:
            queries.list_executions(connection, MANY, order_id=None, symbol=None, limit=PAGE, cursor=None)

    read = rows_examined(database, *_sent(database, page), "executions")
    assert read <= len(MANY) * (PAGE + 1), read
