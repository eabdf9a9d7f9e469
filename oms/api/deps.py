"""Typed request dependencies: the app's state, the caller (API key), scopes, Idempotency-Key, body hash."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import anyio
from fastapi import Depends, Header, Request

from oms.api import keys
from oms.api.events import EventHub
from oms.api.idempotency import check_key, request_fingerprint
from oms.api.keys import Principal, Scope
from oms.api.problems import Problem
from oms.api.ratelimit import RateLimiter
from oms.api.batcher import WriteBatcher
from oms.api.writes import WriteContext
from oms.service.orders import ServiceConfig
from oms.service.uow import Database

KEY_CACHE_TTL_S = 5.0
_MISS = object()


@dataclass
class ApiState:
    """Everything a request needs, built once by ``create_app``."""

    database: Database
    config: ServiceConfig
    hub: EventHub
    limiter: RateLimiter
    batcher: WriteBatcher | None = None  # started with the app (lifespan)
    poll_interval_s: float = 1.0
    heartbeat_s: float = 15.0
    lifespans: int = 0  # lifespans entered and not yet left: only the first starts, only the last stops
    _key_cache: dict[str, tuple[float, Principal | None]] = field(default_factory=dict)
    _key_lock: threading.Lock = field(default_factory=threading.Lock)

    def cached_principal(self, key: str) -> Principal | None | object:
        """The cached lookup of ``key``, or ``_MISS`` (the caller then queries off the event loop)."""
        with self._key_lock:
            cached = self._key_cache.get(keys.digest(key))
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        return _MISS

    def principal_for(self, key: str) -> Principal | None:
        """Key lookups are cached for a few seconds: a revocation takes effect within ``KEY_CACHE_TTL_S``."""
        now = time.monotonic()
        hashed = keys.digest(key)
        with self._key_lock:
            cached = self._key_cache.get(hashed)
        if cached is not None and cached[0] > now:
            return cached[1]
        principal = keys.lookup(self.database, key)
        with self._key_lock:
            if len(self._key_cache) > 10_000:
                self._key_cache.clear()
            self._key_cache[hashed] = (now + KEY_CACHE_TTL_S, principal)
        return principal


async def get_state(request: Request) -> ApiState:
    return request.app.state.api  # type: ignore[no-any-return]


State = Annotated[ApiState, Depends(get_state)]

_UNAUTHORIZED = {"WWW-Authenticate": 'Bearer realm="oms"'}


async def get_principal(
    state: State,
    authorization: Annotated[str | None, Header(description="Bearer API key")] = None,
) -> Principal:
    principal = await authenticate(state, authorization)
    state.limiter.check(principal.key_id)
    return principal


async def authenticate(state: ApiState, authorization: str | None) -> Principal:
    """The caller named by an ``Authorization`` header, or a 401 problem (the rate limit is not checked here)."""
    if not authorization:
        raise Problem(401, "MISSING_API_KEY", "send the API key as 'Authorization: Bearer KEY'", headers=_UNAUTHORIZED)
    scheme, _, key = authorization.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Problem(401, "INVALID_API_KEY", "the Authorization header must be 'Bearer KEY'", headers=_UNAUTHORIZED)
    principal = state.cached_principal(key.strip())
    if principal is _MISS:
        principal = await anyio.to_thread.run_sync(state.principal_for, key.strip())
    if principal is None:
        raise Problem(401, "INVALID_API_KEY", "unknown or revoked API key", headers=_UNAUTHORIZED)
    return principal  # type: ignore[return-value]


def require(scope: Scope) -> Callable[..., Any]:
    async def dependency(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if not principal.may(scope):
            raise Problem(403, "MISSING_SCOPE", f"this API key lacks the '{scope.value}' scope")
        return principal

    return dependency


Reader = Annotated[Principal, Depends(require(Scope.READ))]
Trader = Annotated[Principal, Depends(require(Scope.TRADE))]
Funder = Annotated[Principal, Depends(require(Scope.FUND))]
Admin = Annotated[Principal, Depends(require(Scope.ADMIN))]


async def get_idempotency_key(
    idempotency_key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", description="Replays the first response for 24 hours; reuse with another body is 422."),
    ] = None,
) -> str | None:
    return None if idempotency_key is None else check_key(idempotency_key)


IdempotencyKey = Annotated[str | None, Depends(get_idempotency_key)]


async def get_fingerprint(request: Request) -> str:
    body = await request.body()
    return request_fingerprint(request.method, request.url.path, body)


Fingerprint = Annotated[str, Depends(get_fingerprint)]


def write_context(state: ApiState, principal: Principal) -> WriteContext:
    if state.batcher is None:
        raise Problem(503, "NOT_READY", "the API is starting or stopping", headers={"Retry-After": "1"})
    return WriteContext(state.database, state.config, principal, state.hub.notify, state.batcher)
