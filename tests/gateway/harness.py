"""Test harness for the gateway: a real venue, the gateway in-process, and real QuickFIX test clients.

Everything runs over loopback on free ports with its own store directories; nothing is mocked.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path

import pytest
import quickfix as fix

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "exchange"))

from fixclient import Received, free_port  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SPECS = REPO / "fix" / "specs"
PASSWORD = "correct-horse-battery"
FAST_HASH_LOG2_N = 10  # keep logons fast in tests; production uses the default cost


def write_venue_config(directory: Path, port: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    text = "\n".join([
        "[DEFAULT]", "SocketNodelay=Y", "",
        "[EXCHANGE]", "JournalDir=var/journal", "ControlPort=0", "MarketMakerSeed=7", "MarketMakerIntervalMs=0", "",
        "[SESSION]", "Component=exchange", "BeginString=FIX.4.4", "SenderCompID=EXCH", "TargetCompID=OMS",
        "ConnectionType=acceptor", f"SocketAcceptPort={port}", "StartTime=00:00:00", "EndTime=00:00:00",
        "HeartBtInt=30", "UseDataDictionary=Y", f"DataDictionary={SPECS / 'FIX44.xml'}", "FileStorePath=var/store", "",
    ])
    path = directory / "sessions.cfg"
    path.write_text(text, encoding="utf-8")
    return path


class VenueHarness:
    """A simulated exchange on a free port; restartable on the same journal and store."""

    def __init__(self, directory: Path) -> None:
        from exchange.config import load_venue_config

        self.directory = directory
        self.port = free_port()
        self.config = load_venue_config(write_venue_config(directory, self.port))
        self.venue = None

    def start(self):  # type: ignore[no-untyped-def]
        from exchange.venue import Venue

        self.venue = Venue(self.config)
        self.venue.start()
        return self

    def stop(self) -> None:
        if self.venue is not None:
            self.venue.stop()
            self.venue = None

    @property
    def service(self):  # type: ignore[no-untyped-def]
        assert self.venue is not None and self.venue.service is not None
        return self.venue.service

    def order(self, venue_cl_ord_id: str):  # type: ignore[no-untyped-def]
        assert self.venue is not None and self.venue.engine is not None
        return self.venue.engine.engine.order_by_cl_ord_id("OMS", venue_cl_ord_id)

    def orders(self):  # type: ignore[no-untyped-def]
        assert self.venue is not None and self.venue.engine is not None
        return self.venue.engine.engine.orders(owner="OMS")


def client_section(client: str, port: int, accounts: str, *, begin: str = "FIX.4.4", extra: Iterable[str] = ()) -> str:
    dictionary = "FIX44.xml" if begin == "FIX.4.4" else "FIX42.xml"
    return "\n".join([
        "[SESSION]", "Component=gateway", f"BeginString={begin}", "SenderCompID=OMS", f"TargetCompID={client}",
        "ConnectionType=acceptor", f"SocketAcceptPort={port}", "UseDataDictionary=Y",
        f"DataDictionary={SPECS / dictionary}", "FileStorePath=var/gateway/store", f"Accounts={accounts}", *extra, "",
    ])


def write_gateway_config(directory: Path, venue_port: int, client_port: int) -> Path:
    from oms.gateway.credentials import hash_password

    directory.mkdir(parents=True, exist_ok=True)
    password_hash = hash_password(PASSWORD, log2_n=FAST_HASH_LOG2_N)
    text = "\n".join([
        "# test gateway", "[DEFAULT]", "HeartBtInt=30", "SocketNodelay=Y", "",
        "[GATEWAY]", "OutboxPollMs=50", "ReferencePriceFlushMs=50", f"MetricsPort={free_port()}", "",
        client_section("CLIENT1", client_port, "ACC1"),
        client_section("CLIENT2", client_port, "ACC2", extra=[f"PasswordHash={password_hash}"]),
        client_section("CLIENT3", client_port, "ACC3", extra=["ThrottlePerSecond=1", "ThrottleBurst=2"]),
        client_section("CLIENT4", client_port, "ACC4", extra=["CancelOnDisconnect=Y"]),
        client_section("CLIENT5", client_port, "ACC5", begin="FIX.4.2"),
        client_section("CLIENT6", client_port, "ACC4"),  # a second session on CLIENT4's account, no cancel-on-disconnect
        "[SESSION]", "Component=gateway", "BeginString=FIX.4.4", "SenderCompID=OMS", "TargetCompID=EXCH",
        "ConnectionType=initiator", "SocketConnectHost=127.0.0.1", f"SocketConnectPort={venue_port}",
        "ReconnectInterval=1", "UseDataDictionary=Y", f"DataDictionary={SPECS / 'FIX44.xml'}",
        "FileStorePath=var/gateway/venue-store", "FileLogPath=var/gateway/venue-log", "",
    ])
    path = directory / "sessions.cfg"
    path.write_text(text, encoding="utf-8")
    return path


class GatewayClient(fix.Application):  # type: ignore[misc]
    """A client initiator to the gateway (ThreadedSocketInitiator), optionally logging on with a password."""

    def __init__(self, port: int, work_dir: Path, sender: str, begin_string: str = "FIX.4.4",
                 username: str | None = None, password: str | None = None) -> None:
        super().__init__()
        self.session_id = fix.SessionID(begin_string, sender, "OMS")
        self.username, self.password = username, password
        self._received: list[Received] = []
        self._consumed: set[int] = set()
        self._cond = threading.Condition()
        self.logged_on = threading.Event()
        self.logouts: list[str] = []
        work_dir.mkdir(parents=True, exist_ok=True)
        dictionary = SPECS / ("FIX44.xml" if begin_string == "FIX.4.4" else "FIX42.xml")
        text = "\n".join([
            "[DEFAULT]", "ConnectionType=initiator", "ReconnectInterval=1", "HeartBtInt=30",
            "StartTime=00:00:00", "EndTime=00:00:00", f"FileStorePath={work_dir / 'store'}",
            "UseDataDictionary=Y", f"DataDictionary={dictionary}",
            "[SESSION]", f"BeginString={begin_string}", f"SenderCompID={sender}", "TargetCompID=OMS",
            "SocketConnectHost=127.0.0.1", f"SocketConnectPort={port}", "",
        ])
        self._settings = fix.SessionSettings()
        self._settings.setFromString(text)
        self._store = fix.FileStoreFactory(self._settings)
        self._initiator: fix.ThreadedSocketInitiator | None = fix.ThreadedSocketInitiator(self, self._store, self._settings)

    def start(self, wait_s: float | None = 10.0) -> GatewayClient:
        assert self._initiator is not None
        self._initiator.start()
        if wait_s is not None and not self.logged_on.wait(wait_s):
            raise TimeoutError(f"no logon; logouts: {self.logouts}")
        return self

    def stop(self, force: bool = True) -> None:
        """Stop (by default without waiting for the gateway's Logout reply: tests need no goodbye)."""
        if self._initiator is not None:
            self._initiator.stop(force)
            self._initiator = None

    # QuickFIX callbacks
    def onCreate(self, sessionID):  # noqa: N802,N803,ANN001,ANN201
        pass

    def onLogon(self, sessionID):  # noqa: N802,N803,ANN001,ANN201
        self.logged_on.set()

    def onLogout(self, sessionID):  # noqa: N802,N803,ANN001,ANN201
        self.logged_on.clear()

    def toAdmin(self, message, sessionID):  # noqa: N802,N803,ANN001,ANN201
        if message.getHeader().getField(35) == "A" and self.password is not None:
            if self.username is not None:
                message.setField(553, self.username)
            message.setField(554, self.password)

    def toApp(self, message, sessionID):  # noqa: N802,N803,ANN001,ANN201
        pass

    def fromAdmin(self, message, sessionID):  # noqa: N802,N803,ANN001,ANN201
        item = Received.parse(message.toString())
        if item.msg_type == "5":
            self.logouts.append(item.get(58) or "")
        self._record(item)

    def fromApp(self, message, sessionID):  # noqa: N802,N803,ANN001,ANN201
        self._record(Received.parse(message.toString()))

    def _record(self, item: Received) -> None:
        with self._cond:
            self._received.append(item)
            self._cond.notify_all()

    # sending and receiving
    def send(self, msg_type: str, fields: Iterable[tuple[int, object]], header: Iterable[tuple[int, object]] = ()) -> None:
        message = fix.Message()
        message.getHeader().setField(35, msg_type)
        for tag, value in header:
            message.getHeader().setField(tag, str(value))
        for tag, value in fields:
            message.setField(tag, str(value))
        if not fix.Session.sendToTarget(message, self.session_id):
            raise RuntimeError("send failed")

    def wait_for(self, predicate: Callable[[Received], bool], timeout_s: float = 10.0) -> Received:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                for index, item in enumerate(self._received):
                    if index not in self._consumed and predicate(item):
                        self._consumed.add(index)
                        return item
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no matching message; received: {[str(m) for m in self._received]}")
                self._cond.wait(remaining)

    def received(self, msg_type: str | None = None) -> list[Received]:
        with self._cond:
            return [m for m in self._received if msg_type is None or m.msg_type == msg_type]


def eventually(check: Callable[[], object], timeout_s: float = 10.0, interval_s: float = 0.05) -> object:
    """Poll until `check()` is truthy (state that changes asynchronously, e.g. a database row)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout_s}s (last value {value!r})")
        time.sleep(interval_s)


def seed_oms(database, accounts: Iterable[str] = ("ACC1", "ACC2", "ACC3", "ACC4", "ACC5"),
             cash: Decimal = Decimal("1000000")) -> None:  # type: ignore[no-untyped-def]
    """Instruments from the venue's list, and funded accounts with a funded institution's limits."""
    from exchange.instruments import load_instruments
    from oms.domain.instruments import Instrument
    from oms.service.accounts import create_account, deposit, upsert_instruments

    upsert_instruments(database, [
        Instrument(symbol=i.symbol, currency=i.currency, tick_size=i.tick_size, lot_size=i.lot_size,
                   reference_price=i.reference_price)
        for i in load_instruments().values()
    ])
    for account in accounts:
        create_account(database, account)
        deposit(database, account, cash, reference=f"seed-{account}")


# Session-level behaviour that does not depend on the database backend runs on SQLite only (keeps the suite fast);
# everything that books orders runs on both.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
