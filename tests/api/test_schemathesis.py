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
def fuzzed(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The schema bound to a running app on a fresh PostgreSQL database, authenticated with ALICE's key."""
    from tests.conftest import _fresh_postgres

    urls = _fresh_postgres(request)
    database, alice, _bob = seeded_database(next(urls))
    app = create_app(database, config=NO_FEES, rate_limit=RateLimit(rate_per_s=100_000, burst=100_000), poll_interval_s=0.2)
    with TestClient(app):  # runs the lifespan once (write batcher, event hub) for every call below
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        schema.auth()(_bearer(alice))
        schema.config.generation.update(with_security_parameters=False)  # fuzz parameters and bodies, not the key
        yield schema
    database.dispose()
    next(urls, None)


def _bearer(key: str) -> type:
    """The document's bearer scheme with ALICE's real key. Registered as the schema's auth (not set on each
    case), schemathesis knows the key is valid, and also checks that each operation refuses a request
    without it or with a made-up one (its ignored_auth check)."""

    class AliceKey:
        def get(self, case: schemathesis.Case, context: Any) -> str:
            return key

        def set(self, case: schemathesis.Case, data: str, context: Any) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

    return AliceKey


@pytest.mark.parametrize(("method", "path", "mode"), _cases())
def test_no_server_errors_and_responses_match_the_schema(fuzzed: Any, method: str, path: str, mode: GenerationMode) -> None:
    operation = fuzzed[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=MAX_EXAMPLES, suppress_health_check=list(HealthCheck), deadline=None)
    def check(case: schemathesis.Case) -> None:
        response = case.call_and_validate(excluded_checks=[checks.positive_data_acceptance])
        assert response.status_code < 500, response.text

    try:
        check()
    except Unsatisfiable:
        # Only possible for invalid inputs: every parameter of this operation is a free string (an id or a
        # symbol), so nothing the schema could call invalid exists to send.
        assert mode is GenerationMode.NEGATIVE
