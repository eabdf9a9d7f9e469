"""RFC 9457 problem details: every refusal the API gives, with the reason codes FIX clients also see.

A ``Problem`` is raised anywhere in a request and rendered by the app's exception handler as
``application/problem+json``. Denials from the OMS keep their closed ``ReasonCode`` (``code``) and their
``REASON_CODE: k=v`` text (``detail``), so REST and FIX clients read the same refusal the same way.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse
from starlette.websockets import WebSocket, WebSocketState

from oms.domain.risk import Denial, ReasonCode

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "urn:oms:problem:"

# HTTP status of each OMS denial; everything not listed is 422 (a well-formed request we refuse).
_DENIAL_STATUS: dict[ReasonCode, int] = {
    ReasonCode.UNKNOWN_ORDER: 404,
    ReasonCode.UNKNOWN_ACCOUNT: 404,
    ReasonCode.DUPLICATE_CL_ORD_ID: 409,
    ReasonCode.ORDER_NOT_CANCELABLE: 409,
    ReasonCode.ORDER_ALREADY_PENDING: 409,
    ReasonCode.RATE_LIMITED: 429,
    ReasonCode.VENUE_UNAVAILABLE: 503,
    ReasonCode.VENUE_RECOVERING: 503,
}

_TITLES: dict[int, str] = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Unprocessable request",
    429: "Too many requests",
    503: "Service unavailable",
}


class Problem(Exception):
    """An HTTP refusal with a machine-readable ``code`` (upper-case, like the FIX reason codes)."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_TYPE_BASE + self.code.lower(),
            "title": _TITLES.get(self.status, "Error"),
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extra)
        return body

    def response(self) -> JSONResponse:
        return problem_response(self.status, self.body(), self.headers)


async def close_websocket(websocket: WebSocket, problem: Problem) -> None:
    """End a WebSocket with ``problem``: close code 4000 + its HTTP status, its ``code`` as the reason. A
    connection still in its handshake is accepted first: a refused handshake could only say 403."""
    if websocket.client_state is WebSocketState.CONNECTING:
        await websocket.accept()
    await websocket.close(code=4000 + problem.status, reason=problem.code)


def problem_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def from_denial(denial: Denial, **extra: Any) -> Problem:
    """The problem for an OMS denial: same reason code and text as the FIX reject."""
    status = _DENIAL_STATUS.get(denial.reason, 422)
    return Problem(status, denial.reason.name, str(denial), extra=extra)


def not_found(what: str) -> Problem:
    """Unknown and not-yours look the same, so ids of other accounts cannot be probed."""
    return Problem(404, "NOT_FOUND", f"{what} not found")
