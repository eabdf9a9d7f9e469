"""``create_app``: the FastAPI application over one OMS database.

Routes only translate HTTP to OMS service functions and read-side queries. Everything that can go wrong
with a request becomes an RFC 9457 problem body: malformed JSON is 400, a well-formed request we refuse
422 (or the status of its reason), a body over ``max_body_bytes`` 413; only a real fault is a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from oms.api import idempotency
from oms.api.batcher import WriteBatcher
from oms.api.deps import ApiState
from oms.api.events import EventHub
from oms.api.place_fast_path import PlaceOrderFastPath
from oms.api.problems import Problem, problem_response
from oms.api.query_guard import RefuseRepeatedQuery
from oms.api.ratelimit import RateLimit, RateLimiter
from oms.api.responses import RETRY_AFTER_S
from oms.api.routes_accounts import router as accounts_router
from oms.api.routes_events import router as events_router
from oms.api.routes_market import router as market_router
from oms.api.routes_orders import router as orders_router
from oms.db.errors import database_unavailable, first_line
from oms.service.orders import ServiceConfig
from oms.service.uow import Database

log = structlog.get_logger(__name__)

DESCRIPTION = """REST facade of the OMS for retail app backends.

* **Auth**: `Authorization: Bearer KEY` (create keys with `oms api-keys create ACCOUNT --scope ...`).
  Scopes: `read`, `trade`, `fund`, `admin`. Another account's data is a 404.
* **Decimals** travel as JSON strings both ways (`"10.5"`), never numbers.
* **Idempotency**: every write accepts `Idempotency-Key`; the same key and body replays the first response
  (header `Idempotent-Replayed: true`) for 24 h, 409 while the first is running, 422 with another body.
* **Errors** are `application/problem+json` with a `code` (the same reason codes FIX rejects carry).
* **Rate limit**: a burst limit per API key answers 429 with `Retry-After`.
* **Events**: `GET /v1/events` (Server-Sent Events) and `GET /v1/events/ws` (WebSocket, JSON text messages),
  resumable with `?since=N` (or SSE `Last-Event-ID`); each event has `sequence` (the cursor) and `account_seq`.
"""


@dataclass(frozen=True, slots=True)
class ApiSettings:
    database_url: str
    redis_url: str | None = None
    rate_limit: RateLimit = RateLimit()
    max_body_bytes: int = 64 * 1024
    poll_interval_s: float = 1.0
    heartbeat_s: float = 15.0
    purge_interval_s: float = 600.0


def create_app(
    source: ApiSettings | Database,
    *,
    config: ServiceConfig | None = None,
    redis_url: str | None = None,
    rate_limit: RateLimit | None = None,
    max_body_bytes: int | None = None,
    poll_interval_s: float | None = None,
    heartbeat_s: float | None = None,
    tail_events: bool = True,
) -> FastAPI:
    """The API over ``source`` (settings, or an open ``Database`` that the caller keeps owning).

    With Redis, this process XADDs the events of its own commits to the Redis Stream, and ``tail_events``
    lets it also tail ``order_events`` into the stream (one tailer at a time across processes) for writers
    that do not publish themselves (turn it off once every writer has the ``on_commit`` hook).
    """
    if isinstance(source, Database):
        settings = ApiSettings(database_url=str(source.engine.url), redis_url=redis_url)
        database, owns_database = source, False
    else:
        settings = source
        database, owns_database = Database.from_url(settings.database_url), True
    database.notify_outbox = True  # the gateway's process sends what this one commits: wake it at once
    redis = redis_url if redis_url is not None else settings.redis_url
    state = ApiState(
        database=database,
        config=config or ServiceConfig(),
        hub=EventHub(redis, database, tail=tail_events),
        limiter=RateLimiter(rate_limit or settings.rate_limit, redis),
        poll_interval_s=poll_interval_s if poll_interval_s is not None else settings.poll_interval_s,
        heartbeat_s=heartbeat_s if heartbeat_s is not None else settings.heartbeat_s,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Test clients (schemathesis' ASGI transport) may enter the lifespan again while it runs: count.
        state.lifespans += 1
        if state.lifespans > 1:
            try:
                yield
            finally:
                state.lifespans -= 1
            return
        await state.hub.start()
        state.batcher = WriteBatcher(database, on_commit=state.hub.published(), config=state.config)
        purger = asyncio.create_task(_purge_loop(database, settings.purge_interval_s))
        try:
            yield
        finally:
            state.lifespans -= 1
            purger.cancel()
            await state.hub.stop()
            batcher, state.batcher = state.batcher, None
            await anyio.to_thread.run_sync(batcher.close)
            if owns_database:
                database.dispose()

    app = FastAPI(title="OMS REST API", version="1", description=DESCRIPTION, lifespan=lifespan)
    app.state.api = state
    for router in (accounts_router, orders_router, market_router, events_router):
        app.include_router(router)
    _install_error_handlers(app)
    app.add_middleware(PlaceOrderFastPath, state=state)  # innermost: after the NUL and body-size checks
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes or settings.max_body_bytes)
    app.add_middleware(RefuseNul)
    app.add_middleware(RefuseRepeatedQuery)

    @app.get("/v1/health", tags=["operations"])
    def health() -> dict[str, str]:
        """Liveness without auth."""
        return {"status": "ok"}

    return app


async def _purge_loop(database: Database, interval_s: float) -> None:
    """Forget idempotency keys older than their 24 h lifetime."""
    while True:
        try:
            await anyio.to_thread.run_sync(idempotency.purge_expired, database, datetime.now(UTC))
        except Exception as error:  # noqa: BLE001 - try again next round
            log.warning("idempotency_purge_failed", error=str(error))
        await asyncio.sleep(interval_s)


def _field(location: tuple[Any, ...]) -> str:
    parts = [str(part) for part in location]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] if len(parts) > 1 else parts
    return ".".join(parts)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def on_problem(_request: Request, problem: Problem) -> JSONResponse:
        return problem.response()

    @app.exception_handler(RequestValidationError)
    async def on_invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        details = error.errors()
        if any(item.get("type") == "json_invalid" for item in details):
            return Problem(400, "MALFORMED_JSON", "the request body is not valid JSON").response()
        errors = [{"field": _field(tuple(item.get("loc", ()))), "message": str(item.get("msg", "invalid"))} for item in details]
        summary = "; ".join(f"{item['field']}: {item['message']}" for item in errors[:5])
        return Problem(422, "VALIDATION_FAILED", summary or "invalid request", errors=errors).response()

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        if isinstance(error.__cause__, Problem):  # e.g. BodyLimit refusing a chunked body FastAPI was reading
            return error.__cause__.response()
        code = {400: "MALFORMED_JSON", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(error.status_code, "HTTP_ERROR")
        headers = dict(error.headers or {})
        if error.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request.app.routes, request.scope))
        return Problem(error.status_code, code, str(error.detail), headers=headers).response()

    @app.exception_handler(RecursionError)
    async def on_too_deep(_request: Request, _error: RecursionError) -> JSONResponse:
        return Problem(400, "MALFORMED_JSON", "the request body is nested too deeply").response()

    @app.exception_handler(Exception)
    async def on_fault(request: Request, error: Exception) -> JSONResponse:
        log.exception("api_unhandled_error", path=request.url.path)
        return problem_response(500, {"type": "urn:oms:problem:internal_error", "title": "Internal error", "status": 500,
                                      "detail": "an internal error occurred; nothing was changed unless the request replays", "code": "INTERNAL_ERROR"})  # fmt: skip

    @app.exception_handler(DBAPIError)
    async def on_database_error(request: Request, error: DBAPIError) -> JSONResponse:
        """A database that cannot be reached is "not now" (503 with Retry-After), not a fault of ours. Handled
        here rather than by ``on_fault``, whose middleware re-raises: uvicorn would print a traceback per
        request and drop the client's keep-alive connection."""
        if not database_unavailable(error):
            return await on_fault(request, error)
        log.warning("api_database_unavailable", path=request.url.path, error=first_line(error))
        return Problem(503, "DATABASE_UNAVAILABLE", "the database cannot be reached; retry later",
                       headers={"Retry-After": RETRY_AFTER_S}).response()


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(routes: Sequence[BaseRoute], scope: Scope) -> list[str]:
    """Every method some route takes at the request's path.

    The router's own 405 names the methods of the first route whose path matched (``PATCH /v1/orders``
    said ``Allow: POST``, hiding GET); RFC 9110 15.5.6 requires all of them. Each method is tried as the
    router would route it, so this stays true whatever routes are added.
    """

    def taken(method: str) -> bool:
        probe: Scope = {"type": "http", "method": method, "path": scope["path"], "root_path": scope.get("root_path", ""),
                        "headers": []}  # fmt: skip
        return any(route.matches(probe)[0] is Match.FULL for route in routes)

    return [method for method in _METHODS if taken(method)]


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413 before any route reads them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.max_bytes:
                    await _too_large(self.max_bytes, scope, receive, send)
                    return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise Problem(413, "BODY_TOO_LARGE", f"request bodies are limited to {self.max_bytes} bytes")
            return message

        await self.app(scope, limited, send)


class RefuseNul:
    """Refuse NUL characters in the path or query string with 400: no identifier has one, and PostgreSQL
    rejects them in text (a DataError that would otherwise surface as a 500)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query = scope.get("query_string", b"").lower()
            if "\x00" in scope.get("path", "") or b"%00" in query or b"\x00" in query:
                response = Problem(400, "INVALID_CHARACTERS", "NUL characters are not allowed in the path or query").response()
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _too_large(max_bytes: int, scope: Scope, receive: Receive, send: Send) -> None:
    response = Problem(413, "BODY_TOO_LARGE", f"request bodies are limited to {max_bytes} bytes").response()
    await response(scope, receive, send)
