"""The per-key burst limit: 429 with Retry-After and a problem body; other keys are unaffected; shared through Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from oms.api.app import create_app
from oms.api.problems import Problem
from oms.api.ratelimit import RateLimit, RateLimiter
from tests.api.conftest import Api, seeded_database
from tests.service.factories import NO_FEES


@pytest.fixture
def limited(database_url: str) -> Iterator[Api]:
    database, alice, bob = seeded_database(database_url)
    app = create_app(database, config=NO_FEES, rate_limit=RateLimit(rate_per_s=0.5, burst=3))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client, database, alice, bob)
    database.dispose()


def test_requests_over_the_burst_get_429_with_retry_after(limited: Api) -> None:
    statuses = [limited.get("/v1/accounts").status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    refused = limited.get("/v1/accounts")
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "RATE_LIMITED"
    assert int(refused.headers["retry-after"]) >= 1
    assert limited.place().status_code == 429  # writes count too, and nothing is booked
    assert limited.get("/v1/accounts", key=limited.bob).status_code == 200  # per key


def test_redis_shares_the_allowance_between_processes(redis_url: str) -> None:
    first, second = RateLimiter(RateLimit(rate_per_s=1, burst=2), redis_url), RateLimiter(RateLimit(rate_per_s=1, burst=2), redis_url)
    refused = 0
    for limiter in (first, second) * 3:
        try:
            limiter.check("shared-key")
        except Problem as problem:
            assert problem.status == 429 and problem.headers["Retry-After"] == "1"
            refused += 1
    assert refused >= 2  # 6 quick requests span at most two one-second windows of 2 each
    RateLimiter(RateLimit(rate_per_s=1, burst=2), redis_url).check("another-key")
