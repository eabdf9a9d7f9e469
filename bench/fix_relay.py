"""The ceiling for the gateway benchmark: a bare two-hop QuickFIX relay and an echoing venue, no logic.

    client --FIX 4.4--> relay (acceptor + initiator) --FIX 4.4--> echo venue
           <--------------------------- ExecutionReports <-------------

The echo venue answers each NewOrderSingle with the two ExecutionReports a marketable order gets from the
simulated exchange (New, then a full Trade), and the relay forwards every application message unchanged in
both directions from QuickFIX's own callback thread: no queue, no database, no risk check. The QuickFIX
settings mirror the full path's hops (data dictionary validation, file stores on every session, a message
log on the venue-facing sessions, TCP_NODELAY), so the difference between the two paths is the OMS.

Each side runs in its own process (own GIL) through `run_echo_venue` / `run_relay`; gateway_bench.py starts them.
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from multiprocessing.synchronize import Event
from pathlib import Path

import quickfix as fix

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fix.quickfix_io import QuietApplication  # noqa: E402

SPECS = Path(__file__).resolve().parents[1] / "fix" / "specs"
DICTIONARY = SPECS / "FIX44.xml"


def redirect_output(log_path: str) -> None:
    """Send a child process's stdout/stderr to a file: the bench's own output stays readable."""
    handle = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(handle, 1)
    os.dup2(handle, 2)
    os.close(handle)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 - lives as long as the process
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115


def session_text(*, connection: str, sender: str, target: str, port: int, store: Path, log: Path | None) -> str:
    """One QuickFIX session's settings, as the gateway and the venue configure theirs."""
    lines = ["[DEFAULT]", f"ConnectionType={connection}", "StartTime=00:00:00", "EndTime=00:00:00",
             "HeartBtInt=30", "SocketNodelay=Y", "UseDataDictionary=Y", f"DataDictionary={DICTIONARY}",
             f"FileStorePath={store}"]
    if log is not None:
        lines.append(f"FileLogPath={log}")
    lines += ["", "[SESSION]", "BeginString=FIX.4.4", f"SenderCompID={sender}", f"TargetCompID={target}"]
    if connection == "acceptor":
        lines.append(f"SocketAcceptPort={port}")
    else:
        lines += ["SocketConnectHost=127.0.0.1", f"SocketConnectPort={port}", "ReconnectInterval=1"]
    return "\n".join(lines) + "\n"


def _engine(app: fix.Application, text: str, acceptor: bool, with_log: bool) -> tuple[object, list[object]]:
    settings = fix.SessionSettings()
    settings.setFromString(text)
    store = fix.FileStoreFactory(settings)
    keep: list[object] = [settings, store]
    kind = fix.ThreadedSocketAcceptor if acceptor else fix.ThreadedSocketInitiator
    if with_log:
        log = fix.FileLogFactory(settings)
        keep.append(log)
        return kind(app, store, settings, log), keep
    return kind(app, store, settings), keep


class EchoVenue(QuietApplication):
    """Answers each NewOrderSingle with ExecutionReports New and Trade (full fill at the order's price)."""

    def __init__(self) -> None:
        super().__init__()
        self._ids = itertools.count(1)

    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        try:
            if message.getHeader().getField(35) != "D":
                return
            cl_ord_id, symbol, side = message.getField(11), message.getField(55), message.getField(54)
            qty, price = message.getField(38), message.getField(44)
            order_id = f"E{next(self._ids)}"
            for exec_type, status, leaves, cum, last_qty, last_px, avg in (
                ("0", "0", qty, "0", None, None, "0"),
                ("F", "2", "0", qty, qty, price, price),
            ):
                report = fix.Message()
                report.getHeader().setField(35, "8")
                for tag, value in ((37, order_id), (11, cl_ord_id), (17, f"X{next(self._ids)}"), (150, exec_type),
                                   (39, status), (55, symbol), (54, side), (38, qty), (40, "2"), (44, price),
                                   (151, leaves), (14, cum), (6, avg), (60, _utc_timestamp())):
                    report.setField(tag, value)
                if last_qty is not None:
                    report.setField(32, last_qty)
                    report.setField(31, last_px)
                fix.Session.sendToTarget(report, sessionID)
        except Exception:  # a malformed order is not this bench's concern; never kill QuickFIX's thread
            pass


class Relay:
    """Client-facing acceptor and venue-facing initiator; forwards application messages unchanged."""

    def __init__(self, client_session: fix.SessionID, venue_session: fix.SessionID) -> None:
        self.client_session = client_session
        self.venue_session = venue_session
        self.client_side = _Forward(venue_session)
        self.venue_side = _Forward(client_session)


class _Forward(QuietApplication):
    """Copy each application message to the other session (QuickFIX rewrites the header on send)."""

    def __init__(self, destination: fix.SessionID) -> None:
        super().__init__()
        self._destination = destination

    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        fix.Session.sendToTarget(fix.Message(message), self._destination)


def _utc_timestamp() -> str:
    now = time.time()
    return time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}"


def run_echo_venue(port: int, work: str, target: str, ready: Event, stop: Event) -> None:
    """Child process: the echoing venue acceptor (EXCH) for one initiator (the relay, or the gateway)."""
    directory = Path(work)
    redirect_output(str(directory / "echo-venue.out"))
    app = EchoVenue()
    text = session_text(connection="acceptor", sender="EXCH", target=target, port=port,
                        store=directory / "echo-store", log=directory / "echo-log")
    acceptor, keep = _engine(app, text, acceptor=True, with_log=True)
    acceptor.start()  # type: ignore[attr-defined]
    ready.set()
    stop.wait()
    acceptor.stop(True)  # type: ignore[attr-defined]
    del keep


def run_relay(client_port: int, venue_port: int, work: str, ready: Event, stop: Event) -> None:
    """Child process: the relay, accepting BENCH on client_port and connecting to the echo venue."""
    directory = Path(work)
    redirect_output(str(directory / "relay.out"))
    relay = Relay(fix.SessionID("FIX.4.4", "OMS", "BENCH"), fix.SessionID("FIX.4.4", "RELAY", "EXCH"))
    venue_text = session_text(connection="initiator", sender="RELAY", target="EXCH", port=venue_port,
                              store=directory / "relay-venue-store", log=directory / "relay-venue-log")
    client_text = session_text(connection="acceptor", sender="OMS", target="BENCH", port=client_port,
                               store=directory / "relay-client-store", log=None)
    initiator, keep_i = _engine(relay.venue_side, venue_text, acceptor=False, with_log=True)
    acceptor, keep_a = _engine(relay.client_side, client_text, acceptor=True, with_log=False)
    initiator.start()  # type: ignore[attr-defined]
    if relay.venue_side.logged_on.wait(30):
        acceptor.start()  # type: ignore[attr-defined]
        ready.set()
        stop.wait()
        acceptor.stop(True)  # type: ignore[attr-defined]
    initiator.stop(True)  # type: ignore[attr-defined]
    del keep_i, keep_a
