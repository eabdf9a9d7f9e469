"""Loopback control endpoint of a running venue: one JSON object per line in, one JSON reply per line out.

Used by `oms exchange fault ...` and by tests to inject faults while the venue runs. It binds to a loopback
address only (config refuses anything else) and has no authentication: it is a test/drill tool.

Requests: {"command": "reject"|"drop"|"delay"|"duplicate"|"disconnect", "count": N, "delay_ms": M}
          {"command": "omit-trade", "exec_id": E}   {"command": "bust", "trade_id": T | "exec_id": E}
          {"command": "correct", "trade_id": T | "exec_id": E, "qty": "Q", "price": "P"}
          {"command": "status"}  {"command": "clear"}  {"command": "step"}  {"command": "end-of-day"}
"""

from __future__ import annotations

import json
import logging
import socket
import socketserver
import threading
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from exchange.engine.types import TradeActionRejected, TradeBusted, TradeCorrected
from exchange.faults import FaultError, FaultKnob
from exchange.service import VenueService

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 4096
Reply = dict[str, Any]


class ControlError(ValueError):
    """A control request is malformed; reported back as {"ok": false, "error": ...}."""


def handle_request(service: VenueService, request: Any) -> Reply:
    """Apply one control request; the dispatch table is the protocol."""
    if not isinstance(request, dict) or not isinstance(request.get("command"), str):
        raise ControlError('expected {"command": ...}')
    handler = HANDLERS.get(request["command"])
    if handler is None:
        raise ControlError(f"unknown command {request['command']!r} (known: {sorted(HANDLERS)})")
    return handler(service, request)


def _arm(knob: FaultKnob) -> Callable[[VenueService, dict[str, Any]], Reply]:
    def arm(service: VenueService, request: dict[str, Any]) -> Reply:
        count = _int(request.get("count", 1), "count")
        delay = request.get("delay_ms")
        service.faults.arm(knob, count, _int(delay, "delay_ms") if delay is not None else None)
        return {"ok": True, "faults": service.faults.snapshot()}
    return arm


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ControlError(f"{name} must be a whole number")
    try:
        return int(value)
    except ValueError:
        raise ControlError(f"{name} must be a whole number") from None


def _decimal(value: Any, name: str) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ControlError(f"{name} must be a decimal") from None


def _string(request: dict[str, Any], name: str) -> str:
    value = request.get(name)
    if not isinstance(value, str) or not value:
        raise ControlError(f"{name} is required")
    return value


def _trade_result(events: list[Any]) -> Reply:
    rejected = [e for e in events if isinstance(e, TradeActionRejected)]
    if rejected:
        return {"ok": False, "error": rejected[0].text}
    return {"ok": True, "exec_ids": [str(e.seq) for e in events if isinstance(e, (TradeBusted, TradeCorrected))]}


def _trade_id(service: VenueService, request: dict[str, Any]) -> str:
    """Busts and corrections name a trade_id, or the exec_id of either side's fill."""
    if request.get("trade_id"):
        return _string(request, "trade_id")
    trade_id = service.trade_of_exec(_string(request, "exec_id"))
    if trade_id is None:
        raise ControlError(f"no trade for exec_id {request.get('exec_id')}")
    return trade_id


def _omit(service: VenueService, request: dict[str, Any]) -> Reply:
    """Like a bust, an ExecID the venue never issued is refused: omitting it would silently change nothing."""
    exec_id = _string(request, "exec_id")
    if service.trade_of_exec(exec_id) is None:
        raise ControlError(f"no trade for exec_id {exec_id}")
    service.faults.omit_trade(exec_id)
    return {"ok": True, "faults": service.faults.snapshot()}


def _clear(service: VenueService, request: dict[str, Any]) -> Reply:
    service.faults.clear()
    return {"ok": True, "faults": service.faults.snapshot()}


HANDLERS: dict[str, Callable[[VenueService, dict[str, Any]], Reply]] = {
    "reject": _arm(FaultKnob.REJECT),
    "drop": _arm(FaultKnob.DROP),
    "delay": _arm(FaultKnob.DELAY),
    "duplicate": _arm(FaultKnob.DUPLICATE),
    "disconnect": _arm(FaultKnob.DISCONNECT),
    "omit-trade": _omit,
    "bust": lambda service, request: _trade_result(service.bust_trade(_trade_id(service, request))),
    "correct": lambda service, request: _trade_result(service.correct_trade(
        _trade_id(service, request), _decimal(request.get("qty"), "qty"), _decimal(request.get("price"), "price"))),
    "status": lambda service, request: {"ok": True, "faults": service.faults.snapshot()},
    "clear": _clear,
    "step": lambda service, request: {"ok": True, "commands": service.step_market_maker()},
    "end-of-day": lambda service, request: {"ok": True, "events": len(service.end_of_day())},
}


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        service: VenueService = self.server.service  # type: ignore[attr-defined]
        while True:
            line = self.rfile.readline(MAX_LINE_BYTES + 1)
            if not line:
                return
            try:
                if len(line) > MAX_LINE_BYTES:
                    raise ControlError("line too long")
                reply = handle_request(service, json.loads(line))
            except (ControlError, FaultError, ValueError) as error:
                reply = {"ok": False, "error": str(error)}
            except Exception as error:  # the endpoint must outlive any one bad request
                log.exception("control request failed")
                reply = {"ok": False, "error": f"internal error: {error}"}
            self.wfile.write((json.dumps(reply) + "\n").encode())


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class ControlServer:
    """Threaded line server on host:port (port 0 picks a free one, see .port)."""

    def __init__(self, service: VenueService, host: str, port: int) -> None:
        self._server = _Server((host, port), _Handler)
        self._server.service = service  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, name="venue-control", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def send_control(host: str, port: int, request: dict[str, Any], timeout_s: float = 5.0) -> Reply:
    """Client side: one request, one reply."""
    with socket.create_connection((host, port), timeout=timeout_s) as connection:
        connection.sendall((json.dumps(request) + "\n").encode())
        buffer = b""
        while not buffer.endswith(b"\n"):
            chunk = connection.recv(65536)
            if not chunk:
                break
            buffer += chunk
    if not buffer:
        raise ConnectionError("control endpoint closed the connection without replying")
    reply: Reply = json.loads(buffer)
    return reply
