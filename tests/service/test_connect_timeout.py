"""A PostgreSQL server that accepts TCP connections but never answers cannot hang a connect."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from sqlalchemy.exc import OperationalError

from oms.db import engine as engine_module
from oms.db.engine import make_engine


@pytest.fixture
def stalled_server() -> Iterator[int]:
    """A listening socket nobody accepts from: the kernel completes the handshake, then silence."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield server.getsockname()[1]
    server.close()


def test_make_engine_gives_up_on_a_silent_server_after_its_connect_timeout(
    stalled_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert engine_module.PG_CONNECT_TIMEOUT_S == 5
    monkeypatch.setattr(engine_module, "PG_CONNECT_TIMEOUT_S", 1)  # the default, shortened to keep the test fast
    engine = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{stalled_server}/oms")
    started = time.monotonic()
    with pytest.raises(OperationalError):
        engine.connect()
    assert time.monotonic() - started < 4
    engine.dispose()


def test_a_connect_timeout_in_the_url_wins(stalled_server: int) -> None:
    engine = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{stalled_server}/oms?connect_timeout=1")
    started = time.monotonic()
    with pytest.raises(OperationalError):
        engine.connect()
    assert time.monotonic() - started < 4
    engine.dispose()
