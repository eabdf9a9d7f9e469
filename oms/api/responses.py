"""Turning stored write results into HTTP responses, and the OpenAPI description of problem answers."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from oms.api.idempotency import TRANSIENT_STATUSES, StoredResponse
from oms.api.problems import PROBLEM_MEDIA_TYPE
from oms.api.schemas import ProblemOut

REPLAY_HEADER = "Idempotent-Replayed"


RETRY_AFTER_S = "1"  # for an OMS refusal that says "not now" (429 RATE_LIMITED, 503 VENUE_UNAVAILABLE)


def respond(stored: StoredResponse, replayed: bool) -> JSONResponse:
    media_type = PROBLEM_MEDIA_TYPE if stored.status >= 400 else "application/json"
    headers = {REPLAY_HEADER: "true"} if replayed else {}
    if stored.status in TRANSIENT_STATUSES:
        headers["Retry-After"] = RETRY_AFTER_S
    return JSONResponse(stored.body, status_code=stored.status, media_type=media_type, headers=headers)


def ok(body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status)


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problem answers a route may give (always 400, 401, 403, 422 and 429)."""
    every = sorted({400, 401, 403, 422, 429, *statuses})
    return {status: {"model": ProblemOut, "content": {PROBLEM_MEDIA_TYPE: {}}} for status in every}
