"""The gateway's one worker thread: every order-path item from both sessions, in arrival order.

QuickFIX callbacks only translate and `put` items here; the worker runs commands through the OMS
`CommandExecutor` in batches (one durable commit per batch: group commit), and only after that commit
answers clients and wakes the outbox sender. So an order is committed before the venue hears of it, and an
execution is committed before the client hears of it (invariant 6). After each batch it records the venue
MsgSeqNum up to which reports are committed and relayed, and after each venue logon it runs the recovery
round described in `oms.gateway.recovery` (new client requests wait for it: VENUE_RECOVERING).
"""

from __future__ import annotations

import dataclasses
import functools
import queue
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from fix import oms_tables as tables
from fix.wire import (
    CL_ORD_ID,
    CXL_REJ_REASON,
    MSG_SEQ_NUM,
    ORD_REJ_REASON,
    ORD_STATUS,
    ORDER_ID,
    POSS_DUP,
    POSS_RESEND,
    DictFields,
    Outbound,
)
from oms.db.errors import database_unavailable, first_line
from oms.domain.commands import ApplyExecution, CancelOrder, PlaceOrder, ReplaceOrder
from oms.domain.enums import ExecType, OrderSource, OrderStatus
from oms.domain.order import Order
from oms.domain.risk import Denial, ReasonCode
from oms.domain.values import ClOrdId
from oms.gateway import crash, queries
from oms.gateway import translate as tr
from oms.gateway.after_commit import AfterCommit
from oms.gateway.config import GatewaySettings
from oms.gateway.metrics import GatewayMetrics
from oms.gateway.recovery import AppliedSeq, Question, RecoveryRound
from oms.service.batching import collect_batch
from oms.service.executor import CommandExecutor
from oms.service.order_rows import OrderRecord
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


@dataclass(frozen=True, slots=True)
class RecoveryDeadline:
    """The recovery round `number` ran out of time: whatever is still unanswered is unresolved."""

    number: int


@dataclass(frozen=True, slots=True)
class RecoveryRetry:
    """Starting the recovery round failed (the database): try again."""


@dataclass(frozen=True, slots=True)
class HeldRetry:
    """Venue reports are held because the database was unreachable: try to apply them again."""


Item = (ClientOrder | ClientStatus | VenueReport | VenueResolve | VenueLoggedOn | ClientLoggedOut | RecoveryDeadline
        | RecoveryRetry | HeldRetry)
RECOVERY_RETRY_S = 1.0
HELD_RETRY_S = 0.5
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


_EXEC_ID_NAMESPACE = uuid.UUID("6f1c2a3e-5b7d-4e8f-9a0b-1c2d3e4f5a6b")


def client_exec_id(venue_exec_id: str) -> str:
    """The ExecID a client sees for a venue execution: the same every time it is relayed (a relay repeated
    after a crash carries the ExecID the client may already have), and it does not expose the venue's."""
    return uuid.uuid5(_EXEC_ID_NAMESPACE, venue_exec_id).hex


def _answers_request(command: ApplyExecution, record: OrderRecord) -> bool:
    """A venue report names our cancel request's ClOrdID, not the order's own, when it answers that request
    (an unsolicited cancel, an expiry for one, names the order's). The client's answer must then echo the
    client's request ClOrdID, which the order keeps after the request is done (`request_cl_ord_id`)."""
    return (command.cl_ord_id is not None and str(command.cl_ord_id) != record.venue_cl_ord_id
            and record.request_cl_ord_id is not None)


class Worker:
    """Consumes `Item`s on one thread; see the module docstring."""

    def __init__(self, settings: GatewaySettings, database: Database, executor: CommandExecutor,
                 send_client: Sender, send_venue: Callable[[Outbound], bool], venue_up: Callable[[], bool],
                 wake_outbox: Callable[[], None], symbols: Sequence[str], metrics: GatewayMetrics | None = None,
                 applied_seq: AppliedSeq | None = None, client_applied: dict[str, AppliedSeq] | None = None,
                 *, relay_thread: bool = False) -> None:
        self._settings = settings
        self._database = database
        self._executor = executor
        # With a relay thread, client reports and the applied marks behind them leave the worker in commit
        # order while it runs the next batch (see `oms.gateway.after_commit`); without one, inline.
        self._after = AfterCommit() if relay_thread else None
        self._send_client_now = send_client
        self._send_venue = send_venue
        self._venue_up = venue_up
        self._wake_outbox = wake_outbox
        self._symbols = tuple(symbols)
        self._queue: queue.Queue[Item | None] = queue.Queue(maxsize=MAX_QUEUE)
        self._order_sessions: dict[str, str] = {}  # our order id -> client session key
        self._resolving: set[str] = set()  # venue ClOrdIDs we asked the venue about
        self._applied_seq = applied_seq
        self._client_applied = client_applied or {}  # client session key -> its last handled MsgSeqNum
        self._client_marked: dict[str, int] = {}  # the latest mark queued per client session
        self._failed_below: int | None = None  # a report failed to apply: the applied mark stays below it
        # Reports that arrived while the database was unreachable, in arrival order; retried until applied.
        self._held: list[VenueReport] = []
        self._held_below: int | None = None  # the applied mark stays below the first held report
        self._held_retry_armed = False
        # Set once the recovery round after the latest venue logon is over; cleared at venue logout.
        self.recovered = threading.Event()
        self._round: RecoveryRound | None = None
        self._round_number = 0
        self._timers: list[threading.Timer] = []
        self.unresolved: dict[str, str] = {}  # our order id -> why its outcome is unknown
        self._metrics = metrics
        self.counters = Counters(metrics)
        self._idle = threading.Condition()
        self._busy = 0
        self._thread = threading.Thread(target=self._loop, name="gateway-worker", daemon=True)

    # -- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._after is not None:
            self._after.start()
        self._thread.start()

    def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._queue.put(None)
        self._thread.join(timeout=10)
        if self._after is not None:
            self._after.stop()
        if not self._thread.is_alive():
            for mark in [self._applied_seq, *self._client_applied.values()]:
                if mark is not None:
                    mark.close()

    def venue_down(self) -> None:
        """The venue session logged out: nothing new goes out until the next logon's recovery is over."""
        self.recovered.clear()

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
        """True once every item put so far has been handled and its reports sent (tests, orderly shutdown)."""
        deadline = time.monotonic() + timeout_s
        with self._idle:
            if not self._idle.wait_for(lambda: self._busy == 0, timeout_s):
                return False
        return self._after is None or self._after.wait_empty(max(0.0, deadline - time.monotonic()))

    def _send_client(self, session: str, outbound: Outbound) -> None:
        self._in_order(functools.partial(self._send_client_now, session, outbound))

    def _in_order(self, action: Callable[[], object]) -> None:
        """Run `action` after every client report queued so far (a mark must not overtake its reports)."""
        if self._after is None:
            action()
        else:
            self._after.put(action)

    # -- loop -----------------------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            items, stop = collect_batch(self._queue, first, self._settings.max_batch)
            try:
                self._handle(items)
            except Exception:  # the worker must survive anything one batch does
                log.exception("gateway_batch_failed", size=len(items))
                for item in items:
                    if isinstance(item, VenueReport):
                        self._report_failed(item)
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
            if batch:
                self._run_batch(batch)
            batch = []
            self._handle_other(item)
        if batch:
            self._run_batch(batch)
        self._record_applied_seq(items)
        self._record_client_seqs(items)

    def _record_client_seqs(self, items: list[Item]) -> None:
        """Every client request in `items` is committed or answered: a restart need not replay it."""
        if not self._client_applied:
            return
        handled: dict[str, int] = {}
        for item in items:
            if isinstance(item, (ClientOrder, ClientStatus)):
                seq = item.body.get(MSG_SEQ_NUM)
                if seq is not None and seq.isdigit():
                    handled[item.session] = max(handled.get(item.session, 0), int(seq))
        for session, last_seq in handled.items():
            mark = self._client_applied.get(session)
            if mark is not None and self._client_marked.get(session, mark.last or 0) < last_seq:
                self._client_marked[session] = last_seq
                self._in_order(functools.partial(mark.write, last_seq))

    def _record_applied_seq(self, items: list[Item]) -> None:
        """Every venue report up to the last one in `items` is committed and relayed (see recovery); after a
        report that could not be applied (the database failing), the mark stays just before it, so the
        next start has the venue send it again."""
        if self._applied_seq is None:
            return
        for item in reversed(items):
            if isinstance(item, VenueReport):
                seq = item.body.get(MSG_SEQ_NUM)
                if seq is not None and seq.isdigit():
                    marks = [m for m in (self._failed_below, self._held_below) if m is not None]
                    self._in_order(functools.partial(self._applied_seq.write, min([int(seq), *marks])))
                return

    def _report_failed(self, item: VenueReport) -> None:
        seq = item.body.get(MSG_SEQ_NUM)
        if seq is not None and seq.isdigit():
            mark = int(seq) - 1
            self._failed_below = mark if self._failed_below is None else min(self._failed_below, mark)
            log.error("venue_report_not_applied", seq=int(seq), replay_from=mark + 1)

    def _handle_other(self, item: Item) -> None:
        if isinstance(item, HeldRetry):
            self._held_retry_armed = False
            self._run_batch([])
        elif isinstance(item, ClientStatus):
            self._status(item)
        elif isinstance(item, VenueResolve):
            self._resolved_request(item)
        elif isinstance(item, VenueLoggedOn):
            for symbol in self._symbols:
                self._send_venue(tr.market_data_request(f"REF-{symbol}-{new_id()[:8]}", symbol))
            self._wake_outbox()
            self._start_recovery()
        elif isinstance(item, ClientLoggedOut):
            self._cancel_on_disconnect(item.session)
        elif isinstance(item, RecoveryDeadline):
            self._recovery_deadline(item.number)
        elif isinstance(item, RecoveryRetry) and self._venue_up() and not self.recovered.is_set():
            self._start_recovery()

    # -- commands -------------------------------------------------------------------------------------
    def _run_batch(self, batch: list[ClientOrder | VenueReport]) -> None:
        if not batch and not self._held:
            return
        now = utc_now()
        runnable: list[ClientOrder | VenueReport] = []
        for item in batch:
            if isinstance(item, ClientOrder) and item.command is None:
                self._deny(item, item.denial, now)  # type: ignore[arg-type]
            elif isinstance(item, ClientOrder) and isinstance(item.command, PlaceOrder) and not self._venue_up():
                self._deny(item, Denial(ReasonCode.VENUE_UNAVAILABLE, {"venue": self._settings.venue.venue_comp_id}), now)
            elif isinstance(item, ClientOrder) and not self.recovered.is_set() and self._venue_up():
                self._deny(item, Denial(ReasonCode.VENUE_RECOVERING, {"venue": self._settings.venue.venue_comp_id}), now)
            else:
                runnable.append(item)
        if self._held:  # reports held while the database was away go first: reports apply in arrival order
            runnable = [*self._take_held(), *runnable]
        if not runnable:
            return
        if crash.ARMED is not None and any(isinstance(item, ClientOrder) and isinstance(item.command, PlaceOrder)
                                           for item in runnable):
            crash.at_after_settling("before_order_commit")
        try:
            pending = queries.pending_requests(self._database, self._request_ids(runnable))
        except Exception as error:
            if not database_unavailable(error):
                raise
            log.error("database_unavailable", error=first_line(error))
            for item in runnable:  # nothing ran: reports wait for the database, clients may retry
                if isinstance(item, VenueReport):
                    self._hold(item)
                else:
                    self._deny(item, None, now, text="INTERNAL_ERROR: the request was not accepted, retry later")
            return
        started = time.perf_counter()
        if crash.ARMED is not None:
            crash.applying_fills(any(isinstance(item.command, ApplyExecution)
                                     and item.command.exec_type is ExecType.TRADE for item in runnable))
        try:
            outcomes: list[tuple[ClientOrder | VenueReport, OrderResult]] = list(
                zip(runnable, self._executor.execute([item.command for item in runnable]), strict=True))  # type: ignore[misc]
        except Exception:
            if len(runnable) > 1:  # one bad command must not hide its neighbours' outcomes: run each alone
                log.exception("gateway_batch_failed_retrying_one_by_one", size=len(runnable))
            outcomes = self._one_by_one(runnable, now)
        if crash.ARMED is not None:
            crash.applying_fills(False)
            self._crash_points(outcomes)
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

    @staticmethod
    def _crash_points(outcomes: list[tuple[ClientOrder | VenueReport, OrderResult]]) -> None:
        """The drills' crash points that follow a commit (see `oms.gateway.crash`)."""
        for item, result in outcomes:
            if isinstance(item.command, PlaceOrder) and result.outcome is Outcome.ACCEPTED:
                crash.at("after_reservation_commit")
            if (isinstance(item.command, ApplyExecution) and item.command.exec_type is ExecType.TRADE
                    and result.outcome is Outcome.APPLIED):
                crash.at("between_fill_and_relay")
            if result.outcome is Outcome.APPLIED and (
                    isinstance(item.command, ApplyCancelReject) or (isinstance(item.command, ApplyExecution)
                    and item.command.exec_type in (ExecType.CANCELED, ExecType.REPLACED))):
                crash.at("between_outcome_and_relay")

    def _one_by_one(self, items: list[ClientOrder | VenueReport],
                    now: datetime) -> list[tuple[ClientOrder | VenueReport, OrderResult]]:
        """Each command alone. A venue report that finds the database unreachable is held, and so is every
        report after it, so they apply later in the order they came; client requests get INTERNAL_ERROR."""
        outcomes: list[tuple[ClientOrder | VenueReport, OrderResult]] = []
        for item in items:
            if isinstance(item, VenueReport) and self._held:
                self._hold(item)
                continue
            try:
                outcomes.append((item, self._executor.one(item.command)))  # type: ignore[arg-type]
            except Exception as error:
                unavailable = database_unavailable(error)
                if unavailable:
                    log.error("gateway_command_failed_database_unavailable", command=repr(item.command),
                              error=first_line(error))
                else:
                    log.exception("gateway_command_failed", command=repr(item.command))
                if isinstance(item, VenueReport):
                    if unavailable:
                        self._hold(item)
                    else:
                        self._report_failed(item)
                if isinstance(item, ClientOrder):
                    self._deny(item, None, now, text="INTERNAL_ERROR: the request was not accepted, retry later")
        return outcomes

    def _hold(self, item: VenueReport) -> None:
        """Keep a report the database could not take; a timer retries it (the venue will not send it again
        while the session stays up). The applied mark stays below it, so a crash meanwhile replays it."""
        self._held.append(item)
        seq = item.body.get(MSG_SEQ_NUM)
        if seq is not None and seq.isdigit():
            mark = int(seq) - 1
            self._held_below = mark if self._held_below is None else min(self._held_below, mark)
        self.counters.add("venue_report_held")
        if not self._held_retry_armed:
            self._held_retry_armed = True
            self._later(HELD_RETRY_S, HeldRetry())

    def _take_held(self) -> list[VenueReport]:
        held, self._held = self._held, []
        self._held_below = None
        log.info("venue_reports_retrying", count=len(held))
        return held

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
        elif result.outcome is Outcome.FAILED:
            # The command failed on its own (its neighbours in the batch kept their results); it may be
            # resubmitted safely: ClOrdIDs are idempotent.
            log.error("client_request_failed", session=item.session, msg_type=item.msg_type, detail=result.detail)
            self._deny(item, None, now, text="INTERNAL_ERROR: the request was not accepted, retry later")

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
            record = queries.order_by_any_client_id(self._database, item.account, item.body.get(CL_ORD_ID) or "")
        if record is None:
            self._send_client(item.session, tr.unknown_order_status(item.body, new_id(), session.begin_string, now))
        else:
            self._send_status(item.session, record.order, now)

    # -- relaying venue outcomes ----------------------------------------------------------------------
    def _client_for(self, order: Order) -> str | None:
        """The client session that placed an order (orders from before migration 0010 have no origin: the
        session this process saw place it, else the first session trading its account)."""
        if order.source is not OrderSource.FIX:
            return None
        if order.origin is not None and self._settings.client(order.origin) is not None:
            return order.origin
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
        if result.outcome is Outcome.IGNORED and item.body.get(POSS_DUP) == "Y" and isinstance(command, ApplyExecution):
            self._relay_again(command, now)
            return
        if result.outcome is Outcome.IGNORED and item.body.get(POSS_DUP) == "Y" and isinstance(command, ApplyCancelReject):
            self._relay_reject_again(item, command, now)
            return
        if result.outcome is Outcome.QUARANTINED:
            log.warning("venue_report_quarantined", detail=result.detail, body=str(dict(item.body.values)))
            return
        if result.outcome is Outcome.FAILED:
            # Not applied: the applied-sequence mark stays below it, so the next start's resend (or the
            # nightly reconciliation) brings it back.
            log.error("venue_report_failed", detail=result.detail, body=str(dict(item.body.values)))
            self._report_failed(item)
            return
        if result.outcome is not Outcome.APPLIED or result.order is None:
            return
        order = result.order
        if self.unresolved:
            self._now_resolved(order, result.original)
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
        self._send_client(session.key, tr.execution_report(order, command.exec_type,
                                                           client_exec_id(str(command.venue_exec_id)), begin, now,
                                                           **kwargs))
        if order.status.is_terminal:  # nothing more will be reported: keep the routing map bounded
            self._order_sessions.pop(str(order.order_id), None)
        if result.original is not None:
            self._order_sessions.pop(str(result.original.order_id), None)

    # -- resend resolution ----------------------------------------------------------------------------
    def _resolved_request(self, item: VenueResolve) -> None:
        asked = item.venue_cl_ord_id in self._resolving or (
            self._round is not None and item.venue_cl_ord_id in self._round.open)
        self._resolving.add(item.venue_cl_ord_id)
        if asked:  # one question, one answer: a second answer could queue the request twice
            return
        self._send_venue(tr.venue_status_request(item.venue_cl_ord_id, item.symbol, item.side))
        log.info("venue_resend_resolving", venue_cl_ord_id=item.venue_cl_ord_id)

    def _status_answer(self, item: VenueReport) -> None:
        """The venue's answer about a gap-filled request or a recovery question: if the request never
        arrived, queue it again."""
        venue_cl_ord_id = item.body.get(CL_ORD_ID) or ""
        if item.body.get(POSS_DUP) == "Y":  # an old answer resent: says nothing about now
            return
        unknown = item.body.get(ORD_STATUS) == "8" and item.body.get(ORDER_ID) in (None, "NONE")
        handled = self._round is not None and self._recovery_answer(venue_cl_ord_id, unknown,
                                                                    item.body.get(ORD_STATUS) or "")
        if venue_cl_ord_id not in self._resolving:
            return
        self._resolving.discard(venue_cl_ord_id)
        if handled:
            return
        if not unknown:
            self.counters.add("resend_resolved_known")
            log.info("venue_resend_resolved", venue_cl_ord_id=venue_cl_ord_id, known=True)
            return
        self._requeue_if_never_received(venue_cl_ord_id)

    def _requeue_if_never_received(self, venue_cl_ord_id: str) -> None:
        """The venue does not know `venue_cl_ord_id`: if our order still waits for it, send it again."""
        record = queries.order_by_venue_cl_ord_id(self._database, venue_cl_ord_id)
        if record is None:
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

    # -- recovery after a venue logon (see oms.gateway.recovery) --------------------------------------
    def _start_recovery(self) -> None:
        """Ask the venue about every order whose request it may hold without our knowing the outcome."""
        self._round_number += 1
        timeout_s = self._settings.recovery_timeout_ms / 1000
        round_ = RecoveryRound()
        try:
            records = queries.orders_to_resolve(self._database)
        except Exception:  # new orders stay refused until a round runs: retry soon rather than never
            log.exception("venue_recovery_start_failed", retry_s=RECOVERY_RETRY_S)
            self._later(RECOVERY_RETRY_S, RecoveryRetry())
            return
        for record in records:
            order = record.order
            asked = record.venue_cl_ord_id if order.status is OrderStatus.PENDING_NEW else record.pending_venue_cl_ord_id
            if asked is None or asked in round_.open:
                continue
            round_.open[asked] = Question(record.id, asked, order.status.value)
            if asked not in self._resolving:
                self._send_venue(tr.venue_status_request(asked, str(order.symbol), tables.SIDES.to_fix(order.side)))
        log.info("venue_recovery_started", round=self._round_number, questions=len(round_.open))
        if self._metrics is not None:
            self._metrics.recovering.set(1)
        if round_.done:
            self._round = None
            self._finish_recovery({})
            return
        self._round = round_
        self._later(timeout_s, RecoveryDeadline(self._round_number))

    def _later(self, delay_s: float, item: Item) -> None:
        timer = threading.Timer(delay_s, lambda: self.put(item))
        timer.daemon = True
        self._timers = [t for t in self._timers if t.is_alive()] + [timer]
        timer.start()

    def _recovery_answer(self, venue_cl_ord_id: str, unknown: bool, venue_status: str) -> bool:
        """One answer of the round; True when it was one of the round's questions."""
        assert self._round is not None
        question = self._round.answer(venue_cl_ord_id)
        if question is None:  # the venue may answer under the order's current ClOrdID: match by order
            record = queries.order_by_venue_cl_ord_id(self._database, venue_cl_ord_id)
            if record is not None:
                match = next((q for q in self._round.open.values() if q.order_id == record.id), None)
                question = None if match is None else self._round.answer(match.venue_cl_ord_id)
        if question is None:
            return False
        if unknown:
            self._requeue_if_never_received(question.venue_cl_ord_id)
            self.counters.add("recovery_requeued")
        else:
            record = queries.order_by_venue_cl_ord_id(self._database, question.venue_cl_ord_id)
            if record is not None and record.order.status.value in queries.RECOVERY_STATUSES:
                # The venue knows the order, yet no report of its outcome reached our books.
                self._round.unresolved[question.order_id] = (
                    f"venue reports OrdStatus={venue_status}, our order is {record.order.status.value}")
            else:
                self.counters.add("recovery_resolved")
        if self._round.done:
            self._finish_recovery(self._round.unresolved)
        return True

    def _now_resolved(self, order: Order, original: Order | None) -> None:
        """A report about an order recovery left unresolved arrived after all (a late acknowledgement)."""
        if order.status.value in queries.RECOVERY_STATUSES:  # still waiting for the venue's answer
            return
        for candidate in (order, original):
            if candidate is not None and self.unresolved.pop(str(candidate.order_id), None) is not None:
                log.info("order_outcome_resolved_late", order_id=str(candidate.order_id), status=order.status.value)
        if self._metrics is not None:
            self._metrics.unresolved.set(len(self.unresolved))

    def _recovery_deadline(self, number: int) -> None:
        round_ = self._round
        if round_ is None or number != self._round_number:
            return
        unresolved = dict(round_.unresolved)
        for question in round_.open.values():
            unresolved[question.order_id] = (f"no answer from the venue within {self._settings.recovery_timeout_ms} ms"
                                             f" (asked about {question.venue_cl_ord_id} while {question.status})")
        round_.open.clear()
        self._finish_recovery(unresolved)

    def _finish_recovery(self, unresolved: dict[str, str]) -> None:
        """Outcomes still unknown keep their reservations (nothing here releases anything): reported only."""
        self._round = None
        self.unresolved = dict(unresolved)
        for order_id, reason in sorted(self.unresolved.items()):
            log.warning("order_outcome_unknown", order_id=order_id, reason=reason, reservation="kept")
            self.counters.add("order_outcome_unknown")
        if self._metrics is not None:
            self._metrics.unresolved.set(len(self.unresolved))
            self._metrics.recovering.set(0)
        log.info("venue_recovery_finished", round=self._round_number, unresolved=len(self.unresolved))
        self.recovered.set()

    def _relay_again(self, command: ApplyExecution, now: datetime) -> None:
        """A report we had already applied, resent by the venue because our record of relaying it may have
        been lost in a crash: relay it again with PossResend=Y and its stable ExecID (the client keeps one)."""
        if command.exec_type is ExecType.ORDER_STATUS:
            return
        record = None
        for candidate in (command.cl_ord_id, command.orig_cl_ord_id):
            if candidate is not None and record is None:
                record = queries.order_by_venue_cl_ord_id(self._database, str(candidate))
        if record is None:
            return
        session_key = self._client_for(record.order)
        session = self._settings.client(session_key) if session_key else None
        if session is None:
            return
        kwargs: dict[str, Any] = {}
        if command.exec_type is ExecType.TRADE:
            kwargs.update(last_qty=command.last_qty, last_px=command.last_px)
        elif command.exec_type is ExecType.REJECTED:
            kwargs.update(text=command.text or None)
        elif command.exec_type is ExecType.REPLACED and record.order.orig_cl_ord_id is not None:
            kwargs.update(orig_cl_ord_id=str(record.order.orig_cl_ord_id))
        elif command.exec_type is ExecType.CANCELED and _answers_request(command, record):
            kwargs.update(cl_ord_id=record.request_cl_ord_id, orig_cl_ord_id=str(record.order.cl_ord_id))
        report = tr.execution_report(record.order, command.exec_type, client_exec_id(str(command.venue_exec_id)),
                                     session.begin_string, now, **kwargs)
        self._send_client(session.key, dataclasses.replace(report, header=report.header + ((POSS_RESEND, "Y"),)))
        self.counters.add("relayed_again")
        log.info("venue_report_relayed_again", order_id=record.id, exec_id=str(command.venue_exec_id))

    def _relay_reject_again(self, item: VenueReport, command: ApplyCancelReject, now: datetime) -> None:
        """A cancel/replace reject we had already applied, resent by the venue (our record of relaying it may
        have been lost in a crash): answer the client's request again, with PossResend=Y. Only when it
        refused the order's latest request, whose ClOrdID the order still keeps; an older one was answered."""
        record = None
        for candidate in (command.orig_venue_cl_ord_id, command.venue_cl_ord_id):
            if candidate and record is None:
                record = queries.order_by_venue_cl_ord_id(self._database, candidate)
        if record is None or record.request_cl_ord_id is None:
            return
        if queries.latest_request_venue_cl_ord_id(self._database, record.id) != command.venue_cl_ord_id:
            return
        session_key = self._client_for(record.order)
        session = self._settings.client(session_key) if session_key else None
        if session is None:
            return
        reject = tr.cancel_reject(record.request_cl_ord_id, str(record.order.cl_ord_id), record.order,
                                  command.response_to == "replace", item.body.get(CXL_REJ_REASON) or "0",
                                  command.reason, session.begin_string, now)
        self._send_client(session.key, dataclasses.replace(reject, header=reject.header + ((POSS_RESEND, "Y"),)))
        self.counters.add("relayed_again")
        log.info("venue_reject_relayed_again", order_id=record.id, venue_cl_ord_id=command.venue_cl_ord_id)

    # -- cancel on disconnect -------------------------------------------------------------------------
    def _cancel_on_disconnect(self, session_key: str) -> None:
        session = self._settings.client(session_key)
        if session is None or not session.cancel_on_disconnect:
            return
        shared = {account for other in self._settings.clients if other.key != session_key for account in other.accounts}
        orders = [record for record in queries.working_fix_orders(self._database, session.key, session.accounts - shared)
                  if record.order.status.is_working]
        commands = [CancelOrder(account=record.order.account, cl_ord_id=ClOrdId(f"COD-{new_id()[:24]}"),
                                orig_cl_ord_id=record.order.cl_ord_id) for record in orders]
        if not commands:
            return
        results = self._executor.execute(commands)
        log.warning("cancel_on_disconnect", session=session_key, orders=len(commands),
                    accepted=sum(r.outcome is Outcome.ACCEPTED for r in results))
        self.counters.add("cancel_on_disconnect")
        self._wake_outbox()
