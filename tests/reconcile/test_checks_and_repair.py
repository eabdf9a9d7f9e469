"""The ledger checks and the repair planner as pure functions: what the ledger must hold, and which missed fills
are safe to book."""

from __future__ import annotations

from decimal import Decimal

from oms.domain.enums import ExecType, OrderStatus
from reconcile.checks import LedgerSnapshot, ledger_checks, ours_by_account
from reconcile.model import BreakKind, OrderRef, VenueTrade
from reconcile.repair import plan_repairs
from tests.reconcile.stubs import ours_of, venue_row

D = Decimal


def order(status: str = "partially_filled", qty: str = "100", cum: str = "40", side: str = "buy",
          symbol: str = "AAPL") -> OrderRef:
    return OrderRef("ord-1", "ACC1", "C1", "O1", symbol, side, D(qty), D(cum), D(qty) - D(cum), status)


def plan(rows: list[VenueTrade], ref: OrderRef | None):  # type: ignore[no-untyped-def]
    return plan_repairs(rows, lambda row: ref if ref is not None and row.cl_ord_id == ref.venue_cl_ord_id else None)


def test_ledger_matching_money_in_and_fills_has_no_breaks_and_each_difference_is_one_break() -> None:
    bought = ours_of(venue_row("E1", qty="10", price="100.00"))  # fee 0.50 in the stub
    sold = ours_of(venue_row("E2", side="sell", qty="4", price="110.00"))
    fills = ours_by_account([bought, sold], lambda s: "USD", with_fees=True)
    cash = D("5000") - D("1000.50") + D("439.50")
    sound = LedgerSnapshot({("ACC1", "AAPL"): D("6")}, {("ACC1", "USD"): cash}, {("ACC1", "USD"): D("5000")})
    assert ledger_checks(sound, fills) == []
    broken = LedgerSnapshot({("ACC1", "AAPL"): D("7")}, {("ACC1", "USD"): cash - 1}, {("ACC1", "USD"): D("5000")})
    assert [(b.kind, b.key, b.ours, b.venue) for b in ledger_checks(broken, fills)] == [
        (BreakKind.LEDGER_POSITION_MISMATCH, "ledger_position_mismatch:ACC1:AAPL", "7", "6"),
        (BreakKind.LEDGER_CASH_MISMATCH, "ledger_cash_mismatch:ACC1:USD", "4438", "4439"),
    ]


def test_a_missed_fill_on_a_working_order_becomes_the_live_fill_command() -> None:
    row = venue_row("E2", qty="60", price="99.50")
    [repair], refusals = plan([row], order())
    assert refusals == []
    command = repair.command
    assert (repair.break_key, repair.account_id, repair.order_id) == ("missing_ours:E2", "ACC1", "ord-1")
    assert (command.venue_exec_id, command.cl_ord_id, command.venue_order_id) == ("E2", "C1", "O1")
    assert (command.exec_type, command.ord_status) == (ExecType.TRADE, OrderStatus.FILLED)
    assert (command.last_qty, command.last_px, command.cum_qty, command.leaves_qty) == (D(60), D("99.50"), D(100), 0)
    assert command.transact_time == row.transact_time and "missing_ours:E2" in command.text


def test_several_missed_fills_of_one_order_count_down_its_leaves_in_venue_time_order() -> None:
    late, early, third = (venue_row("E3", qty="30", seconds=2), venue_row("E2", qty="20", seconds=1),
                          venue_row("E4", qty="20", seconds=3))
    repairs, refusals = plan([late, third, early], order())  # 60 leaves
    assert [(r.command.venue_exec_id, r.command.cum_qty, r.command.leaves_qty) for r in repairs] == [
        ("E2", D(60), D(40)), ("E3", D(90), D(10))]
    assert [(r.break_key, r.reason) for r in refusals] == [
        ("missing_ours:E4", "fill of 20 exceeds the order's leaves quantity 10")]


def test_missed_fills_that_need_a_human() -> None:
    row = venue_row("E2", qty="10")
    cases = {
        "no order of ours has ClOrdID C1 or venue order id O1": None,
        "our order ord-1 is canceled": order(status="canceled"),
        "our order ord-1 is filled": order(status="filled", cum="100"),
        "our order ord-1 is a sell, the venue's trade a buy": order(side="sell"),
        "our order ord-1 is for MSFT, the venue's trade for AAPL": order(symbol="MSFT"),
    }
    for reason, ref in cases.items():
        repairs, refusals = plan([row], ref)
        assert repairs == [] and [r.reason for r in refusals] == [reason]
    repairs, refusals = plan([venue_row("E 2 with spaces")], order())
    assert repairs == [] and refusals[0].reason.startswith("the venue's ids cannot be booked")
