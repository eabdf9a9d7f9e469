"""Fetching the venue's trades of a day over FIX: TradeCaptureReportRequest (35=AD), then 35=AQ and one 35=AE
per execution, on a short-lived QuickFIX ``ThreadedSocketInitiator``.

Which session: the venue answers a TradeCaptureReportRequest with the trades of the CompID that asks, so the
request must come from the broker's own venue session (the simulator's config allows no second CompID for the
same trades). We use the gateway's venue initiator session from sessions.cfg (``Component=gateway``,
``ConnectionType=initiator``, FIX.4.4) with its own ``FileStorePath``, so the sequence numbers simply continue
and the gateway finds them consistent when it logs on next. This works only while the gateway is NOT connected:
a venue accepts one connection per session, and a second logon is refused (we say so and stop). The session runs
on a copy of the store, written back once the venue has answered our logon, so an attempt the venue never saw
(gateway connected, venue down) leaves the gateway's store untouched. Without a gateway session we fall back to
the simulator's acceptor session (``Component=exchange``, CompIDs swapped, host 127.0.0.1) and a store of our
own under ``var/reconcile/store``, which suits a venue nobody else has logged on to yet (a fresh simulator).

A venue that had ExecutionReports queued for the session would resend them to us on logon and the gateway
would never see them: when the venue's Logon shows messages we have not seen, we refuse the logon and ask for
the gateway's recovery to run first.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import quickfix as fix

from exchange.config import QUICKFIX_KEYS, ConfigError, Section, parse_ini
from oms.domain.errors import DomainError
from oms.domain.values import parse_decimal
from reconcile.model import VenueTrade

SOH = "\x01"
PATH_KEYS = frozenset({"DATADICTIONARY", "TRANSPORTDATADICTIONARY", "APPDATADICTIONARY", "FILESTOREPATH"})
DROPPED_KEYS = frozenset({"FILELOGPATH", "FILELOGBACKUPPATH", "CONNECTIONTYPE", "SOCKETACCEPTPORT"})
DEFAULT_DICTIONARY = Path(__file__).resolve().parents[1] / "fix" / "specs" / "FIX44.xml"
SIDES = {"1": "buy", "2": "sell"}
MAX_REPORTS = 10_000_000


class VenueFetchError(Exception):
    """The venue's trades could not be fetched; the message says why. Nothing was booked."""


class NoVenueSession(VenueFetchError):
    """sessions.cfg was read and names no venue session (a report run then keeps every row)."""


@dataclass(frozen=True)
class VenueSessionSettings:
    """Our side of the venue session: CompIDs, where to connect, and the store holding its sequence numbers."""

    sender_comp_id: str
    target_comp_id: str
    host: str
    port: int
    settings: Mapping[str, str]  # QuickFIX keys for the [SESSION], DEFAULT merged, paths absolute
    shared_with_gateway: bool

    def quickfix_text(self) -> str:
        lines = ["[DEFAULT]", "ConnectionType=initiator", "ReconnectInterval=1", "StartTime=00:00:00",
                 "EndTime=00:00:00", "HeartBtInt=30", "[SESSION]"]
        lines += [f"{key}={value}" for key, value in self.settings.items()]
        return "\n".join(lines) + "\n"


def session_settings(config_path: Path) -> VenueSessionSettings:
    """The gateway's FIX.4.4 venue session from sessions.cfg, else the simulator's acceptor seen from our side."""
    try:
        text = config_path.read_text(encoding="utf-8")
        sections = parse_ini(text, str(config_path))
    except OSError as error:
        raise VenueFetchError(f"cannot read {config_path}: {error.strerror or error}") from None
    except ConfigError as error:
        raise VenueFetchError(str(error)) from None
    base = config_path.resolve().parent
    defaults = next((s for s in sections if s.name.upper() == "DEFAULT"), None)
    sessions = [_merged(s, defaults, base) for s in sections if s.name.upper() == "SESSION"]
    for session in sessions:
        if (_get(session, "Component") or "").lower() == "gateway" and (
                _get(session, "ConnectionType") or "").lower() == "initiator" and _get(session, "BeginString") == "FIX.4.4":
            return _ours(session, config_path, shared=True)
    for session in sessions:
        if (_get(session, "Component") or "").lower() == "exchange" and _get(session, "BeginString") == "FIX.4.4":
            swapped = dict(session)
            swapped["SenderCompID"], swapped["TargetCompID"] = session.get("TargetCompID", ""), session.get("SenderCompID", "")
            swapped["SocketConnectHost"] = "127.0.0.1"
            swapped["SocketConnectPort"] = _get(session, "SocketAcceptPort") or ""
            swapped["FileStorePath"] = str(base / "var" / "reconcile" / "store")
            return _ours(swapped, config_path, shared=False)
    raise NoVenueSession(f"{config_path}: no FIX.4.4 venue session (Component=gateway initiator or Component=exchange)")


def _merged(section: Section, defaults: Section | None, base: Path) -> dict[str, str]:
    merged: dict[str, str] = {}
    for source in ((defaults.values if defaults else {}), section.values):
        for key, value in source.items():
            for existing in [k for k in merged if k.upper() == key.upper()]:
                del merged[existing]
            merged[key] = value
    return {key: str((base / value).resolve()) if key.upper() in PATH_KEYS and value else value
            for key, value in merged.items()}


def _get(settings: Mapping[str, str], key: str) -> str | None:
    return next((value for existing, value in settings.items() if existing.upper() == key.upper()), None)


def _ours(session: Mapping[str, str], config_path: Path, *, shared: bool) -> VenueSessionSettings:
    sender, target = _get(session, "SenderCompID"), _get(session, "TargetCompID")
    host, port = _get(session, "SocketConnectHost"), _get(session, "SocketConnectPort")
    if not sender or not target or not host or not port or not port.isdigit():
        raise VenueFetchError(f"{config_path}: the venue session lacks CompIDs, host or port")
    keep = {key: value for key, value in session.items()
            if key.upper() in QUICKFIX_KEYS and key.upper() not in DROPPED_KEYS}
    if not _get(keep, "DataDictionary"):
        keep["DataDictionary"] = str(DEFAULT_DICTIONARY)
    keep.setdefault("UseDataDictionary", "Y")
    if not _get(keep, "FileStorePath"):
        raise VenueFetchError(f"{config_path}: the venue session has no FileStorePath")
    return VenueSessionSettings(sender, target, host, int(port), keep, shared)


class _CaptureApplication(fix.Application):  # type: ignore[misc]
    """Hands every message to the waiting thread; refuses a logon that would replay messages meant for the gateway."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: queue.Queue[dict[int, str] | tuple[str, str]] = queue.Queue()
        self.logged_on = threading.Event()
        self.venue_answered = threading.Event()  # the venue's Logon arrived: it has counted ours

    def onCreate(self, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        pass

    def onLogon(self, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        self.logged_on.set()

    def onLogout(self, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        self.messages.put(("logout", ""))

    def toAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        pass

    def toApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        pass

    def fromAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        fields = _fields(message)
        if fields.get(35) == "A":
            self.venue_answered.set()
            session = fix.Session.lookupSession(sessionID)
            expected = session.getExpectedTargetNum() if session is not None else 0
            if expected and int(fields.get(34, "0")) > expected:
                self.messages.put(("refused", f"the venue has {int(fields[34]) - expected} messages for this "
                                              "session that were never received: let the gateway recover first"))
                raise fix.RejectLogon("reconciliation session: unseen messages are the gateway's")
        elif fields.get(35) == "5":
            self.messages.put(("logout", fields.get(58, "")))

    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        self.messages.put(_fields(message))


def _fields(message: fix.Message) -> dict[int, str]:
    """Flat tag -> value (the AE's side group has one entry and its tags are unique in the message)."""
    fields: dict[int, str] = {}
    for item in message.toString().split(SOH):
        tag, _, value = item.partition("=")
        if tag.isdigit():
            fields.setdefault(int(tag), value)
    return fields


def fetch_trades(config_path: Path, trade_date: date, *, timeout_s: float = 30.0) -> list[VenueTrade]:
    """Log on, ask for ``trade_date``'s trades, collect every report, log out.

    The session runs on a copy of the store, written back once the venue has answered our logon (from then on the
    venue counts our messages, so the gateway must continue after them). When the venue never answered (it is
    down, or the gateway holds the session) the gateway's store is left exactly as it was.
    """
    ours = session_settings(config_path)
    store = Path(_get(ours.settings, "FileStorePath") or ".")
    prefix = f"FIX.4.4-{ours.sender_comp_id}-{ours.target_comp_id}."
    application = _CaptureApplication()
    with tempfile.TemporaryDirectory(prefix="reconcile-fix-") as temp:
        work = Path(temp) / "store"
        before = _copy_session_files(store, work, prefix)
        try:
            return _fetch(ours, application, work, trade_date, timeout_s)
        finally:
            if application.venue_answered.is_set():  # the venue counted our messages: keep the numbers in step
                if _stats(store, prefix) != before:
                    raise VenueFetchError(
                        f"{store}: the session store changed during the fetch (did the gateway start?); the fetched "
                        "trades are not used and the gateway's sequence numbers may need a reset")
                _copy_session_files(work, store, prefix)


def _stats(directory: Path, prefix: str) -> dict[str, tuple[int, int]]:
    if not directory.is_dir():
        return {}
    return {path.name: (path.stat().st_size, path.stat().st_mtime_ns) for path in directory.iterdir()
            if path.name.startswith(prefix)}


def _copy_session_files(source: Path, target: Path, prefix: str) -> dict[str, tuple[int, int]]:
    """Copy one session's store files (body, header, seqnums, session); returns the source's file stats."""
    target.mkdir(parents=True, exist_ok=True)
    stats = _stats(source, prefix)
    for name in stats:
        temporary = target / (name + ".tmp")
        shutil.copyfile(source / name, temporary)
        os.replace(temporary, target / name)
    return stats


def _fetch(ours: VenueSessionSettings, application: _CaptureApplication, store: Path, trade_date: date,
           timeout_s: float) -> list[VenueTrade]:
    settings = fix.SessionSettings()
    try:
        settings.setFromString(dataclasses.replace(
            ours, settings={**ours.settings, "FileStorePath": str(store)}).quickfix_text())
    except fix.ConfigError as error:
        raise VenueFetchError(f"QuickFIX refuses the venue session settings: {error}") from None
    # The C++ initiator keeps raw pointers to the application, store factory and settings: all three must
    # outlive it, so they are named here and the initiator is destroyed first.
    store_factory = fix.FileStoreFactory(settings)
    initiator = fix.ThreadedSocketInitiator(application, store_factory, settings)
    session_id = fix.SessionID("FIX.4.4", ours.sender_comp_id, ours.target_comp_id)
    deadline = time.monotonic() + timeout_s
    initiator.start()
    try:
        _wait_logon(application, ours, deadline)
        request_id = f"REC-{trade_date:%Y%m%d}-{time.time_ns()}"
        _send_request(session_id, request_id, trade_date)
        return _collect(application, request_id, ours.sender_comp_id, trade_date, deadline)
    finally:
        initiator.stop()
        del initiator
        del store_factory


def _wait_logon(application: _CaptureApplication, ours: VenueSessionSettings, deadline: float) -> None:
    while not application.logged_on.is_set():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise VenueFetchError(
                f"no logon to the venue at {ours.host}:{ours.port} as {ours.sender_comp_id}->{ours.target_comp_id}: "
                "is it down, or is the gateway connected with these CompIDs (one connection per session)?")
        try:
            item = application.messages.get(timeout=min(remaining, 0.2))
        except queue.Empty:
            continue
        if isinstance(item, tuple) and item[0] == "refused":
            raise VenueFetchError(f"venue session {ours.sender_comp_id}->{ours.target_comp_id}: {item[1]}")


def _send_request(session_id: fix.SessionID, request_id: str, trade_date: date) -> None:
    message = fix.Message()
    message.getHeader().setField(35, "AD")
    message.setField(568, request_id)
    message.setField(569, "1")  # trades matching the criteria: the trade date
    order = fix.IntArray(2)
    order[0], order[1] = 75, 0
    group = fix.Group(580, 75, order)
    group.setField(75, trade_date.strftime("%Y%m%d"))
    message.addGroup(group)
    if not fix.Session.sendToTarget(message, session_id):
        raise VenueFetchError("the TradeCaptureReportRequest could not be sent (session dropped)")


def _collect(application: _CaptureApplication, request_id: str, broker: str, trade_date: date,
             deadline: float) -> list[VenueTrade]:
    total: int | None = None
    rows: list[VenueTrade] = []
    while total is None or len(rows) < total:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            got = "no acknowledgement" if total is None else f"{len(rows)} of {total} reports"
            raise VenueFetchError(f"the venue did not answer the TradeCaptureReportRequest in time ({got})")
        try:
            item = application.messages.get(timeout=remaining)
        except queue.Empty:
            continue
        if isinstance(item, tuple):
            if item[0] == "logout":
                raise VenueFetchError(f"the venue logged out during the request{': ' + item[1] if item[1] else ''}")
            continue
        if item.get(568) != request_id:
            continue
        if item.get(35) == "AQ":
            if item.get(749) != "0":
                raise VenueFetchError(f"the venue refused the TradeCaptureReportRequest: "
                                      f"result {item.get(749)} {item.get(58, '')}".rstrip())
            total = _count(item.get(748, "0"))
        elif item.get(35) == "AE":
            rows.append(_trade(item, broker, trade_date, len(rows) + 1))
    return rows


def _count(text: str) -> int:
    if not text.isdigit() or int(text) > MAX_REPORTS:
        raise VenueFetchError(f"the venue announced {text!r} trade reports")
    return int(text)


def _trade(fields: dict[int, str], broker: str, trade_date: date, number: int) -> VenueTrade:
    where = f"TradeCaptureReport {number} (ExecID {fields.get(17, '?')})"
    try:
        side = SIDES[fields.get(54, "")]
        moment = _timestamp(fields.get(60, ""))
        trade = VenueTrade(
            exec_id=_required(fields, 17), order_id=_required(fields, 37), cl_ord_id=_required(fields, 11),
            broker_comp_id=broker, symbol=_required(fields, 55), side=side,
            qty=parse_decimal(fields.get(32, ""), "LastQty", allow_negative=False, allow_zero=False),
            price=parse_decimal(fields.get(31, ""), "LastPx", allow_negative=False, allow_zero=False),
            fee=parse_decimal(fields.get(12, "0"), "Commission", allow_negative=False),
            transact_time=moment, line=number,
        )
    except KeyError:
        raise VenueFetchError(f"{where}: Side {fields.get(54)!r} is not buy or sell") from None
    except (DomainError, ValueError) as error:
        raise VenueFetchError(f"{where}: {error}") from None
    if moment.date() != trade_date:
        raise VenueFetchError(f"{where}: TransactTime {fields.get(60)} is not on {trade_date}")
    return trade


def _required(fields: dict[int, str], tag: int) -> str:
    value = fields.get(tag, "")
    if not value:
        raise ValueError(f"tag {tag} is missing")
    return value


def _timestamp(text: str) -> datetime:
    for pattern in ("%Y%m%d-%H:%M:%S.%f", "%Y%m%d-%H:%M:%S"):
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise ValueError(f"TransactTime {text!r} is not a UTCTimestamp")
