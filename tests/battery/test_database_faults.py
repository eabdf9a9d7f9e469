"""PostgreSQL connections cut or refused while orders flow: clear errors, nothing half-booked, and the
service resumes by itself once the database is back.

The fault proxy sits between the OMS and PostgreSQL: cutting every connection looks to the OMS like a
server restart, refusing new ones like an unreachable server. The server itself keeps running, so the
other tests on this machine are undisturbed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from fix.certification.tcp_proxy import FaultProxy
from oms.db.models import Order, Reservation
from oms.domain.commands import PlaceOrder
from oms.domain.enums import OrderType, Side, TimeInForce
from oms.domain.instruments import Instrument
from oms.domain.risk import FeeSchedule
from oms.ledger.verify import verify_ledger
from oms.service.accounts import create_account, deposit, upsert_instruments
from oms.service.executor import CommandExecutor, GroupCommitter
from oms.service.orders import ServiceConfig
from oms.service.uow import Database

ORDERS = 60
INSTRUMENTS = [Instrument(symbol="AAPL", currency="USD", tick_size=Decimal("0.01"), reference_price=Decimal("100"))]
NO_FEES = ServiceConfig(fee_schedule=FeeSchedule(rate=Decimal(0)))


def buy(account: str, cl_ord_id: str, qty: str, price: str) -> PlaceOrder:
    return PlaceOrder(account=account, cl_ord_id=cl_ord_id, symbol="AAPL", side=Side.BUY,
                      order_type=OrderType.LIMIT, qty=Decimal(qty), limit_price=Decimal(price), tif=TimeInForce.DAY)
UNREACHABLE_BOUND_S = 20.0


@pytest.fixture
def proxied_database(postgres_url: str) -> Iterator[tuple[Database, FaultProxy]]:
    url = make_url(postgres_url)
    with FaultProxy(url.port or 5432, upstream_host=url.host or "127.0.0.1") as proxy:
        through_proxy = url.set(host="127.0.0.1", port=proxy.port)
        database = Database.from_url(through_proxy.render_as_string(hide_password=False))
        upsert_instruments(database, INSTRUMENTS)
        create_account(database, "DBF1")
        deposit(database, "DBF1", Decimal("1000000"))
        yield database, proxy
        database.engine.dispose()


def _orders_and_open_reservations(database: Database) -> tuple[int, int]:
    with database.engine.connect() as connection:
        orders = connection.execute(select(func.count()).select_from(Order)).scalar_one()
        reservations = connection.execute(select(func.count()).select_from(Reservation)).scalar_one()
    return orders, reservations


def test_connections_cut_mid_flow_lose_nothing_and_half_book_nothing(
        proxied_database: tuple[Database, FaultProxy], battery_row: Callable[..., None]) -> None:
    database, proxy = proxied_database
    committer = GroupCommitter(CommandExecutor(database, NO_FEES), max_batch=8)
    failed: list[str] = []
    accepted: list[str] = []
    stop_cutting = threading.Event()

    def cut_now_and_then() -> None:
        while not stop_cutting.wait(0.02):
            proxy.cut()

    cutter = threading.Thread(target=cut_now_and_then, daemon=True)
    cutter.start()
    try:
        for number in range(ORDERS):
            cl_ord_id = f"DBF-{number}"
            try:
                result = committer.execute(buy("DBF1", cl_ord_id, "1", "100.00"), timeout=30)
            except DBAPIError:
                failed.append(cl_ord_id)
                continue
            assert result.ok, result
            accepted.append(cl_ord_id)
    finally:
        stop_cutting.set()
        cutter.join()

    # Resubmitting what failed is safe: an identical (account, ClOrdID) returns the order if its commit
    # did land before the cut, and books it otherwise.
    for cl_ord_id in failed:
        assert committer.execute(buy("DBF1", cl_ord_id, "1", "100.00"), timeout=30).ok
    committer.close()
    reconnects = proxy.connections_accepted
    assert reconnects > 3, "the cuts never hit a live connection: the drill proved nothing"
    orders, reservations = _orders_and_open_reservations(database)
    assert orders == ORDERS
    assert reservations == ORDERS
    with database.engine.connect() as connection:
        assert verify_ledger(connection) == []
    battery_row("PostgreSQL connections cut every 20 ms", f"{ORDERS} orders through group commit",
                "clear errors, resubmit books once, ledger clean",
                f"{reconnects} reconnects, {len(failed)} errors, {orders} orders, verify clean")


def test_unreachable_database_fails_fast_and_service_resumes_by_itself(
        proxied_database: tuple[Database, FaultProxy], battery_row: Callable[..., None]) -> None:
    database, proxy = proxied_database
    executor = CommandExecutor(database, NO_FEES)
    assert executor.one(buy("DBF1", "UP-1", "1", "100.00")).ok
    proxy.refuse(True)
    started = time.monotonic()
    with pytest.raises(DBAPIError):
        executor.one(buy("DBF1", "DOWN-1", "1", "100.00"))
    waited_s = time.monotonic() - started
    assert waited_s < UNREACHABLE_BOUND_S
    proxy.heal()
    assert executor.one(buy("DBF1", "DOWN-1", "1", "100.00")).ok
    orders, _ = _orders_and_open_reservations(database)
    assert orders == 2
    with database.engine.connect() as connection:
        assert verify_ledger(connection) == []
    battery_row("PostgreSQL unreachable", "connections refused", "clear error in bounded time, then resume",
                f"error after {waited_s:.1f} s, resumed without restart")


def test_gateway_rejects_clearly_while_the_database_is_away_and_resumes_by_itself(
        postgres_url: str, tmp_path: Any, battery_row: Callable[..., None]) -> None:
    """Through the whole FIX path: while PostgreSQL refuses connections a client's order is refused at once
    with INTERNAL_ERROR (nothing half-booked); once it is back the gateway trades again without a restart."""
    from battery_support import load_exchange_test_module
    from test_network_faults_gateway import _config

    from cli.demo_client import DemoFixClient, fix_time
    from exchange.instruments import load_instruments
    from oms.db.migrate import upgrade
    from oms.domain.instruments import Instrument
    from oms.gateway.config import load_gateway_settings
    from oms.gateway.gateway import Gateway

    url = make_url(postgres_url)
    venue = load_exchange_test_module("conftest.py").VenueHarness(tmp_path / "venue")
    venue.start()
    venue.service.step_market_maker()
    db_proxy = FaultProxy(url.port or 5432, upstream_host=url.host or "127.0.0.1").start()
    database = Database.from_url(url.set(host="127.0.0.1", port=db_proxy.port).render_as_string(hide_password=False))
    upgrade(database.engine)
    upsert_instruments(database, [Instrument(symbol=i.symbol, currency=i.currency, tick_size=i.tick_size,
                                             lot_size=i.lot_size, reference_price=i.reference_price)
                                  for i in load_instruments().values()])
    create_account(database, "NETACC")
    deposit(database, "NETACC", Decimal("1000000"), reference="battery-db")
    client_port = load_exchange_test_module("fixclient.py").free_port()
    gateway = Gateway(load_gateway_settings(_config(tmp_path, venue.port, client_port)), database).start()
    client = None
    try:
        assert gateway.wait_venue(20)
        client = DemoFixClient(client_port, tmp_path / "client-store", "NETCLIENT").start()

        def order(cl_ord_id: str) -> list[dict[int, str]]:
            client.send("D", [(11, cl_ord_id), (1, "NETACC"), (21, "1"), (55, "AAPL"), (54, "1"), (60, fix_time()),
                              (38, "5"), (40, "2"), (44, "200.00"), (59, "0")])
            return client.wait_for(cl_ord_id, frozenset({"F", "8"}), 30)

        assert any(r.get(150) == "F" for r in order("DB-UP-1"))
        db_proxy.refuse(True)
        started = time.monotonic()
        refused = order("DB-DOWN-1")
        waited_s = time.monotonic() - started
        assert any(r.get(150) == "8" and r.get(58, "").startswith("INTERNAL_ERROR") for r in refused), refused
        assert waited_s < UNREACHABLE_BOUND_S
        db_proxy.heal()
        deadline = time.monotonic() + 30
        resumed: list[dict[int, str]] = []
        while time.monotonic() < deadline and not any(r.get(150) == "F" for r in resumed):
            resumed = order(f"DB-BACK-{int(time.monotonic() * 1000)}")
        assert any(r.get(150) == "F" for r in resumed), resumed
        with database.engine.connect() as connection:
            assert connection.execute(select(func.count()).select_from(Order)
                                      .where(Order.cl_ord_id == "DB-DOWN-1")).scalar_one() == 0
            assert verify_ledger(connection) == []
    finally:
        if client is not None:
            client.stop()
        gateway.stop(force=True)
        db_proxy.stop()
        venue.stop()
        database.engine.dispose()
    battery_row("PostgreSQL unreachable under the gateway", "DB connections refused, FIX order arrives",
                "clear FIX reject, nothing booked, trades again by itself",
                f"INTERNAL_ERROR after {waited_s:.1f} s, next order filled after the database came back")


def test_reference_price_written_while_the_database_is_away_is_written_once_it_is_back(
        proxied_database: tuple[Database, FaultProxy], battery_row: Callable[..., None]) -> None:
    """Market data keeps arriving during an outage: the newest price is kept and written when the database
    returns, never dropped because one flush failed."""
    from oms.db.models import Instrument as InstrumentRow
    from oms.gateway.reference_prices import ReferencePrices

    database, proxy = proxied_database
    prices = ReferencePrices(database, flush_ms=60_000)  # flushed by hand below, not by its thread
    proxy.refuse(True)
    proxy.cut()
    prices.update([(55, "AAPL"), (269, "2"), (270, "101.50")])
    with pytest.raises(DBAPIError):
        prices.flush()
    proxy.heal()
    prices.flush()
    with database.engine.connect() as connection:
        stored = connection.execute(select(InstrumentRow.reference_price)
                                    .where(InstrumentRow.symbol == "AAPL")).scalar_one()
    assert stored == Decimal("101.50")
    battery_row("PostgreSQL unreachable under market data", "a reference price arrives during the outage",
                "kept and written once the database is back", f"stored {stored}")
