"""``POST /v1/orders``'s fast path answers exactly as the route does, and leaves every refusal to the route.

The route parses a body sent as ``application/json; charset=utf-8`` the same way as one sent as
``application/json``, but only the latter takes the fast path: sending each body both ways and comparing the
answers checks the fast path against the route on the same app and database.
"""

from __future__ import annotations

import itertools
import json
import re
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oms.api import writes
from oms.api.place_fast_path import _read_body
from oms.service.accounts import deposit
from tests.api.conftest import Api
from tests.api.test_api_fuzz import GOOD_VALUES, json_values

FAST = "application/json"
ROUTE = "application/json; charset=utf-8"  # parsed as JSON by the route too; not taken by the fast path
GOOD = {"symbol": "AAPL", "side": "buy", "type": "limit", "qty": "10", "limit_price": "190.00"}
_IDENTIFIER = re.compile(r"[A-Za-z0-9._:/#+@-]{1,64}")
_unique = itertools.count()


def _send(api: Api, body: Any, content_type: str, key: str | None = None, **headers: str | bytes) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = api.headers(key) | {"content-type": content_type} | headers
    return api.client.post("/v1/orders", content=raw, headers=sent)


def _answer(response: Any) -> tuple[int, str, str | None, Any]:
    """What a client can see, without what differs between any two placements (ids, times)."""
    body = response.json()
    if isinstance(body, dict):
        body = {name: value for name, value in body.items()
                if name not in ("id", "order_id", "client_order_id", "created_at", "updated_at")}  # fmt: skip
    return response.status_code, response.headers["content-type"], response.headers.get("idempotent-replayed"), body


def _fresh_client_order_id(body: Any) -> Any:
    """A valid ``client_order_id`` made unique per request (the same one twice is a duplicate order)."""
    if isinstance(body, dict) and isinstance(body.get("client_order_id"), str) and _IDENTIFIER.fullmatch(body["client_order_id"]):
        return body | {"client_order_id": f"c{next(_unique)}"}
    return body


def _both_ways(api: Api, body: Any, **headers: str | bytes) -> tuple[Any, Any]:
    """What the fast path and the route answer to the same request (each with a fresh client order id)."""
    fast = _send(api, _fresh_client_order_id(body), FAST, **headers)
    route = _send(api, _fresh_client_order_id(body), ROUTE, **headers)
    return _answer(fast), _answer(route)


@pytest.fixture
def rich_api(api: Api) -> Api:
    deposit(api.database, "ALICE", Decimal("1000000000000"))  # accepted orders never run out of buying power
    return api


BODIES: list[Any] = [
    GOOD,
    GOOD | {"client_order_id": "mine-1"},
    GOOD | {"account": "ALICE", "time_in_force": "gtc"},
    GOOD | {"type": "market", "limit_price": None},
    GOOD | {"type": "stop_limit", "stop_price": "195.00"},
    GOOD | {"qty": "0.5"},
    GOOD | {"account": "BOB"},
    GOOD | {"limit_price": "190.001"},
    GOOD | {"limit_price": "500.00"},
    GOOD | {"side": "sell"},
    GOOD | {"time_in_force": "gtd"},
    GOOD | {"time_in_force": "gtd", "expire_date": "2999-01-01"},
    GOOD | {"symbol": "NOPE"},
    GOOD | {"qty": 10},
    GOOD | {"qty": "NaN"},
    GOOD | {"qty": "-1"},
    GOOD | {"leverage": "10"},
    GOOD | {"client_order_id": "has space"},
    {"symbol": "AAPL"},
    ["AAPL"],
    "AAPL",
    None,
    {},
]


@pytest.mark.parametrize("body", BODIES, ids=[json.dumps(body)[:60] for body in BODIES])
def test_the_fast_path_answers_as_the_route(rich_api: Api, body: Any) -> None:
    fast, route = _both_ways(rich_api, body)
    assert fast == route, body


@pytest.mark.parametrize("raw", [b"{", b"not json", b"", b"\xff\xfe", b"[" * 5000 + b"]" * 5000, b'{"qty": NaN}'])
def test_malformed_bodies_get_the_routes_answer(rich_api: Api, raw: bytes) -> None:
    fast, route = _send(rich_api, raw, FAST), _send(rich_api, raw, ROUTE)
    assert _answer(fast) == _answer(route)


def test_keys_and_headers_get_the_routes_answer(rich_api: Api) -> None:
    api = rich_api
    variants: list[dict[str, Any]] = [
        {"authorization": ""}, {"authorization": "Basic abc"}, {"authorization": "Bearer omsk_unknown_key"},
        {"idempotency-key": "é".encode("latin-1")}, {"idempotency-key": "x" * 129}, {"idempotency-key": ""},
        {"idempotency-key": "tab\tinside"},
    ]
    for headers in variants:
        fast, route = _both_ways(api, GOOD, **headers)
        assert fast == route, headers
    read_only = _read_only_key(api)
    assert _answer(_send(api, GOOD, FAST, read_only)) == _answer(_send(api, GOOD, ROUTE, read_only))


def _read_only_key(api: Api) -> str:
    from oms.api.keys import Scope, create_api_key

    return create_api_key(api.database, ["ALICE"], [Scope.READ])


def test_idempotency_keys_behave_the_same_on_both_paths(rich_api: Api) -> None:
    """One key used first on one path, then on the other: replay, and 422 for another body."""
    api = rich_api
    key = 'quote"brace{}comma,back\\slash'  # every character a PostgreSQL text array would have to escape
    first = _send(api, GOOD, FAST, **{"idempotency-key": key})
    again = _send(api, GOOD, ROUTE, **{"idempotency-key": key})
    fast_again = _send(api, GOOD, FAST, **{"idempotency-key": key})
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    assert again.json() == first.json() == fast_again.json()
    assert again.headers["idempotent-replayed"] == fast_again.headers["idempotent-replayed"] == "true"
    other_fast = _send(api, GOOD | {"qty": "11"}, FAST, **{"idempotency-key": key})
    other_route = _send(api, GOOD | {"qty": "11"}, ROUTE, **{"idempotency-key": key})
    assert _answer(other_fast) == _answer(other_route)
    assert other_fast.json()["code"] == "IDEMPOTENCY_KEY_REUSED"


def test_a_repeated_header_is_left_to_the_route(rich_api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_route_writes(monkeypatch)
    response = rich_api.client.post(
        "/v1/orders", content=json.dumps(GOOD).encode(),
        headers=[("authorization", f"Bearer {rich_api.alice}"), ("content-type", FAST),
                 ("idempotency-key", "a"), ("idempotency-key", "b")],
    )  # fmt: skip
    assert response.status_code == 400  # the route's answer to two keys: the fast path would have placed it
    assert response.json()["detail"] == "send one Idempotency-Key header, not several"
    assert calls == []


def test_well_formed_placements_take_the_fast_path(rich_api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_route_writes(monkeypatch)
    assert _send(rich_api, GOOD, FAST, **{"idempotency-key": "fast-1"}).status_code == 201
    assert _send(rich_api, GOOD, FAST).status_code == 201
    assert calls == []
    assert _send(rich_api, GOOD, ROUTE).status_code == 201
    assert calls == [1]


def _count_route_writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    run_write = writes.run_write

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return run_write(*args, **kwargs)

    monkeypatch.setattr(writes, "run_write", counted)
    return calls


def test_a_body_in_several_chunks_is_read_whole(rich_api: Api) -> None:
    raw = json.dumps(GOOD).encode()

    def chunks() -> Any:
        yield raw[:7]
        yield raw[7:]

    response = rich_api.client.post("/v1/orders", content=chunks(), headers=rich_api.headers() | {"content-type": FAST})
    assert response.status_code == 201


def test_the_replayed_receive_gives_the_same_messages_then_the_same_failure() -> None:
    import asyncio

    messages = [{"type": "http.request", "body": b"ab", "more_body": True}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        raise ValueError("too large")

    async def run() -> tuple[bytes | None, list[Any]]:
        body, replay = await _read_body(receive)
        seen: list[Any] = [await replay()]
        try:
            await replay()
        except ValueError as error:
            seen.append(str(error))
        return body, seen

    body, seen = asyncio.run(run())
    assert body is None
    assert seen == [{"type": "http.request", "body": b"ab", "more_body": True}, "too large"]


FIELDS = ["account", "symbol", "side", "type", "qty", "time_in_force", "limit_price", "stop_price", "expire_date", "client_order_id"]
order_bodies = st.one_of(
    st.fixed_dictionaries(
        {name: st.sampled_from(GOOD_VALUES[name]) for name in ("symbol", "side", "type", "qty")},
        optional={"limit_price": st.sampled_from(GOOD_VALUES["limit_price"]), "stop_price": st.sampled_from(GOOD_VALUES["stop_price"]),
                  "time_in_force": st.sampled_from(GOOD_VALUES["time_in_force"]), "expire_date": st.sampled_from(GOOD_VALUES["expire_date"]),
                  "account": st.sampled_from(["ALICE", "BOB", ""]), "client_order_id": st.sampled_from(["ok-1", "", "no space", "x" * 65])},
    ),
    st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6),
    json_values,
)  # fmt: skip


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], deadline=None)
@given(body=order_bodies)
def test_any_body_gets_the_same_answer_on_both_paths(rich_api: Api, body: Any) -> None:
    fast, route = _both_ways(rich_api, body)
    assert fast == route, body


def test_the_route_still_describes_the_operation_in_the_openapi_document() -> None:
    """The fast path is invisible to the document: the route's request model, headers and answers are all there."""
    from oms.api.app import ApiSettings, create_app
    from oms.api.schemas import OrderRequest

    document = create_app(ApiSettings(database_url="sqlite://")).openapi()
    operation = document["paths"]["/v1/orders"]["post"]
    assert operation["requestBody"] == {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/OrderRequest"}}},
                                        "required": True}  # fmt: skip
    schema = document["components"]["schemas"]["OrderRequest"]
    assert set(schema["properties"]) == set(OrderRequest.model_fields) and schema["additionalProperties"] is False
    assert sorted(schema["required"]) == ["qty", "side", "symbol", "type"]
    assert [parameter["name"] for parameter in operation["parameters"]] == ["Idempotency-Key"]
    assert operation["security"] == [{"bearer": []}]
    assert sorted(operation["responses"]) == ["200", "201", "400", "401", "403", "404", "409", "413", "415", "422", "429", "503"]
