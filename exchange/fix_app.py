"""The venue's QuickFIX Application: reads FIX, calls the service, writes FIX. Nothing else.

Rules that come from the Python binding (see QuickfixPython.cpp, SwigDirector_Application::fromApp):
* a Python exception escaping a callback that is not one of QuickFIX's own (FieldNotFound,
  IncorrectDataFormat, IncorrectTagValue, UnsupportedMessageType) ends the whole process (Py_Exit), so every
  callback catches everything else and logs it;
* those four are how we ask QuickFIX for a session Reject / BusinessMessageReject, so they are re-raised;
* the binding has no message cracker: MsgType -> handler is a dict.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import quickfix as fix

from exchange import translate as tr
from exchange.market_data import MarketDataRequest
from exchange.service import SessionKey, VenueService
from exchange.trade_report import TradeCaptureRequest
from fix.quickfix_io import QUICKFIX_ERRORS, QfFields
from fix.wire import local_mkt_date

log = logging.getLogger(__name__)

MSG_TYPE = 35
NO_MD_ENTRY_TYPES, MD_ENTRY_TYPE, NO_RELATED_SYM, MD_REQ_ID, SUBSCRIPTION_REQUEST_TYPE = 267, 269, 146, 262, 263
TRADE_REQUEST_ID, TRADE_REQUEST_TYPE, NO_DATES, TRADE_DATE = 568, 569, 580, 75
MAX_GROUP_ENTRIES = 1000


def session_key(session_id: fix.SessionID) -> SessionKey:
    return SessionKey(session_id.getBeginString().getValue(), session_id.getSenderCompID().getValue(),
                      session_id.getTargetCompID().getValue())


def build_message(outbound: tr.Outbound) -> fix.Message:
    """Outbound -> quickfix.Message; the header's session fields are filled by sendToTarget."""
    message = fix.Message()
    message.getHeader().setField(MSG_TYPE, outbound.msg_type)
    for tag, value in outbound.fields:
        message.setField(tag, value)
    for group in outbound.groups:
        if not group.entries:
            message.setField(group.count_tag, "0")
        for entry in group.entries:
            order = fix.IntArray(len(entry) + 1)
            for position, (tag, _) in enumerate(entry):
                order[position] = tag
            order[len(entry)] = 0
            fix_group = fix.Group(group.count_tag, entry[0][0], order)
            for tag, value in entry:
                fix_group.setField(tag, value)
            message.addGroup(fix_group)
    return message


class QuickFixSender:
    """Sends Outbound messages to a venue session (callable from any thread)."""

    def __init__(self) -> None:
        self._session_ids: dict[SessionKey, fix.SessionID] = {}

    def _session_id(self, session: SessionKey) -> fix.SessionID:
        session_id = self._session_ids.get(session)
        if session_id is None:
            session_id = fix.SessionID(session.begin_string, session.venue_comp_id, session.broker_comp_id)
            self._session_ids[session] = session_id
        return session_id

    def send(self, session: SessionKey, outbound: tr.Outbound) -> None:
        try:
            fix.Session.sendToTarget(build_message(outbound), self._session_id(session))
        except fix.SessionNotFound:
            log.error("session %s not found: %s dropped", session, outbound.msg_type)

    def disconnect(self, session: SessionKey) -> None:
        found = fix.Session.lookupSession(self._session_id(session))
        if found is not None:
            found.disconnect()


def _group_values(message: fix.Message, count_tag: int, delimiter: int, tag: int) -> tuple[str, ...]:
    if not message.isSetField(count_tag):
        return ()
    count = min(int(message.getField(count_tag)), MAX_GROUP_ENTRIES)
    group = fix.Group(count_tag, delimiter)
    values: list[str] = []
    for number in range(1, count + 1):
        message.getGroup(number, group)
        if group.isSetField(tag):
            values.append(str(group.getField(tag)))
    return tuple(values)


def market_data_request(message: fix.Message) -> MarketDataRequest:
    body = QfFields(message)
    return MarketDataRequest(
        md_req_id=tr.required(body, MD_REQ_ID),
        subscription_type=tr.required(body, SUBSCRIPTION_REQUEST_TYPE),
        entry_types=_group_values(message, NO_MD_ENTRY_TYPES, MD_ENTRY_TYPE, MD_ENTRY_TYPE),
        symbols=_group_values(message, NO_RELATED_SYM, tr.SYMBOL, tr.SYMBOL),
    )


def trade_capture_request(message: fix.Message) -> TradeCaptureRequest:
    body = QfFields(message)
    dates = []
    for raw in _group_values(message, NO_DATES, TRADE_DATE, TRADE_DATE):
        dates.append(local_mkt_date(raw, TRADE_DATE))
    return TradeCaptureRequest(
        trade_request_id=tr.required(body, TRADE_REQUEST_ID),
        trade_request_type=tr.required(body, TRADE_REQUEST_TYPE),
        subscription_type=body.get(SUBSCRIPTION_REQUEST_TYPE),
        symbol=body.get(tr.SYMBOL),
        trade_dates=tuple(dates),
    )


class VenueApplication(fix.Application):  # type: ignore[misc]
    """QuickFIX callbacks -> VenueService calls."""

    def __init__(self, service: VenueService) -> None:
        super().__init__()
        self._service = service
        self._handlers: dict[str, Callable[[SessionKey, fix.Message], None]] = {
            "D": lambda key, m: service.new_order(key, QfFields(m), QfFields(m.getHeader())),
            "F": lambda key, m: service.cancel(key, QfFields(m)),
            "G": lambda key, m: service.replace(key, QfFields(m)),
            "H": lambda key, m: service.order_status(key, QfFields(m)),
            "V": lambda key, m: service.market_data_request(key, market_data_request(m)),
            "AD": self._trade_capture,
        }

    def _trade_capture(self, key: SessionKey, message: fix.Message) -> None:
        if key.version is not tr.FixVersion.FIX44:
            raise fix.UnsupportedMessageType()
        self._service.trade_capture_request(key, trade_capture_request(message))

    def onCreate(self, sessionID: fix.SessionID) -> None:  # noqa: N802,N803 - QuickFIX names
        log.info("session created: %s", sessionID.toString())

    def onLogon(self, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        try:
            log.info("logon: %s", sessionID.toString())
            self._service.on_logon(session_key(sessionID))
        except Exception:
            log.exception("onLogon failed")

    def onLogout(self, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        try:
            log.info("logout: %s", sessionID.toString())
            self._service.on_logout(session_key(sessionID))
        except Exception:
            log.exception("onLogout failed")

    def toAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        pass

    def fromAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        pass

    def toApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        pass

    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        try:
            msg_type = message.getHeader().getField(MSG_TYPE)
            handler = self._handlers.get(msg_type)
            if handler is None:
                raise fix.UnsupportedMessageType()
            handler(session_key(sessionID), message)
        except QUICKFIX_ERRORS:
            raise
        except tr.MissingTag as missing:
            raise fix.FieldNotFound(missing.tag) from None
        except tr.BadTagValue as bad:
            raise fix.IncorrectDataFormat(bad.tag, bad.text) from None
        except Exception:
            # Anything else escaping here would end the process (see module docstring).
            log.exception("fromApp failed on %s", message.toString().replace("\x01", "|"))
