"""The venue's core: turns FIX requests into engine commands and engine events into FIX replies.

FIX-library free (QuickFIX lives in fix_app.py); thread-safe. One lock (the journaled engine's) covers
journal append, matching, and handing the replies to the sender, so ExecutionReports leave in engine order
whichever thread (QuickFIX, market-maker timer, control endpoint) caused them. The sender must never
call back into the service.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import cast

from exchange import translate as tr
from exchange.engine.types import (
    BustTrade,
    Command,
    CorrectTrade,
    EndOfDay,
    Event,
    ReplaceOrder,
    SubmitOrder,
    TradeActionRejected,
    TradeBusted,
    TradeCorrected,
    typed_events,
)
from exchange.faults import FaultInjector, ReportFault
from exchange.journal import JournaledEngine
from exchange.market_data import MarketDataHub, MarketDataRequest, TopOfBook
from exchange.market_maker import MarketMaker
from exchange.trade_report import ExecIdIndex, TradeCaptureRequest, TradeRow, answer_capture_request, broker_rows

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SessionKey:
    """A venue FIX session, by value (QuickFIX's SessionID is not hashable in Python)."""

    begin_string: str
    venue_comp_id: str
    broker_comp_id: str

    @property
    def version(self) -> tr.FixVersion:
        return tr.FixVersion.from_begin_string(self.begin_string)


Sender = Callable[[SessionKey, tr.Outbound], None]
Disconnector = Callable[[SessionKey], None]
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class LocalIds:
    """ExecIDs for reports that are not engine events (status replies, pre-engine rejects). Time-based so
    they stay unique across restarts without touching the journal, and prefixed so they can never equal
    an engine ExecID (which is a bare number)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0

    def next(self, prefix: str) -> str:
        with self._lock:
            self._last = max(self._last + 1, time.time_ns())
            return f"{prefix}{self._last}"


class MarketMakerFeed:
    """Adapter around MarketMaker for a restartable venue: the market maker restarts from its seed with
    ClOrdIDs MM1, MM2... each run, which the journal already holds. We prefix its ClOrdIDs with a run tag
    (the engine seq at start, which only grows) and strip it from events fed back to it."""

    def __init__(self, maker: MarketMaker, run_tag: str) -> None:
        self.maker = maker
        self.owner = maker.config.owner
        self._prefix = f"{run_tag}."

    def step(self, now: datetime) -> list[Command]:
        out: list[Command] = []
        for command in self.maker.step(now):
            if isinstance(command, SubmitOrder):
                out.append(dataclasses.replace(command, cl_ord_id=self._prefix + command.cl_ord_id))
            elif isinstance(command, ReplaceOrder):
                out.append(dataclasses.replace(command, cl_ord_id=self._prefix + command.cl_ord_id,
                                               orig_cl_ord_id=self._prefix + command.orig_cl_ord_id))
            else:
                out.append(command)
        return out

    def on_events(self, events: Iterable[Event]) -> None:
        mine = []
        for event in events:
            order = getattr(event, "order", None)
            owner = order.owner if order is not None else getattr(event, "owner", None)
            if owner != self.owner:
                continue
            mine.append(_strip_event(event, self._prefix))
        if mine:
            self.maker.on_events(mine)


def _strip(value: str | None, prefix: str) -> str | None:
    return value[len(prefix):] if value is not None and value.startswith(prefix) else value


def _strip_event(event: Event, prefix: str) -> Event:
    changes: dict[str, object] = {}
    order = getattr(event, "order", None)
    if order is not None:
        changes["order"] = order._replace(cl_ord_id=_strip(order.cl_ord_id, prefix),
                                          orig_cl_ord_id=_strip(order.orig_cl_ord_id, prefix))
    for name in ("cl_ord_id", "orig_cl_ord_id"):
        if hasattr(event, name):
            changes[name] = _strip(getattr(event, name), prefix)
    # engine events are tuples with _replace (engine/types.py), which makes the same event class
    return cast(Event, event._replace(**changes))


class VenueService:
    """All venue behaviour behind the FIX boundary; see the module docstring for the threading rule."""

    def __init__(self, engine: JournaledEngine, index: ExecIdIndex, faults: FaultInjector, sender: Sender,
                 disconnect: Disconnector, sessions: Iterable[SessionKey], market_maker: MarketMakerFeed | None,
                 clock: Clock = utc_now,
                 on_day_closed: Callable[[EndOfDay, ExecIdIndex], None] | None = None) -> None:
        self._engine = engine
        self._on_day_closed = on_day_closed  # called under the engine lock after each end of day (snapshots)
        self._lock = engine.lock
        self._index = index
        self.faults = faults
        self._sender = sender
        self._disconnect = disconnect
        self._sessions = tuple(sessions)
        self._market_maker = market_maker
        self._mm_owner = market_maker.owner if market_maker else None
        self._clock = clock
        self._ids = LocalIds()
        self._order_routes: dict[str, SessionKey] = {}
        self._owner_routes: dict[str, SessionKey] = {}
        self._symbols = frozenset(engine.engine.instruments)
        self._market_data = MarketDataHub(self._symbols)
        # Session routes and market-data subscriptions have their own lock: QuickFIX calls onLogon/onLogout
        # while holding its session mutex, and the engine lock is held while sending (which takes that
        # mutex), so taking the engine lock in those callbacks would invert the order and deadlock.
        self._session_lock = threading.Lock()
        self._timers: set[threading.Timer] = set()
        self._closed = False

    # ------------------------------------------------------------------ session lifecycle
    def on_logon(self, session: SessionKey) -> None:
        with self._session_lock:
            self._owner_routes[session.broker_comp_id] = session

    def on_logout(self, session: SessionKey) -> None:
        with self._session_lock:
            self._market_data.drop_session(session)

    # ------------------------------------------------------------------ orders
    def new_order(self, session: SessionKey, body: tr.FieldSource, header: tr.FieldSource) -> None:
        """NewOrderSingle. A resend (PossResend/PossDup) of a known ClOrdID gets its status, never a
        second booking; MissingTag/BadTagValue propagate for the FIX layer to turn into rejects."""
        owner = session.broker_comp_id
        with self._lock:
            now = self._clock()
            with self._session_lock:
                self._owner_routes[owner] = session
            if tr.is_resend(header):
                known = self._engine.engine.order_by_cl_ord_id(owner, tr.required(body, tr.CL_ORD_ID))
                if known is not None:
                    self._send(session, tr.status_report(known, self._ids.next("S"), now, session.version))
                    return
            try:
                command = tr.new_order(owner, body, now)
            except tr.OrderDenied as denial:
                self._send(session, tr.denied_order_report(body, denial, self._ids.next("R"), now, session.version))
                return
            if self.faults.take_reject():
                fault = tr.OrderDenied(0, "FAULT_INJECTED: reject=next_order")
                self._send(session, tr.denied_order_report(body, fault, self._ids.next("R"), now, session.version))
                return
            events = typed_events(self._engine.process(command))
            for event in events[:1]:
                if event.order.order_id != "NONE":  # type: ignore[union-attr]
                    self._order_routes[event.order.order_id] = session  # type: ignore[union-attr]
            if self.faults.take_disconnect():
                log.warning("fault: disconnecting %s after order %s", session, command.cl_ord_id)
                self._disconnect(session)
            self._publish(command, events, session)

    def cancel(self, session: SessionKey, body: tr.FieldSource) -> None:
        with self._lock:
            with self._session_lock:
                self._owner_routes[session.broker_comp_id] = session
            command = tr.cancel_order(session.broker_comp_id, body, self._clock())
            self._publish(command, typed_events(self._engine.process(command)), session)

    def replace(self, session: SessionKey, body: tr.FieldSource) -> None:
        owner = session.broker_comp_id
        with self._lock:
            now = self._clock()
            with self._session_lock:
                self._owner_routes[owner] = session
            orig = tr.required(body, tr.ORIG_CL_ORD_ID)
            current = self._engine.engine.order_by_cl_ord_id(owner, orig)
            try:
                command = tr.replace_order(owner, body, current, now)
            except tr.OrderDenied as denial:
                self._send(session, tr.local_cancel_reject(tr.required(body, tr.CL_ORD_ID), orig, current, True,
                                                           99, denial.text, now, session.version))
                return
            self._publish(command, typed_events(self._engine.process(command)), session)

    def order_status(self, session: SessionKey, body: tr.FieldSource) -> None:
        owner = session.broker_comp_id
        with self._lock:
            now = self._clock()
            cl_ord_id = tr.required(body, tr.CL_ORD_ID)
            order = self._engine.engine.order_by_cl_ord_id(owner, cl_ord_id)
            order_id = body.get(tr.ORDER_ID)
            if order is None and order_id:
                candidate = self._engine.engine.order(order_id)
                order = candidate if candidate is not None and candidate.owner == owner else None
            exec_id = self._ids.next("S")
            if order is None:
                reply = tr.unknown_order_status(cl_ord_id, body.get(tr.SYMBOL) or "[N/A]",
                                                tr.required(body, tr.SIDE), exec_id, now, session.version)
            else:
                reply = tr.status_report(order, exec_id, now, session.version)
            self._send(session, reply)

    # ------------------------------------------------------------------ market data and trade capture
    def market_data_request(self, session: SessionKey, request: MarketDataRequest) -> None:
        with self._lock:
            tops = {s: self._top(s) for s in request.symbols if s in self._symbols}
            with self._session_lock:
                replies = list(self._market_data.request(session, request, session.version, tops))
            for reply in replies:
                self._send(session, reply)

    def trade_capture_request(self, session: SessionKey, request: TradeCaptureRequest) -> None:
        owner = session.broker_comp_id
        with self._lock:
            replies = answer_capture_request(request, session.version, self._symbols,
                                             lambda day: self.trade_rows(day, owner), self._clock().date())
            for reply in replies:
                self._send(session, reply)

    def trade_rows(self, trade_date: date, owner: str | None = None) -> list[TradeRow]:
        """Report rows of a day (one broker's, or every broker's), omitted executions left out."""
        with self._lock:
            trades = self._engine.engine.trades(trade_date=trade_date, owner=owner)
            return broker_rows(trades, self._index, self._is_broker if owner is None else owner.__eq__,
                               self.faults.omitted_exec_ids())

    # ------------------------------------------------------------------ venue-initiated flow
    def step_market_maker(self) -> int:
        """One market-maker step (timer or tests); returns the number of commands processed."""
        if self._market_maker is None:
            return 0
        with self._lock:
            commands = self._market_maker.step(self._clock())
            for command in commands:
                self._publish(command, typed_events(self._engine.process(command)), None)
            return len(commands)

    def trade_of_exec(self, exec_id: str) -> str | None:
        with self._lock:
            return self._index.trade_id(exec_id)

    def bust_trade(self, trade_id: str) -> list[Event]:
        return self.submit(BustTrade(trade_id=trade_id, timestamp=self._clock()))

    def correct_trade(self, trade_id: str, qty: Decimal, price: Decimal) -> list[Event]:
        return self.submit(CorrectTrade(trade_id=trade_id, qty=qty, price=price, timestamp=self._clock()))

    def end_of_day(self, trade_date: date | None = None) -> list[Event]:
        now = self._clock()
        command = EndOfDay(trade_date=trade_date or now.date(), timestamp=now)
        with self._lock:
            events = self.submit(command)
            if self._on_day_closed is not None:
                self._on_day_closed(command, self._index)
        return events

    def submit(self, command: Command) -> list[Event]:
        """Process a venue-side command (operator action) and report its events to their owners."""
        with self._lock:
            events = typed_events(self._engine.process(command))
            self._publish(command, events, None)
            return events

    def close(self) -> None:
        """Cancel pending delayed reports (the fault) so nothing is sent after the acceptor stops."""
        with self._lock:
            self._closed = True
            for timer in list(self._timers):
                timer.cancel()
            self._timers.clear()

    # ------------------------------------------------------------------ internals
    def _is_broker(self, owner: str) -> bool:
        return owner != self._mm_owner

    def _top(self, symbol: str) -> TopOfBook:
        bids, asks = self._engine.engine.book_depth(symbol, 1)
        return TopOfBook(bids[0] if bids else None, asks[0] if asks else None,
                         self._engine.engine.last_trade(symbol))

    def _publish(self, command: Command, events: list[Event], origin: SessionKey | None) -> None:
        """Index fills, tell the market maker, report each event to its owner, refresh market data."""
        self._index.observe(events)
        if self._market_maker is not None:
            self._market_maker.on_events(events)
        symbols: set[str] = set()
        for event in events:
            order = getattr(event, "order", None)
            if order is not None:
                symbols.add(order.symbol)
            if isinstance(event, TradeActionRejected):
                log.warning("trade action on %s rejected: %s", event.trade_id, event.text)
                continue
            owner = tr.event_owner(event)
            if owner is None or not self._is_broker(owner):
                continue
            session = self._route(owner, order.order_id if order is not None else None, origin)
            if session is None:
                log.warning("no session for owner %s: event %s not reported", owner, event.seq)
                continue
            outbound = tr.event_to_fix(event, session.version, command)
            if outbound is None:
                continue
            if isinstance(event, (TradeBusted, TradeCorrected)):
                original = self._index.exec_id(event.trade_id, event.order.order_id)
                if original is not None:
                    outbound = tr.with_exec_ref(outbound, original)
            self._send(session, outbound)
        if symbols:
            with self._session_lock:
                changes = (list(self._market_data.changes({s: self._top(s) for s in sorted(symbols)}))
                           if self._market_data.has_subscribers() else [])
            for subscriber, outbound in changes:  # (market data keeps its subscribers as Hashable)
                self._send(subscriber, outbound)  # type: ignore[arg-type]

    def _route(self, owner: str, order_id: str | None, origin: SessionKey | None) -> SessionKey | None:
        """The session an order's reports go to: where it came from, else the owner's latest session,
        else any configured session for that CompID (FIX 4.4 first). Reports to a session that is not
        logged on are stored by QuickFIX and resent after the next logon."""
        if order_id is not None and order_id in self._order_routes:
            return self._order_routes[order_id]
        if origin is not None and origin.broker_comp_id == owner:
            return origin
        with self._session_lock:
            known = self._owner_routes.get(owner)
        if known is not None:
            return known
        candidates = sorted((s for s in self._sessions if s.broker_comp_id == owner),
                            key=lambda s: s.begin_string, reverse=True)
        return candidates[0] if candidates else None

    def _send(self, session: SessionKey, outbound: tr.Outbound) -> None:
        """Send one message, applying the ExecutionReport faults (drop, delay, duplicate)."""
        if not outbound.is_execution_report:
            self._sender(session, outbound)
            return
        fault, delay_ms = self.faults.take_report_fault()
        if fault is ReportFault.DROP:
            log.warning("fault: dropped ExecutionReport %s", outbound.get(tr.EXEC_ID))
            return
        if fault is ReportFault.DELAY:
            log.warning("fault: delaying ExecutionReport %s by %d ms", outbound.get(tr.EXEC_ID), delay_ms)
            self._schedule(delay_ms / 1000, session, outbound)
            return
        self._sender(session, outbound)
        if fault is ReportFault.DUPLICATE:
            log.warning("fault: duplicated ExecutionReport %s", outbound.get(tr.EXEC_ID))
            self._sender(session, outbound)

    def _schedule(self, delay_s: float, session: SessionKey, outbound: tr.Outbound) -> None:
        def fire() -> None:
            with self._lock:
                self._timers.discard(timer)
                if self._closed:
                    return
                try:
                    self._sender(session, outbound)
                except Exception:  # a timer thread must never die noisily mid-send
                    log.exception("delayed send failed")

        timer = threading.Timer(delay_s, fire)
        timer.daemon = True
        self._timers.add(timer)
        timer.start()
