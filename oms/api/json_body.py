"""Request bodies are JSON or refused: the route class every router with a body uses.

FastAPI reads a body as JSON only when its Content-Type says JSON; otherwise it hands the raw bytes to
validation, so a well-formed order sent as ``text/plain`` (or with no Content-Type) was a 422 "Input should
be a valid dictionary". That is a 415: the content is fine, its declared type is not one we take.

JSON itself leaves an object that names a member twice to the parser (RFC 8259 4); Python's keeps the last
value, so ``{"symbol": "AAPL", "symbol": "ZZZZ"}`` would trade ZZZZ while a log or proxy reading the first
showed AAPL. ``parse_json`` refuses it as malformed JSON (400), for the routes and the placement fast path.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from oms.api.problems import Problem
from oms.api.responses import problems


def parse_json(body: bytes) -> Any:
    """``json.loads``, except that an object naming a member twice is a 400 ``MALFORMED_JSON`` problem."""
    return json.loads(body, object_pairs_hook=_unique_members)


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members = dict(pairs)
    if len(members) != len(pairs):
        (name, _count), = Counter(name for name, _ in pairs).most_common(1)
        raise Problem(400, "MALFORMED_JSON", f"the member {name!r} appears twice in one JSON object")
    return members


class JsonRequest(Request):
    """A request whose ``json()`` is :func:`parse_json` (FastAPI reads JSON bodies through it)."""

    async def json(self) -> Any:
        if not hasattr(self, "_document"):
            self._document = parse_json(await self.body())
        return self._document


def is_json(content_type: str | None) -> bool:
    """``application/json`` or ``application/*+json``, parameters (``charset``) aside: what FastAPI parses."""
    if not content_type:
        return False
    maintype, _, subtype = content_type.partition(";")[0].strip().lower().partition("/")
    return maintype == "application" and (subtype == "json" or subtype.endswith("+json"))


class JsonBodyRoute(APIRoute):
    """An ``APIRoute`` that answers 415 for a non-empty body whose Content-Type is not JSON (or missing),
    before FastAPI reads it, and says so in its OpenAPI responses; a JSON body is read with
    :func:`parse_json`. An empty body goes on, to be named as missing by validation (422)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        if self.body_field is not None:
            self.responses = {**self.responses, **problems(415)}

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler

        async def json_only(request: Request) -> Response:
            request = JsonRequest(request.scope, request.receive)
            if not is_json(request.headers.get("content-type")) and await request.body():
                raise Problem(415, "UNSUPPORTED_MEDIA_TYPE", "send the request body as application/json")
            return await handler(request)

        return json_only
