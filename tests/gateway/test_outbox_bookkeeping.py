"""The outbox's bookkeeping around a send: nothing is committed between an order's commit and its send, the
send is recorded afterwards without waiting for the disk, and a row a previous run left unsent (it may have
gone out just before a crash) goes out with PossResend=Y."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from decimal import Decimal

from harness import eventually, seed_oms
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from fix.certification.tcp_proxy import FaultProxy
from fix.wire import Outbound
from oms.db.durability import relaxed_commit
from oms.db.engine import is_sqlite
from oms.db.models import OutboxMessage
from oms.domain.commands import PlaceOrder
from oms.domain.enums import OrderSource, OrderType, Side
from oms.gateway import queries
from oms.gateway.outbox import OutboxSender
from oms.service.executor import CommandExecutor
from oms.service.uow import Database

POSS_RESEND = 97


def place(database: Database, cl_ord_id: str) -> str:
    result = CommandExecutor(database).one(PlaceOrder(
        account="ACC1", cl_ord_id=cl_ord_id, symbol="AAPL", side=Side.BUY, order_type=OrderType.LIMIT,
        qty=Decimal(10), limit_price=Decimal("150.00"), source=OrderSource.FIX))
    assert result.order is not None
    return str(result.order.order_id)


def sent_at(database: Database, order_id: str) -> object:
    table = OutboxMessage.__table__
    with database.engine.connect() as connection:
        return connection.execute(select(table.c.sent_at).where(table.c.order_id == order_id)).scalar_one()


class Recorder:
    """Stands in for the venue session's send: the bookkeeping, not FIX, is under test here (the crash
    drills in test_crash_recovery.py send over real sessions)."""

    def __init__(self) -> None:
        self.sent: list[Outbound] = []
        self.lock = threading.Lock()

    def __call__(self, outbound: Outbound) -> bool:
        with self.lock:
            self.sent.append(outbound)
        return True


def test_a_row_left_unsent_by_an_earlier_run_goes_out_as_a_possible_resend_and_a_new_one_does_not(
        database: Database) -> None:
    earlier = place(database, "EARLIER")  # committed before this sender started: may have been sent already
    recorder = Recorder()
    sender = OutboxSender(database, "FIX.4.4", recorder, lambda: True, poll_ms=20)
    sender.start()
    try:
        later = place(database, "LATER")
        sender.wake()
        assert eventually(lambda: len(recorder.sent) == 2)
        assert eventually(lambda: sent_at(database, earlier) is not None and sent_at(database, later) is not None)
    finally:
        sender.stop()
    first, second = recorder.sent  # oldest first
    assert dict(first.header).get(POSS_RESEND) == "Y"
    assert POSS_RESEND not in dict(second.header)


def test_reading_unsent_rows_commits_nothing(database: Database) -> None:
    order_id = place(database, "READ1")
    before = queries.unsent_outbox(database, 10)
    again = queries.unsent_outbox(database, 10)
    assert [row.attempts for row in before] == [row.attempts for row in again] == [0]
    assert queries.mark_possibly_sent(database) == 1
    assert [row.attempts for row in queries.unsent_outbox(database, 10)] == [1]
    queries.mark_sent(database, [before[0].id], datetime.now(UTC))
    assert sent_at(database, order_id) is not None and queries.unsent_outbox(database, 10) == []


def test_a_relaxed_commit_is_atomic_and_leaves_the_connection_durable(database: Database) -> None:
    table = OutboxMessage.__table__
    order_id = place(database, "RELAX1")
    try:
        with relaxed_commit(database.engine) as connection:
            connection.execute(table.update().where(table.c.order_id == order_id).values(attempts=7))
            raise RuntimeError("abandon")
    except RuntimeError:
        pass
    assert [row.attempts for row in queries.unsent_outbox(database, 10)] == [0]  # rolled back whole
    with relaxed_commit(database.engine) as connection:
        connection.execute(table.update().where(table.c.order_id == order_id).values(attempts=3))
    assert [row.attempts for row in queries.unsent_outbox(database, 10)] == [3]
    pooled = [database.engine.connect() for _ in range(5)]  # every pooled connection is back to durable commits
    try:
        for connection in pooled:
            if is_sqlite(database.engine):  # asked outside a transaction: each one would take the write lock
                raw = connection.connection.dbapi_connection
                assert raw is not None and raw.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
            else:
                assert connection.execute(text("SHOW synchronous_commit")).scalar_one() == "on"
    finally:
        for connection in pooled:
            connection.close()


def test_on_postgresql_an_order_committed_by_another_process_goes_out_without_waiting_for_the_poll(
        postgres_url: str) -> None:
    database = Database.from_url(postgres_url)
    seed_oms(database)
    recorder = Recorder()
    sender = OutboxSender(database, "FIX.4.4", recorder, lambda: True, poll_ms=60_000)  # the poll alone: a minute
    sender.start()
    try:
        assert sender.listening(timeout_s=5)
        elsewhere = Database.from_url(postgres_url)  # the REST API's process: nothing here wakes the sender
        elsewhere.notify_outbox = True  # as create_app sets it
        try:
            started = time.monotonic()
            place(elsewhere, "REST1")
            assert eventually(lambda: len(recorder.sent) == 1, timeout_s=5)
            assert time.monotonic() - started < 5
        finally:
            elsewhere.dispose()
    finally:
        sender.stop()
        database.dispose()


def test_a_send_whose_record_was_lost_with_the_database_goes_out_again_as_a_possible_resend(postgres_url: str) -> None:
    """The NewOrderSingle went out, then the database went away before the send was recorded: the row is still
    unsent, so it goes out again once the database is back, and it must say PossResend=Y as after a crash.
    Sent plain, the venue takes it for a second order under a used ClOrdID and rejects it (DUPLICATE_ORDER),
    a report the gateway then has to quarantine (seen in a chaos run killing PostgreSQL backends)."""
    url = make_url(postgres_url)
    with FaultProxy(url.port or 5432, upstream_host=url.host or "127.0.0.1") as proxy:
        database = Database.from_url(url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False))
        seed_oms(database, accounts=("ACC1",))

        class CutAfterTheFirstSend(Recorder):
            def __call__(self, outbound: Outbound) -> bool:
                sent = super().__call__(outbound)
                if len(self.sent) == 1:
                    proxy.refuse(True)
                    proxy.cut()
                return sent

        recorder = CutAfterTheFirstSend()
        sender = OutboxSender(database, "FIX.4.4", recorder, lambda: True, poll_ms=20)
        sender.start()
        try:
            order_id = place(database, "CUT1")  # after the start: its first send is no resend
            sender.wake()
            assert eventually(lambda: len(recorder.sent) >= 1)
            time.sleep(0.3)  # the record of the send fails meanwhile
            proxy.refuse(False)
            proxy.heal()
            assert eventually(lambda: sent_at(database, order_id) is not None, 15)
        finally:
            sender.stop()
            database.dispose()
    first, *again = recorder.sent
    assert POSS_RESEND not in dict(first.header)
    assert again and all(dict(resend.header).get(POSS_RESEND) == "Y" for resend in again), [m.header for m in again]
