"""Recovery after a venue logon: new orders wait for it (VENUE_RECOVERING), and an order whose outcome the
venue never tells us keeps its reservation and is reported, never released."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from click.testing import CliRunner
from fixclient import is_er, new_order, transact_time
from harness import eventually
from sqlalchemy import select

from cli.main import main
from exchange.faults import FaultKnob
from oms.db.models import OutboxMessage
from oms.domain.commands import PlaceOrder
from oms.domain.enums import OrderSource, OrderStatus, OrderType, Side
from oms.gateway import queries
from oms.gateway.gateway import Gateway
from oms.gateway.recovery import AppliedSeq
from oms.service.accounts import balances
from oms.settings import get_settings

pytestmark = [pytest.mark.fix, pytest.mark.timeout(120)]


def best_bid(venue) -> Decimal:  # type: ignore[no-untyped-def]
    bids, _ = venue.venue.engine.engine.book_depth("AAPL", 1)
    return Decimal(bids[0][0])


def new_order_sent(database, order_id: str) -> bool:  # type: ignore[no-untyped-def]
    table = OutboxMessage.__table__
    with database.engine.connect() as connection:
        return connection.execute(select(table.c.sent_at).where(
            (table.c.order_id == order_id) & (table.c.kind == "new"))).scalar_one() is not None


def outbox_id(database, order_id: str) -> int:  # type: ignore[no-untyped-def]
    table = OutboxMessage.__table__
    with database.engine.connect() as connection:
        return int(connection.execute(select(table.c.id).where(table.c.order_id == order_id)).scalar_one())


def test_the_expected_venue_sequence_is_lowered_only_to_just_after_the_last_applied_report() -> None:
    assert AppliedSeq.next_expected(store_next=40, applied=31) == 32  # reports after 31 come again
    assert AppliedSeq.next_expected(store_next=40, applied=39) == 40  # nothing missed
    assert AppliedSeq.next_expected(store_next=5, applied=39) == 5  # the session was reset: the mark is stale
    assert AppliedSeq.next_expected(store_next=40, applied=None) == 40


def test_an_order_whose_outcome_stays_unknown_keeps_its_reservation_and_is_reported(
        database, database_url, venue, gateway, connect, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    client = connect("CLIENT1")
    price = best_bid(venue) - Decimal("1.00")  # rests at the venue: its acknowledgement is the only report
    venue.service.faults.arm(FaultKnob.DROP, 1)
    client.send("D", new_order("LOST1", symbol="AAPL", side="1", qty="100", price=str(price), extra=[(1, "ACC1")]))
    eventually(lambda: len(venue.orders()) == 1)
    record = eventually(lambda: queries.order_by_client(database, "ACC1", "LOST1"))
    eventually(lambda: new_order_sent(database, record.id))  # type: ignore[union-attr]
    reserved = balances(database, "ACC1").in_currency("USD").reserved
    assert reserved >= Decimal("100") * price

    # Restart; the venue will drop the answer to our status question too.
    gateway.stop()
    venue.service.faults.arm(FaultKnob.DROP, 1)
    gateway.settings = dataclasses.replace(gateway.settings, recovery_timeout_ms=5000)
    restarted = Gateway(gateway.settings, database).start()
    gateway.gateway = restarted
    assert restarted.venue_app.logged_on.wait(15)
    assert client.logged_on.wait(15)

    client.send("D", new_order("EARLY", symbol="AAPL", side="1", qty="10", price=str(price), extra=[(1, "ACC1")]))
    early = client.wait_for(is_er("EARLY", "8"))
    assert early[58].startswith("VENUE_RECOVERING: ")
    assert restarted.wait_venue(20), "recovery must end within its bound"

    # Reported: worker state, metric, CLI listing.
    assert restarted.worker.unresolved.keys() == {record.id}  # type: ignore[union-attr]
    assert "no answer" in restarted.worker.unresolved[record.id]  # type: ignore[union-attr]
    assert restarted.metrics.registry.get_sample_value("oms_gateway_unresolved_orders") == 1
    monkeypatch.setenv("OMS_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        listing = CliRunner().invoke(main, ["gateway", "unresolved", "--older-than", "0"])
    finally:
        get_settings.cache_clear()
    assert listing.exit_code == 1, listing.output
    assert record.id in listing.output and "LOST1" in listing.output and "pending_new" in listing.output  # type: ignore[union-attr]

    # Kept: the order still pending with its whole reservation.
    assert queries.order_by_client(database, "ACC1", "LOST1").order.status is OrderStatus.PENDING_NEW  # type: ignore[union-attr]
    assert balances(database, "ACC1").in_currency("USD").reserved == reserved

    # And the gateway is open again for new orders.
    client.send("D", new_order("AFTER", symbol="AAPL", side="1", qty="10", price=str(price), extra=[(1, "ACC1")]))
    client.wait_for(is_er("AFTER", "0"))


def test_a_request_the_venue_never_got_is_sent_again_once_by_recovery(database, venue, gateway, connect) -> None:  # type: ignore[no-untyped-def]
    """A NewOrderSingle marked sent that never reached the venue: the status answer says 'unknown order',
    and recovery queues it once more; the venue ends up with exactly one order."""
    client = connect("CLIENT1")
    price = best_bid(venue) - Decimal("1.00")
    gateway.stop()
    # Commit the order as the gateway would, then mark its row sent without sending it (a lost message).
    restarted = Gateway(gateway.settings, database)
    result = restarted.executor.one(PlaceOrder(account="ACC1", cl_ord_id="LOST2", symbol="AAPL", side=Side.BUY,
                                               order_type=OrderType.LIMIT, qty=Decimal("100"), limit_price=price,
                                               source=OrderSource.FIX))
    assert result.order is not None
    queries.mark_sent(database, [outbox_id(database, str(result.order.order_id))], datetime.now(UTC))
    gateway.gateway = restarted.start()
    assert restarted.wait_venue(20)

    eventually(lambda: len(venue.orders()) == 1)
    record = eventually(lambda: (r := queries.order_by_client(database, "ACC1", "LOST2")) and
                        r.order.status is OrderStatus.NEW and r)
    assert record.venue_cl_ord_id == venue.orders()[0].cl_ord_id  # type: ignore[union-attr]
    assert restarted.worker.unresolved == {}
    assert restarted.worker.counters.by_outcome.get("recovery_requeued") == 1
    assert client.logged_on.wait(15)


def test_recovery_runs_again_at_a_venue_reconnect_and_reports_a_cancel_we_never_heard_the_end_of(
        database, venue, gateway, connect) -> None:  # type: ignore[no-untyped-def]
    client = connect("CLIENT1")
    price = best_bid(venue) - Decimal("1.00")
    client.send("D", new_order("CXL1", symbol="AAPL", side="1", qty="100", price=str(price), extra=[(1, "ACC1")]))
    client.wait_for(is_er("CXL1", "0"))
    reserved = balances(database, "ACC1").in_currency("USD").reserved
    venue.service.faults.arm(FaultKnob.DROP, 1)  # the venue cancels, but its Canceled report never leaves
    client.send("F", [(11, "CXL1-X"), (41, "CXL1"), (1, "ACC1"), (55, "AAPL"), (54, "1"), (60, transact_time())])
    eventually(lambda: venue.orders()[0].state.value == "4")  # canceled at the venue
    record = eventually(lambda: (r := queries.order_by_client(database, "ACC1", "CXL1")) and
                        r.order.status is OrderStatus.PENDING_CANCEL and r)

    venue.stop()
    eventually(lambda: not gateway.gateway.venue_up())  # type: ignore[union-attr]
    venue.start()
    assert gateway.gateway.wait_venue(20)  # type: ignore[union-attr]

    # The venue knows the cancel's ClOrdID, our books never saw the outcome: unresolved, reservation kept.
    worker = gateway.gateway.worker  # type: ignore[union-attr]
    assert worker.unresolved.keys() == {record.id}  # type: ignore[union-attr]
    assert "OrdStatus=4" in worker.unresolved[record.id]  # type: ignore[union-attr]
    assert queries.order_by_client(database, "ACC1", "CXL1").order.status is OrderStatus.PENDING_CANCEL  # type: ignore[union-attr]
    assert balances(database, "ACC1").in_currency("USD").reserved == reserved
