"""Request bodies are JSON or refused: the route class every router with a body uses.

FastAPI reads a body as JSON only when its Content-Type says JSON; otherwise it hands the raw bytes to
validation, so a well-formed order sent as ``text/plain`` (or with no Content-Type) was a 422 "Input should
be a valid dictionary". That is a 415: the content is fine, its declared type is not one we take.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from oms.api.problems import Problem
from oms.api.responses import problems


def is_json(content_type: str | None) -> bool:
    """``application/json`` or ``application/*+json``, parameters (``charset``) aside: what FastAPI parses."""
    if not content_type:
        return False
    maintype, _, subtype = content_type.partition(";")[0].strip().lower().partition("/")
    return maintype == "application" and (subtype == "json" or subtype.endswith("+json"))


class JsonBodyRoute(APIRoute):
    """An ``APIRoute`` that answers 415 for a non-empty body whose Content-Type is not JSON (or missing),
    before FastAPI reads it, and says so in its OpenAPI responses. An empty body goes on, to be named as
    missing by validation (422)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        if self.body_field is not None:
            self.responses = {**self.responses, **problems(415)}

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler

        async def json_only(request: Request) -> Response:
            if not is_json(request.headers.get("content-type")) and await request.body():
                raise Problem(415, "UNSUPPORTED_MEDIA_TYPE", "send the request body as application/json")
            return await handler(request)

        return json_only
