"""PostgreSQL: in a process that signals its outbox (the REST API), a commit that queues venue messages
signals the outbox listener of another process at once; a commit that queues none, a rollback, or a
process that does not signal (the gateway, which wakes its own sender) does not."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from oms.db.outbox_signal import OutboxListener
from oms.service.accounts import deposit
from oms.service.orders import Outcome, place_order
from oms.service.uow import Database, UnitOfWork
from tests.service.factories import NO_FEES, buy, funded_account, setup_database


class Signals:
    def __init__(self) -> None:
        self.count = 0
        self.arrived = threading.Event()

    def __call__(self) -> None:
        self.count += 1
        self.arrived.set()

    def next(self, timeout_s: float) -> bool:
        arrived = self.arrived.wait(timeout_s)
        self.arrived.clear()
        return arrived


@pytest.fixture
def listening(postgres_url: str) -> Iterator[tuple[Database, Signals]]:
    database = setup_database(postgres_url)
    database.notify_outbox = True  # as the REST API's process does
    funded_account(database, "ACC1", "100000")
    signals = Signals()
    listener = OutboxListener(database.engine, signals, wait_s=0.2)
    listener.start()
    assert listener.listening.wait(5)
    assert signals.next(5)  # the listener checks once on (re)connecting: rows may have come meanwhile
    yield database, signals
    listener.stop()
    database.dispose()


def place(database: Database, cl_ord_id: str, *, commit: bool = True) -> None:
    with UnitOfWork(database) as uow:
        placed = place_order(uow, buy("ACC1", cl_ord_id, "1", "100.00"), NO_FEES, datetime.now(UTC))
        assert placed.outcome is Outcome.ACCEPTED
        if commit:
            uow.commit()


def test_a_committed_order_signals_the_listener(listening: tuple[Database, Signals]) -> None:
    database, signals = listening
    place(database, "C1")
    assert signals.next(2.0)


def test_a_rolled_back_order_and_a_deposit_do_not(listening: tuple[Database, Signals]) -> None:
    database, signals = listening
    place(database, "C1", commit=False)
    deposit(database, "ACC1", Decimal("10"))
    assert not signals.next(0.5)
    place(database, "C2")  # the listener is still there
    assert signals.next(2.0)


def test_a_process_that_does_not_signal_its_outbox_wakes_nobody(listening: tuple[Database, Signals]) -> None:
    database, signals = listening
    database.notify_outbox = False  # the gateway's workers: they wake their own sender
    place(database, "G1")
    assert not signals.next(0.5)


def test_the_listener_reconnects_after_its_connection_is_killed(listening: tuple[Database, Signals]) -> None:
    database, signals = listening
    with database.engine.connect() as connection:
        connection.exec_driver_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE query LIKE 'LISTEN%%' AND datname = current_database() AND pid <> pg_backend_pid()"
        )
        connection.commit()
    assert signals.next(5.0)  # reconnected: it signals once in case rows came while it was away
    place(database, "C3")
    assert signals.next(2.0)
