"""Bad input is a 4xx problem body and books nothing: malformed JSON, wrong types, NaN, huge numbers, unknown fields."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from tests.api.conftest import Api

GOOD = {"symbol": "AAPL", "side": "buy", "type": "limit", "qty": "10", "limit_price": "190.00"}


def assert_problem(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("urn:oms:problem:") and body["title"] and body["detail"]
    if code is not None:
        assert body["code"] == code
    return body


def nothing_booked(api: Api) -> None:
    with api.database.engine.connect() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM orders")).scalar_one() == 0
        assert connection.execute(text("SELECT COUNT(*) FROM reservations")).scalar_one() == 0


RAW_BODIES = [
    "{",
    "not json",
    '{"symbol": "AAPL",}',
    "[" * 5000 + "]" * 5000,
    "\xff\xfe",
]


@pytest.mark.parametrize("raw", RAW_BODIES)
def test_malformed_json_is_400(api: Api, raw: str) -> None:
    response = api.client.post("/v1/orders", content=raw.encode("latin-1"),
                               headers=api.headers() | {"content-type": "application/json"})  # fmt: skip
    assert_problem(response, 400, "MALFORMED_JSON")
    nothing_booked(api)


BAD_FIELDS: list[tuple[str, dict[str, Any]]] = [
    ("number instead of decimal string", {"qty": 10}),
    ("float", {"qty": 10.5}),
    ("NaN", {"qty": "NaN"}),
    ("Infinity", {"limit_price": "Infinity"}),
    ("huge", {"qty": "1" + "0" * 40}),
    ("huge exponent", {"qty": "1e999"}),
    ("negative", {"qty": "-5"}),
    ("zero", {"qty": "0"}),
    ("too many decimals", {"limit_price": "1.0000000000001"}),
    ("spaces", {"qty": " 10"}),
    ("full-width digit", {"qty": "\uff11"}),  # 1 in full width: a Unicode digit, not an ASCII one
    ("Arabic-Indic digits", {"qty": "\u0661\u0660\u0660"}),  # 100
    ("Devanagari digits in a price", {"limit_price": "\u0967\u096f\u0966.00"}),  # 190.00
    ("full-width exponent digit", {"qty": "1e\uff12"}),
    ("unknown side", {"side": "short"}),
    ("unknown type", {"type": "trailing"}),
    ("unknown tif", {"time_in_force": "forever"}),
    ("unknown field", {"leverage": "10"}),
    ("list", {"qty": ["10"]}),
    ("null qty", {"qty": None}),
    ("bad symbol", {"symbol": "aa pl"}),
    ("bad client id", {"client_order_id": "has space"}),
    ("long client id", {"client_order_id": "x" * 65}),
    ("bad date", {"time_in_force": "gtd", "expire_date": "tomorrow"}),
    # A date is YYYY-MM-DD text: a number would be taken as seconds since 1970 (1796083200 is 2026-12-01), a
    # date-time's time and zone would be dropped without a word.
    ("date as a number", {"time_in_force": "gtd", "expire_date": 1796083200}),
    ("date as digits", {"time_in_force": "gtd", "expire_date": "1796083200"}),
    ("date without dashes", {"time_in_force": "gtd", "expire_date": "20261201"}),
    ("date-time for a date", {"time_in_force": "gtd", "expire_date": "2026-12-01T00:00:00Z"}),
    ("week date", {"time_in_force": "gtd", "expire_date": "2026-W49-2"}),
]


def body_operations(api: Api) -> list[tuple[str, str]]:
    """(method, path) of every operation whose OpenAPI entry takes a request body, parameters filled in."""
    document = api.client.get("/openapi.json").json()
    filled = {"{account}": "ALICE", "{order_id}": "x", "{symbol}": "AAPL"}
    operations = []
    for template, item in document["paths"].items():
        for method, operation in item.items():
            if "requestBody" in operation:
                path = template
                for name, value in filled.items():
                    path = path.replace(name, value)
                operations.append((method.upper(), path))
    return operations


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None])
def test_a_json_body_sent_as_another_media_type_or_as_none_is_415_on_every_write(api: Api, content_type: str | None) -> None:
    operations = body_operations(api)
    assert ("POST", "/v1/orders") in operations and len(operations) == 5  # the placement fast path's request too
    headers = api.headers() | ({"content-type": content_type} if content_type else {})
    for method, path in operations:
        response = api.client.request(method, path, content=json.dumps(GOOD), headers=headers)
        assert_problem(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    nothing_booked(api)


def test_every_operation_with_a_body_documents_its_415(api: Api) -> None:
    for item in api.client.get("/openapi.json").json()["paths"].values():
        for operation in item.values():
            assert ("415" in operation["responses"]) == ("requestBody" in operation), operation["operationId"]


def test_json_media_types_with_parameters_are_json(api: Api) -> None:
    response = api.client.post("/v1/orders", content=json.dumps(GOOD),
                               headers=api.headers() | {"content-type": "application/json; charset=utf-8"})  # fmt: skip
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(("case", "change"), BAD_FIELDS, ids=[case for case, _ in BAD_FIELDS])
def test_bad_fields_are_422_problems_naming_the_field(api: Api, case: str, change: dict[str, Any]) -> None:
    body = assert_problem(api.post("/v1/orders", GOOD | change), 422, "VALIDATION_FAILED")
    assert body["errors"], case
    nothing_booked(api)


@pytest.mark.parametrize("expire_date", [1796083200, "2026-12-01T00:00:00Z", "20261201"])
def test_a_replace_takes_its_expire_date_as_yyyy_mm_dd_only(api: Api, expire_date: Any) -> None:
    placed = api.post("/v1/orders", GOOD | {"time_in_force": "gtd", "expire_date": "2999-01-01"})
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["id"]
    api.ack(order_id)
    replace = api.post(f"/v1/orders/{order_id}/replace", {"qty": "5", "expire_date": expire_date})
    body = assert_problem(replace, 422, "VALIDATION_FAILED")
    assert [error["field"] for error in body["errors"]] == ["expire_date"]
    assert api.get(f"/v1/orders/{order_id}").json()["status"] == "new"


def test_missing_fields_are_named(api: Api) -> None:
    body = assert_problem(api.post("/v1/orders", {"symbol": "AAPL"}), 422, "VALIDATION_FAILED")
    assert {error["field"] for error in body["errors"]} >= {"side", "type", "qty"}


DUPLICATE_MEMBERS = [
    ("POST", "/v1/orders", '{"symbol":"AAPL","side":"buy","type":"limit","qty":"10","limit_price":"190.00","symbol":"ZZZZ"}'),
    ("POST", "/v1/orders", '{"symbol":"AAPL","side":"buy","type":"limit","qty":"10","limit_price":"190.00","qty":"10"}'),
    ("POST", "/v1/orders/x/replace", '{"qty":"5","qty":"6"}'),
    ("POST", "/v1/accounts/ALICE/deposits", '{"amount":"5","amount":"500"}'),
]


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8"], ids=["fast path", "route"])
@pytest.mark.parametrize(("method", "path", "raw"), DUPLICATE_MEMBERS)
def test_a_member_name_given_twice_in_a_json_object_is_malformed_json(api: Api, content_type: str, method: str, path: str,
                                                                      raw: str) -> None:  # fmt: skip
    """RFC 8259 leaves duplicate names to the parser; ours would keep the last one silently (symbol ZZZZ)."""
    response = api.client.request(method, path, content=raw, headers=api.headers() | {"content-type": content_type})
    body = assert_problem(response, 400, "MALFORMED_JSON")
    assert "twice" in body["detail"]
    nothing_booked(api)


def test_wrong_top_level_type_is_422(api: Api) -> None:
    assert_problem(api.post("/v1/orders", ["AAPL"]), 422)
    assert_problem(api.post("/v1/orders", "AAPL"), 422)


def test_business_rule_violations_use_the_fix_reason_codes(api: Api) -> None:
    assert_problem(api.post("/v1/orders", GOOD | {"limit_price": "190.001"}), 422, "INVALID_PRICE")
    assert_problem(api.post("/v1/orders", GOOD | {"type": "market"}), 422)
    assert_problem(api.post("/v1/orders", GOOD | {"limit_price": "500.00"}), 422, "PRICE_OUTSIDE_COLLAR")
    assert_problem(api.post("/v1/orders", GOOD | {"side": "sell"}), 422, "INSUFFICIENT_POSITION")
    assert_problem(api.post("/v1/orders", GOOD | {"time_in_force": "gtd"}), 422, "INVALID_EXPIRE_DATE")


def test_oversized_bodies_are_413(api: Api) -> None:
    big = GOOD | {"padding": "x" * 100_000}
    assert_problem(api.post("/v1/orders", big), 413, "BODY_TOO_LARGE")
    nothing_booked(api)


def test_unknown_routes_and_methods_are_problems(api: Api) -> None:
    assert_problem(api.get("/v1/nope"), 404)
    assert_problem(api.client.put("/v1/orders", headers=api.headers()), 405)


def test_bad_query_parameters_are_problems(api: Api) -> None:
    assert_problem(api.get("/v1/orders", params={"limit": "0"}), 422)
    assert_problem(api.get("/v1/orders", params={"limit": "lots"}), 422)
    assert_problem(api.get("/v1/orders", params={"after": "yesterday"}), 422)
    for number in ("13583", "3.989653003083245e-63"):  # ISO 8601 only, not seconds since 1970 (schemathesis found it)
        assert_problem(api.get("/v1/orders", params={"after": number}), 422)
        assert_problem(api.get("/v1/orders", params={"until": number}), 422)
    assert api.get("/v1/orders", params={"after": "2026-11-23T09:30:00Z", "until": "2026-11-24"}).status_code == 200
    assert_problem(api.get("/v1/orders/" + "x" * 300), 404)
    assert_problem(api.get("/v1/events", params={"since": "-1"}), 422)
    response = api.client.get("/v1/events", headers=api.headers() | {"Last-Event-ID": "abc"})
    assert_problem(response, 400, "INVALID_LAST_EVENT_ID")


def _patterns(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from [value] if key == "pattern" and isinstance(value, str) else _patterns(value)
    elif isinstance(node, list):
        for item in node:
            yield from _patterns(item)


def test_patterns_in_the_openapi_document_mean_in_python_what_they_mean_in_ecma_262(api: Api) -> None:
    """ECMA-262's \\d is [0-9]; Python's matches every Unicode digit (\\w and \\s differ likewise), so a pattern
    with them would promise clients less than the server accepts."""
    patterns = list(_patterns(api.client.get("/openapi.json").json()))
    assert patterns
    for pattern in patterns:
        assert not re.search(r"\\[dDwWsSbB]", pattern), pattern


def test_unicode_digits_are_refused_in_money_requests(api: Api) -> None:
    assert_problem(api.post("/v1/accounts/ALICE/deposits", {"amount": "\uff15"}), 422, "VALIDATION_FAILED")


def test_money_requests_are_validated(api: Api) -> None:
    assert_problem(api.post("/v1/accounts/ALICE/deposits", {"amount": 5}), 422)
    assert_problem(api.post("/v1/accounts/ALICE/deposits", {"amount": "-5"}), 422)
    assert_problem(api.post("/v1/accounts/ALICE/deposits", {"amount": "5", "currency": "EUR"}), 422)
    assert_problem(api.post("/v1/accounts/ALICE/withdrawals", {"amount": "1000000"}), 422, "INSUFFICIENT_FUNDS")


def test_out_of_range_cursors_and_sequence_numbers_are_problems_not_database_errors(api: Api) -> None:
    from oms.api.queries import encode_cursor

    assert_problem(api.get("/v1/accounts/ALICE/statement", params={"cursor": encode_cursor(10**30)}), 400, "INVALID_CURSOR")
    assert_problem(api.get("/v1/accounts/ALICE/statement", params={"cursor": encode_cursor("x")}), 400, "INVALID_CURSOR")
    assert_problem(api.get("/v1/orders", params={"cursor": encode_cursor("not a time", "id")}), 400, "INVALID_CURSOR")
    assert_problem(api.get("/v1/executions", params={"cursor": encode_cursor(1, 2, 3)}), 400, "INVALID_CURSOR")
    assert_problem(api.get("/v1/events", params={"since": str(10**30)}), 422)


def test_times_at_the_edge_of_the_calendar_are_problems(api: Api) -> None:
    assert_problem(api.get("/v1/orders", params={"after": "9999-12-31T23:59:59-14:00"}), 422)
    assert_problem(api.get("/v1/orders", params={"until": "0001-01-01T00:00:00+14:00"}), 422)


def test_oversized_chunked_bodies_without_content_length_are_413(api: Api) -> None:
    def chunks() -> Any:
        yield b'{"symbol": "AAPL", "padding": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}'

    response = api.client.post("/v1/orders", content=chunks(), headers=api.headers() | {"content-type": "application/json"})
    assert_problem(response, 413, "BODY_TOO_LARGE")
    nothing_booked(api)


def test_nul_characters_in_path_or_query_are_400_on_every_backend(api: Api) -> None:
    assert_problem(api.get("/v1/orders", params={"symbol": "A\x00B"}), 400, "INVALID_CHARACTERS")
    assert_problem(api.get("/v1/orders/abc%00def"), 400, "INVALID_CHARACTERS")
    assert_problem(api.get("/v1/orders/by-client-id/x%00"), 400, "INVALID_CHARACTERS")


def test_a_query_parameter_given_twice_is_400_naming_it(api: Api) -> None:
    response = api.get("/v1/orders?symbol=AAPL&symbol=MSFT")
    assert_problem(response, 400, "REPEATED_QUERY_PARAMETER")
    assert "'symbol'" in response.json()["detail"]
    assert api.get("/v1/orders?symbol=AAPL&status=new").status_code == 200  # distinct keys are fine
