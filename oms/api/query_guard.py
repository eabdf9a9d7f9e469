"""Refuse a query parameter given twice, before routing.

FastAPI binds a scalar query parameter to the last of several values, so `?symbol=AAPL&symbol=MSFT` would
quietly list MSFT orders. No route here takes a list in the query, so any repeated key is a malformed
request: 400 with a problem body naming the parameter, instead of a guess.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from oms.api.problems import Problem


def repeated_key(query_string: bytes) -> str | None:
    """The first query key that appears more than once, if any."""
    seen: set[str] = set()
    for key, _ in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if key in seen:
            return key
        seen.add(key)
    return None


class RefuseRepeatedQuery:
    """ASGI middleware: 400 `REPEATED_QUERY_PARAMETER` for an HTTP request with a repeated query key."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = scope.get("query_string", b"") if scope["type"] == "http" else b""
        key = repeated_key(query) if b"&" in query else None
        if key is not None:
            problem = Problem(400, "REPEATED_QUERY_PARAMETER", f"query parameter {key!r} is given more than once")
            await problem.response()(scope, receive, send)
            return
        await self.app(scope, receive, send)
