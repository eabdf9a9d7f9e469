"""Refuse a query parameter given twice, before routing.

FastAPI binds a scalar query parameter to the last of several values, so `?symbol=AAPL&symbol=MSFT` would
quietly list MSFT orders. No route here takes a list in the query, so any repeated key is a malformed
request: 400 with a problem body naming the parameter (a WebSocket closes with 4400), instead of a guess.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from oms.api.problems import Problem, close_websocket


def repeated_key(query_string: bytes) -> str | None:
    """The first query key that appears more than once, if any."""
    seen: set[str] = set()
    for key, _ in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if key in seen:
            return key
        seen.add(key)
    return None


class RefuseRepeatedQuery:
    """ASGI middleware: `REPEATED_QUERY_PARAMETER` for a request with a repeated query key: 400 over HTTP, close
    code 4400 on a WebSocket (4000 + the HTTP status, as every WebSocket refusal)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = scope.get("query_string", b"") if scope["type"] in ("http", "websocket") else b""
        key = repeated_key(query) if b"&" in query else None
        if key is None:
            await self.app(scope, receive, send)
            return
        problem = Problem(400, "REPEATED_QUERY_PARAMETER", f"query parameter {key!r} is given more than once")
        if scope["type"] == "websocket":
            await close_websocket(WebSocket(scope, receive, send), problem)
        else:
            await problem.response()(scope, receive, send)
