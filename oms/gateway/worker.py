"""The gateway's one worker thread: every order-path item from both sessions, in arrival order.

QuickFIX callbacks only translate and `put` items here; the worker runs commands through the OMS
`CommandExecutor` in batches (one durable commit per batch: group commit), and only after that commit
answers clients and wakes the outbox sender. So an order is committed before the venue hears of it, and an
execution is committed before the client hears of it (invariant 6).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from fix.wire import CL_ORD_ID, CXL_REJ_REASON, ORD_REJ_REASON, ORD_STATUS, ORDER_ID, DictFields, Outbound
from oms.domain.commands import ApplyExecution, CancelOrder, PlaceOrder, ReplaceOrder
from oms.domain.enums import ExecType, OrderSource, OrderStatus
from oms.domain.order import Order
from oms.domain.risk import Denial, ReasonCode
from oms.gateway import queries
from oms.gateway import translate as tr
from oms.gateway.config import GatewaySettings
from oms.gateway.metrics import GatewayMetrics
from oms.service.executor import CommandExecutor
from oms.service.orders import ApplyCancelReject, OrderResult, Outcome
from oms.service.uow import Database, new_id

log = structlog.get_logger(__name__)

ClientCommand = PlaceOrder | CancelOrder | ReplaceOrder
MAX_QUEUE = 65_536


@dataclass(frozen=True, slots=True)
class ClientOrder:
    """D, F or G from a client: the translated command, or the denial found while translating."""

    session: str
    msg_type: str
    body: DictFields
    command: ClientCommand | None
    denial: Denial | None = None


@dataclass(frozen=True, slots=True)
class ClientStatus:
    """H from a client: answered from our books (never forwarded)."""

    session: str
    body: DictFields
    account: str | None
    denial: Denial | None = None


@dataclass(frozen=True, slots=True)
class VenueReport:
    """An ExecutionReport or OrderCancelReject from the venue."""

    command: ApplyExecution | ApplyCancelReject
    body: DictFields


@dataclass(frozen=True, slots=True)
class VenueResolve:
    """An order-entry message we gap-filled instead of resending: ask the venue what became of it."""

    venue_cl_ord_id: str
    symbol: str
    side: str


@dataclass(frozen=True, slots=True)
class VenueLoggedOn:
    """Subscribe to market data (reference prices) and let the outbox flush."""


@dataclass(frozen=True, slots=True)
class ClientLoggedOut:
    session: str


Item = ClientOrder | ClientStatus | VenueReport | VenueResolve | VenueLoggedOn | ClientLoggedOut
Sender = Callable[[str, Outbound], bool]  # (session key, message) -> sent


@dataclass
class Counters:
    """Outcome counts (written by the worker thread only), mirrored to Prometheus when metrics are given."""

    metrics: GatewayMetrics | None = None
    by_outcome: dict[str, int] = field(default_factory=dict)

    def add(self, name: str) -> None:
        self.by_outcome[name] = self.by_outcome.get(name, 0) + 1
        if self.metrics is not None:
            self.metrics.outcomes.labels(name).inc()


def utc_now() -> datetime:
    return datetime.now(UTC)


class Worker:
    """Consumes `Item`s on one thread; see the module docstring."""

    def __init__(self, settings: GatewaySettings, database: Database, executor: CommandExecutor,
                 send_client: Sender, send_venue: Callable[[Outbound], bool], venue_up: Callable[[], bool],
                 wake_outbox: Callable[[], None], symbols: Sequence[str], metrics: GatewayMetrics | None = None) -> None:
        self._settings = settings
        self._database = database
        self._executor = executor
        self._send_client = send_client
        self._send_venue = send_venue
        self._venue_up = venue_up
        self._wake_outbox = wake_outbox
        self._symbols = tuple(symbols)
        self._queue: queue.Queue[Item | None] = queue.Queue(maxsize=MAX_QUEUE)
        self._order_sessions: dict[str, str] = {}  # our order id -> client session key
        self._resolving: set[str] = set()  # venue ClOrdIDs we asked the venue about
        self._metrics = metrics
        self.counters = Counters(metrics)
        self._idle = threading.Condition()
        self._busy = 0
        self._thread = threading.Thread(target=self._loop, name="gateway-worker", daemon=True)

    # -- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def put(self, item: Item) -> None:
        """Called from QuickFIX threads: never blocks for long (the queue is bounded but large)."""
        with self._idle:
            self._busy += 1
        try:
            self._queue.put(item, timeout=5)
        except queue.Full:
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()
            raise

    def wait_idle(self, timeout_s: float = 10.0) -> bool:
        """True once every item put so far has been handled (tests and orderly shutdown)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout_s)

    # -- loop -----------------------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            items = [first]
            stop = False
            while len(items) < self._settings.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                items.append(more)
            try:
                self._handle(items)
            except Exception:  # the worker must survive anything one batch does
                log.exception("gateway_batch_failed", size=len(items))
            finally:
                with self._idle:
                    self._busy -= len(items)
                    self._idle.notify_all()
            if stop:
                return

    def _handle(self, items: list[Item]) -> None:
        """Run consecutive command items as one batch; other items in order between batches."""
        batch: list[ClientOrder | VenueReport] = []
        for item in items:
            if isinstance(item, (ClientOrder, VenueReport)):
                batch.append(item)
                continue
            self._run_batch(batch)
            batch = []
            self._handle_other(item)
        self._run_batch(batch)

    def _handle_other(self, item: Item) -> None:
        if isinstance(item, ClientStatus):
            self._status(item)
        elif isinstance(item, VenueResolve):
            self._resolved_request(item)
        elif isinstance(item, VenueLoggedOn):
            for symbol in self._symbols:
                self._send_venue(tr.market_data_request(f"REF-{symbol}-{new_id()[:8]}", symbol))
            self._wake_outbox()
        elif isinstance(item, ClientLoggedOut):
            self._cancel_on_disconnect(item.session)

    # -- commands -------------------------------------------------------------------------------------
    def _run_batch(self, batch: list[ClientOrder | VenueReport]) -> None:
        if not batch:
            return
        now = utc_now()
        runnable: list[ClientOrder | VenueReport] = []
        for item in batch:
            if isinstance(item, ClientOrder) and item.command is None:
                self._deny(item, item.denial, now)  # type: ignore[arg-type]
            elif isinstance(item, ClientOrder) and isinstance(item.command, PlaceOrder) and not self._venue_up():
                self._deny(item, Denial(ReasonCode.VENUE_UNAVAILABLE, {"venue": self._settings.venue.venue_comp_id}), now)
            else:
                runnable.append(item)
        if not runnable:
            return
        pending = queries.pending_requests(self._database, self._request_ids(runnable))
        started = time.perf_counter()
        try:
            outcomes: list[tuple[ClientOrder | VenueReport, OrderResult]] = list(
                zip(runnable, self._executor.execute([item.command for item in runnable]), strict=True))  # type: ignore[misc]
        except Exception:
            if len(runnable) > 1:  # one bad command must not hide its neighbours' outcomes: run each alone
                log.exception("gateway_batch_failed_retrying_one_by_one", size=len(runnable))
            outcomes = self._one_by_one(runnable, now)
        if self._metrics is not None:
            self._metrics.batch_seconds.observe(time.perf_counter() - started)
            self._metrics.batch_size.observe(len(runnable))
            self._metrics.queue_depth.set(self._queue.qsize())
        now = utc_now()
        accepted = False
        for item, result in outcomes:
            self.counters.add(result.outcome.value)
            if isinstance(item, ClientOrder):
                accepted |= result.outcome is Outcome.ACCEPTED
                self._answer_client(item, result, now)
            else:
                self._relay(item, result, pending, now)
        if accepted:
            self._wake_outbox()

    def _one_by_one(self, items: list[ClientOrder | VenueReport],
                    now: datetime) -> list[tuple[ClientOrder | VenueReport, OrderResult]]:
        outcomes: list[tuple[ClientOrder | VenueReport, OrderResult]] = []
        for item in items:
            try:
                outcomes.append((item, self._executor.one(item.command)))  # type: ignore[arg-type]
            except Exception:
                log.exception("gateway_command_failed", command=repr(item.command))
                if isinstance(item, ClientOrder):
                    self._deny(item, None, now, text="INTERNAL_ERROR: the request was not accepted, retry later")
        return outcomes

    @staticmethod
    def _request_ids(items: list[ClientOrder | VenueReport]) -> list[str]:
        """Venue ClOrdIDs of cancel/replace outcomes in the batch (their client request ids are read first)."""
        ids: list[str] = []
        for item in items:
            command = item.command
            if isinstance(command, ApplyExecution) and command.exec_type in (ExecType.CANCELED, ExecType.REPLACED):
                if command.cl_ord_id is not None:
                    ids.append(str(command.cl_ord_id))
            elif isinstance(command, ApplyCancelReject):
                ids.append(command.venue_cl_ord_id)
        return ids

    # -- answers to clients ---------------------------------------------------------------------------
    def _deny(self, item: ClientOrder, denial: Denial | None, now: datetime, *, text: str | None = None,
              order: Order | None = None) -> None:
        session = self._settings.client(item.session)
        if session is None:
            return
        begin = session.begin_string
        text = text or str(denial)
        self.counters.add(denial.reason.name if denial is not None else "INTERNAL_ERROR")
        log.info("client_request_denied", session=item.session, cl_ord_id=item.body.get(CL_ORD_ID), reason=text,
                 account=None if item.command is None else str(item.command.account))
        if item.msg_type == "D":
            code = denial.reason.fix_ord_rej_reason if denial is not None else 0
            reply = tr.rejected_order_report(item.body, code, text, new_id(), begin, now,
                                             order_id=None if order is None else str(order.order_id))
        else:
            code = denial.reason.fix_cxl_rej_reason if denial is not None else 2
            reply = tr.cancel_reject(item.body.get(CL_ORD_ID) or "NONE", item.body.get(41) or "NONE", order,
                                     item.msg_type == "G", code, text, begin, now)
        self._send_client(item.session, reply)

    def _answer_client(self, item: ClientOrder, result: OrderResult, now: datetime) -> None:
        if result.outcome is Outcome.ACCEPTED and result.order is not None:
            self._order_sessions[str(result.order.order_id)] = item.session
            log.info("client_request_accepted", session=item.session, account=str(result.order.account),
                     cl_ord_id=str(item.command.cl_ord_id), order_id=str(result.order.order_id),  # type: ignore[union-attr]
                     msg_type=item.msg_type)
        elif result.outcome is Outcome.DUPLICATE and result.order is not None:
            self._order_sessions.setdefault(str(result.order.order_id), item.session)
            self._send_status(item.session, result.order, now)
        elif result.outcome is Outcome.DENIED:
            self._deny(item, result.denial, now, order=result.order if item.msg_type != "D" else None)

    def _send_status(self, session_key: str, order: Order, now: datetime) -> None:
        session = self._settings.client(session_key)
        if session is not None:
            self._send_client(session_key, tr.execution_report(order, ExecType.ORDER_STATUS, new_id(),
                                                               session.begin_string, now))

    def _status(self, item: ClientStatus) -> None:
        session = self._settings.client(item.session)
        if session is None:
            return
        now = utc_now()
        record = None
        if item.account is not None and item.denial is None:
            record = queries.order_by_client(self._database, item.account, item.body.get(CL_ORD_ID) or "")
        if record is None:
            self._send_client(item.session, tr.unknown_order_status(item.body, new_id(), session.begin_string, now))
        else:
            self._send_status(item.session, record.order, now)

    # -- relaying venue outcomes ----------------------------------------------------------------------
    def _client_for(self, order: Order) -> str | None:
        """The client session that placed an order (else the first session trading its account)."""
        if order.source is not OrderSource.FIX:
            return None
        known = self._order_sessions.get(str(order.order_id))
        if known is not None:
            return known
        for session in self._settings.clients:
            if str(order.account) in session.accounts:
                return session.key
        return None

    def _relay(self, item: VenueReport, result: OrderResult, pending: dict[str, Any], now: datetime) -> None:
        command = item.command
        if isinstance(command, ApplyExecution) and command.exec_type is ExecType.ORDER_STATUS:
            self._status_answer(item)
            return
        if result.outcome is Outcome.QUARANTINED:
            log.warning("venue_report_quarantined", detail=result.detail, body=str(dict(item.body.values)))
            return
        if result.outcome is not Outcome.APPLIED or result.order is None:
            return
        order = result.order
        if result.original is not None:
            known = self._order_sessions.get(str(result.original.order_id))
            if known is not None:
                self._order_sessions[str(order.order_id)] = known
        session_key = self._client_for(order if result.original is None else result.original)
        session = self._settings.client(session_key) if session_key else None
        if session is None:
            return
        begin = session.begin_string
        log.info("venue_report_applied", account=str(order.account), cl_ord_id=str(order.cl_ord_id),
                 order_id=str(order.order_id), status=order.status.value)
        if isinstance(command, ApplyCancelReject):
            request = pending.get(command.venue_cl_ord_id)
            cl_ord_id = str(request.order.pending_cl_ord_id) if request is not None else command.venue_cl_ord_id
            code = item.body.get(CXL_REJ_REASON) or "0"
            self._send_client(session.key, tr.cancel_reject(cl_ord_id, str(order.cl_ord_id), order,
                                                            command.response_to == "replace", code,
                                                            command.reason, begin, now))
            return
        kwargs: dict[str, Any] = {}
        if command.exec_type is ExecType.TRADE:
            kwargs.update(last_qty=result.fill_qty, last_px=result.fill_px)
        elif command.exec_type is ExecType.REPLACED:
            kwargs.update(orig_cl_ord_id=None if order.orig_cl_ord_id is None else str(order.orig_cl_ord_id))
        elif command.exec_type is ExecType.CANCELED:
            request = pending.get(str(command.cl_ord_id))
            if request is not None and request.order.pending_cl_ord_id is not None:
                kwargs.update(cl_ord_id=str(request.order.pending_cl_ord_id), orig_cl_ord_id=str(order.cl_ord_id))
        elif command.exec_type is ExecType.REJECTED:
            kwargs.update(text=command.text or None, ord_rej_reason_code=item.body.get(ORD_REJ_REASON) or "0")
        self._send_client(session.key, tr.execution_report(order, command.exec_type, new_id(), begin, now, **kwargs))
        if order.status.is_terminal:  # nothing more will be reported: keep the routing map bounded
            self._order_sessions.pop(str(order.order_id), None)
        if result.original is not None:
            self._order_sessions.pop(str(result.original.order_id), None)

    # -- resend resolution ----------------------------------------------------------------------------
    def _resolved_request(self, item: VenueResolve) -> None:
        self._resolving.add(item.venue_cl_ord_id)
        self._send_venue(tr.venue_status_request(item.venue_cl_ord_id, item.symbol, item.side))
        log.info("venue_resend_resolving", venue_cl_ord_id=item.venue_cl_ord_id)

    def _status_answer(self, item: VenueReport) -> None:
        """The venue's answer about a gap-filled request: if it never arrived, queue it again."""
        venue_cl_ord_id = item.body.get(CL_ORD_ID) or ""
        if venue_cl_ord_id not in self._resolving:
            return
        self._resolving.discard(venue_cl_ord_id)
        unknown = item.body.get(ORD_STATUS) == "8" and item.body.get(ORDER_ID) in (None, "NONE")
        record = queries.order_by_venue_cl_ord_id(self._database, venue_cl_ord_id)
        if not unknown or record is None:
            self.counters.add("resend_resolved_known")
            log.info("venue_resend_resolved", venue_cl_ord_id=venue_cl_ord_id, known=not unknown)
            return
        status = record.order.status
        if record.venue_cl_ord_id == venue_cl_ord_id and status is OrderStatus.PENDING_NEW:
            kind = "new"
        elif record.pending_venue_cl_ord_id == venue_cl_ord_id and status is OrderStatus.PENDING_CANCEL:
            kind = "cancel"
        elif record.pending_venue_cl_ord_id == venue_cl_ord_id and status is OrderStatus.PENDING_REPLACE:
            kind = "replace"
        else:
            return
        if queries.resend_outbox(self._database, record.id, kind):
            self.counters.add("resend_requeued")
            log.warning("venue_never_received_request", order_id=record.id, kind=kind, venue_cl_ord_id=venue_cl_ord_id)
            self._wake_outbox()

    # -- cancel on disconnect -------------------------------------------------------------------------
    def _cancel_on_disconnect(self, session_key: str) -> None:
        session = self._settings.client(session_key)
        if session is None or not session.cancel_on_disconnect:
            return
        orders = [record for record in queries.working_fix_orders(self._database, session.accounts)
                  if record.order.status.is_working]
        commands = [CancelOrder(account=record.account_id, cl_ord_id=f"COD-{new_id()[:24]}",
                                orig_cl_ord_id=str(record.order.cl_ord_id)) for record in orders]
        if not commands:
            return
        results = self._executor.execute(commands)
        log.warning("cancel_on_disconnect", session=session_key, orders=len(commands),
                    accepted=sum(r.outcome is Outcome.ACCEPTED for r in results))
        self.counters.add("cancel_on_disconnect")
        self._wake_outbox()
