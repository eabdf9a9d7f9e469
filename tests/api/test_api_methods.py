"""A method a resource does not take is 405, and its ``Allow`` lists every method the resource does take
(RFC 9110 15.5.6), checked for every path of every HTTP route of the app."""

from __future__ import annotations

import re
from collections import defaultdict

from fastapi.routing import iter_route_contexts

from tests.api.conftest import Api

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def methods_by_path(app: object) -> dict[str, set[str]]:
    """Each HTTP route path of the app (its parameters filled in) with the methods of all routes there."""
    taken: dict[str, set[str]] = defaultdict(set)
    for route in iter_route_contexts(app.routes):  # type: ignore[attr-defined]
        if route.methods and route.path_format:  # WebSocket routes have no methods
            taken[re.sub(r"\{[^}]+\}", "x", route.path_format)] |= set(route.methods)
    return dict(taken)


def test_every_method_a_path_does_not_take_is_405_listing_every_method_it_takes(api: Api) -> None:
    paths = methods_by_path(api.client.app)
    assert paths["/v1/orders"] == {"GET", "POST"} and paths["/v1/orders/x"] == {"GET", "DELETE"}
    for path, taken in paths.items():
        for method in sorted(set(METHODS) - taken):
            response = api.client.request(method, path, headers=api.headers())
            assert response.status_code == 405, (method, path, response.status_code)
            assert set(response.headers["allow"].split(", ")) == taken, (method, path, response.headers["allow"])
            if method != "HEAD":
                assert response.json()["code"] == "METHOD_NOT_ALLOWED"
