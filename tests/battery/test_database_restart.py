"""PostgreSQL really restarted and really crashed while orders flow.

Each drill runs its own PostgreSQL server (`pg_cluster`), so it can stop it the way operations do
(`pg_ctl stop -m fast`) and the way a crash does (`-m immediate`: no checkpoint, crash recovery at the next
start), without disturbing the server the rest of the suite uses. What must hold: every order acknowledged
before the fault is still there after it (durability), orders during the outage get a clear error in
bounded time, nothing is half-booked, and the same running service carries on once the server is back,
with no restart of ours.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from oms.db.migrate import upgrade
from oms.db.models import Execution, Order, Reservation
from oms.domain.commands import PlaceOrder
from oms.domain.enums import OrderType, Side, TimeInForce
from oms.domain.instruments import Instrument
from oms.domain.risk import FeeSchedule
from oms.ledger.verify import verify_ledger
from oms.service.accounts import create_account, deposit, upsert_instruments
from oms.service.executor import CommandExecutor, GroupCommitter
from oms.service.orders import ServiceConfig
from oms.service.uow import Database

MIN_ORDERS = 150
OUTAGE_S = 0.5
ERROR_BOUND_S = 20.0  # an order during the outage is answered (with an error) within this time
NO_FEES = ServiceConfig(fee_schedule=FeeSchedule(rate=Decimal(0)))
AAPL = Instrument(symbol="AAPL", currency="USD", tick_size=Decimal("0.01"), reference_price=Decimal("100"))


def _buy(cl_ord_id: str) -> PlaceOrder:
    return PlaceOrder(account="PGR1", cl_ord_id=cl_ord_id, symbol="AAPL", side=Side.BUY, order_type=OrderType.LIMIT,
                      qty=Decimal("1"), limit_price=Decimal("100.00"), tif=TimeInForce.DAY)


def _cl_ord_ids(database: Database) -> set[str]:
    with database.engine.connect() as connection:
        return set(connection.execute(select(Order.cl_ord_id)).scalars())


def _wait_until(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_server_restarted_and_crashed_while_orders_flow(throwaway_postgres: Any,
                                                        battery_row: Callable[..., None]) -> None:
    cluster = throwaway_postgres
    database = Database.from_url(cluster.url)
    upgrade(database.engine)
    upsert_instruments(database, [AAPL])
    create_account(database, "PGR1")
    deposit(database, "PGR1", Decimal("1000000"))
    committer = GroupCommitter(CommandExecutor(database, NO_FEES), max_batch=8)
    acknowledged: list[str] = []
    failed: list[str] = []
    acknowledged_before_crash: list[str] = []
    faults_over = threading.Event()
    fault_errors: list[BaseException] = []

    def restart_then_crash() -> None:
        try:
            _wait_until(lambda: len(acknowledged) >= 30, 60)
            cluster.stop("fast")  # operations restart the server
            time.sleep(OUTAGE_S)
            cluster.start()
            _wait_until(lambda: len(acknowledged) >= 80, 60)
            acknowledged_before_crash.extend(acknowledged)
            cluster.stop("immediate")  # the server crashes
            time.sleep(OUTAGE_S)
            cluster.start()
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            fault_errors.append(error)
        finally:
            faults_over.set()

    faults = threading.Thread(target=restart_then_crash, daemon=True)
    faults.start()
    slowest_error_s = 0.0
    number = 0
    try:
        while (not faults_over.is_set() or number < MIN_ORDERS) and number < 20_000:
            cl_ord_id = f"PGR-{number}"
            number += 1
            started = time.monotonic()
            try:
                result = committer.execute(_buy(cl_ord_id), timeout=60)
            except DBAPIError:
                slowest_error_s = max(slowest_error_s, time.monotonic() - started)
                failed.append(cl_ord_id)
                time.sleep(0.02)
                continue
            assert result.ok, result
            acknowledged.append(cl_ord_id)
    finally:
        faults.join(timeout=120)
    assert not fault_errors, fault_errors
    assert "automatic recovery in progress" in cluster.server_log(), "the server never went through crash recovery"

    stored = _cl_ord_ids(database)
    lost = set(acknowledged_before_crash) - stored
    assert not lost, f"orders acknowledged before the crash were lost: {sorted(lost)[:5]}"
    assert failed, "no order met the outage: the drill proved nothing"
    assert slowest_error_s < ERROR_BOUND_S

    # The same committer, never restarted, takes every refused order once the server is back; an order
    # whose commit landed just before the connection died comes back as the existing order, not a second.
    for cl_ord_id in failed:
        assert committer.execute(_buy(cl_ord_id), timeout=60).ok
    committer.close()
    with database.engine.connect() as connection:
        orders = connection.execute(select(func.count()).select_from(Order)).scalar_one()
        reservations = connection.execute(select(func.count()).select_from(Reservation)).scalar_one()
        violations = verify_ledger(connection)
    database.engine.dispose()
    assert orders == number
    assert reservations == number
    assert violations == []
    battery_row("PostgreSQL restarted (pg_ctl -m fast), then crashed (-m immediate)", f"{number} orders flowing",
                "acknowledged orders survive, clear errors in bounded time, resumes alone, ledger clean",
                f"{len(failed)} refused (slowest {slowest_error_s:.1f} s), all resubmitted once; "
                f"{orders} orders, verify clean")


def test_gateway_holds_a_fill_that_arrives_while_the_server_is_down_and_books_it_once_back(
        throwaway_postgres: Any, tmp_path: Path, battery_row: Callable[..., None]) -> None:
    """A client's resting order fills at the venue while PostgreSQL is crashed: the gateway keeps the
    ExecutionReport, refuses new orders with INTERNAL_ERROR meanwhile, and once the server is back it books
    the fill once and relays it to the client, with no restart of the gateway."""
    from battery_support import load_exchange_test_module
    from test_network_faults_gateway import _config

    from cli.demo_client import DemoFixClient, fix_time
    from exchange.engine import OrderType as VenueOrderType
    from exchange.engine import Side as VenueSide
    from exchange.engine import SubmitOrder
    from exchange.engine import TimeInForce as VenueTif
    from exchange.instruments import load_instruments
    from oms.gateway.config import load_gateway_settings
    from oms.gateway.gateway import Gateway

    cluster = throwaway_postgres
    venue = load_exchange_test_module("conftest.py").VenueHarness(tmp_path / "venue")
    venue.start()  # no market maker steps: the drill's own orders are the whole book
    database = Database.from_url(cluster.url)
    upgrade(database.engine)
    instruments = load_instruments()
    upsert_instruments(database, [Instrument(symbol=i.symbol, currency=i.currency, tick_size=i.tick_size,
                                             lot_size=i.lot_size, reference_price=i.reference_price)
                                  for i in instruments.values()])
    create_account(database, "NETACC")
    deposit(database, "NETACC", Decimal("1000000"), reference="battery-pg-restart")
    price = instruments["AAPL"].reference_price
    client_port = load_exchange_test_module("fixclient.py").free_port()
    gateway = Gateway(load_gateway_settings(_config(tmp_path, venue.port, client_port)), database).start()
    client = None

    def buy(cl_ord_id: str) -> None:
        assert client is not None
        client.send("D", [(11, cl_ord_id), (1, "NETACC"), (21, "1"), (55, "AAPL"), (54, "1"), (60, fix_time()),
                          (38, "5"), (40, "2"), (44, f"{price:.2f}"), (59, "0")])

    def venue_sells(cl_ord_id: str) -> None:
        venue.service.submit(SubmitOrder("DRILL", cl_ord_id, "AAPL", VenueSide.SELL, VenueOrderType.LIMIT,
                                         Decimal("5"), price, None, VenueTif.DAY, None, datetime.now(UTC)))

    try:
        assert gateway.wait_venue(20)
        client = DemoFixClient(client_port, tmp_path / "client-store", "NETCLIENT").start()
        buy("PGR-REST-1")
        assert any(r.get(150) == "0" for r in client.wait_for("PGR-REST-1", frozenset({"0", "8"}), 30))

        cluster.stop("immediate")
        venue_sells("DRILL-1")  # the venue fills our resting order while our database is down
        time.sleep(1.0)  # the report reaches the gateway, which cannot book it yet
        started = time.monotonic()
        buy("PGR-DOWN-1")
        refused = client.wait_for("PGR-DOWN-1", frozenset({"8"}), 30)
        refused_after_s = time.monotonic() - started
        assert any(r.get(58, "").startswith("INTERNAL_ERROR") for r in refused), refused
        assert refused_after_s < ERROR_BOUND_S
        assert not any(r.get(150) == "F" for r in client.wait_for("PGR-REST-1", frozenset({"F"}), 0)), \
            "the fill was relayed before it was booked"

        cluster.start()
        relayed = client.wait_for("PGR-REST-1", frozenset({"F"}), 30)
        assert any(r.get(150) == "F" and r.get(39) == "2" for r in relayed), relayed
        buy("PGR-BACK-1")
        assert any(r.get(150) == "0" for r in client.wait_for("PGR-BACK-1", frozenset({"0", "8"}), 30))
        venue_sells("DRILL-2")
        assert any(r.get(150) == "F" for r in client.wait_for("PGR-BACK-1", frozenset({"F"}), 30))
        assert gateway.worker.wait_idle(10)
        with database.engine.connect() as connection:
            statuses = dict(connection.execute(select(Order.cl_ord_id, Order.status)).all())
            fills = connection.execute(select(func.count()).select_from(Execution)
                                       .where(Execution.exec_type == "trade")).scalar_one()
            violations = verify_ledger(connection)
        assert statuses == {"PGR-REST-1": "filled", "PGR-BACK-1": "filled"}, statuses
        assert fills == 2  # the held fill booked once, the later one once
        assert violations == []
    finally:
        if client is not None:
            client.stop()
        gateway.stop(force=True)
        venue.stop()
        database.engine.dispose()
    battery_row("PostgreSQL crashed under the gateway", "venue fill arrives while the server is down",
                "fill held, new orders refused, fill booked once and relayed when back",
                f"INTERNAL_ERROR after {refused_after_s:.1f} s; fill relayed after restart; ledger clean")
