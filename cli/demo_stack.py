"""The whole product on one machine for `oms demo`: simulated exchange, FIX gateway and REST API.

Each part runs in-process on a free loopback port with its sessions written to a private sessions.cfg under
the demo's work directory (stores and the venue journal persist there, so a second run continues the
first). Nothing here is demo-only logic: these are the same `Venue`, `Gateway` and `create_app` that
`oms exchange run`, `oms gateway` and `oms api` start.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SPECS = Path(__file__).resolve().parents[1] / "fix" / "specs"
DEMO_CLIENT = "CLIENT1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_sessions_cfg(directory: Path, venue_port: int, client_port: int) -> Path:
    """One sessions.cfg with the venue's acceptor, the gateway's client acceptor and its venue initiator."""
    dictionary = SPECS / "FIX44.xml"
    text = "\n".join([
        "# written by `oms demo`", "[DEFAULT]", "SocketNodelay=Y", "HeartBtInt=30", "",
        "[EXCHANGE]", "JournalDir=venue/journal", "ControlPort=-1", "MarketMakerSeed=7",
        "MarketMakerIntervalMs=500", "EndOfDayTime=00:00:00", "",
        "[SESSION]", "Component=exchange", "BeginString=FIX.4.4", "SenderCompID=EXCH", "TargetCompID=OMS",
        "ConnectionType=acceptor", f"SocketAcceptPort={venue_port}", "AllowedRemoteAddresses=127.0.0.1",
        "StartTime=00:00:00", "EndTime=00:00:00", "UseDataDictionary=Y", f"DataDictionary={dictionary}",
        "FileStorePath=venue/store", "",
        "[GATEWAY]", "OutboxPollMs=50", "ReferencePriceFlushMs=100", "",
        "[SESSION]", "Component=gateway", "BeginString=FIX.4.4", "SenderCompID=OMS", f"TargetCompID={DEMO_CLIENT}",
        "ConnectionType=acceptor", f"SocketAcceptPort={client_port}", "UseDataDictionary=Y",
        f"DataDictionary={dictionary}", "FileStorePath=gateway/client-store", f"Accounts={DEMO_CLIENT}", "",
        "[SESSION]", "Component=gateway", "BeginString=FIX.4.4", "SenderCompID=OMS", "TargetCompID=EXCH",
        "ConnectionType=initiator", "SocketConnectHost=127.0.0.1", f"SocketConnectPort={venue_port}",
        "ReconnectInterval=1", "UseDataDictionary=Y", f"DataDictionary={dictionary}",
        "FileStorePath=gateway/venue-store", "",
    ])
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "sessions.cfg"
    path.write_text(text, encoding="utf-8")
    return path


@dataclass
class DemoStack:
    """Starts venue, gateway and REST API in that order; `stop()` takes them down in reverse."""

    work_dir: Path
    database: Any
    venue_port: int = field(default_factory=free_port)
    client_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    _venue: Any = None
    _gateway: Any = None
    _api_server: Any = None
    _api_thread: threading.Thread | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start(self) -> DemoStack:
        import uvicorn

        from exchange.config import load_venue_config
        from exchange.venue import Venue
        from oms.api.app import create_app
        from oms.gateway.config import load_gateway_settings
        from oms.gateway.gateway import Gateway

        config_path = write_sessions_cfg(self.work_dir, self.venue_port, self.client_port)
        self._venue = Venue(load_venue_config(config_path))
        self._venue.start()
        self._gateway = Gateway(load_gateway_settings(config_path), self.database)
        self._gateway.start()
        if not self._gateway.wait_venue(15):
            raise RuntimeError("the gateway could not log on to the simulated exchange")
        app = create_app(self.database)
        self._api_server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.api_port,
                                                         log_level="warning", lifespan="on"))
        self._api_thread = threading.Thread(target=self._api_server.run, name="demo-api", daemon=True)
        self._api_thread.start()
        deadline = time.monotonic() + 15
        while not self._api_server.started:
            if time.monotonic() > deadline or not self._api_thread.is_alive():
                raise RuntimeError("the REST API did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self._api_server is not None:
            self._api_server.should_exit = True
            if self._api_thread is not None:
                self._api_thread.join(timeout=10)
            self._api_server = None
        if self._gateway is not None:
            self._gateway.stop()
            self._gateway = None
        if self._venue is not None:
            self._venue.stop()
            self._venue = None
