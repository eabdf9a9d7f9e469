"""Translation between FIX messages and OMS commands/results, for both gateway sessions. No QuickFIX here.

Client side: NewOrderSingle / OrderCancelRequest / OrderCancelReplaceRequest become PlaceOrder / CancelOrder /
ReplaceOrder carrying the client's own ClOrdIDs; results become ExecutionReports and OrderCancelRejects that
echo those ClOrdIDs. Venue side: outbox payloads (which carry our venue ClOrdIDs) become NewOrderSingle /
OrderCancelRequest / OrderCancelReplaceRequest, and venue ExecutionReports / OrderCancelRejects become
ApplyExecution / ApplyCancelReject. Enums cross only through the two-way tables in `fix.oms_tables`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from fix import oms_tables as tables
from fix.tables import TwoWayTable, UnmappedValue
from fix.wire import (
    ACCOUNT,
    AVG_PX,
    CL_ORD_ID,
    CUM_QTY,
    CXL_REJ_REASON,
    CXL_REJ_RESPONSE_TO,
    EXEC_ID,
    EXEC_TRANS_TYPE,
    EXEC_TYPE,
    EXPIRE_DATE,
    HANDL_INST,
    LAST_PX,
    LAST_QTY,
    LEAVES_QTY,
    MARKET_DEPTH,
    MD_ENTRY_TYPE,
    MD_REQ_ID,
    MD_UPDATE_TYPE,
    MSG_SEQ_NUM,
    NO_MD_ENTRY_TYPES,
    NO_RELATED_SYM,
    ORD_REJ_REASON,
    ORD_STATUS,
    ORD_TYPE,
    ORDER_ID,
    ORDER_QTY,
    ORIG_CL_ORD_ID,
    POSS_RESEND,
    PRICE,
    SIDE,
    STOP_PX,
    SUBSCRIPTION_REQUEST_TYPE,
    SYMBOL,
    TEXT,
    TIME_IN_FORCE,
    TRANSACT_TIME,
    BadTagValue,
    FieldSource,
    Outbound,
    OutGroup,
    fix_date,
    fix_decimal,
    fix_timestamp,
    parse_date,
    parse_decimal,
    parse_timestamp,
    required,
)
from oms.domain.commands import ApplyExecution, CancelOrder, PlaceOrder, ReplaceOrder
from oms.domain.enums import ExecType, OrderSource, OrderStatus, OrderType, Side, TimeInForce
from oms.domain.errors import DomainError
from oms.domain.order import Order
from oms.domain.risk import Denial, ReasonCode
from oms.domain.values import AccountId, ClOrdId, ExecId, Symbol, VenueOrderId
from oms.domain.values import parse_decimal as domain_decimal
from oms.service.orders import ApplyCancelReject

REF_SEQ_NUM, REF_MSG_TYPE, BUSINESS_REJECT_REF_ID, BUSINESS_REJECT_REASON = 45, 372, 379, 380
E = TypeVar("E")
_Id = TypeVar("_Id")

# OrdRejReason 5 (unknown order) and CxlRejReason 1 (unknown order): what a status request for an unknown
# ClOrdID answers.
ORD_REJ_UNKNOWN_ORDER = "5"
# Codes each dictionary allows; anything else goes out as "other" (4.4: 99) or "broker option" (4.2: 0).
ORD_REJ_REASONS = {tables.FIX44: frozenset({"0", "1", "2", "3", "4", "5", "6", "7", "8", "11", "13", "15", "16",
                                            "18", "99"}),
                   tables.FIX42: frozenset({"0", "1", "2", "3", "4", "5", "6"})}
CXL_REJ_REASONS = {tables.FIX44: frozenset({"0", "1", "2", "3", "4", "5", "6", "99"}),
                   tables.FIX42: frozenset({"0", "1", "2", "3"})}


class ClientDenied(Exception):
    """A client request we refuse while translating it (unsupported value, account not allowed)."""

    def __init__(self, denial: Denial) -> None:
        super().__init__(str(denial))
        self.denial = denial


# ------------------------------------------------------------------------------------------------ client inbound
def _enum(table: TwoWayTable[E], source: FieldSource, tag: int, default: str | None = None) -> E:
    raw = source.get(tag) or default
    if raw is None:
        required(source, tag)
    try:
        return table.from_fix(raw)  # type: ignore[arg-type]
    except UnmappedValue:
        name = table.name.split("(")[0].lower()
        raise ClientDenied(Denial(ReasonCode.UNSUPPORTED_ORDER_TYPE, {name: str(raw)})) from None


def _identifier(kind: Callable[[str], Any], source: FieldSource, tag: int) -> Any:
    raw = required(source, tag)
    try:
        return kind(raw)
    except DomainError as error:
        raise BadTagValue(tag, str(error)) from None


def client_account(body: FieldSource, allowed: frozenset[str]) -> AccountId:
    """Account (1) checked against the session's accounts; a one-account session may leave it out."""
    raw = body.get(ACCOUNT)
    if not raw:
        if len(allowed) == 1:
            return AccountId(next(iter(allowed)))
        required(body, ACCOUNT)
    if raw not in allowed:
        # The same answer whether the account exists or not: a session learns nothing about others' accounts.
        raise ClientDenied(Denial(ReasonCode.UNKNOWN_ACCOUNT, {"account": str(raw)}))
    return _identifier(AccountId, body, ACCOUNT)  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class PriceTerms:
    qty: Decimal
    limit_price: Decimal | None
    stop_price: Decimal | None
    tif: TimeInForce
    expire_date: date | None


def _positive(body: FieldSource, tag: int, name: str, reason: ReasonCode, required_: bool) -> Decimal | None:
    """A quantity or price as the domain accepts it (positive, bounded scale), else a denial of that value."""
    value = parse_decimal(body, tag, required_=required_)
    if value is None:
        return None
    try:
        return domain_decimal(value, name, allow_negative=False, allow_zero=False)
    except DomainError:
        raise ClientDenied(Denial(reason, {name: str(body.get(tag)), "rule": "positive"})) from None


def _price_terms(body: FieldSource, order_type: OrderType) -> PriceTerms:
    qty = _positive(body, ORDER_QTY, "qty", ReasonCode.INVALID_QUANTITY, True)
    assert qty is not None
    limit_price = _positive(body, PRICE, "limit_price", ReasonCode.INVALID_PRICE, order_type.needs_limit_price)
    stop_price = _positive(body, STOP_PX, "stop_price", ReasonCode.INVALID_PRICE, order_type.needs_stop_price)
    tif: TimeInForce = _enum(tables.TIMES_IN_FORCE, body, TIME_IN_FORCE, default="0")
    return PriceTerms(qty, limit_price, stop_price, tif, parse_date(body, EXPIRE_DATE))


def place_order(body: FieldSource, allowed: frozenset[str], origin: str | None = None) -> PlaceOrder:
    """NewOrderSingle -> PlaceOrder (the pre-trade checks judge the values; here only their shape).

    ``origin`` is the client session it came in on: the order keeps it, so its reports go back there.
    """
    cl_ord_id = _identifier(ClOrdId, body, CL_ORD_ID)
    account = client_account(body, allowed)
    symbol = _identifier(Symbol, body, SYMBOL)
    side: Side = _enum(tables.SIDES, body, SIDE)
    order_type: OrderType = _enum(tables.ORDER_TYPES, body, ORD_TYPE)
    terms = _price_terms(body, order_type)
    return PlaceOrder(account=account, cl_ord_id=cl_ord_id, symbol=symbol, side=side, order_type=order_type,
                      qty=terms.qty, limit_price=terms.limit_price, stop_price=terms.stop_price, tif=terms.tif,
                      expire_date=terms.expire_date, source=OrderSource.FIX, origin=origin)


def _named_symbol(body: FieldSource) -> Symbol | None:
    return _identifier(Symbol, body, SYMBOL) if body.get(SYMBOL) else None


def _named_side(body: FieldSource) -> Side | None:
    return _enum(tables.SIDES, body, SIDE) if body.get(SIDE) else None


def cancel_order(body: FieldSource, allowed: frozenset[str]) -> CancelOrder:
    """OrderCancelRequest -> CancelOrder; its Symbol and Side must be the order's (the service checks)."""
    return CancelOrder(account=client_account(body, allowed), cl_ord_id=_identifier(ClOrdId, body, CL_ORD_ID),
                       orig_cl_ord_id=_identifier(ClOrdId, body, ORIG_CL_ORD_ID), symbol=_named_symbol(body),
                       side=_named_side(body))


def replace_order(body: FieldSource, allowed: frozenset[str]) -> ReplaceOrder:
    """OrderCancelReplaceRequest -> ReplaceOrder; Symbol, Side and OrdType must be the order's (the service checks)."""
    order_type: OrderType = _enum(tables.ORDER_TYPES, body, ORD_TYPE)
    terms = _price_terms(body, order_type)
    return ReplaceOrder(account=client_account(body, allowed), cl_ord_id=_identifier(ClOrdId, body, CL_ORD_ID),
                        orig_cl_ord_id=_identifier(ClOrdId, body, ORIG_CL_ORD_ID), qty=terms.qty,
                        limit_price=terms.limit_price, stop_price=terms.stop_price, tif=terms.tif,
                        expire_date=terms.expire_date, symbol=_named_symbol(body), side=_named_side(body),
                        order_type=order_type)


# ------------------------------------------------------------------------------------------------ client outbound
def _code(code: int | str, allowed: Mapping[str, frozenset[str]], begin_string: str, fallback: str) -> str:
    text = str(code)
    return text if text in allowed[begin_string] else fallback


def ord_rej_reason(code: int | str, begin_string: str) -> str:
    return _code(code, ORD_REJ_REASONS, begin_string, "99" if begin_string == tables.FIX44 else "0")


def cxl_rej_reason(code: int | str, begin_string: str) -> str:
    return _code(code, CXL_REJ_REASONS, begin_string, "99" if begin_string == tables.FIX44 else "2")


def _client_status(status: OrderStatus, begin_string: str) -> str:
    """OrdStatus(39); FIX 4.2's dictionary has no PendingReplace, which it reports as PendingCancel."""
    if begin_string == tables.FIX42 and status is OrderStatus.PENDING_REPLACE:
        return "6"
    return tables.ORDER_STATUSES.to_fix(status)


def execution_report(order: Order, exec_type: ExecType, exec_id: str, begin_string: str, now: datetime, *,
                     cl_ord_id: str | None = None, orig_cl_ord_id: str | None = None,
                     last_qty: Decimal | None = None, last_px: Decimal | None = None, text: str | None = None,
                     ord_rej_reason_code: int | str | None = None) -> Outbound:
    """An ExecutionReport to the client about `order` (a snapshot after the change), in the client's ids."""
    fields: list[tuple[int, str]] = [(ORDER_ID, str(order.order_id)), (CL_ORD_ID, cl_ord_id or str(order.cl_ord_id))]
    if orig_cl_ord_id:
        fields.append((ORIG_CL_ORD_ID, orig_cl_ord_id))
    fields.append((EXEC_ID, exec_id))
    exec_fields = tables.exec_type_to_fix(exec_type, order.status, begin_string)
    fields.extend(exec_fields)
    fields.append((ORD_STATUS, _client_status(order.status, begin_string)))
    if ord_rej_reason_code is not None:
        fields.append((ORD_REJ_REASON, ord_rej_reason(ord_rej_reason_code, begin_string)))
    fields.append((ACCOUNT, str(order.account)))
    fields.extend([(SYMBOL, str(order.symbol)), (SIDE, tables.SIDES.to_fix(order.side)),
                   (ORDER_QTY, fix_decimal(order.qty)), (ORD_TYPE, tables.ORDER_TYPES.to_fix(order.order_type))])
    if order.limit_price is not None:
        fields.append((PRICE, fix_decimal(order.limit_price)))
    if order.stop_price is not None:
        fields.append((STOP_PX, fix_decimal(order.stop_price)))
    fields.append((TIME_IN_FORCE, tables.TIMES_IN_FORCE.to_fix(order.tif)))
    if order.expire_date is not None:
        fields.append((EXPIRE_DATE, fix_date(order.expire_date)))
    if last_qty is not None and last_px is not None:
        fields.extend([(LAST_QTY, fix_decimal(last_qty)), (LAST_PX, fix_decimal(last_px))])
    elif begin_string == tables.FIX42:
        fields.extend([(LAST_QTY, "0"), (LAST_PX, "0")])
    fields.extend([(LEAVES_QTY, fix_decimal(order.leaves_qty)), (CUM_QTY, fix_decimal(order.cum_qty)),
                   (AVG_PX, fix_decimal(order.avg_px)), (TRANSACT_TIME, fix_timestamp(now))])
    if text:
        fields.append((TEXT, text[:512]))
    return Outbound("8", tuple(fields))


def rejected_order_report(body: FieldSource, code: int | str, text: str, exec_id: str, begin_string: str,
                          now: datetime, order_id: str | None = None) -> Outbound:
    """ExecType=Rejected for a NewOrderSingle we refused: echoes what the client sent so it can match it.

    `text` is a denial rendered `REASON_CODE: details`; `code` its OrdRejReason."""
    fields: list[tuple[int, str]] = [(ORDER_ID, order_id or "NONE"), (CL_ORD_ID, body.get(CL_ORD_ID) or "NONE"),
                                     (EXEC_ID, exec_id)]
    if begin_string == tables.FIX42:
        fields.append((EXEC_TRANS_TYPE, "0"))
    fields.extend([(EXEC_TYPE, "8"), (ORD_STATUS, "8"),
                   (ORD_REJ_REASON, ord_rej_reason(code, begin_string))])
    if body.get(ACCOUNT):
        fields.append((ACCOUNT, str(body.get(ACCOUNT))))
    fields.append((SYMBOL, body.get(SYMBOL) or "[N/A]"))
    # The client's own Side, even one we do not trade (5 sell short): its dictionary passed it, and a reject
    # that says Buy for a short sale would misreport the order. Only a missing Side (never past QuickFIX's
    # validation) falls back to Buy.
    fields.append((SIDE, body.get(SIDE) or "1"))
    for tag in (ORDER_QTY, ORD_TYPE, PRICE, STOP_PX, TIME_IN_FORCE):
        value = body.get(tag)
        if value:
            fields.append((tag, value))
    if begin_string == tables.FIX42:
        fields.extend([(LAST_QTY, "0"), (LAST_PX, "0")])
    fields.extend([(LEAVES_QTY, "0"), (CUM_QTY, "0"), (AVG_PX, "0"), (TRANSACT_TIME, fix_timestamp(now)),
                   (TEXT, text[:512])])
    return Outbound("8", tuple(fields))


def missing_field_reject(body: FieldSource, msg_type: str, tag: int) -> Outbound | None:
    """BusinessMessageReject (380=5) for an order message without a field the gateway needs, carrying the
    message's ClOrdID as BusinessRejectRefID (379) so the client can match it; None without a ClOrdID (then
    QuickFIX's own reject, which has no 379, is the answer)."""
    cl_ord_id = body.get(CL_ORD_ID)
    if not cl_ord_id:
        return None
    return Outbound("j", ((REF_SEQ_NUM, body.get(MSG_SEQ_NUM) or "0"), (REF_MSG_TYPE, msg_type),
                          (BUSINESS_REJECT_REF_ID, cl_ord_id), (BUSINESS_REJECT_REASON, "5"),
                          (TEXT, f"Conditionally Required Field Missing ({tag})")))  # fmt: skip


def unknown_order_status(body: FieldSource, exec_id: str, begin_string: str, now: datetime) -> Outbound:
    """Status request for an order we do not know: OrdStatus=Rejected, OrdRejReason=unknown order."""
    cl_ord_id = body.get(CL_ORD_ID) or "NONE"
    fields: list[tuple[int, str]] = [(ORDER_ID, "NONE"), (CL_ORD_ID, cl_ord_id), (EXEC_ID, exec_id)]
    fields.extend(tables.exec_type_to_fix(ExecType.ORDER_STATUS, OrderStatus.REJECTED, begin_string))
    side = body.get(SIDE)
    fields.extend([(ORD_STATUS, "8"), (ORD_REJ_REASON, ORD_REJ_UNKNOWN_ORDER), (SYMBOL, body.get(SYMBOL) or "[N/A]"),
                   (SIDE, side if side is not None and side in tables.SIDES.fix_values() else "1")])
    if begin_string == tables.FIX42:
        fields.extend([(LAST_QTY, "0"), (LAST_PX, "0")])
    fields.extend([(LEAVES_QTY, "0"), (CUM_QTY, "0"), (AVG_PX, "0"), (TRANSACT_TIME, fix_timestamp(now)),
                   (TEXT, f"{ReasonCode.UNKNOWN_ORDER.name}: cl_ord_id={cl_ord_id}")])
    return Outbound("8", tuple(fields))


def cancel_reject(cl_ord_id: str, orig_cl_ord_id: str, order: Order | None, replace: bool, code: int | str,
                  text: str, begin_string: str, now: datetime) -> Outbound:
    """OrderCancelReject(9); an unknown order gets OrderID NONE and OrdStatus Rejected, as FIX asks."""
    status = _client_status(order.status, begin_string) if order is not None else "8"
    return Outbound("9", (
        (ORDER_ID, str(order.order_id) if order is not None else "NONE"), (CL_ORD_ID, cl_ord_id),
        (ORIG_CL_ORD_ID, orig_cl_ord_id), (ORD_STATUS, status), (TRANSACT_TIME, fix_timestamp(now)),
        (CXL_REJ_RESPONSE_TO, "2" if replace else "1"), (CXL_REJ_REASON, cxl_rej_reason(code, begin_string)),
        (TEXT, text[:512]),
    ))


# ------------------------------------------------------------------------------------------------ venue outbound
def _optional(payload: Mapping[str, Any], key: str) -> str | None:
    value = payload.get(key)
    return None if value in (None, "") else str(value)


def _order_terms(payload: Mapping[str, Any], begin_string: str) -> list[tuple[int, str]]:
    fields: list[tuple[int, str]] = [(ORD_TYPE, tables.ORDER_TYPES.to_fix(OrderType(payload["order_type"])))]
    if _optional(payload, "limit_price") is not None:
        fields.append((PRICE, fix_decimal(Decimal(payload["limit_price"]))))
    if _optional(payload, "stop_price") is not None:
        fields.append((STOP_PX, fix_decimal(Decimal(payload["stop_price"]))))
    fields.append((TIME_IN_FORCE, tables.TIMES_IN_FORCE.to_fix(TimeInForce(payload["tif"]))))
    if _optional(payload, "expire_date") is not None:
        fields.append((EXPIRE_DATE, fix_date(date.fromisoformat(payload["expire_date"]))))
    return fields


def venue_new_order(payload: Mapping[str, Any], begin_string: str, now: datetime, *, poss_resend: bool = False) -> Outbound:
    """NewOrderSingle to the venue under our ClOrdID (the client's never leaves the gateway)."""
    fields: list[tuple[int, str]] = [(CL_ORD_ID, str(payload["cl_ord_id"])), (HANDL_INST, "1"),
                                     (SYMBOL, str(payload["symbol"])), (SIDE, tables.SIDES.to_fix(Side(payload["side"]))),
                                     (TRANSACT_TIME, fix_timestamp(now)),
                                     (ORDER_QTY, fix_decimal(Decimal(payload["qty"])))]
    fields.extend(_order_terms(payload, begin_string))
    return Outbound("D", tuple(fields), header=((POSS_RESEND, "Y"),) if poss_resend else ())


def venue_cancel(payload: Mapping[str, Any], begin_string: str, now: datetime) -> Outbound:
    fields: list[tuple[int, str]] = [(CL_ORD_ID, str(payload["cl_ord_id"])),
                                     (ORIG_CL_ORD_ID, str(payload["orig_cl_ord_id"]))]
    if _optional(payload, "venue_order_id") is not None:
        fields.insert(0, (ORDER_ID, str(payload["venue_order_id"])))
    fields.extend([(SYMBOL, str(payload["symbol"])), (SIDE, tables.SIDES.to_fix(Side(payload["side"]))),
                   (TRANSACT_TIME, fix_timestamp(now)), (ORDER_QTY, fix_decimal(Decimal(payload["qty"])))])
    return Outbound("F", tuple(fields))


def venue_replace(payload: Mapping[str, Any], begin_string: str, now: datetime) -> Outbound:
    fields: list[tuple[int, str]] = [(CL_ORD_ID, str(payload["cl_ord_id"])),
                                     (ORIG_CL_ORD_ID, str(payload["orig_cl_ord_id"])), (HANDL_INST, "1")]
    if _optional(payload, "venue_order_id") is not None:
        fields.insert(0, (ORDER_ID, str(payload["venue_order_id"])))
    fields.extend([(SYMBOL, str(payload["symbol"])), (SIDE, tables.SIDES.to_fix(Side(payload["side"]))),
                   (TRANSACT_TIME, fix_timestamp(now)), (ORDER_QTY, fix_decimal(Decimal(payload["qty"])))])
    fields.extend(_order_terms(payload, begin_string))
    return Outbound("G", tuple(fields))


VENUE_MESSAGES: Mapping[str, Callable[..., Outbound]] = {"new": venue_new_order, "cancel": venue_cancel,
                                                        "replace": venue_replace}


def venue_status_request(cl_ord_id: str, symbol: str, side: str) -> Outbound:
    return Outbound("H", ((CL_ORD_ID, cl_ord_id), (SYMBOL, symbol), (SIDE, side)))


def market_data_request(md_req_id: str, symbol: str) -> Outbound:
    """Subscribe (263=1) to the top of book of one symbol: bid, offer and last trade."""
    return Outbound("V", ((MD_REQ_ID, md_req_id), (SUBSCRIPTION_REQUEST_TYPE, "1"), (MARKET_DEPTH, "1"),
                          (MD_UPDATE_TYPE, "1")),
                    (OutGroup(NO_MD_ENTRY_TYPES, (((MD_ENTRY_TYPE, "0"),), ((MD_ENTRY_TYPE, "1"),),
                                                  ((MD_ENTRY_TYPE, "2"),))),
                     OutGroup(NO_RELATED_SYM, (((SYMBOL, symbol),),))))


# ------------------------------------------------------------------------------------------------ venue inbound
def _venue_id(raw: str | None) -> str | None:
    return None if raw in (None, "", "NONE") else raw


def _typed_venue_id(raw: str | None, kind: Callable[[str], _Id]) -> _Id | None:
    """``_venue_id`` as the identifier type ``kind`` (validated here: the command would validate it anyway)."""
    venue_id = _venue_id(raw)
    return None if venue_id is None else kind(venue_id)


def venue_execution(body: FieldSource, begin_string: str) -> ApplyExecution:
    """A venue ExecutionReport -> ApplyExecution (ids are ours: the venue never saw a client's ClOrdID)."""
    exec_type = tables.exec_type_from_fix(required(body, EXEC_TYPE), body.get(EXEC_TRANS_TYPE), begin_string)
    status = tables.ORDER_STATUSES.from_fix(required(body, ORD_STATUS))
    zero = Decimal(0)
    return ApplyExecution(
        venue_exec_id=ExecId(required(body, EXEC_ID)),
        cl_ord_id=_typed_venue_id(body.get(CL_ORD_ID), ClOrdId),
        orig_cl_ord_id=_typed_venue_id(body.get(ORIG_CL_ORD_ID), ClOrdId),
        venue_order_id=_typed_venue_id(body.get(ORDER_ID), VenueOrderId),
        exec_type=exec_type,
        ord_status=status,
        last_qty=parse_decimal(body, LAST_QTY, required_=False) or zero,
        last_px=parse_decimal(body, LAST_PX, required_=False) or zero,
        cum_qty=parse_decimal(body, CUM_QTY, required_=False) or zero,
        leaves_qty=parse_decimal(body, LEAVES_QTY, required_=False) or zero,
        avg_px=parse_decimal(body, AVG_PX, required_=False) or zero,
        text=body.get(TEXT) or "",
        transact_time=parse_timestamp(body, TRANSACT_TIME),
    )


def venue_cancel_reject(body: FieldSource) -> ApplyCancelReject:
    text = body.get(TEXT) or ""
    return ApplyCancelReject(
        venue_cl_ord_id=required(body, CL_ORD_ID),
        orig_venue_cl_ord_id=_venue_id(body.get(ORIG_CL_ORD_ID)),
        venue_order_id=_venue_id(body.get(ORDER_ID)),
        response_to="replace" if body.get(CXL_REJ_RESPONSE_TO) == "2" else "cancel",
        reason=text or f"CxlRejReason={body.get(CXL_REJ_REASON) or '?'}",
    )
