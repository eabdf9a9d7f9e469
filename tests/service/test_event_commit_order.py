"""Event ids are in commit order on PostgreSQL too, so a stream that sent event N can resume "after N" exactly.

A sequence hands out ids when rows are inserted, not when they commit: without the event-order lock, a
transaction holding id 103 could commit after another's 105 was already streamed, and a client resuming
after 105 would never get 103. These tests hold PostgreSQL to the rule readers rely on: once an id is
visible, no lower id becomes visible later.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from oms.service.executor import CommandExecutor
from oms.service.orders import Outcome
from oms.service.uow import EVENT_ORDER_LOCK_SQL, Database
from tests.service.factories import NO_FEES, buy, funded_database

WRITERS = 4


@pytest.fixture
def database(postgres_url: str) -> Iterator[Database]:
    with funded_database(postgres_url, [f"W{index}" for index in range(WRITERS)], "10000000") as database:
        yield database


def test_a_commit_that_writes_events_waits_for_the_event_order_lock(database: Database) -> None:
    """The lock is what orders the ids: a writer must queue behind whoever holds it."""
    holder = database.engine.connect()
    holder.begin()
    holder.exec_driver_sql(EVENT_ORDER_LOCK_SQL)
    outcome: list[Outcome] = []
    writer = threading.Thread(target=lambda: outcome.append(CommandExecutor(database, NO_FEES).one(buy("W0", "C1", "1")).outcome))
    writer.start()
    writer.join(0.5)
    assert writer.is_alive() and outcome == []  # blocked on the lock, not committed
    with database.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM order_events")).scalar_one() == 0
    holder.rollback()
    holder.close()
    writer.join(10)
    assert outcome == [Outcome.ACCEPTED]


def test_no_lower_event_id_becomes_visible_after_a_higher_one(database: Database) -> None:
    """Concurrent writers on different accounts; an observer polls every id and checks each new one is above
    every id it saw before (what a stream resuming after its last id depends on)."""
    stop = threading.Event()
    errors: list[BaseException] = []
    violations: list[tuple[int, int]] = []

    def write(index: int) -> None:
        executor = CommandExecutor(database, NO_FEES)
        number = 0
        try:
            while not stop.is_set():
                number += 1
                results = executor.execute([buy(f"W{index}", f"C{number}-{n}", "1") for n in range(1 + number % 3)])
                assert all(result.outcome is Outcome.ACCEPTED for result in results)
        except BaseException as error:  # noqa: BLE001 - reported by the test
            errors.append(error)

    def observe() -> None:
        seen: set[int] = set()
        highest = 0
        with database.engine.connect() as connection:
            while not stop.is_set():
                ids = {int(i) for (i,) in connection.execute(text("SELECT id FROM order_events")).all()}
                connection.rollback()  # a fresh snapshot for every read
                for new in sorted(ids - seen):
                    if new < highest:
                        violations.append((new, highest))
                seen |= ids
                highest = max(seen, default=0)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(WRITERS)] + [threading.Thread(target=observe)]
    for thread in threads:
        thread.start()
    time.sleep(3.0)
    stop.set()
    for thread in threads:
        thread.join(30)
    assert errors == []
    with database.engine.connect() as connection:
        written = connection.execute(text("SELECT count(*) FROM order_events")).scalar_one()
    assert written > 100  # the writers really overlapped for a while
    assert violations == []
