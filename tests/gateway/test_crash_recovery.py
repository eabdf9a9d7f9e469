"""Crash drills on PostgreSQL: `oms gateway` as a real process dies hard at each named crash point
(GATEWAY_CRASH_AT, see oms.gateway.crash), is restarted without it, and recovery leaves the venue, our books,
the client and the ledger in agreement: every order once at the venue and once with us, every fill once,
every ExecutionReport at the client (repeats only as PossResend/PossDup copies of one ExecID).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from fixclient import Received, is_er, new_order, transact_time
from harness import GatewayClient, VenueHarness, eventually, free_port, seed_oms, write_gateway_config
from sqlalchemy import select

from exchange.engine.types import CancelOrder as VenueCancel
from oms.db.models import Execution, Reservation
from oms.db.models import Order as OrderRow
from oms.domain.enums import OrderStatus
from oms.gateway import crash
from oms.ledger.verify import verify_ledger
from oms.service.accounts import balances
from oms.service.uow import Database

pytestmark = [pytest.mark.fix, pytest.mark.timeout(180)]
OMS = Path(sys.executable).parent / "oms"
READY = "venue_recovery_finished"
QTY = Decimal("100")


class GatewayProcess:
    """`oms gateway run` in a subprocess; each start logs to its own file, read to know when it is ready."""

    def __init__(self, directory: Path, config: Path, database_url: str) -> None:
        self.directory = directory
        self.config = config
        self.database_url = database_url
        self.process: subprocess.Popen[bytes] | None = None
        self.log: Path | None = None
        self.starts = 0

    def start(self, crash_at: str | None = None) -> None:
        self.starts += 1
        self.log = self.directory / f"gateway-{self.starts}.log"
        env = {key: value for key, value in os.environ.items() if key != crash.ENVIRONMENT_VARIABLE}
        env["OMS_DATABASE_URL"] = self.database_url
        if crash_at is not None:
            env[crash.ENVIRONMENT_VARIABLE] = crash_at
        with self.log.open("wb") as out:
            self.process = subprocess.Popen([str(OMS), "gateway", "run", "--config", str(self.config)],
                                            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=self.directory)

    def output(self) -> str:
        assert self.log is not None
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Logged on to the venue and through recovery (the gateway takes orders)."""
        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"gateway exited with {self.process.returncode}:\n{self.output()}")
            return READY in self.output()
        eventually(ready, timeout_s)

    def wait_crash(self, timeout_s: float = 60.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout_s)

    def kill(self) -> None:
        """End the drill's process (the test is over: no orderly shutdown needed)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None


class Drill:
    """PostgreSQL, the venue in-process, the gateway as a process, and CLIENT1 (restartable on one store)."""

    def __init__(self, directory: Path, database_url: str) -> None:
        self.directory = directory
        self.database = Database.from_url(database_url)
        seed_oms(self.database, accounts=("ACC1",))
        self.venue = VenueHarness(directory / "venue").start()
        self.venue.service.step_market_maker()
        self.client_port = free_port()
        config = write_gateway_config(directory / "gateway", self.venue.port, self.client_port)
        self.gateway = GatewayProcess(directory / "gateway", config, database_url)
        self.clients: list[GatewayClient] = []

    def connect(self) -> GatewayClient:
        """CLIENT1 with its QuickFIX store: a later connection resumes the sequence numbers and asks for
        every message the gateway stored for it meanwhile."""
        client = GatewayClient(self.client_port, self.directory / "client", "CLIENT1").start(30)
        self.clients.append(client)
        return client

    def gateway_stored_for_client(self, cl_ord_id: str, exec_type: str) -> bool:
        """The gateway has written an ExecutionReport for the client into its session store."""
        body = (self.directory / "gateway" / "var" / "gateway" / "store" / "FIX.4.4-OMS-CLIENT1.body").read_bytes()
        return any(f"\x0111={cl_ord_id}\x01".encode() in message and f"\x01150={exec_type}\x01".encode() in message
                   for message in body.split(b"\x0110="))

    def close(self) -> None:
        for client in self.clients:
            client.stop()
        self.gateway.kill()
        self.venue.stop()
        self.database.dispose()


@pytest.fixture
def drill(tmp_path: Path, postgres_url: str) -> Iterator[Drill]:
    drill = Drill(tmp_path, postgres_url)
    try:
        yield drill
    finally:
        drill.close()


def best_offer(venue: VenueHarness, symbol: str = "AAPL") -> Decimal:
    _, asks = venue.venue.engine.engine.book_depth(symbol, 1)
    return Decimal(asks[0][0])


def our_order(database: Database, cl_ord_id: str) -> list[dict[str, object]]:
    table = OrderRow.__table__
    with database.engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(
            select(table).where((table.c.account_id == "ACC1") & (table.c.cl_ord_id == cl_ord_id)))]


def our_fills(database: Database, order_id: str) -> list[dict[str, object]]:
    table = Execution.__table__
    with database.engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(
            select(table).where((table.c.order_id == order_id) & (table.c.exec_type == "trade")))]


def held_reservations(database: Database, order_id: str) -> list[dict[str, object]]:
    table = Reservation.__table__
    with database.engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(
            select(table).where((table.c.order_id == order_id) & (table.c.status == "pending")))]


def client_reports(clients: list[GatewayClient], cl_ord_id: str) -> dict[str, list[Received]]:
    """The client's ExecutionReports for one order, by ExecID (copies of one report share its ExecID)."""
    by_exec_id: dict[str, list[Received]] = {}
    for client in clients:
        for message in client.received("8"):
            if message.get(11) == cl_ord_id:
                by_exec_id.setdefault(message[17], []).append(message)
    return by_exec_id


def test_an_order_received_but_never_committed_comes_back_through_the_clients_resend(drill: Drill) -> None:
    """QuickFIX counts a message as received before the worker commits it; the gateway dies in between. At
    the restart it expects the client's messages from just after the last one it handled, so the client's
    own resend (PossDup) brings the order back: booked once, sent once, filled, and the client told."""
    database, venue, gateway = drill.database, drill.venue, drill.gateway
    gateway.start(crash_at="before_order_commit")
    gateway.wait_ready()
    client = drill.connect()
    cl_ord_id = "CRASH-before-commit"
    client.send("D", new_order(cl_ord_id, symbol="AAPL", side="1", qty=str(QTY), price=str(best_offer(venue)),
                               extra=[(1, "ACC1")]))
    assert gateway.wait_crash() == crash.EXIT_CODE, gateway.output()
    assert our_order(database, cl_ord_id) == []  # nothing of it was committed
    client.stop()
    gateway.start()
    gateway.wait_ready()
    assert "client_replay_requested" in gateway.output()
    client = drill.connect()

    fill_report = client.wait_for(is_er(cl_ord_id, "F"), timeout_s=60)
    assert fill_report[39] == "2" and Decimal(fill_report[14]) == QTY
    order = eventually(lambda: (r := our_order(database, cl_ord_id)) and r[0]["status"] == OrderStatus.FILLED.value
                       and r[0], 30)
    assert len(our_order(database, cl_ord_id)) == 1
    at_venue = [o for o in venue.orders() if o.cl_ord_id == order["venue_cl_ord_id"]]  # type: ignore[index]
    assert len(at_venue) == 1 and len(venue.orders()) == 1
    fills = our_fills(database, order["id"])  # type: ignore[index]
    assert len(fills) == len(venue.venue.engine.engine.trades(owner="OMS")) >= 1
    assert sum(Decimal(f["last_qty"]) for f in fills) == QTY  # type: ignore[misc]
    with database.engine.connect() as connection:
        assert verify_ledger(connection) == []


@pytest.mark.parametrize("point", sorted(crash.POINTS - {"before_order_commit", "between_outcome_and_relay"}))
def test_gateway_killed_at_a_crash_point_recovers_every_order_and_fill_once(drill: Drill, point: str) -> None:
    database, venue, gateway = drill.database, drill.venue, drill.gateway
    gateway.start(crash_at=point)
    gateway.wait_ready()
    client = drill.connect()
    cl_ord_id = f"CRASH-{point}"
    client.send("D", new_order(cl_ord_id, symbol="AAPL", side="1", qty=str(QTY), price=str(best_offer(venue)),
                               extra=[(1, "ACC1")]))

    assert gateway.wait_crash() == crash.EXIT_CODE, gateway.output()
    assert f"crash point reached: {point}" in gateway.output()
    client.stop()  # away while the gateway recovers: what it missed must come through its own resend
    gateway.start()
    gateway.wait_ready()
    eventually(lambda: drill.gateway_stored_for_client(cl_ord_id, "F"), 60)
    client = drill.connect()

    fill_report = client.wait_for(is_er(cl_ord_id, "F"), timeout_s=60)
    assert fill_report[39] == "2" and Decimal(fill_report[14]) == QTY
    assert fill_report.get(43) == "Y"  # a PossDup copy: answered to the client's ResendRequest

    # Once with us: one order row, filled, nothing left reserved.
    rows = our_order(database, cl_ord_id)
    assert len(rows) == 1
    order = eventually(lambda: (r := our_order(database, cl_ord_id)[0])["status"] == OrderStatus.FILLED.value and r)
    assert Decimal(order["cum_qty"]) == QTY  # type: ignore[index,arg-type]
    assert held_reservations(database, order["id"]) == []  # type: ignore[index]
    assert balances(database, "ACC1").in_currency("USD").reserved == 0

    # Once at the venue, and every venue fill once in our books.
    at_venue = [o for o in venue.orders() if o.cl_ord_id == order["venue_cl_ord_id"]]  # type: ignore[index]
    assert len(at_venue) == 1 and len(venue.orders()) == 1
    assert Decimal(at_venue[0].cum_qty) == QTY
    venue_trades = venue.venue.engine.engine.trades(owner="OMS")
    fills = our_fills(database, order["id"])  # type: ignore[index]
    assert len(fills) == len(venue_trades) >= 1
    assert sum(Decimal(f["last_qty"]) for f in fills) == QTY  # type: ignore[misc]

    # The client heard of every fill; a report heard twice is flagged as a possible repeat.
    reports = client_reports(drill.clients, cl_ord_id)
    client_fills = [copies[0] for copies in reports.values() if copies[0].get(150) == "F"]
    assert len(client_fills) == len(fills)
    assert sum(Decimal(f[32]) for f in client_fills) == QTY
    for copies in reports.values():
        assert all(c.get(97) == "Y" or c.get(43) == "Y" for c in copies[1:]), [str(c) for c in copies]
    assert any(copies[0].get(150) == "0" for copies in reports.values())  # the acknowledgement too

    with database.engine.connect() as connection:
        assert verify_ledger(connection) == []


@pytest.mark.parametrize("request_type", ["cancel", "replace", "cancel_rejected"])
def test_the_answer_to_a_cancel_or_replace_committed_but_not_relayed_reaches_the_client_under_its_clordid(
        drill: Drill, request_type: str) -> None:
    """The gateway dies after committing the venue's answer to a client's cancel or replace (Canceled,
    Replaced, or OrderCancelReject) and before telling the client. The answer the venue resends at the
    restart must reach the client as the live relay would have sent it: under the request's ClOrdID (11),
    with the order's as OrigClOrdID (41). A client matching answers by ClOrdID would otherwise wait for its
    request for ever."""
    database, venue, gateway = drill.database, drill.venue, drill.gateway
    gateway.start(crash_at="between_outcome_and_relay")
    gateway.wait_ready()
    client = drill.connect()
    bids, _ = venue.venue.engine.engine.book_depth("AAPL", 1)
    resting_price = (Decimal(bids[0][0]) * Decimal("0.98")).quantize(Decimal("0.01"))
    order_id, request_id = f"CRASH-{request_type}-order", f"CRASH-{request_type}-request"
    client.send("D", new_order(order_id, symbol="AAPL", side="1", qty=str(QTY), price=str(resting_price),
                               extra=[(1, "ACC1")]))
    client.wait_for(is_er(order_id, "0"), timeout_s=30)
    if request_type == "cancel_rejected":  # the venue cancels it without telling us: our cancel comes too late
        venue_cl_ord_id = our_order(database, order_id)[0]["venue_cl_ord_id"]
        venue.venue.engine.process(VenueCancel(owner="OMS", cl_ord_id="BEHIND-OUR-BACK",
                                               orig_cl_ord_id=str(venue_cl_ord_id), timestamp=datetime.now(UTC)))
    if request_type == "replace":
        client.send("G", [(11, request_id), (41, order_id), (55, "AAPL"), (54, "1"), (60, transact_time()),
                          (38, str(QTY - 10)), (40, "2"), (44, str(resting_price)), (59, "0"), (1, "ACC1")])
        answered = (lambda m: m.msg_type == "8" and m.get(150) == "5", "0")  # the replacing order is New
    else:
        client.send("F", [(11, request_id), (41, order_id), (55, "AAPL"), (54, "1"), (60, transact_time()),
                          (38, str(QTY)), (1, "ACC1")])
        answered = ((lambda m: m.msg_type == "9"), "0") if request_type == "cancel_rejected" else (
            (lambda m: m.msg_type == "8" and m.get(150) == "4"), "4")

    assert gateway.wait_crash() == crash.EXIT_CODE, gateway.output()
    client.stop()
    gateway.start()
    gateway.wait_ready()
    client = drill.connect()

    answer = client.wait_for(answered[0], timeout_s=30)
    assert (answer.get(11), answer.get(41), answer.get(39)) == (request_id, order_id, answered[1]), str(answer)
    rows = our_order(database, order_id)
    assert len(rows) == 1
    with database.engine.connect() as connection:
        assert verify_ledger(connection) == []


def test_a_cancel_on_disconnect_sessions_orders_are_canceled_after_a_gateway_crash(drill: Drill) -> None:
    """A crash disconnects a CancelOnDisconnect=Y client as surely as an orderly stop, which cancels the
    session's working orders before it exits. A killed gateway cannot, so the next start does; otherwise they
    work on at the venue until the client happens to connect and disconnect again."""
    database, venue, gateway = drill.database, drill.venue, drill.gateway
    seed_oms(database, accounts=("ACC4",))
    gateway.start()
    gateway.wait_ready()
    client = GatewayClient(drill.client_port, drill.directory / "client4", "CLIENT4").start(30)  # CancelOnDisconnect=Y
    drill.clients.append(client)
    bids, _ = venue.venue.engine.engine.book_depth("AAPL", 1)
    resting_price = (Decimal(bids[0][0]) * Decimal("0.98")).quantize(Decimal("0.01"))
    client.send("D", new_order("COD-crash", symbol="AAPL", side="1", qty=str(QTY), price=str(resting_price),
                               extra=[(1, "ACC4")]))
    client.wait_for(is_er("COD-crash", "0"), timeout_s=30)
    gateway.kill()  # SIGKILL: no orderly stop, no cancel-on-disconnect
    client.stop()

    gateway.start()
    gateway.wait_ready()

    def status() -> str:
        with database.engine.connect() as connection:
            return str(connection.execute(select(OrderRow.__table__.c.status).where(
                OrderRow.__table__.c.cl_ord_id == "COD-crash")).scalar_one())

    eventually(lambda: status() == OrderStatus.CANCELED.value, 30)
    venue_cl_ord_id = [o for o in venue.orders() if o.symbol == "AAPL"]
    assert all(order.state.is_done for order in venue_cl_ord_id)
    assert balances(database, "ACC4").in_currency("USD").reserved == 0
    with database.engine.connect() as connection:
        assert verify_ledger(connection) == []
