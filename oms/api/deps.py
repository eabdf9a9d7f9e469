"""Typed request dependencies: the app's state, the caller (API key), scopes, Idempotency-Key, body hash."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import structlog
from fastapi import Depends, Header, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from oms.api import keys
from oms.api.batcher import WriteBatcher
from oms.api.events import EventHub
from oms.api.idempotency import MAX_KEY_LENGTH, check_key, request_fingerprint
from oms.api.keys import Principal, Scope
from oms.api.principals import PrincipalCache
from oms.api.problems import Problem, not_found
from oms.api.ratelimit import RateLimiter
from oms.api.writes import WriteContext
from oms.service.orders import ServiceConfig
from oms.service.uow import Database

log = structlog.get_logger(__name__)

KEY_CACHE_TTL_S = 5.0  # a revoked key stops working within this time
KEY_RECHECK_S = 1.0  # how often an open event stream asks the key cache again


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


_BEARER = HTTPBearer(scheme_name="bearer", description="An API key: `Authorization: Bearer omsk_...`.", auto_error=False)


async def authorization_header(
    request: Request, _declared: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)]
) -> str | None:
    """The raw Authorization header. ``_BEARER`` declares the scheme in the OpenAPI document (``security``
    on each operation; OpenAPI 3.1 ignores a header parameter named Authorization), while ``authenticate``
    parses the header, so every refusal stays a 401 problem body."""
    return request.headers.get("authorization")


async def get_principal(state: State, authorization: Annotated[str | None, Depends(authorization_header)]) -> Principal:
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


def require_read(principal: Principal) -> None:
    if not principal.may(Scope.READ):
        raise Problem(403, "MISSING_SCOPE", "this API key lacks the 'read' scope")


def stream_allowed(principal: Principal, accounts: list[str]) -> None:
    """Refuse (403, 404) a stream of ``accounts`` that ``principal`` may not read."""
    require_read(principal)
    for account in accounts:
        if account not in principal.accounts:
            raise not_found(f"account {account}")


class StreamKeyCheck:
    """Re-checks an open event stream's API key, so that a revocation ends streams as it ends requests.

    A stream is authorized when it opens and may then run for days. Every ``interval_s`` its key is resolved
    again through the principal cache (no database read while the entry is fresh, so a revocation is seen
    within the cache's TTL) and must still be known, hold ``read`` and act for every streamed account.
    ``refusal`` is then the problem a new request would get.
    """

    def __init__(self, state: ApiState, authorization: str | None, accounts: list[str], interval_s: float = KEY_RECHECK_S) -> None:
        self._state = state
        self._authorization = authorization
        self._accounts = accounts
        self._interval_s = interval_s
        self._next_check_at = time.monotonic() + interval_s
        self.refusal: Problem | None = None

    async def allows(self) -> bool:
        """False once the key no longer allows the stream (and from then on)."""
        if self.refusal is None and time.monotonic() >= self._next_check_at:
            self.refusal = await self._recheck()
            self._next_check_at = time.monotonic() + self._interval_s
        return self.refusal is None

    async def _recheck(self) -> Problem | None:
        try:
            stream_allowed(await authenticate(self._state, self._authorization), self._accounts)
        except Problem as problem:
            return problem
        except Exception as error:  # noqa: BLE001 - a key we cannot check is not trusted: the client reconnects
            log.warning("stream_key_recheck_failed", error=repr(error))
            return Problem(503, "KEY_CHECK_FAILED", "the API key could not be checked again; reconnect")
        return None


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


def _idempotency_key_schema(schema: dict[str, Any]) -> None:
    """What ``check_key`` enforces, documented (enforced there, it is a 400 problem rather than FastAPI's 422);
    a header is a string or absent, never null."""
    schema.pop("anyOf", None)
    schema.update(type="string", minLength=1, maxLength=MAX_KEY_LENGTH, pattern=r"^[\x20-\x7E]+$")


async def get_idempotency_key(
    request: Request,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description=f"1 to {MAX_KEY_LENGTH} printable ASCII characters, one per request (else 400). Replays the "
            "first response for 24 hours; 409 while the first request runs; reuse with another request is 422.",
            json_schema_extra=_idempotency_key_schema,
        ),
    ] = None,
) -> str | None:
    """The request's Idempotency-Key, checked. Two of them are refused: taking either would guess which one
    the client's retries will send."""
    if len(request.headers.getlist("idempotency-key")) > 1:
        raise Problem(400, "INVALID_IDEMPOTENCY_KEY", "send one Idempotency-Key header, not several")
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
