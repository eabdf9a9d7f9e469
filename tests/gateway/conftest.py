"""Fixtures: a seeded OMS database (SQLite and PostgreSQL), a venue with quotes, the gateway, clients."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from harness import GatewayClient, VenueHarness, free_port, seed_oms, write_gateway_config  # noqa: E402

from oms.gateway.config import load_gateway_settings  # noqa: E402
from oms.gateway.gateway import Gateway  # noqa: E402
from oms.service.uow import Database  # noqa: E402


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    database = Database.from_url(database_url)
    seed_oms(database)
    yield database
    database.dispose()


@pytest.fixture
def venue(tmp_path: Path) -> Iterator[VenueHarness]:
    harness = VenueHarness(tmp_path / "venue").start()
    harness.service.step_market_maker()  # two-sided quotes on every symbol
    yield harness
    harness.stop()


class GatewayHarness:
    """The gateway in-process; `restart()` is a stop and a start on the same stores and database."""

    def __init__(self, directory: Path, database: Database, venue_port: int) -> None:
        self.client_port = free_port()
        self.config_path = write_gateway_config(directory, venue_port, self.client_port)
        self.settings = load_gateway_settings(self.config_path)
        self.database = database
        self.gateway: Gateway | None = None

    def start(self) -> Gateway:
        self.gateway = Gateway(self.settings, self.database).start()
        assert self.gateway.wait_venue(15), "gateway never logged on to the venue"
        return self.gateway

    def stop(self, force: bool = True) -> None:
        if self.gateway is not None:
            self.gateway.stop(force)
            self.gateway = None

    def restart(self) -> Gateway:
        self.stop()
        return self.start()


@pytest.fixture
def gateway(tmp_path: Path, database: Database, venue: VenueHarness) -> Iterator[GatewayHarness]:
    harness = GatewayHarness(tmp_path / "gateway", database, venue.port)
    harness.start()
    yield harness
    harness.stop()


@pytest.fixture
def connect(tmp_path: Path, gateway: GatewayHarness) -> Iterator[Callable[..., GatewayClient]]:
    clients: list[GatewayClient] = []

    def make(sender: str = "CLIENT1", *, wait_s: float | None = 10.0, **kwargs: object) -> GatewayClient:
        client = GatewayClient(gateway.client_port, tmp_path / f"client-{sender}-{len(clients)}", sender, **kwargs)  # type: ignore[arg-type]
        clients.append(client)
        return client.start(wait_s)

    yield make
    for client in clients:
        client.stop()
