"""The resumable order-event stream over Server-Sent Events."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Header, Query, Request
from sqlalchemy import func, select
from starlette.responses import StreamingResponse

from oms.api.deps import Reader, State
from oms.api.events import event_stream
from oms.api.problems import Problem, not_found
from oms.api.responses import problems
from oms.db.models import OrderEvent

router = APIRouter(prefix="/v1", tags=["events"])


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "SSE: one event per order/balance change"}, **problems(404)},
)
async def events(
    request: Request,
    state: State,
    principal: Reader,
    since: Annotated[int | None, Query(ge=0, le=2**62, description="Resume after this sequence number.")] = None,
    account: Annotated[str | None, Query(max_length=64)] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """Every order and balance event of your accounts after ``since`` (or ``Last-Event-ID``), then live ones.

    Each SSE ``id`` is the event's sequence number (increasing per account); reconnect with it to lose nothing.
    Without either, the stream starts from now.
    """
    if account is not None and account not in principal.accounts:
        raise not_found(f"account {account}")
    accounts = [account] if account else sorted(principal.accounts)
    resume = since
    if resume is None and last_event_id:
        if not last_event_id.isdigit() or len(last_event_id) > 18:
            raise Problem(400, "INVALID_LAST_EVENT_ID", "Last-Event-ID must be a sequence number this stream sent")
        resume = int(last_event_id)
    if resume is None:
        resume = await _latest(state, accounts)
    stream = event_stream(
        state.database, state.hub, accounts, resume, request.is_disconnected, state.poll_interval_s, state.heartbeat_s
    )
    return StreamingResponse(stream, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})  # fmt: skip


async def _latest(state: State, accounts: list[str]) -> int:
    """The newest sequence number of ``accounts``: where a stream without a resume point starts."""
    table = OrderEvent.__table__

    def query() -> int:
        with state.database.engine.connect() as connection:
            value = connection.execute(select(func.max(table.c.id)).where(table.c.account_id.in_(accounts))).scalar()
        return int(value or 0)

    return await anyio.to_thread.run_sync(query)
