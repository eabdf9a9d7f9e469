"""A real simulated venue over loopback, our books in front of it, and a test-sized stand-in for the gateway's
venue session: orders placed through the service go out as NewOrderSingles with our venue ClOrdID, and every
ExecutionReport that comes back is applied through ``ApplyExecution`` (the live fill path)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from exchange.config import load_venue_config
from exchange.control import send_control
from exchange.venue import Venue
from oms.domain.commands import ApplyExecution
from oms.domain.enums import ExecType, OrderStatus
from oms.service.executor import CommandExecutor
from oms.service.uow import Database
from tests.service.factories import WITH_FEES, buy, sell

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "exchange"))
from fixclient import FixClient, Received, free_port, new_order  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
EXEC_TYPES = {"0": ExecType.NEW, "F": ExecType.TRADE, "H": ExecType.TRADE_CANCEL, "G": ExecType.TRADE_CORRECT,
              "4": ExecType.CANCELED, "8": ExecType.REJECTED}
ORD_STATUSES = {"0": OrderStatus.NEW, "1": OrderStatus.PARTIALLY_FILLED, "2": OrderStatus.FILLED,
                "4": OrderStatus.CANCELED, "8": OrderStatus.REJECTED}


def write_sessions_cfg(directory: Path, port: int) -> Path:
    """The venue's acceptor (as tests/exchange writes it) plus the gateway's venue initiator session, whose
    FileStorePath is the one our stand-in gateway uses, so ``--from-venue`` continues its sequence numbers."""
    dictionary = REPO / "fix" / "specs" / "FIX44.xml"
    text = f"""[DEFAULT]
SocketNodelay=Y

[EXCHANGE]
JournalDir=venue/journal
ControlPort=0
MarketMakerSeed=7
MarketMakerIntervalMs=0

[SESSION]
Component=exchange
BeginString=FIX.4.4
SenderCompID=EXCH
TargetCompID=OMS
ConnectionType=acceptor
SocketAcceptPort={port}
StartTime=00:00:00
EndTime=00:00:00
HeartBtInt=30
UseDataDictionary=Y
DataDictionary={dictionary}
FileStorePath=venue/store

[SESSION]
Component=gateway
BeginString=FIX.4.4
SenderCompID=OMS
TargetCompID=EXCH
ConnectionType=initiator
SocketConnectHost=127.0.0.1
SocketConnectPort={port}
StartTime=00:00:00
EndTime=00:00:00
HeartBtInt=30
ReconnectInterval=1
UseDataDictionary=Y
DataDictionary={dictionary}
FileStorePath=gateway/store
"""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "sessions.cfg"
    path.write_text(text, encoding="utf-8")
    return path


class VenueBooks:
    """The venue, our database and the stand-in gateway session, started together."""

    def __init__(self, directory: Path, database: Database) -> None:
        self.directory = directory
        self.config_path = write_sessions_cfg(directory, free_port())
        self.config = load_venue_config(self.config_path)
        self.venue = Venue(self.config)
        self.venue.start()
        self.executor = CommandExecutor(database, WITH_FEES)
        # FixClient keeps its store in <work_dir>/store: the gateway session's FileStorePath above.
        self.session: FixClient | None = FixClient(self.config.accept_port, directory / "gateway")
        self.session.start()
        self.applied: list[str] = []

    @property
    def service(self):  # type: ignore[no-untyped-def]
        assert self.venue.service is not None
        return self.venue.service

    def control(self, **request: object) -> dict:  # type: ignore[type-arg]
        assert self.venue.control_port is not None
        return send_control("127.0.0.1", self.venue.control_port, dict(request))

    def place(self, account: str, cl_ord_id: str, side: str, qty: str, price: str) -> str:
        """Place through the service, send to the venue with our venue ClOrdID; returns that ClOrdID."""
        result = self.executor.one((buy if side == "buy" else sell)(account, cl_ord_id, qty, price))
        assert result.ok and result.venue_cl_ord_id, result
        assert self.session is not None
        self.session.send("D", new_order(result.venue_cl_ord_id, side="1" if side == "buy" else "2", qty=qty,
                                         price=price))
        return result.venue_cl_ord_id

    def relay(self, venue_cl_ord_id: str, until_status: str = "2", timeout_s: float = 10.0) -> list[Received]:
        """Apply this order's ExecutionReports, in order, until one with OrdStatus ``until_status`` was applied."""
        assert self.session is not None
        seen: list[Received] = []
        while not seen or seen[-1][39] != until_status:
            report = self.session.wait_for(lambda m: m.msg_type == "8" and m.get(11) == venue_cl_ord_id, timeout_s)
            self.apply(report)
            seen.append(report)
        return seen

    def apply(self, report: Received) -> None:
        moment = datetime.strptime(report[60], "%Y%m%d-%H:%M:%S.%f").replace(tzinfo=UTC)
        result = self.executor.one(ApplyExecution(
            venue_exec_id=report[17], cl_ord_id=report[11], venue_order_id=report.get(37),  # type: ignore[arg-type]
            exec_type=EXEC_TYPES[report[150]], ord_status=ORD_STATUSES.get(report[39], OrderStatus.NEW),
            last_qty=Decimal(report.get(32) or "0"), last_px=Decimal(report.get(31) or "0"),
            cum_qty=Decimal(report.get(14) or "0"), leaves_qty=Decimal(report.get(151) or "0"),
            transact_time=moment))
        self.applied.append(f"{report[17]}:{result.outcome}")

    def release_session(self) -> None:
        """The gateway goes away (end of day): the venue session is free for ``--from-venue``."""
        if self.session is not None:
            self.session.stop()
            self.session = None

    def reconnect_session(self) -> None:
        """The gateway starts again on the same store (sequence numbers continue)."""
        self.release_session()
        self.session = FixClient(self.config.accept_port, self.directory / "gateway")
        self.session.start(timeout_s=10)

    def stop(self) -> None:
        self.release_session()
        self.venue.stop()
