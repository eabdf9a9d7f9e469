"""The OpenAPI document says what the server does: bearer auth as a security scheme, every answer a write
can give, and the Idempotency-Key rules the server enforces."""

from __future__ import annotations

import re
from typing import Any

import pytest

from oms.api.app import ApiSettings, create_app

WRITES = ("post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return create_app(ApiSettings(database_url="sqlite://")).openapi()


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, operation) for path, item in document["paths"].items() for method, operation in item.items()]


def test_bearer_auth_is_a_security_scheme_required_by_every_operation_but_health(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert [scheme["type"] for scheme in schemes.values()] == ["http"]
    (name, scheme), = schemes.items()
    assert scheme["scheme"] == "bearer"
    for method, path, operation in operations(document):
        assert operation.get("security") == (None if path == "/v1/health" else [{name: []}]), (method, path)
        # OpenAPI 3.1 ignores a header parameter named Authorization: the scheme is the only description.
        assert not [p for p in operation.get("parameters", []) if p["in"] == "header" and p["name"].lower() == "authorization"]


def test_placing_documents_the_200_of_an_identical_resubmission(document: dict[str, Any]) -> None:
    responses = document["paths"]["/v1/orders"]["post"]["responses"]
    assert responses["201"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/OrderOut"}
    assert responses["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/OrderOut"}
    assert "client_order_id" in responses["200"]["description"]


def test_every_write_documents_413_and_the_idempotency_key_rules(document: dict[str, Any]) -> None:
    writes = [(method, path, operation) for method, path, operation in operations(document) if method in WRITES]
    assert len(writes) == 6
    for method, path, operation in writes:
        assert "413" in operation["responses"], (method, path)
        (key,) = [p for p in operation["parameters"] if p["name"] == "Idempotency-Key"]
        assert key["in"] == "header" and not key.get("required", False)
        schema = key["schema"]
        assert (schema["minLength"], schema["maxLength"]) == (1, 128), (method, path)
        printable_ascii = re.compile(schema["pattern"])
        assert printable_ascii.search("k-1 ~!") and not printable_ascii.search("k\t1") and not printable_ascii.search("\u00e9")
