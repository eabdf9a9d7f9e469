"""Fixtures for the FIX tests of the simulated exchange: an in-process venue on a free port with its own
store/journal dirs, and QuickFIX initiator clients (tests/exchange/fixclient.py) connected to it."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fixclient import FixClient, free_port  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def write_venue_config(directory: Path, port: int, **exchange_keys: object) -> Path:
    """A sessions.cfg like the real one, with temp dirs, a free port, no MM timer and an ephemeral control port."""
    directory.mkdir(parents=True, exist_ok=True)
    exchange = {"JournalDir": "var/journal", "ControlPort": 0, "MarketMakerSeed": 7, "MarketMakerIntervalMs": 0}
    exchange.update(exchange_keys)
    sessions = []
    for begin, dictionary in (("FIX.4.4", "FIX44.xml"), ("FIX.4.2", "FIX42.xml")):
        sessions.append("\n".join([
            "[SESSION]", "Component=exchange", f"BeginString={begin}", "SenderCompID=EXCH", "TargetCompID=OMS",
            "ConnectionType=acceptor", f"SocketAcceptPort={port}", "StartTime=00:00:00", "EndTime=00:00:00",
            "HeartBtInt=30", "UseDataDictionary=Y", f"DataDictionary={REPO / 'fix' / 'specs' / dictionary}",
            "FileStorePath=var/store", "",
        ]))
    text = "\n".join(["# test venue", "[DEFAULT]", "SocketNodelay=Y", "", "[EXCHANGE]",
                      *(f"{key}={value}" for key, value in exchange.items()), "", *sessions])
    path = directory / "sessions.cfg"
    path.write_text(text, encoding="utf-8")
    return path


class VenueHarness:
    """Starts/stops venues on one config (restart = stop + start on the same dirs)."""

    def __init__(self, directory: Path, **exchange_keys: object) -> None:
        from exchange.config import load_venue_config
        self.directory = directory
        self.port = free_port()
        self.config_path = write_venue_config(directory, self.port, **exchange_keys)
        self.config = load_venue_config(self.config_path)
        self.venue = None

    def start(self):  # type: ignore[no-untyped-def]
        from exchange.venue import Venue
        self.venue = Venue(self.config)
        self.venue.start()
        return self.venue

    def stop(self) -> None:
        if self.venue is not None:
            self.venue.stop()
            self.venue = None

    def restart(self):  # type: ignore[no-untyped-def]
        self.stop()
        return self.start()

    @property
    def service(self):  # type: ignore[no-untyped-def]
        assert self.venue is not None and self.venue.service is not None
        return self.venue.service

    def control(self, **request: object) -> dict:
        from exchange.control import send_control
        assert self.venue is not None and self.venue.control_port is not None
        return send_control("127.0.0.1", self.venue.control_port, dict(request))


@pytest.fixture
def venue_factory(tmp_path: Path) -> Iterator[Callable[..., VenueHarness]]:
    harnesses: list[VenueHarness] = []

    def make(**exchange_keys: object) -> VenueHarness:
        harness = VenueHarness(tmp_path / f"venue{len(harnesses)}", **exchange_keys)
        harness.start()
        harnesses.append(harness)
        return harness

    yield make
    for harness in harnesses:
        harness.stop()


@pytest.fixture
def venue_config(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A venue configuration on temp dirs and a free port, for tests that drive its journal without a venue."""
    from exchange.config import load_venue_config
    return load_venue_config(write_venue_config(tmp_path / "config", free_port()))


@pytest.fixture
def venue(venue_factory: Callable[..., VenueHarness]) -> VenueHarness:
    return venue_factory()


@pytest.fixture
def client_factory(tmp_path: Path) -> Iterator[Callable[..., FixClient]]:
    clients: list[FixClient] = []

    def make(venue: VenueHarness, begin_string: str = "FIX.4.4", start: bool = True, **kwargs: object) -> FixClient:
        client = FixClient(venue.port, tmp_path / f"client{len(clients)}", begin_string, **kwargs)  # type: ignore[arg-type]
        clients.append(client)
        if start:
            client.start()
        return client

    yield make
    for client in clients:
        client.stop()


@pytest.fixture
def client(venue: VenueHarness, client_factory: Callable[..., FixClient]) -> FixClient:
    return client_factory(venue)
