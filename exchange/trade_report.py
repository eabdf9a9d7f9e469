"""End-of-day trade report: one row per execution of a broker's order, as CSV or TradeCaptureReports.

This is what the nightly reconciliation reads, so the format is fixed:

* columns exactly `exec_id, order_id, cl_ord_id, broker_comp_id, symbol, side, quantity, price, fee,
  transact_time`; side is `BUY`/`SELL`; Decimals as plain strings; times ISO-8601 UTC;
* exec_id is the ExecID of the ExecutionReport that reported the fill (the engine seq of the OrderFilled);
* busted trades are left out; corrected trades show the corrected quantity and price under the original
  fill's ExecID (the correction itself was reported with ExecType=G referring to it);
* the market maker's side of a trade is not a broker execution and is left out;
* executions an operator told the venue to omit (fault injection) are left out.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TextIO

from exchange.engine.types import Event, OrderFilled, RawEvent, Side, TradeReport, typed_events
from exchange.translate import (
    CL_ORD_ID,
    EXEC_ID,
    LAST_PX,
    LAST_QTY,
    ORDER_ID,
    SIDE,
    SIDES,
    SYMBOL,
    TEXT,
    TRANSACT_TIME,
    TRD_MATCH_ID,
    FixVersion,
    Outbound,
    OutGroup,
    fix_date,
    fix_decimal,
    fix_timestamp,
)

TRADE_REQUEST_ID, TRADE_REQUEST_TYPE, SUBSCRIPTION_REQUEST_TYPE = 568, 569, 263
TRADE_REQUEST_RESULT, TRADE_REQUEST_STATUS, TOT_NUM_TRADE_REPORTS = 749, 750, 748
TRADE_REPORT_ID, TRADE_REPORT_TRANS_TYPE, TRADE_REPORT_TYPE, PREVIOUSLY_REPORTED = 571, 487, 856, 570
LAST_RPT_REQUESTED, TRADE_DATE, NO_SIDES, COMMISSION, COMM_TYPE = 912, 75, 552, 12, 13
TRADE_REQUEST_ALL, TRADE_REQUEST_MATCHING = "0", "1"
RESULT_OK, RESULT_INVALID_INSTRUMENT, RESULT_TYPE_UNSUPPORTED, RESULT_OTHER = "0", "1", "8", "99"
STATUS_ACCEPTED, STATUS_COMPLETED, STATUS_REJECTED = "0", "1", "2"
COMM_TYPE_ABSOLUTE = "3"


@dataclass(frozen=True, slots=True)
class TradeRow:
    """One CSV row; field order is the column order."""

    exec_id: str
    order_id: str
    cl_ord_id: str
    broker_comp_id: str
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal
    fee: Decimal
    transact_time: datetime
    trade_id: str  # not a CSV column: links the row to its TradeCaptureReport TrdMatchID


COLUMNS: tuple[str, ...] = ("exec_id", "order_id", "cl_ord_id", "broker_comp_id", "symbol", "side", "quantity",
                            "price", "fee", "transact_time")


class ExecIdIndex:
    """ExecID of each fill, keyed by (trade_id, order_id): TradeReport does not carry it, the events do.
    Fed with every event the engine produces, live or replayed. Not thread-safe (callers hold a lock)."""

    def __init__(self) -> None:
        self._exec_ids: dict[tuple[str, str], str] = {}

    def observe(self, events: Iterable[Event | RawEvent]) -> None:
        """Index the fills among ``events``, typed or as ``MatchingEngine.process`` returns them."""
        for event in typed_events(events):
            if isinstance(event, OrderFilled):
                self._exec_ids[(event.trade_id, event.order.order_id)] = str(event.seq)

    def exec_id(self, trade_id: str, order_id: str) -> str | None:
        return self._exec_ids.get((trade_id, order_id))

    def trade_id(self, exec_id: str) -> str | None:
        """The trade a fill's ExecID belongs to (operators know ExecIDs; busts name trades)."""
        for (trade_id, _), known in self._exec_ids.items():
            if known == exec_id:
                return trade_id
        return None


def broker_rows(trades: Iterable[TradeReport], index: ExecIdIndex, is_broker: Callable[[str], bool],
                omitted: frozenset[str] = frozenset()) -> list[TradeRow]:
    """Rows in execution order; both sides appear when both orders are brokers'."""
    rows: list[TradeRow] = []
    for trade in trades:
        if trade.busted:
            continue
        sides = ((Side.BUY, trade.buy_owner, trade.buy_order_id, trade.buy_cl_ord_id),
                 (Side.SELL, trade.sell_owner, trade.sell_order_id, trade.sell_cl_ord_id))
        for side, owner, order_id, cl_ord_id in sides:
            if not is_broker(owner):
                continue
            exec_id = index.exec_id(trade.trade_id, order_id)
            if exec_id is None:
                raise LookupError(f"no ExecID for trade {trade.trade_id} order {order_id}")
            if exec_id in omitted:
                continue
            rows.append(TradeRow(exec_id, order_id, cl_ord_id, owner, trade.symbol, side.name, trade.qty,
                                 trade.price, trade.fee, trade.timestamp, trade.trade_id))
    return rows


def iso_utc(moment: datetime) -> str:
    """ISO-8601 in UTC with a Z suffix and microseconds (naive times are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def write_csv(rows: Iterable[TradeRow], out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        values = [getattr(row, column) for column in COLUMNS]
        writer.writerow([format(v, "f") if isinstance(v, Decimal) else iso_utc(v) if isinstance(v, datetime)
                         else v for v in values])


def csv_text(rows: Iterable[TradeRow]) -> str:
    buffer = io.StringIO()
    write_csv(rows, buffer)
    return buffer.getvalue()


# --------------------------------------------------------------------------- FIX 4.4 TradeCaptureReports
@dataclass(frozen=True, slots=True)
class TradeCaptureRequest:
    """The parts of 35=AD the venue honours, extracted by the FIX layer."""

    trade_request_id: str
    trade_request_type: str
    subscription_type: str | None
    symbol: str | None
    trade_dates: tuple[date, ...]


def capture_ack(request: TradeCaptureRequest, result: str, status: str, total: int,
                text: str | None = None) -> Outbound:
    fields: list[tuple[int, str]] = [(TRADE_REQUEST_ID, request.trade_request_id),
                                     (TRADE_REQUEST_TYPE, request.trade_request_type)]
    if request.subscription_type is not None:
        fields.append((SUBSCRIPTION_REQUEST_TYPE, request.subscription_type))
    fields.extend([(TOT_NUM_TRADE_REPORTS, str(total)), (TRADE_REQUEST_RESULT, result),
                   (TRADE_REQUEST_STATUS, status)])
    if request.symbol:
        fields.append((SYMBOL, request.symbol))
    if text:
        fields.append((TEXT, text))
    return Outbound("AQ", tuple(fields))


def capture_report(request: TradeCaptureRequest, row: TradeRow, total: int, last: bool) -> Outbound:
    """One 35=AE for one broker execution; the fee goes out as an absolute Commission on the side."""
    side_entry = ((SIDE, SIDES.to_fix(Side[row.side])), (ORDER_ID, row.order_id), (CL_ORD_ID, row.cl_ord_id),
                  (COMMISSION, fix_decimal(row.fee)), (COMM_TYPE, COMM_TYPE_ABSOLUTE))
    fields = ((TRADE_REPORT_ID, row.exec_id), (TRADE_REPORT_TRANS_TYPE, "0"), (TRADE_REPORT_TYPE, "0"),
              (TRADE_REQUEST_ID, request.trade_request_id), (TOT_NUM_TRADE_REPORTS, str(total)),
              (LAST_RPT_REQUESTED, "Y" if last else "N"), (TRD_MATCH_ID, row.trade_id), (EXEC_ID, row.exec_id),
              (PREVIOUSLY_REPORTED, "N"), (SYMBOL, row.symbol), (LAST_QTY, fix_decimal(row.quantity)),
              (LAST_PX, fix_decimal(row.price)), (TRADE_DATE, fix_date(row.transact_time.date())),
              (TRANSACT_TIME, fix_timestamp(row.transact_time)))
    return Outbound("AE", fields, (OutGroup(NO_SIDES, (side_entry,)),))


def answer_capture_request(request: TradeCaptureRequest, version: FixVersion, known_symbols: frozenset[str],
                           rows_for: Callable[[date], list[TradeRow]], today: date) -> list[Outbound]:
    """AQ then one AE per matching execution. Supports TradeRequestType 0 (all) and 1 (matching the
    symbol/date criteria), snapshot only; anything else is refused in the AQ."""
    if version is not FixVersion.FIX44:
        return []
    if request.trade_request_type not in (TRADE_REQUEST_ALL, TRADE_REQUEST_MATCHING):
        return [capture_ack(request, RESULT_TYPE_UNSUPPORTED, STATUS_REJECTED, 0,
                            f"UNSUPPORTED_TRADE_REQUEST_TYPE: type={request.trade_request_type}")]
    if request.subscription_type not in (None, "0"):
        return [capture_ack(request, RESULT_OTHER, STATUS_REJECTED, 0,
                            f"UNSUPPORTED_SUBSCRIPTION: type={request.subscription_type}")]
    if request.symbol and request.symbol not in known_symbols:
        return [capture_ack(request, RESULT_INVALID_INSTRUMENT, STATUS_REJECTED, 0,
                            f"UNKNOWN_SYMBOL: symbol={request.symbol}")]
    dates = request.trade_dates or (today,)
    rows = [row for day in sorted(set(dates)) for row in rows_for(day)
            if not request.symbol or row.symbol == request.symbol]
    total = len(rows)
    out = [capture_ack(request, RESULT_OK, STATUS_ACCEPTED if total else STATUS_COMPLETED, total)]
    out.extend(capture_report(request, row, total, i == total - 1)
               for i, row in enumerate(rows))
    return out
