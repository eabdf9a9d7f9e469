"""The battery against the FIX gateway's client acceptor: session certification, security, hostile input.

One real stack per module: the simulated exchange, the gateway in-process (as `oms gateway` runs it) on a
SQLite file, and raw-FIX clients from the certification runner. Another client's account and working order
exist so the security scripts have something to try to reach.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from battery_support import load_exchange_test_module
from hypothesis import HealthCheck, given, settings
from sqlalchemy import func, select

from fix.certification.fuzz import Mutation, Outcome, mutations, order_fields, probe
from fix.certification.runner import Target, run_script, summary_table
from fix.certification.script import Script, load_scripts
from oms.db.migrate import upgrade
from oms.db.models import Order
from oms.domain.commands import PlaceOrder
from oms.domain.enums import OrderStatus, OrderType, Side, TimeInForce
from oms.gateway.config import load_gateway_settings
from oms.gateway.credentials import hash_password
from oms.gateway.gateway import Gateway
from oms.ledger.verify import verify_ledger
from oms.service.accounts import create_account, deposit, upsert_instruments
from oms.service.executor import CommandExecutor
from oms.service.uow import Database

pytestmark = pytest.mark.fix
REPO = Path(__file__).resolve().parents[2]
SPECS = REPO / "fix" / "specs"
SCRIPTS = [s for s in load_scripts(REPO / "fix" / "certification" / "scripts") if not s.roles or "gateway" in s.roles]
SECRET = "battery-horse-staple"
free_port = load_exchange_test_module("fixclient.py").free_port


@dataclass
class GatewayStack:
    port: int
    database: Database
    gateway: Gateway
    log_dir: Path

    def target(self, **overrides: Any) -> Target:
        values: dict[str, Any] = dict(host="127.0.0.1", port=self.port, sender="CERT", target="OMS", role="gateway",
                                      account="CERTACC", symbol="AAPL", price="100.00", qty="10",
                                      other_account="OTHERACC", other_order="OTHER-WORKING-1")
        values.update(overrides)
        return Target(**values)


def _client(name: str, port: int, accounts: str, *extra: str) -> str:
    return "\n".join(["[SESSION]", "Component=gateway", "BeginString=FIX.4.4", "SenderCompID=OMS",
                      f"TargetCompID={name}", "ConnectionType=acceptor", f"SocketAcceptPort={port}",
                      "UseDataDictionary=Y", f"DataDictionary={SPECS / 'FIX44.xml'}",
                      "FileStorePath=gateway/client-store", f"Accounts={accounts}", *extra, ""])


def _write_config(directory: Path, venue_port: int, client_port: int) -> Path:
    text = "\n".join([
        "[DEFAULT]", "HeartBtInt=30", "SocketNodelay=Y", "",
        "[GATEWAY]", "OutboxPollMs=50", "ReferencePriceFlushMs=50", "",
        _client("CERT", client_port, "CERTACC"),
        _client("SECURED", client_port, "SECACC", f"PasswordHash={hash_password(SECRET, log2_n=10)}"),
        _client("OTHER", client_port, "OTHERACC"),
        "[SESSION]", "Component=gateway", "BeginString=FIX.4.4", "SenderCompID=OMS", "TargetCompID=EXCH",
        "ConnectionType=initiator", "SocketConnectHost=127.0.0.1", f"SocketConnectPort={venue_port}",
        "ReconnectInterval=1", "UseDataDictionary=Y", f"DataDictionary={SPECS / 'FIX44.xml'}",
        "FileStorePath=gateway/venue-store", "FileLogPath=gateway/venue-log", "",
    ])
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "sessions.cfg"
    path.write_text(text, encoding="utf-8")
    return path


def _seed(database: Database) -> None:
    from exchange.instruments import load_instruments
    from oms.domain.instruments import Instrument

    upsert_instruments(database, [Instrument(symbol=i.symbol, currency=i.currency, tick_size=i.tick_size,
                                             lot_size=i.lot_size, reference_price=i.reference_price)
                                  for i in load_instruments().values()])
    for account in ("CERTACC", "SECACC", "OTHERACC"):
        create_account(database, account)
        deposit(database, account, Decimal("1000000"), reference=f"battery-{account}")


@pytest.fixture(scope="module")
def gateway_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayStack]:
    directory = tmp_path_factory.mktemp("battery-gateway")
    venue = load_exchange_test_module("conftest.py").VenueHarness(directory / "venue")
    venue.start()
    database = Database.from_url(f"sqlite:///{directory / 'oms.sqlite3'}")
    upgrade(database.engine)
    _seed(database)
    client_port = free_port()
    gateway = Gateway(load_gateway_settings(_write_config(directory, venue.port, client_port)), database)
    gateway.start()
    try:
        assert gateway.wait_venue(15), "the gateway did not log on to the venue"
        other = CommandExecutor(database).one(PlaceOrder(
            account="OTHERACC", cl_ord_id="OTHER-WORKING-1", symbol="AAPL", side=Side.BUY,
            order_type=OrderType.LIMIT, qty=Decimal(10), limit_price=Decimal("100.00"), tif=TimeInForce.DAY))
        assert other.ok
        assert _wait_status(database, "OTHERACC", "OTHER-WORKING-1", OrderStatus.NEW) == OrderStatus.NEW.value
        yield GatewayStack(client_port, database, gateway, directory)
    finally:
        gateway.stop(force=True)
        venue.stop()
        database.dispose()


def _wait_status(database: Database, account: str, cl_ord_id: str, status: OrderStatus) -> str | None:
    """The order's stored status once it is `status`, or the last one seen after 15 s."""
    deadline = time.monotonic() + 15
    found: str | None = None
    while time.monotonic() < deadline:
        with database.engine.connect() as connection:
            found = connection.execute(select(Order.status).where(Order.account_id == account,
                                                                  Order.cl_ord_id == cl_ord_id)).scalar()
        if found == status.value:
            break
        time.sleep(0.05)
    return found


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.case for s in SCRIPTS])
def test_gateway_passes_session_and_security_case(gateway_stack: GatewayStack, script: Script,
                                                  battery_row: Callable[..., None]) -> None:
    result = run_script(script, gateway_stack.target())
    decisive = result.failure or result.steps[-1]
    battery_row(f"gateway {script.case}: {script.title}", decisive.step, decisive.expected, decisive.seen)
    assert result.ok, summary_table([result]) + "\n" + "\n".join(map(str, result.steps))


def test_another_clients_order_is_untouched_after_the_security_cases(gateway_stack: GatewayStack) -> None:
    status = _wait_status(gateway_stack.database, "OTHERACC", "OTHER-WORKING-1", OrderStatus.NEW)
    assert status == OrderStatus.NEW.value


def test_right_password_logs_on(gateway_stack: GatewayStack) -> None:
    target = gateway_stack.target(sender="SECURED", account="SECACC", logon_fields=((553, "SECURED"), (554, SECRET)))
    script = load_scripts(REPO / "fix" / "certification" / "scripts")
    logon_only = next(s for s in script if s.case == "1S-a")
    assert run_script(logon_only, target).ok


_FUZZ_OUTCOMES: dict[Outcome, int] = {}


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=mutations(Target("127.0.0.1", 0, account="CERTACC", symbol="AAPL", price="100.00", qty="10")))
def test_mutated_messages_never_crash_or_hang_the_gateway(gateway_stack: GatewayStack, data: Mutation) -> None:
    outcome = probe(gateway_stack.target(), data)
    assert outcome is not Outcome.HUNG, data.description
    _FUZZ_OUTCOMES[outcome] = _FUZZ_OUTCOMES.get(outcome, 0) + 1


@pytest.mark.parametrize("cl_ord_id", ["\xff\xff", "AB\x07C"], ids=["not-utf8", "control-char"])
def test_an_order_whose_cl_ord_id_could_never_be_echoed_is_refused_before_it_is_booked(
        gateway_stack: GatewayStack, cl_ord_id: str) -> None:
    """Found by the long fuzz run against the venue: a value QuickFIX cannot encode again must be refused
    as a session Reject before it reaches the OMS, or the client could never be answered about it."""
    target = gateway_stack.target()
    with gateway_stack.database.engine.connect() as connection:
        before = connection.execute(select(func.count()).select_from(Order)).scalar_one()
    fields = tuple((tag, cl_ord_id if tag == 11 else value) for tag, value in order_fields(target, "X"))
    assert probe(target, Mutation(f"ClOrdID {cl_ord_id!r}", fields)) is Outcome.ALIVE
    assert gateway_stack.gateway.worker.wait_idle(10)
    with gateway_stack.database.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Order)).scalar_one() == before


def test_after_the_fuzz_only_valid_orders_exist_and_the_ledger_verifies(gateway_stack: GatewayStack,
                                                                       battery_row: Callable[..., None]) -> None:
    assert probe(gateway_stack.target(), Mutation("a valid heartbeat", ((35, "0"),))) is Outcome.ALIVE
    with gateway_stack.database.engine.connect() as connection:
        orders = connection.execute(select(Order.symbol, Order.qty, Order.limit_price, Order.status)
                                    .where(Order.account_id == "CERTACC")).all()
        violations = verify_ledger(connection)
    for symbol, qty, limit_price, status in orders:
        if status == OrderStatus.REJECTED.value:
            continue  # a denial is stored as a rejected order; it holds nothing
        assert symbol == "AAPL" and Decimal(qty) > 0 and (limit_price is None or Decimal(limit_price) > 0)
    assert violations == []
    seen = ", ".join(f"{count} {outcome}" for outcome, count in sorted(_FUZZ_OUTCOMES.items())) or "not run"
    battery_row("gateway raw-FIX fuzz", "mutated D messages, framing, raw bytes, pre-logon",
                "no crash, no hang, only valid orders, ledger verifies", f"{seen}; {len(orders)} orders")


def test_passwords_never_reach_files_or_logs(gateway_stack: GatewayStack, capfd: pytest.CaptureFixture[str],
                                             battery_row: Callable[..., None]) -> None:
    wrong = gateway_stack.target(sender="SECURED", logon_fields=((553, "SECURED"), (554, "wrong-" + SECRET)))
    right = gateway_stack.target(sender="SECURED", account="SECACC", logon_fields=((553, "SECURED"), (554, SECRET)))
    logon = next(s for s in load_scripts(REPO / "fix" / "certification" / "scripts") if s.case == "1S-a")
    assert not run_script(logon, wrong).ok
    assert run_script(logon, right).ok
    output = capfd.readouterr()
    leaked = [str(path) for path in gateway_stack.log_dir.rglob("*") if path.is_file()
              and SECRET.encode() in path.read_bytes()]
    assert SECRET not in output.out and SECRET not in output.err
    assert leaked == []
    battery_row("secrets in logs", "logons with right and wrong passwords", "password in no file, no log line",
                f"{sum(1 for p in gateway_stack.log_dir.rglob('*') if p.is_file())} files scanned, none")


def test_client_sessions_over_tls_and_plaintext_refused_on_the_tls_port(
        gateway_stack: GatewayStack, tmp_path: Path, stunnel: str, battery_row: Callable[..., None]) -> None:
    import socket

    from fix.certification.wire import encode, utc_timestamp
    from fix.tls_front import StunnelFront, TlsFrontConfig, self_signed_certificate

    cert, key = self_signed_certificate(tmp_path / "tls")
    config = TlsFrontConfig(accept_port=free_port(), connect_port=gateway_stack.port, cert_file=cert, key_file=key,
                            accept_host="127.0.0.1")
    scripts = {s.case: s for s in SCRIPTS}
    with StunnelFront(config) as front:
        for case in ("1S-a", "SEC-1"):
            result = run_script(scripts[case], gateway_stack.target(port=front.config.accept_port, tls_ca=cert))
            assert result.ok, "\n".join([*map(str, result.steps), "stunnel log:", front.log_tail()])
        logon = encode([(8, "FIX.4.4"), (35, "A"), (49, "CERT"), (56, "OMS"), (34, "1"), (52, utc_timestamp()),
                        (98, "0"), (108, "30"), (141, "Y")])
        received = b""
        with socket.create_connection(("127.0.0.1", front.config.accept_port), timeout=5) as plain:
            plain.sendall(logon)
            try:
                while chunk := plain.recv(4096):
                    received += chunk
            except (ConnectionError, TimeoutError):
                pass
    assert b"35=A" not in received
    battery_row("gateway client sessions over TLS", "stunnel in front; then a plaintext Logon on the TLS port",
                "FIX works over TLS; plaintext gets nothing", f"1S-a and SEC-1 pass; plaintext got {len(received)} bytes")
