"""The resumable order-event stream over Server-Sent Events and WebSocket (same auth, scoping and resume)."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import anyio
from fastapi import APIRouter, Header, Query, Request, WebSocket
from starlette.responses import StreamingResponse
from starlette.websockets import WebSocketDisconnect

from oms.api.deps import ApiState, Reader, State, StreamKeyCheck, get_principal, require_read
from oms.api.events import HEARTBEAT, event_json, event_stream, iter_events, latest_sequence
from oms.api.keys import Principal
from oms.api.problems import Problem, close_websocket, not_found
from oms.api.responses import problems

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

    Each SSE ``id`` is the event's sequence number (increasing, in commit order across all your accounts);
    reconnect with it to lose nothing. Without either, the stream starts from now. ``account_seq`` numbers
    each account's events 1, 2, 3, ... without gaps. The stream ends once the key is revoked or no longer
    reads these accounts.
    """
    accounts = _accounts(principal, account)
    resume = since
    if resume is None and last_event_id:
        if not last_event_id.isdigit() or len(last_event_id) > 18:
            raise Problem(400, "INVALID_LAST_EVENT_ID", "Last-Event-ID must be a sequence number this stream sent")
        resume = int(last_event_id)
    if resume is None:
        resume = await _latest(state, accounts)
    key_check = StreamKeyCheck(state, request.headers.get("authorization"), accounts)

    async def stopped() -> bool:
        return await request.is_disconnected() or not await key_check.allows()

    stream = event_stream(state.database, state.hub, accounts, resume, stopped, state.poll_interval_s, state.heartbeat_s)
    return StreamingResponse(stream, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})  # fmt: skip


async def _latest(state: State, accounts: list[str]) -> int:
    """The newest sequence number of ``accounts``: where a stream without a resume point starts."""

    def query() -> int:
        with state.database.engine.connect() as connection:
            return latest_sequence(connection, accounts)

    return await anyio.to_thread.run_sync(query)


@router.websocket("/events/ws")
async def events_ws(websocket: WebSocket, since: str | None = None, account: str | None = None) -> None:
    """The same events over WebSocket: one JSON text message per event (``{"type": "event", ...}``), a
    ``{"type": "heartbeat"}`` after a silence. Auth is the same ``Authorization: Bearer KEY`` header; a
    refusal closes the connection with code 4000 + the HTTP status (4401, 4403, 4404, 4400) and the problem
    code as the reason; so does a key that is revoked, or loses the read scope or the account, while the
    stream is open."""
    state: ApiState = websocket.app.state.api
    try:
        principal = await get_principal(state, websocket.headers.get("authorization"))
        require_read(principal)
        resume = _sequence(since)
        accounts = _accounts(principal, account)
        if resume is None:
            resume = await _latest(state, accounts)
    except Problem as problem:
        await close_websocket(websocket, problem)
        return
    await websocket.accept()
    gone = asyncio.Event()

    async def watch() -> None:  # the client only ever closes; anything it sends is ignored
        try:
            while True:
                if (await websocket.receive())["type"] == "websocket.disconnect":
                    break
        finally:
            gone.set()

    watcher = asyncio.create_task(watch())

    key_check = StreamKeyCheck(state, websocket.headers.get("authorization"), accounts)

    async def stopped() -> bool:
        return gone.is_set() or not await key_check.allows()

    try:
        async for event in iter_events(state.database, state.hub, accounts, resume, stopped, state.poll_interval_s, state.heartbeat_s):
            message = {"type": "heartbeat"} if event is HEARTBEAT else {"type": "event", **event_json(event)}
            await websocket.send_text(json.dumps(message, separators=(",", ":")))
        if key_check.refusal is not None:
            await close_websocket(websocket, key_check.refusal)
    except (WebSocketDisconnect, RuntimeError):
        pass  # the client went away mid-send
    finally:
        watcher.cancel()


def _sequence(since: str | None) -> int | None:
    """The WebSocket's ``since``, parsed here rather than by FastAPI: its refusal would be a bare HTTP 403
    handshake instead of close code 4400. ASCII digits only (``str.isdigit`` takes any Unicode digit)."""
    if since is None:
        return None
    if not (since.isascii() and since.isdigit() and len(since) <= 19 and int(since) <= 2**62):
        raise Problem(400, "INVALID_SINCE", "since must be a sequence number this stream sent")
    return int(since)


def _accounts(principal: Principal, account: str | None) -> list[str]:
    if account is not None and account not in principal.accounts:
        raise not_found(f"account {account}")
    return [account] if account else sorted(principal.accounts)
