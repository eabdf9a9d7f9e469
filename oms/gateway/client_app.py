"""QuickFIX Application for the client acceptor sessions: logon checks, translation, hand-off. Nothing else.

Every application message is copied out of QuickFIX (the message object belongs to QuickFIX's thread),
translated, throttled and put on the worker's queue; answers come from the worker. Malformed messages get
QuickFIX's session Reject (we raise its exceptions), unsupported types its BusinessMessageReject.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

import quickfix as fix
import structlog

from fix.quickfix_io import QUICKFIX_ERRORS, build_message, msg_type, session_name
from fix.wire import PASSWORD, USERNAME, BadTagValue, DictFields, MissingTag, parse_pairs, refuse_unprintable
from oms.domain.commands import CancelOrder, PlaceOrder, ReplaceOrder
from oms.domain.risk import Denial, RateLimiter, check_rate
from oms.gateway import translate as tr
from oms.gateway.config import ClientSession, GatewaySettings
from oms.gateway.credentials import verify_password
from oms.gateway.metrics import GatewayMetrics
from oms.gateway.worker import ClientLoggedOut, ClientOrder, ClientStatus, Worker

log = structlog.get_logger(__name__)

Command = PlaceOrder | CancelOrder | ReplaceOrder

# Order-entry messages -> OMS commands; a new order also keeps the session it came in on (its origin).
TRANSLATORS: dict[str, Callable[[DictFields, ClientSession], Command]] = {
    "D": lambda body, session: tr.place_order(body, session.accounts, session.key),
    "F": lambda body, session: tr.cancel_order(body, session.accounts),
    "G": lambda body, session: tr.replace_order(body, session.accounts),
}


class Throttle:
    """A per-session token bucket over inbound order-entry messages (D, F, G)."""

    def __init__(self, session: ClientSession) -> None:
        self._lock = threading.Lock()
        self._limiter = (RateLimiter.per_second(session.throttle_per_second, session.throttle_burst)
                         if session.throttle_per_second > 0 else None)

    def check(self, now: datetime) -> Denial | None:
        if self._limiter is None:
            return None
        with self._lock:
            self._limiter, denial = check_rate(self._limiter, now)
        return denial


class ClientApplication(fix.Application):  # type: ignore[misc]
    def __init__(self, settings: GatewaySettings, worker: Worker, metrics: GatewayMetrics | None = None) -> None:
        super().__init__()
        self._metrics = metrics
        self._settings = settings
        self._worker = worker
        self._throttles = {client.key: Throttle(client) for client in settings.clients}

    # -- session events -------------------------------------------------------------------------------
    def onCreate(self, sessionID: fix.SessionID) -> None:  # noqa: N802,N803 - QuickFIX names
        pass

    def onLogon(self, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        log.info("client_logon", session=session_name(sessionID))
        if self._metrics is not None:
            self._metrics.logged_on.labels(session_name(sessionID), "client").set(1)

    def onLogout(self, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        try:
            log.info("client_logout", session=session_name(sessionID))
            if self._metrics is not None:
                self._metrics.logged_on.labels(session_name(sessionID), "client").set(0)
            self._worker.put(ClientLoggedOut(session_name(sessionID)))
        except Exception:
            log.exception("client_on_logout_failed")

    def toAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        pass

    def toApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        pass

    def fromAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        """Logon: check Username/Password when the session has a PasswordHash. The password is read here
        and nowhere else: never logged, and client sessions keep no message log."""
        if msg_type(message) != "A":
            return
        key = session_name(sessionID)
        session = self._settings.client(key)
        if session is None:
            raise fix.RejectLogon("unknown session")
        if session.password_hash is None:
            return
        username = str(message.getField(USERNAME)) if message.isSetField(USERNAME) else None
        password = str(message.getField(PASSWORD)) if message.isSetField(PASSWORD) else ""
        try:
            good = verify_password(password, session.password_hash)
        except Exception:
            good = False
        if not good or (username is not None and username != session.client_comp_id):
            log.warning("client_logon_refused", session=key, reason="bad credentials")
            raise fix.RejectLogon("invalid username or password")

    # -- application messages -------------------------------------------------------------------------
    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        try:
            self._dispatch(message, session_name(sessionID))
        except QUICKFIX_ERRORS:
            raise
        except MissingTag as missing:
            reject = tr.missing_field_reject(DictFields(dict(parse_pairs(message.toString()))), msg_type(message), missing.tag)
            if reject is None:
                raise fix.FieldNotFound(missing.tag) from None
            fix.Session.sendToTarget(build_message(reject), sessionID)
        except BadTagValue as bad:
            raise fix.IncorrectTagValue(bad.tag) from None
        except Exception:  # anything else escaping a callback would end the process
            log.exception("client_from_app_failed", session=session_name(sessionID))

    def _dispatch(self, message: fix.Message, key: str) -> None:
        session = self._settings.client(key)
        if session is None:
            raise fix.UnsupportedMessageType()
        kind = msg_type(message)
        body = DictFields(dict(refuse_unprintable(parse_pairs(message.toString()))))
        translate = TRANSLATORS.get(kind)
        if translate is not None:
            denial = self._throttles[key].check(datetime.now(UTC))
            if denial is not None:
                self._worker.put(ClientOrder(key, kind, body, None, denial))
                return
            try:
                command = translate(body, session)
            except tr.ClientDenied as denied:
                self._worker.put(ClientOrder(key, kind, body, None, denied.denial))
                return
            self._worker.put(ClientOrder(key, kind, body, command))
        elif kind == "H":
            try:
                account: str | None = str(tr.client_account(body, session.accounts))
                denial = None
            except tr.ClientDenied as denied:
                account, denial = None, denied.denial
            self._worker.put(ClientStatus(key, body, account, denial))
        else:
            raise fix.UnsupportedMessageType()
