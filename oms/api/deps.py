"""Typed request dependencies: the app's state, the caller (API key), scopes, Idempotency-Key, body hash."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Header, Request

from oms.api import keys
from oms.api.batcher import WriteBatcher
from oms.api.events import EventHub
from oms.api.idempotency import check_key, request_fingerprint
from oms.api.keys import Principal, Scope
from oms.api.principals import PrincipalCache
from oms.api.problems import Problem
from oms.api.ratelimit import RateLimiter
from oms.api.writes import WriteContext
from oms.service.orders import ServiceConfig
from oms.service.uow import Database

KEY_CACHE_TTL_S = 5.0  # a revoked key stops working within this time


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
    principals: PrincipalCache = field(init=False)

    def __post_init__(self) -> None:
        self.principals = PrincipalCache(functools.partial(keys.lookup, self.database), ttl_s=KEY_CACHE_TTL_S)


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
    principal = await state.principals.resolve(key.strip())
    if principal is None:
        raise Problem(401, "INVALID_API_KEY", "unknown or revoked API key", headers=_UNAUTHORIZED)
    return principal


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
