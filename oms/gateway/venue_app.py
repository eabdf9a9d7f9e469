"""QuickFIX Application for the venue initiator session: reports in, order entry out, resends resolved.

When the venue asks for a resend, QuickFIX replays our stored messages through `toApp` with PossDupFlag=Y.
Order-entry messages (D, F, G) are never replayed: we raise DoNotSend (QuickFIX gap-fills them) and ask the
worker to resolve each with an OrderStatusRequest; if the venue never got one, the worker queues it again
as a fresh message. Market data updates the reference prices; everything else is handed to the worker.
"""

from __future__ import annotations

import threading

import quickfix as fix
import structlog

from fix.quickfix_io import QUICKFIX_ERRORS, msg_type, session_name
from fix.tables import UnmappedValue
from fix.wire import CL_ORD_ID, POSS_DUP, SIDE, SYMBOL, BadTagValue, DictFields, MissingTag, parse_pairs
from oms.domain.errors import DomainError
from oms.gateway import translate as tr
from oms.gateway.metrics import GatewayMetrics
from oms.gateway.reference_prices import ReferencePrices
from oms.gateway.worker import VenueLoggedOn, VenueReport, VenueResolve, Worker

log = structlog.get_logger(__name__)
ORDER_ENTRY = frozenset({"D", "F", "G"})


# TradeCaptureReport and TradeCaptureReportRequestAck: the nightly reconciliation's, not the gateway's business.
TRADE_CAPTURE_KINDS = frozenset({"AE", "AQ"})


class VenueApplication(fix.Application):  # type: ignore[misc]
    def __init__(self, begin_string: str, worker: Worker, reference_prices: ReferencePrices,
                 metrics: GatewayMetrics | None = None) -> None:
        super().__init__()
        self._metrics = metrics
        self._begin_string = begin_string
        self._worker = worker
        self._reference_prices = reference_prices
        self.logged_on = threading.Event()
        self.gap_filled = 0
        self.trade_captures_ignored = 0

    def onCreate(self, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        pass

    def onLogon(self, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        try:
            log.info("venue_logon", session=session_name(sessionID))
            self.logged_on.set()
            if self._metrics is not None:
                self._metrics.logged_on.labels(session_name(sessionID), "venue").set(1)
            self._worker.put(VenueLoggedOn())
        except Exception:
            log.exception("venue_on_logon_failed")

    def onLogout(self, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        log.warning("venue_logout", session=session_name(sessionID))
        self.logged_on.clear()
        self._worker.venue_down()
        if self._metrics is not None:
            self._metrics.logged_on.labels(session_name(sessionID), "venue").set(0)

    def toAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        pass

    def fromAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        pass

    def toApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        header = message.getHeader()
        if not (header.isSetField(POSS_DUP) and str(header.getField(POSS_DUP)) == "Y"):
            return
        if msg_type(message) not in ORDER_ENTRY:
            return
        try:
            body = DictFields(dict(parse_pairs(message.toString())))
            self.gap_filled += 1
            self._worker.put(VenueResolve(body.get(CL_ORD_ID) or "", body.get(SYMBOL) or "", body.get(SIDE) or "1"))
        except Exception:
            log.exception("venue_resend_resolution_failed")
        raise fix.DoNotSend()

    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        try:
            kind = msg_type(message)
            pairs = parse_pairs(message.toString())
            if kind in ("W", "X"):
                if not message.getHeader().isSetField(POSS_DUP):  # a resent quote is stale
                    self._reference_prices.update(pairs)
                return
            body = DictFields(dict(pairs))
            if kind == "8":
                self._worker.put(VenueReport(tr.venue_execution(body, self._begin_string), body))
            elif kind == "9":
                self._worker.put(VenueReport(tr.venue_cancel_reject(body), body))
            elif kind in ("Y", "j"):
                log.warning("venue_rejected_request", msg_type=kind, text=body.get(58))
            elif kind in TRADE_CAPTURE_KINDS:  # answers to `oms reconcile --from-venue`, which borrows this
                # session while the gateway is down; they come back here in the resend at the next logon
                self.trade_captures_ignored += 1
                log.info("venue_trade_capture_ignored", msg_type=kind)
            else:
                raise fix.UnsupportedMessageType()
        except QUICKFIX_ERRORS:
            raise
        except MissingTag as missing:
            raise fix.FieldNotFound(missing.tag) from None
        except (BadTagValue, UnmappedValue, DomainError) as bad:
            log.error("venue_report_unreadable", error=str(bad), message=message.toString().replace("\x01", "|"))
        except Exception:
            log.exception("venue_from_app_failed")
