"""Wiring of one gateway process: client acceptor, venue initiator, worker, outbox sender, reference prices.

`Gateway(settings, database).start()` is what `oms gateway` and the tests run; `stop()` shuts down in the
order that loses nothing: clients first (their last requests drain through the worker), then the venue.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

import quickfix as fix
import structlog

from fix.quickfix_io import is_logged_on, send
from fix.wire import Outbound
from oms.events.publisher import StreamPublisher
from oms.gateway import crash, queries
from oms.gateway.client_app import ClientApplication
from oms.gateway.config import GatewaySettings
from oms.gateway.metrics import GatewayMetrics
from oms.gateway.outbox import OutboxSender
from oms.gateway.recovery import AppliedSeq
from oms.gateway.reference_prices import ReferencePrices
from oms.gateway.venue_app import VenueApplication
from oms.gateway.worker import ClientLoggedOut, Worker
from oms.service.executor import CommandExecutor
from oms.service.orders import ServiceConfig
from oms.service.uow import Database

log = structlog.get_logger(__name__)


def _session_id(begin_string: str, ours: str, theirs: str) -> fix.SessionID:
    return fix.SessionID(begin_string, ours, theirs)


def _store_path(session_settings: Mapping[str, str]) -> str | None:
    return next((value for key, value in session_settings.items() if key.upper() == "FILESTOREPATH"), None)


def _applied_seq(settings: GatewaySettings) -> AppliedSeq | None:
    """The applied-report mark beside the venue session's file store (none with a memory store)."""
    venue = settings.venue
    store = _store_path(venue.settings)
    if not store:
        return None
    return AppliedSeq(Path(store) / f"{venue.begin_string}-{venue.our_comp_id}-{venue.venue_comp_id}.applied-seq")


def _client_applied_seqs(settings: GatewaySettings) -> dict[str, AppliedSeq]:
    """Per client session, the mark of its last request the worker has handled (committed or answered)."""
    marks: dict[str, AppliedSeq] = {}
    for client in settings.clients:
        store = _store_path(client.settings)
        if store:
            name = f"{client.begin_string}-{client.our_comp_id}-{client.client_comp_id}.applied-seq"
            marks[client.key] = AppliedSeq(Path(store) / name)
    return marks


def _rewind_to_mark(session_id: fix.SessionID, mark: AppliedSeq, what: str) -> None:
    """Before logon: expect the counterparty's messages from just after the last one we handled, so QuickFIX
    asks for a resend of any it had counted as received but that a crash kept from being handled."""
    session = fix.Session.lookupSession(session_id)
    if session is None:
        return
    store_next = int(session.getExpectedTargetNum())
    applied = mark.read()
    if applied is None:  # the first start with this store: everything received so far counts as handled
        mark.write(store_next - 1)
        return
    wanted = AppliedSeq.next_expected(store_next, applied)
    if wanted < store_next:
        session.setNextTargetMsgSeqNum(wanted)
        log.warning(f"{what}_replay_requested", session=session_id.toString(), from_seq=wanted, store_next=store_next)


class Gateway:
    def __init__(self, settings: GatewaySettings, database: Database, config: ServiceConfig | None = None,
                 *, redis_url: str | None = None) -> None:
        crash.check()
        crash.install(database.engine)
        self.settings = settings
        self.database = database
        # With Redis, every committed order event also goes to the Redis Stream, so API processes stream what
        # this process did at once (without Redis, they read order_events from the database).
        publish = StreamPublisher(redis_url).publish if redis_url else None
        self.executor = CommandExecutor(database, config, on_commit=publish)
        venue = settings.venue
        self.venue_session_id = _session_id(venue.begin_string, venue.our_comp_id, venue.venue_comp_id)
        self._client_ids = {c.key: _session_id(c.begin_string, c.our_comp_id, c.client_comp_id) for c in settings.clients}
        self.metrics = GatewayMetrics()
        self.metrics_port: int | None = None
        self.reference_prices = ReferencePrices(database, settings.reference_flush_ms)
        self.outbox = OutboxSender(database, venue.begin_string, self._send_venue, self.venue_up, settings.outbox_poll_ms)
        self.applied_seq = _applied_seq(settings)
        self.client_applied_seqs = _client_applied_seqs(settings)
        self.worker = Worker(settings, database, self.executor, self._send_client, self._send_venue, self.venue_up,
                             self.outbox.wake, queries.symbols(database), self.metrics, self.applied_seq,
                             self.client_applied_seqs, relay_thread=True)
        self.venue_app = VenueApplication(venue.begin_string, self.worker, self.reference_prices, self.metrics)
        self.client_app = ClientApplication(settings, self.worker, self.metrics)
        self._acceptor: fix.ThreadedSocketAcceptor | None = None
        self._initiator: fix.ThreadedSocketInitiator | None = None
        self._factories: list[object] = []

    # -- sending --------------------------------------------------------------------------------------
    def venue_up(self) -> bool:
        return self.venue_app.logged_on.is_set() and is_logged_on(self.venue_session_id)

    def _send_venue(self, outbound: Outbound) -> bool:
        return send(outbound, self.venue_session_id)

    def _send_client(self, key: str, outbound: Outbound) -> bool:
        session_id = self._client_ids.get(key)
        if session_id is None or not send(outbound, session_id):
            log.warning("client_send_failed", session=key, msg_type=outbound.msg_type)
            return False
        return True

    # -- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> Gateway:
        if self.settings.metrics_port is not None:
            self.metrics_port = self.metrics.serve(self.settings.metrics_port)
        self.worker.start()
        self.outbox.start()
        self.reference_prices.start()
        if self.settings.clients:
            settings = fix.SessionSettings()
            settings.setFromString(self.settings.acceptor_text())
            store = fix.FileStoreFactory(settings)
            # No message log for client sessions: a Logon carries the client's password (554).
            self._acceptor = fix.ThreadedSocketAcceptor(self.client_app, store, settings)
            self._factories += [settings, store]
            for key, mark in self.client_applied_seqs.items():
                _rewind_to_mark(self._client_ids[key], mark, "client")
            self._cancel_on_disconnect_left_by_a_crash()
            self._acceptor.start()
        settings = fix.SessionSettings()
        settings.setFromString(self.settings.initiator_text())
        store = fix.FileStoreFactory(settings)
        self._factories += [settings, store]
        if any(key.upper() == "FILELOGPATH" for key in self.settings.venue.settings):
            log_factory = fix.FileLogFactory(settings)
            self._factories.append(log_factory)
            self._initiator = fix.ThreadedSocketInitiator(self.venue_app, store, settings, log_factory)
        else:
            self._initiator = fix.ThreadedSocketInitiator(self.venue_app, store, settings)
        self._replay_uncommitted_reports()
        self._initiator.start()
        log.info("gateway_started", clients=len(self.settings.clients), venue=self.settings.venue.key)
        return self

    def _cancel_on_disconnect_left_by_a_crash(self) -> None:
        """Every CancelOnDisconnect session starts disconnected. An orderly stop cancelled its working orders
        as it disconnected the client; a crash did not, so its orders would work on at the venue until the
        client next came and went. Queued before the acceptor starts: the worker handles items in order, so
        nothing the client sends in this run can be taken for a left-over order."""
        for client in self.settings.clients:
            if client.cancel_on_disconnect:
                self.worker.put(ClientLoggedOut(client.key))

    def _replay_uncommitted_reports(self) -> None:
        """Before the venue logon: expect the venue's messages from just after the last report we committed
        and relayed, so QuickFIX asks for a resend of any it had counted but we never booked."""
        if self.applied_seq is not None:
            _rewind_to_mark(self.venue_session_id, self.applied_seq, "venue")

    def wait_venue(self, timeout_s: float = 10.0) -> bool:
        """True once the venue session is logged on and the recovery after that logon is over (the
        gateway takes new orders)."""
        deadline = time.monotonic() + timeout_s
        if not self.venue_app.logged_on.wait(timeout_s):
            return False
        return self.worker.recovered.wait(max(0.0, deadline - time.monotonic()))

    def stop(self, force: bool = False) -> None:
        """Stop and destroy the QuickFIX engines (QuickFIX keeps sessions in a process-wide registry until
        the acceptor/initiator object is deleted, which a restart in the same process needs). `force` skips
        waiting for the counterparties' Logout replies."""
        acceptor, self._acceptor = self._acceptor, None
        if acceptor is not None:
            acceptor.stop(force)
        if self.worker.wait_idle(10):  # every client message received so far is handled: nothing to replay
            for key, mark in self.client_applied_seqs.items():
                session = fix.Session.lookupSession(self._client_ids[key])
                if session is not None:
                    mark.write(int(session.getExpectedTargetNum()) - 1)
        del acceptor  # QuickFIX's sessions go with the acceptor object
        self.outbox.wake()
        if self._initiator is not None:
            self._initiator.stop(force)
            self._initiator = None
        self.outbox.stop()
        self.worker.stop()
        self.reference_prices.stop()
        self.metrics.close()
        self._factories.clear()
        log.info("gateway_stopped")

    def run_forever(self) -> None:
        stop = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        self.start()
        try:
            while not stop.wait(1.0):
                pass
        finally:
            self.stop()
