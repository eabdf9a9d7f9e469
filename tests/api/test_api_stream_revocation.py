"""An open event stream keeps obeying its API key: revoked, or stripped of the read scope or of a streamed
account, the key stops receiving events within the key cache's lifetime (plus one re-check period), as a
request would. SSE ends the response; WebSocket closes with 4000 + the HTTP status a request would get."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from oms.api.app import create_app
from oms.api.keys import Scope, create_api_key, revoke_api_key
from oms.api.ratelimit import RateLimit
from oms.db.models import ApiKey
from oms.service.uow import Database
from tests.api.conftest import LiveServer, seeded_database
from tests.service.factories import NO_FEES

KEY_TTL_S = 0.3  # the app's key cache, shortened so the tests wait for the re-check, not the cache
ENDS_WITHIN_S = 5.0
STAYS_OPEN_S = 3.0  # several cache lifetimes and (one-second) re-checks


@pytest.fixture
def served(database_url: str) -> Iterator[tuple[str, Database]]:
    """A live API whose key cache keeps entries ``KEY_TTL_S``; its base URL and database."""
    database, _alice, _bob = seeded_database(database_url)
    app = create_app(database, config=NO_FEES, rate_limit=RateLimit(10_000, 10_000), poll_interval_s=0.2, heartbeat_s=0.3)
    app.state.api.principals.ttl_s = KEY_TTL_S
    with LiveServer(app) as server:
        yield server.url, database
    database.dispose()


def _key_id(key: str) -> str:
    return key.split("_")[1]


def revoke(database: Database, key: str) -> None:
    revoke_api_key(database, _key_id(key))


def drop_read_scope(database: Database, key: str) -> None:
    _set(database, key, scopes=[Scope.TRADE.value])


def drop_alice(database: Database, key: str) -> None:
    _set(database, key, accounts=["BOB"])


def _set(database: Database, key: str, **values: Any) -> None:
    with database.engine.begin() as connection:
        connection.execute(update(ApiKey.__table__).where(ApiKey.__table__.c.id == _key_id(key)).values(**values))


def _stream_key(database: Database) -> str:
    return create_api_key(database, ["ALICE", "BOB"], [Scope.READ, Scope.TRADE])


def sse_seconds_until_closed(url: str, database: Database, change: Callable[[Database, str], None],
                             within_s: float = ENDS_WITHIN_S) -> float:  # fmt: skip
    """Opens ALICE's SSE stream, applies ``change`` to its key, and times how long the server keeps it open."""
    key = _stream_key(database)
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, timeout=httpx.Timeout(10)) as client, \
            client.stream("GET", "/v1/events", params={"account": "ALICE"}, headers=headers) as response:  # fmt: skip
        assert response.status_code == 200
        lines = response.iter_lines()
        assert next(lines).startswith("retry:")
        change(database, key)
        changed = time.monotonic()
        for _line in lines:  # keep-alives every 0.3 s until the server ends the response
            assert time.monotonic() - changed < within_s, "the stream outlived its key"
        return time.monotonic() - changed


def ws_close_after(url: str, database: Database, change: Callable[[Database, str], None]) -> tuple[int, str, float]:
    """Opens ALICE's WebSocket stream, applies ``change`` to its key: the close code, reason and delay."""
    key = _stream_key(database)
    ws_url = url.replace("http://", "ws://") + "/v1/events/ws?account=ALICE"
    with connect(ws_url, additional_headers={"Authorization": f"Bearer {key}"}, open_timeout=10) as connection:
        connection.recv(timeout=5)  # a heartbeat: the stream is open and running
        change(database, key)
        changed = time.monotonic()
        with pytest.raises(ConnectionClosed) as closed:
            while True:  # heartbeats every 0.3 s until the server closes
                connection.recv(timeout=ENDS_WITHIN_S)
                assert time.monotonic() - changed < ENDS_WITHIN_S, "the stream outlived its key"
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason, time.monotonic() - changed


@pytest.mark.parametrize("change", [revoke, drop_alice], ids=["revoked", "account removed"])
def test_an_sse_stream_ends_when_its_key_no_longer_allows_it(served: tuple[str, Database],
                                                             change: Callable[[Database, str], None]) -> None:  # fmt: skip
    url, database = served
    assert sse_seconds_until_closed(url, database, change) < ENDS_WITHIN_S


@pytest.mark.parametrize(
    ("change", "code", "reason"),
    [(revoke, 4401, "INVALID_API_KEY"), (drop_read_scope, 4403, "MISSING_SCOPE"), (drop_alice, 4404, "NOT_FOUND")],
    ids=["revoked", "read scope removed", "account removed"],
)
def test_a_websocket_stream_closes_with_the_status_a_request_would_get(served: tuple[str, Database],
                                                                       change: Callable[[Database, str], None], code: int,
                                                                       reason: str) -> None:  # fmt: skip
    url, database = served
    closed_code, closed_reason, seconds = ws_close_after(url, database, change)
    assert (closed_code, closed_reason) == (code, reason)
    assert seconds < ENDS_WITHIN_S


def test_a_stream_whose_key_is_unchanged_stays_open(served: tuple[str, Database]) -> None:
    url, database = served
    with pytest.raises(AssertionError, match="outlived its key"):
        sse_seconds_until_closed(url, database, lambda _database, _key: None, within_s=STAYS_OPEN_S)
