"""Two-way tables between the OMS's domain enums and FIX values, for both gateway sessions.

Explicit pairs (not the enums' own codes) so the FIX boundary reads as a table and an unsupported value
fails loudly (`UnmappedValue`). FIX 4.2 differs from 4.4 in ExecType: it reports fills as 1/2 (partial/full)
and has no Trade/TradeCorrect/TradeCancel/OrderStatus codes; those travel in ExecTransType(20).
"""

from __future__ import annotations

from fix.tables import TwoWayTable
from oms.domain.enums import ExecType, OrderStatus, OrderType, Side, TimeInForce

FIX42 = "FIX.4.2"
FIX44 = "FIX.4.4"

SIDES: TwoWayTable[Side] = TwoWayTable("Side(54)", [(Side.BUY, "1"), (Side.SELL, "2")])
ORDER_TYPES: TwoWayTable[OrderType] = TwoWayTable("OrdType(40)", [
    (OrderType.MARKET, "1"), (OrderType.LIMIT, "2"), (OrderType.STOP, "3"), (OrderType.STOP_LIMIT, "4"),
])
TIMES_IN_FORCE: TwoWayTable[TimeInForce] = TwoWayTable("TimeInForce(59)", [
    (TimeInForce.DAY, "0"), (TimeInForce.GTC, "1"), (TimeInForce.IOC, "3"), (TimeInForce.FOK, "4"),
    (TimeInForce.GTD, "6"),
])
ORDER_STATUSES: TwoWayTable[OrderStatus] = TwoWayTable("OrdStatus(39)", [
    (OrderStatus.NEW, "0"), (OrderStatus.PARTIALLY_FILLED, "1"), (OrderStatus.FILLED, "2"),
    (OrderStatus.DONE_FOR_DAY, "3"), (OrderStatus.CANCELED, "4"), (OrderStatus.REPLACED, "5"),
    (OrderStatus.PENDING_CANCEL, "6"), (OrderStatus.REJECTED, "8"), (OrderStatus.PENDING_NEW, "A"),
    (OrderStatus.EXPIRED, "C"), (OrderStatus.PENDING_REPLACE, "E"),
])
EXEC_TYPES_44: TwoWayTable[ExecType] = TwoWayTable("ExecType(150) FIX.4.4", [
    (ExecType.NEW, "0"), (ExecType.DONE_FOR_DAY, "3"), (ExecType.CANCELED, "4"), (ExecType.REPLACED, "5"),
    (ExecType.PENDING_CANCEL, "6"), (ExecType.REJECTED, "8"), (ExecType.PENDING_NEW, "A"),
    (ExecType.EXPIRED, "C"), (ExecType.RESTATED, "D"), (ExecType.PENDING_REPLACE, "E"), (ExecType.TRADE, "F"),
    (ExecType.TRADE_CORRECT, "G"), (ExecType.TRADE_CANCEL, "H"), (ExecType.ORDER_STATUS, "I"),
])
# FIX 4.2: the ExecTypes it shares with 4.4 (fills are handled by exec_type_to_fix / exec_type_from_fix).
EXEC_TYPES_42: TwoWayTable[ExecType] = TwoWayTable("ExecType(150) FIX.4.2", [
    (ExecType.NEW, "0"), (ExecType.DONE_FOR_DAY, "3"), (ExecType.CANCELED, "4"), (ExecType.REPLACED, "5"),
    (ExecType.PENDING_CANCEL, "6"), (ExecType.REJECTED, "8"), (ExecType.PENDING_NEW, "A"),
    (ExecType.EXPIRED, "C"), (ExecType.RESTATED, "D"), (ExecType.PENDING_REPLACE, "E"),
])
# ExecTransType(20), FIX 4.2 only.
EXEC_TRANS_TYPES_42: TwoWayTable[ExecType] = TwoWayTable("ExecTransType(20) FIX.4.2", [
    (ExecType.TRADE, "0"), (ExecType.TRADE_CANCEL, "1"), (ExecType.TRADE_CORRECT, "2"), (ExecType.ORDER_STATUS, "3"),
])
FIX42_FILL_EXEC_TYPES = frozenset({"1", "2"})


def exec_type_to_fix(exec_type: ExecType, status: OrderStatus, begin_string: str) -> list[tuple[int, str]]:
    """ExecType (and in FIX 4.2 ExecTransType) fields for one ExecutionReport."""
    if begin_string == FIX44:
        return [(150, EXEC_TYPES_44.to_fix(exec_type))]
    if exec_type is ExecType.TRADE:
        return [(20, "0"), (150, "2" if status is OrderStatus.FILLED else "1")]
    if exec_type in (ExecType.TRADE_CANCEL, ExecType.TRADE_CORRECT, ExecType.ORDER_STATUS):
        current = ORDER_STATUSES.to_fix(status) if status is not OrderStatus.REPLACED else "0"
        return [(20, EXEC_TRANS_TYPES_42.to_fix(exec_type)), (150, current)]
    return [(20, "0"), (150, EXEC_TYPES_42.to_fix(exec_type))]


def exec_type_from_fix(exec_type: str, exec_trans_type: str | None, begin_string: str) -> ExecType:
    """The domain ExecType of an inbound ExecutionReport (raises UnmappedValue for unsupported codes)."""
    if begin_string == FIX44:
        return EXEC_TYPES_44.from_fix(exec_type)
    if exec_trans_type not in (None, "", "0"):
        return EXEC_TRANS_TYPES_42.from_fix(exec_trans_type)
    if exec_type in FIX42_FILL_EXEC_TYPES:
        return ExecType.TRADE
    return EXEC_TYPES_42.from_fix(exec_type)
