"""Schemathesis against the app's own OpenAPI document, on a real PostgreSQL database with a valid API key.

Every operation is fuzzed from its schema, with valid and with invalid inputs: no response is a 5xx, and
every response matches what the document promises (status code, content type, headers, body schema). The
event streams are left out (they never end; the stream tests cover them). Bounded: a few examples per
operation and mode, derandomized in the ``ci`` profile.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks

from oms.api.app import ApiSettings, create_app
from oms.api.ratelimit import RateLimit
from tests.api.conftest import seeded_database
from tests.service.factories import NO_FEES

MAX_EXAMPLES = 8
STREAMS = ("/v1/events", "/v1/events/ws")


def _cases() -> list[Any]:
    """(method, path, mode) for every operation in the document, read from an app that is never started;
    invalid inputs only where the operation takes any (parameters or a body)."""
    document = create_app(ApiSettings(database_url="sqlite://")).openapi()
    cases = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if path in STREAMS or method not in ("get", "post", "put", "patch", "delete"):
                continue
            cases.append(pytest.param(method.upper(), path, GenerationMode.POSITIVE, id=f"{method.upper()} {path} valid"))
            if operation.get("parameters") or operation.get("requestBody"):
                cases.append(pytest.param(method.upper(), path, GenerationMode.NEGATIVE, id=f"{method.upper()} {path} invalid"))
    return cases


@pytest.fixture(scope="module")
def fuzzed(request: pytest.FixtureRequest) -> Iterator[tuple[Any, str]]:
    """The schema bound to a running app on a fresh PostgreSQL database, and ALICE's key."""
    from tests.conftest import _fresh_postgres

    urls = _fresh_postgres(request)
    database, alice, _bob = seeded_database(next(urls))
    app = create_app(database, config=NO_FEES, rate_limit=RateLimit(rate_per_s=100_000, burst=100_000), poll_interval_s=0.2)
    with TestClient(app):  # runs the lifespan once (write batcher, event hub) for every call below
        yield schemathesis.openapi.from_asgi("/openapi.json", app), alice
    database.dispose()
    next(urls, None)


@pytest.mark.parametrize(("method", "path", "mode"), _cases())
def test_no_server_errors_and_responses_match_the_schema(fuzzed: tuple[Any, str], method: str, path: str, mode: GenerationMode) -> None:
    schema, key = fuzzed
    operation = schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=MAX_EXAMPLES, suppress_health_check=list(HealthCheck), deadline=None)
    def check(case: schemathesis.Case) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {key}"}
        response = case.call_and_validate(excluded_checks=[checks.positive_data_acceptance])
        assert response.status_code < 500, response.text

    try:
        check()
    except Unsatisfiable:
        # Only possible for invalid inputs: every parameter of this operation is a free string (an id or a
        # symbol), so nothing the schema could call invalid exists to send.
        assert mode is GenerationMode.NEGATIVE
