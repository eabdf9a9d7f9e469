"""Translation between FIX application messages and the engine's commands and events.

No QuickFIX types here: inbound messages are read through a tiny `FieldSource` protocol and outbound
messages are plain `Outbound` values (tag/value pairs plus repeating groups), so every rule can be unit
tested with dicts. Enums cross the boundary only through the explicit two-way tables below; FIX 4.2 and
FIX 4.4 share the tables and differ in a few documented places (ExecTransType, fill ExecTypes, status
reports, the narrower reject-reason enums of 4.2).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

from exchange.engine.types import (
    CancelOrder,
    CancelRejected,
    CancelRejectReason,
    Event,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    OrderSnapshot,
    OrderState,
    OrderTriggered,
    OrderType,
    ReplaceOrder,
    ReplaceRejected,
    Side,
    SubmitOrder,
    TimeInForce,
    TradeBusted,
    TradeCorrected,
)
from fix.tables import TwoWayTable, UnmappedValue
from fix.wire import BadTagValue, FieldSource, MissingTag, Outbound, OutGroup, parse_date  # noqa: F401  # OutGroup re-exported

# --------------------------------------------------------------------------- tags (FIX field numbers)
AVG_PX, CL_ORD_ID, CUM_QTY, EXEC_ID, EXEC_REF_ID, EXEC_TRANS_TYPE = 6, 11, 14, 17, 19, 20
LAST_PX, LAST_QTY, ORDER_ID, ORDER_QTY, ORD_STATUS, ORD_TYPE = 31, 32, 37, 38, 39, 40
ORIG_CL_ORD_ID, PRICE, SIDE, SYMBOL, TEXT, TIME_IN_FORCE, TRANSACT_TIME = 41, 44, 54, 55, 58, 59, 60
POSS_DUP, POSS_RESEND, STOP_PX, EXPIRE_DATE, CXL_REJ_REASON, ORD_REJ_REASON = 43, 97, 99, 432, 102, 103
EXEC_TYPE, LEAVES_QTY, CXL_REJ_RESPONSE_TO, EXEC_RESTATEMENT_REASON, TRD_MATCH_ID = 150, 151, 434, 378, 880
MSG_TYPE = 35

# Message types we answer with and accept.
MSG_EXECUTION_REPORT = "8"
MSG_ORDER_CANCEL_REJECT = "9"


class FixVersion(enum.Enum):
    """The two dialects the venue speaks; chosen per session from its BeginString."""

    FIX42 = "FIX.4.2"
    FIX44 = "FIX.4.4"

    @classmethod
    def from_begin_string(cls, begin_string: str) -> FixVersion:
        return cls(begin_string)


# --------------------------------------------------------------------------- two-way tables
SIDES: TwoWayTable[Side] = TwoWayTable("Side(54)", [(Side.BUY, "1"), (Side.SELL, "2")])
ORDER_TYPES: TwoWayTable[OrderType] = TwoWayTable("OrdType(40)", [
    (OrderType.MARKET, "1"), (OrderType.LIMIT, "2"), (OrderType.STOP, "3"), (OrderType.STOP_LIMIT, "4"),
])
TIMES_IN_FORCE: TwoWayTable[TimeInForce] = TwoWayTable("TimeInForce(59)", [
    (TimeInForce.DAY, "0"), (TimeInForce.GTC, "1"), (TimeInForce.IOC, "3"), (TimeInForce.FOK, "4"),
    (TimeInForce.GTD, "6"),
])
# OrdStatus(39). An untriggered stop is "New" on the wire, so PENDING_TRIGGER is folded in before lookup.
ORDER_STATES: TwoWayTable[OrderState] = TwoWayTable("OrdStatus(39)", [
    (OrderState.NEW, "0"), (OrderState.PARTIALLY_FILLED, "1"), (OrderState.FILLED, "2"),
    (OrderState.CANCELED, "4"), (OrderState.REPLACED, "5"), (OrderState.REJECTED, "8"),
    (OrderState.EXPIRED, "C"),
])


class ExecKind(enum.Enum):
    """What an ExecutionReport reports, independent of FIX version (ExecType is looked up per version)."""

    NEW = "new"
    TRADE = "trade"
    CANCELED = "canceled"
    REPLACED = "replaced"
    REJECTED = "rejected"
    EXPIRED = "expired"
    RESTATED = "restated"
    TRADE_CANCEL = "trade_cancel"
    TRADE_CORRECT = "trade_correct"
    ORDER_STATUS = "order_status"


# ExecType(150) per version. FIX 4.2 fills are 1/2 (partial/full) and it has no Trade/Status/TradeCancel
# codes: those are expressed with ExecTransType(20) instead (see _exec_type_42).
EXEC_TYPES_44: TwoWayTable[ExecKind] = TwoWayTable("ExecType(150) FIX.4.4", [
    (ExecKind.NEW, "0"), (ExecKind.CANCELED, "4"), (ExecKind.REPLACED, "5"), (ExecKind.REJECTED, "8"),
    (ExecKind.EXPIRED, "C"), (ExecKind.RESTATED, "D"), (ExecKind.TRADE, "F"), (ExecKind.TRADE_CORRECT, "G"),
    (ExecKind.TRADE_CANCEL, "H"), (ExecKind.ORDER_STATUS, "I"),
])
EXEC_TYPES_42: TwoWayTable[ExecKind] = TwoWayTable("ExecType(150) FIX.4.2", [
    (ExecKind.NEW, "0"), (ExecKind.CANCELED, "4"), (ExecKind.REPLACED, "5"), (ExecKind.REJECTED, "8"),
    (ExecKind.EXPIRED, "C"), (ExecKind.RESTATED, "D"),
])
# ExecTransType(20), FIX 4.2 only.
EXEC_TRANS_NEW, EXEC_TRANS_CANCEL, EXEC_TRANS_CORRECT, EXEC_TRANS_STATUS = "0", "1", "2", "3"

# Reject reasons our FIX 4.2 dictionary allows; anything else goes out as "broker/exchange option".
ORD_REJ_REASONS_42 = frozenset(range(0, 9))
ORD_REJ_BROKER_OPTION = 0
CXL_REJ_REASONS_42 = frozenset(range(0, 4))
CXL_REJ_BROKER_OPTION = 2
ORD_REJ_UNKNOWN_SYMBOL, ORD_REJ_UNKNOWN_ORDER, ORD_REJ_UNSUPPORTED, ORD_REJ_OTHER = 1, 5, 11, 99
ORD_REJ_INCORRECT_QUANTITY = 13


class OrderDenied(Exception):
    """An order we refuse before the engine sees it, answered with ExecType=Rejected."""

    def __init__(self, ord_rej_reason: int, text: str) -> None:
        super().__init__(text)
        self.ord_rej_reason = ord_rej_reason
        self.text = text


# --------------------------------------------------------------------------- value formatting
def fix_decimal(value: Decimal) -> str:
    """Plain decimal notation (never exponent form, which FIX does not allow)."""
    text = format(value, "f")
    return "0" if text in ("-0", "") else text


def fix_timestamp(moment: datetime) -> str:
    """UTCTimestamp with milliseconds."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y%m%d-%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def fix_date(day: date) -> str:
    return day.strftime("%Y%m%d")


def parse_decimal(source: FieldSource, tag: int, required: bool = True) -> Decimal | None:
    raw = source.get(tag)
    if raw is None or raw == "":
        if required:
            raise MissingTag(tag)
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise BadTagValue(tag, f"not a number: {raw!r}") from None
    if not value.is_finite():
        raise BadTagValue(tag, f"not a finite number: {raw!r}")
    return value


def required(source: FieldSource, tag: int) -> str:
    value = source.get(tag)
    if value is None or value == "":
        raise MissingTag(tag)
    return value


def is_resend(header: FieldSource) -> bool:
    """PossResend(97)=Y or PossDup(43)=Y: the client may already have sent this message."""
    return header.get(POSS_RESEND) == "Y" or header.get(POSS_DUP) == "Y"


# --------------------------------------------------------------------------- inbound: FIX -> commands
def _enum(table: TwoWayTable, source: FieldSource, tag: int, default: str | None = None):  # type: ignore[no-untyped-def]
    raw = source.get(tag) or default
    if raw is None:
        raise MissingTag(tag)
    try:
        return table.from_fix(raw)
    except UnmappedValue:
        raise OrderDenied(ORD_REJ_UNSUPPORTED, f"UNSUPPORTED_{table.name.split('(')[0].upper()}: value={raw}") from None


def new_order(owner: str, body: FieldSource, now: datetime) -> SubmitOrder:
    """NewOrderSingle -> SubmitOrder. Prices are required exactly when the order type uses them."""
    cl_ord_id = required(body, CL_ORD_ID)
    symbol = required(body, SYMBOL)
    side: Side = _enum(SIDES, body, SIDE)
    order_type: OrderType = _enum(ORDER_TYPES, body, ORD_TYPE)
    tif: TimeInForce = _enum(TIMES_IN_FORCE, body, TIME_IN_FORCE, default="0")
    qty = parse_decimal(body, ORDER_QTY)
    assert qty is not None
    limit_price = parse_decimal(body, PRICE, required=order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT))
    stop_price = parse_decimal(body, STOP_PX, required=order_type in (OrderType.STOP, OrderType.STOP_LIMIT))
    if order_type in (OrderType.MARKET, OrderType.STOP):
        limit_price = None
    expire_date = parse_date(body, EXPIRE_DATE)
    if tif is TimeInForce.GTD and expire_date is None:
        raise MissingTag(EXPIRE_DATE)
    return SubmitOrder(owner=owner, cl_ord_id=cl_ord_id, symbol=symbol, side=side, order_type=order_type,
                       qty=qty, limit_price=limit_price, stop_price=stop_price, tif=tif,
                       expire_date=expire_date, timestamp=now)


def cancel_order(owner: str, body: FieldSource, now: datetime) -> CancelOrder:
    return CancelOrder(owner=owner, cl_ord_id=required(body, CL_ORD_ID),
                       orig_cl_ord_id=required(body, ORIG_CL_ORD_ID), timestamp=now)


def replace_order(owner: str, body: FieldSource, current: OrderSnapshot | None, now: datetime) -> ReplaceOrder:
    """OrderCancelReplaceRequest -> ReplaceOrder. Changing OrdType or TIF is not supported: such a
    request is refused (raised as OrderDenied, answered with OrderCancelReject)."""
    order_type: OrderType = _enum(ORDER_TYPES, body, ORD_TYPE)
    if current is not None and order_type is not current.order_type:
        raise OrderDenied(ORD_REJ_UNSUPPORTED, f"UNSUPPORTED_CHANGE: ord_type={ORDER_TYPES.to_fix(order_type)}")
    raw_tif = body.get(TIME_IN_FORCE)
    if current is not None and raw_tif is not None and raw_tif != TIMES_IN_FORCE.to_fix(current.tif):
        raise OrderDenied(ORD_REJ_UNSUPPORTED, f"UNSUPPORTED_CHANGE: time_in_force={raw_tif}")
    qty = parse_decimal(body, ORDER_QTY)
    assert qty is not None
    limit_price = parse_decimal(body, PRICE, required=order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT))
    stop_price = parse_decimal(body, STOP_PX, required=order_type in (OrderType.STOP, OrderType.STOP_LIMIT))
    if order_type in (OrderType.MARKET, OrderType.STOP):
        limit_price = None
    side: Side | None = _enum(SIDES, body, SIDE) if body.get(SIDE) else None
    return ReplaceOrder(owner=owner, cl_ord_id=required(body, CL_ORD_ID),
                        orig_cl_ord_id=required(body, ORIG_CL_ORD_ID), qty=qty, limit_price=limit_price,
                        stop_price=stop_price, timestamp=now, side=side, symbol=body.get(SYMBOL))


# --------------------------------------------------------------------------- outbound: events -> FIX
def ord_status(state: OrderState) -> str:
    """OrdStatus(39) for an engine state (an untriggered stop is New on the wire)."""
    return ORDER_STATES.to_fix(OrderState.NEW if state is OrderState.PENDING_TRIGGER else state)


def ord_rej_reason(code: int, version: FixVersion) -> str:
    if version is FixVersion.FIX42 and code not in ORD_REJ_REASONS_42:
        code = ORD_REJ_BROKER_OPTION
    return str(code)


def cxl_rej_reason(reason: CancelRejectReason, version: FixVersion) -> str:
    code = reason.fix_code
    if version is FixVersion.FIX42 and code not in CXL_REJ_REASONS_42:
        code = CXL_REJ_BROKER_OPTION
    return str(code)


def _exec_type_fields(kind: ExecKind, order: OrderSnapshot, version: FixVersion) -> list[tuple[int, str]]:
    """ExecType (and for 4.2 ExecTransType) for one report."""
    if version is FixVersion.FIX44:
        return [(EXEC_TYPE, EXEC_TYPES_44.to_fix(kind))]
    trans = EXEC_TRANS_NEW
    if kind is ExecKind.TRADE:
        exec_type = "2" if order.state is OrderState.FILLED else "1"
    elif kind in (ExecKind.TRADE_CANCEL, ExecKind.TRADE_CORRECT, ExecKind.ORDER_STATUS):
        trans = {ExecKind.TRADE_CANCEL: EXEC_TRANS_CANCEL, ExecKind.TRADE_CORRECT: EXEC_TRANS_CORRECT,
                 ExecKind.ORDER_STATUS: EXEC_TRANS_STATUS}[kind]
        # FIX 4.2 has no dedicated ExecType: it repeats the order's current status.
        exec_type = ord_status(order.state) if order.state is not OrderState.REPLACED else "0"
    else:
        exec_type = EXEC_TYPES_42.to_fix(kind)
    return [(EXEC_TRANS_TYPE, trans), (EXEC_TYPE, exec_type)]


def execution_report(kind: ExecKind, exec_id: str, order: OrderSnapshot, transact_time: datetime,
                     version: FixVersion, *, last_qty: Decimal | None = None, last_px: Decimal | None = None,
                     text: str | None = None, ord_rej_reason_code: int | None = None,
                     exec_ref_id: str | None = None, trade_id: str | None = None,
                     orig_cl_ord_id: str | None = None) -> Outbound:
    """One ExecutionReport for an order snapshot (field order follows the FIX 4.4 message layout)."""
    fields: list[tuple[int, str]] = [(ORDER_ID, order.order_id), (CL_ORD_ID, order.cl_ord_id)]
    original = order.orig_cl_ord_id if kind is ExecKind.REPLACED else orig_cl_ord_id
    if original:
        fields.append((ORIG_CL_ORD_ID, original))
    fields.append((EXEC_ID, exec_id))
    fields.extend(_exec_type_fields(kind, order, version))
    if exec_ref_id is not None:
        fields.append((EXEC_REF_ID, exec_ref_id))
    fields.append((ORD_STATUS, ord_status(order.state)))
    if ord_rej_reason_code is not None:
        fields.append((ORD_REJ_REASON, ord_rej_reason(ord_rej_reason_code, version)))
    fields.extend([(SYMBOL, order.symbol), (SIDE, SIDES.to_fix(order.side)), (ORDER_QTY, fix_decimal(order.qty)),
                   (ORD_TYPE, ORDER_TYPES.to_fix(order.order_type))])
    if order.limit_price is not None:
        fields.append((PRICE, fix_decimal(order.limit_price)))
    if order.stop_price is not None:
        fields.append((STOP_PX, fix_decimal(order.stop_price)))
    fields.append((TIME_IN_FORCE, TIMES_IN_FORCE.to_fix(order.tif)))
    if order.expire_date is not None:
        fields.append((EXPIRE_DATE, fix_date(order.expire_date)))
    if last_qty is not None and last_px is not None:
        fields.extend([(LAST_QTY, fix_decimal(last_qty)), (LAST_PX, fix_decimal(last_px))])
    leaves = Decimal(0) if order.state.is_done else order.leaves_qty
    fields.extend([(LEAVES_QTY, fix_decimal(leaves)), (CUM_QTY, fix_decimal(order.cum_qty)),
                   (AVG_PX, fix_decimal(order.avg_px)), (TRANSACT_TIME, fix_timestamp(transact_time))])
    if text:
        fields.append((TEXT, text))
    return Outbound(MSG_EXECUTION_REPORT, tuple(fields))


def exec_id_for(seq: int) -> str:
    """ExecIDs are the engine's event sequence numbers: unique, ordered, and replayed identically."""
    return str(seq)


def event_to_fix(event: Event, version: FixVersion, command: object = None) -> Outbound | None:
    """The FIX message reporting one engine event to the order's owner, or None if not reported.
    `command` is what caused the event: a cancel the client asked for echoes its OrigClOrdID, an
    unsolicited cancel (IOC remainder, market order rest) does not."""
    exec_id = exec_id_for(event.seq)
    if isinstance(event, OrderAccepted):
        return execution_report(ExecKind.NEW, exec_id, event.order, event.timestamp, version)
    if isinstance(event, OrderFilled):
        return execution_report(ExecKind.TRADE, exec_id, event.order, event.timestamp, version,
                                last_qty=event.last_qty, last_px=event.last_px, trade_id=event.trade_id)
    if isinstance(event, OrderCanceled):
        solicited = isinstance(command, CancelOrder) and command.cl_ord_id == event.order.cl_ord_id
        return execution_report(ExecKind.CANCELED, exec_id, event.order, event.timestamp, version,
                                text=event.text or None,
                                orig_cl_ord_id=event.order.orig_cl_ord_id if solicited else None)
    if isinstance(event, OrderReplaced):
        return execution_report(ExecKind.REPLACED, exec_id, event.order, event.timestamp, version)
    if isinstance(event, OrderRejected):
        return execution_report(ExecKind.REJECTED, exec_id, event.order, event.timestamp, version,
                                text=f"{event.reason.value}: {event.text}" if event.text else event.reason.value,
                                ord_rej_reason_code=event.reason.fix_code)
    if isinstance(event, OrderExpired):
        return execution_report(ExecKind.EXPIRED, exec_id, event.order, event.timestamp, version)
    if isinstance(event, OrderTriggered):
        report = execution_report(ExecKind.RESTATED, exec_id, event.order, event.timestamp, version,
                                  text=f"STOP_TRIGGERED: price={fix_decimal(event.trigger_price)}")
        if version is FixVersion.FIX44:
            report = Outbound(report.msg_type, report.fields + ((EXEC_RESTATEMENT_REASON, "99"),))
        return report
    if isinstance(event, TradeBusted):
        return execution_report(ExecKind.TRADE_CANCEL, exec_id, event.order, event.timestamp, version,
                                last_qty=event.qty, last_px=event.price, trade_id=event.trade_id,
                                exec_ref_id=None, text=f"TRADE_BUSTED: trade_id={event.trade_id}")
    if isinstance(event, TradeCorrected):
        return execution_report(ExecKind.TRADE_CORRECT, exec_id, event.order, event.timestamp, version,
                                last_qty=event.qty, last_px=event.price, trade_id=event.trade_id,
                                text=f"TRADE_CORRECTED: trade_id={event.trade_id} old_qty="
                                     f"{fix_decimal(event.old_qty)} old_px={fix_decimal(event.old_price)}")
    if isinstance(event, (CancelRejected, ReplaceRejected)):
        return cancel_reject(event, version)
    return None


def with_exec_ref(report: Outbound, exec_ref_id: str) -> Outbound:
    """Add ExecRefID(19) (the original fill of a busted or corrected trade) after ExecType."""
    fields = list(report.fields)
    position = next(i for i, (tag, _) in enumerate(fields) if tag == EXEC_TYPE) + 1
    fields.insert(position, (EXEC_REF_ID, exec_ref_id))
    return Outbound(report.msg_type, tuple(fields), report.groups)


def cancel_reject(event: CancelRejected | ReplaceRejected, version: FixVersion) -> Outbound:
    """OrderCancelReject(9). Unknown orders get OrderID NONE and OrdStatus Rejected, as FIX asks."""
    order = event.order
    response_to = "1" if isinstance(event, CancelRejected) else "2"
    fields: list[tuple[int, str]] = [
        (ORDER_ID, order.order_id if order else "NONE"),
        (CL_ORD_ID, event.cl_ord_id),
        (ORIG_CL_ORD_ID, event.orig_cl_ord_id),
        (ORD_STATUS, ord_status(order.state) if order else "8"),
        (TRANSACT_TIME, fix_timestamp(event.timestamp)),
        (CXL_REJ_RESPONSE_TO, response_to),
        (CXL_REJ_REASON, cxl_rej_reason(event.reason, version)),
    ]
    if event.text or event.reason:
        fields.append((TEXT, f"{event.reason.value}: {event.text}" if event.text else event.reason.value))
    return Outbound(MSG_ORDER_CANCEL_REJECT, tuple(fields))


def local_cancel_reject(cl_ord_id: str, orig_cl_ord_id: str, order: OrderSnapshot | None, replace: bool,
                        code: int, text: str, now: datetime, version: FixVersion) -> Outbound:
    """OrderCancelReject for a request refused before it reached the engine (e.g. unsupported change)."""
    if version is FixVersion.FIX42 and code not in CXL_REJ_REASONS_42:
        code = CXL_REJ_BROKER_OPTION
    elif version is FixVersion.FIX44 and code not in (0, 1, 2, 3, 4, 5, 6, 99):
        code = 99
    return Outbound(MSG_ORDER_CANCEL_REJECT, (
        (ORDER_ID, order.order_id if order else "NONE"), (CL_ORD_ID, cl_ord_id), (ORIG_CL_ORD_ID, orig_cl_ord_id),
        (ORD_STATUS, ord_status(order.state) if order else "8"), (TRANSACT_TIME, fix_timestamp(now)),
        (CXL_REJ_RESPONSE_TO, "2" if replace else "1"), (CXL_REJ_REASON, str(code)), (TEXT, text),
    ))


def status_report(order: OrderSnapshot, exec_id: str, now: datetime, version: FixVersion) -> Outbound:
    """ExecType=I (4.4) / ExecTransType=3 (4.2): the order's current state, reporting no new execution."""
    return execution_report(ExecKind.ORDER_STATUS, exec_id, order, now, version)


def unknown_order_status(cl_ord_id: str, symbol: str, side_code: str, exec_id: str, now: datetime,
                         version: FixVersion) -> Outbound:
    """Status request for an order we never saw: OrdStatus=Rejected, OrdRejReason=unknown order."""
    fields: list[tuple[int, str]] = [(ORDER_ID, "NONE"), (CL_ORD_ID, cl_ord_id), (EXEC_ID, exec_id)]
    if version is FixVersion.FIX44:
        fields.append((EXEC_TYPE, EXEC_TYPES_44.to_fix(ExecKind.ORDER_STATUS)))
    else:
        fields.extend([(EXEC_TRANS_TYPE, EXEC_TRANS_STATUS), (EXEC_TYPE, "8")])
    fields.extend([(ORD_STATUS, "8"), (ORD_REJ_REASON, ord_rej_reason(ORD_REJ_UNKNOWN_ORDER, version)),
                   (SYMBOL, symbol), (SIDE, side_code), (LEAVES_QTY, "0"), (CUM_QTY, "0"), (AVG_PX, "0"),
                   (TRANSACT_TIME, fix_timestamp(now)), (TEXT, f"UNKNOWN_ORDER: cl_ord_id={cl_ord_id}")])
    return Outbound(MSG_EXECUTION_REPORT, tuple(fields))


def denied_order_report(body: FieldSource, denial: OrderDenied, exec_id: str, now: datetime,
                        version: FixVersion) -> Outbound:
    """ExecType=Rejected for an order refused before the engine (unsupported value or injected fault).
    Echoes what the client sent so it can match the reject to its order."""
    fields: list[tuple[int, str]] = [(ORDER_ID, "NONE"), (CL_ORD_ID, body.get(CL_ORD_ID) or "NONE"),
                                     (EXEC_ID, exec_id)]
    if version is FixVersion.FIX42:
        fields.append((EXEC_TRANS_TYPE, EXEC_TRANS_NEW))
    fields.extend([(EXEC_TYPE, "8"), (ORD_STATUS, "8"),
                   (ORD_REJ_REASON, ord_rej_reason(denial.ord_rej_reason, version)),
                   (SYMBOL, body.get(SYMBOL) or "[N/A]")])
    side = body.get(SIDE)
    fields.append((SIDE, side if side else "1"))
    for tag in (ORDER_QTY, ORD_TYPE, PRICE):
        value = body.get(tag)
        if value:
            fields.append((tag, value))
    fields.extend([(LEAVES_QTY, "0"), (CUM_QTY, "0"), (AVG_PX, "0"), (TRANSACT_TIME, fix_timestamp(now)),
                   (TEXT, denial.text)])
    return Outbound(MSG_EXECUTION_REPORT, tuple(fields))


def owners_of(events: Iterable[Event]) -> Mapping[str, list[Event]]:
    """Group events by the owner they must be reported to (dict keeps first-seen order)."""
    grouped: dict[str, list[Event]] = {}
    for event in events:
        owner = event_owner(event)
        if owner is not None:
            grouped.setdefault(owner, []).append(event)
    return grouped


def event_owner(event: Event) -> str | None:
    order = getattr(event, "order", None)
    if order is not None:
        return str(order.owner)
    owner = getattr(event, "owner", None)
    return str(owner) if owner is not None else None

