"""The order lifecycle through the service, on SQLite and PostgreSQL: what each step reserves, books and releases."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import text

from oms.domain.commands import CancelOrder, ReplaceOrder
from oms.domain.enums import ExecType, OrderStatus
from oms.domain.risk import ReasonCode
from oms.service.accounts import settle
from oms.service.orders import ApplyCancelReject, Outcome
from oms.service.uow import Database
from tests.service.factories import (
    WITH_FEES,
    buy,
    cash,
    count_rows,
    executor,
    fill,
    ledger_violations,
    new_ack,
    position_of,
    report,
    sell,
    shares,
)

D = Decimal
START = D("100000.00")
FRIDAY = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


def place_working_buy(database: Database, cl_ord_id: str = "B1", qty: str = "10", price: str = "190.00") -> str:
    runner = executor(database, WITH_FEES)
    placed = runner.one(buy("ACC1", cl_ord_id, qty, price))
    assert placed.outcome is Outcome.ACCEPTED
    assert placed.venue_cl_ord_id is not None
    assert runner.one(new_ack(placed.venue_cl_ord_id)).order.status is OrderStatus.NEW  # type: ignore[union-attr]
    return placed.venue_cl_ord_id


def test_accepted_buy_limit_reserves_limit_times_qty_plus_fee_rounded_up(database: Database) -> None:
    runner = executor(database, WITH_FEES)
    # 7 x 190.01 = 1330.07; fee 0.0005 x 1330.07 = 0.665035 -> 0.67 (half up); reservation rounds up to the cent.
    result = runner.one(buy("ACC1", "B1", "7", "190.01"))

    assert result.outcome is Outcome.ACCEPTED
    assert result.order is not None and result.order.status is OrderStatus.PENDING_NEW
    assert cash(database, "ACC1") == (START - D("1330.74"), D("1330.74"), D(0))
    assert count_rows(database, "reservations", "WHERE status = 'pending'") == 1
    assert count_rows(database, "outbox", "WHERE kind = 'new'") == 1
    assert ledger_violations(database) == []


def test_buy_goes_new_then_partially_filled_then_filled_and_releases_the_unused_reservation(database: Database) -> None:
    runner = executor(database, WITH_FEES)
    placed = runner.one(buy("ACC1", "B1", "10", "190.00"))  # reserves 1900 + 0.95
    venue_id = placed.venue_cl_ord_id
    assert venue_id is not None
    assert cash(database, "ACC1") == (START - D("1900.95"), D("1900.95"), D(0))

    acked = runner.one(new_ack(venue_id))
    assert acked.outcome is Outcome.APPLIED and acked.order is not None
    assert acked.order.status is OrderStatus.NEW

    partial = runner.one(fill(venue_id, "4", "189.50"))  # 758.00 + fee 0.38
    assert partial.outcome is Outcome.APPLIED and partial.order is not None
    assert partial.order.status is OrderStatus.PARTIALLY_FILLED
    assert partial.order.cum_qty == 4 and partial.order.leaves_qty == 6
    assert cash(database, "ACC1") == (START - D("1900.95"), D("1900.95") - D("758.38"), D(0))
    assert shares(database, "ACC1") == (D(4), D(0))

    full = runner.one(report(venue_id, ExecType.TRADE, OrderStatus.FILLED, last_qty="6", last_px="190.00"))
    assert full.outcome is Outcome.APPLIED and full.order is not None
    assert full.order.status is OrderStatus.FILLED
    # 1140.00 + incremental fee fee(1898.00) - fee(758.00) = 0.95 - 0.38 = 0.57; the unused 2.00 comes back.
    assert cash(database, "ACC1") == (START - D("758.38") - D("1140.57"), D(0), D(0))
    assert shares(database, "ACC1") == (D(10), D(0))
    assert count_rows(database, "reservations", "WHERE status = 'pending'") == 0
    assert count_rows(database, "reservations", "WHERE status = 'posted'") == 1
    assert ledger_violations(database) == []


def test_sell_proceeds_wait_in_unsettled_until_t_plus_two_business_days(database: Database) -> None:
    position_of(database, "ACC1", "AAPL", "10", "190.00")
    cash_before = cash(database, "ACC1")[0]
    runner = executor(database, WITH_FEES)
    placed = runner.one(sell("ACC1", "S1", "10", "195.00"))
    assert placed.outcome is Outcome.ACCEPTED and placed.venue_cl_ord_id is not None
    assert shares(database, "ACC1") == (D(0), D(10))

    done = runner.one(
        report(placed.venue_cl_ord_id, ExecType.TRADE, OrderStatus.FILLED, last_qty="10", last_px="195.00", transact_time=FRIDAY)
    )
    assert done.order is not None and done.order.status is OrderStatus.FILLED
    proceeds = D("1950.00") - D("0.98")  # fee 0.975 -> 0.98
    assert cash(database, "ACC1") == (cash_before, D(0), proceeds)
    assert shares(database, "ACC1") == (D(0), D(0))

    assert settle(database, date(2026, 11, 20)) == 0  # trade date
    assert settle(database, date(2026, 11, 23)) == 0  # Monday = T+1
    assert cash(database, "ACC1") == (cash_before, D(0), proceeds)
    assert settle(database, date(2026, 11, 24)) == 1  # Tuesday = T+2 (the weekend does not count)
    assert cash(database, "ACC1") == (cash_before + proceeds, D(0), D(0))
    assert settle(database, date(2026, 11, 30)) == 0  # settles once
    assert ledger_violations(database) == []


def test_cancel_goes_pending_cancel_then_canceled_and_releases_the_reservation(database: Database) -> None:
    venue_id = place_working_buy(database)
    runner = executor(database, WITH_FEES)

    requested = runner.one(CancelOrder(account="ACC1", cl_ord_id="C1", orig_cl_ord_id="B1"))
    assert requested.outcome is Outcome.ACCEPTED and requested.order is not None
    assert requested.order.status is OrderStatus.PENDING_CANCEL
    assert requested.venue_cl_ord_id is not None and requested.venue_cl_ord_id != venue_id
    assert cash(database, "ACC1")[1] == D("1900.95")  # still held until the venue confirms

    canceled = runner.one(
        report(requested.venue_cl_ord_id, ExecType.CANCELED, OrderStatus.CANCELED, orig_cl_ord_id=venue_id, venue_order_id="V-" + venue_id[-12:])
    )
    assert canceled.outcome is Outcome.APPLIED and canceled.order is not None
    assert canceled.order.status is OrderStatus.CANCELED
    assert cash(database, "ACC1") == (START, D(0), D(0))
    assert count_rows(database, "reservations", "WHERE status = 'pending'") == 0
    assert count_rows(database, "reservations", "WHERE status = 'voided'") == 1  # nothing consumed
    assert ledger_violations(database) == []


def test_cancel_of_an_unknown_order_is_denied_unknown_order(database: Database) -> None:
    result = executor(database).one(CancelOrder(account="ACC1", cl_ord_id="C1", orig_cl_ord_id="NOPE"))
    assert result.outcome is Outcome.DENIED and result.denial is not None
    assert result.denial.reason is ReasonCode.UNKNOWN_ORDER


def test_cancel_of_a_filled_order_is_denied_order_not_cancelable(database: Database) -> None:
    venue_id = place_working_buy(database)
    runner = executor(database, WITH_FEES)
    runner.one(report(venue_id, ExecType.TRADE, OrderStatus.FILLED, last_qty="10", last_px="190.00"))
    before = cash(database, "ACC1")

    result = runner.one(CancelOrder(account="ACC1", cl_ord_id="C1", orig_cl_ord_id="B1"))
    assert result.outcome is Outcome.DENIED and result.denial is not None
    assert result.denial.reason is ReasonCode.ORDER_NOT_CANCELABLE
    assert result.order is not None and result.order.status is OrderStatus.FILLED
    assert cash(database, "ACC1") == before
    assert count_rows(database, "outbox", "WHERE kind = 'cancel'") == 0


def test_replace_creates_a_successor_under_the_new_cl_ord_id_and_moves_and_trims_the_reservation(database: Database) -> None:
    venue_id = place_working_buy(database, qty="10", price="190.00")  # holds 1900.95
    runner = executor(database, WITH_FEES)
    runner.one(fill(venue_id, "2", "190.00"))  # consumes 380.19, holds 1520.76
    assert cash(database, "ACC1")[1] == D("1520.76")

    requested = runner.one(ReplaceOrder(account="ACC1", cl_ord_id="R1", orig_cl_ord_id="B1", qty=D("6"), limit_price=D("185.00")))
    assert requested.outcome is Outcome.ACCEPTED and requested.order is not None
    assert requested.order.status is OrderStatus.PENDING_REPLACE
    replace_venue_id = requested.venue_cl_ord_id
    assert replace_venue_id is not None and replace_venue_id != venue_id

    replaced = runner.one(
        report(replace_venue_id, ExecType.REPLACED, OrderStatus.NEW, orig_cl_ord_id=venue_id, venue_order_id="V-" + venue_id[-12:])
    )
    assert replaced.outcome is Outcome.APPLIED
    successor, original = replaced.order, replaced.original
    assert successor is not None and original is not None
    assert original.status is OrderStatus.REPLACED
    assert str(successor.cl_ord_id) == "R1"
    assert successor.order_id != original.order_id
    assert successor.qty == 6 and successor.cum_qty == 2 and successor.leaves_qty == 4
    assert successor.limit_price == D("185.00")
    # The successor needs 4 x 185 = 740 + fee 0.37 = 740.37; the rest of the old hold comes back.
    assert cash(database, "ACC1")[1] == D("740.37")
    assert count_rows(database, "reservations", "WHERE status = 'pending'") == 1
    assert count_rows(database, "orders", "WHERE cl_ord_id = 'B1' AND status = 'replaced'") == 1
    assert count_rows(database, "orders", "WHERE cl_ord_id = 'R1' AND venue_cl_ord_id = :v".replace(":v", f"'{replace_venue_id}'")) == 1
    assert ledger_violations(database) == []

    # The successor fills under the replace's venue ClOrdID and finishes clean.
    done = runner.one(report(replace_venue_id, ExecType.TRADE, OrderStatus.FILLED, last_qty="4", last_px="185.00"))
    assert done.order is not None and done.order.status is OrderStatus.FILLED
    assert cash(database, "ACC1")[1] == D(0)
    assert shares(database, "ACC1") == (D(6), D(0))
    assert ledger_violations(database) == []


def test_replace_rejected_by_the_venue_returns_the_order_to_its_previous_working_status(database: Database) -> None:
    venue_id = place_working_buy(database)
    runner = executor(database, WITH_FEES)
    runner.one(fill(venue_id, "3", "190.00"))
    held = cash(database, "ACC1")[1]
    requested = runner.one(ReplaceOrder(account="ACC1", cl_ord_id="R1", orig_cl_ord_id="B1", qty=D("8"), limit_price=D("189.00")))
    assert requested.outcome is Outcome.ACCEPTED and requested.venue_cl_ord_id is not None

    rejected = runner.one(
        ApplyCancelReject(venue_cl_ord_id=requested.venue_cl_ord_id, orig_venue_cl_ord_id=venue_id, response_to="replace", reason="too late")
    )
    assert rejected.outcome is Outcome.APPLIED and rejected.order is not None
    assert rejected.order.status is OrderStatus.PARTIALLY_FILLED
    assert rejected.order.qty == 10 and rejected.order.limit_price == D("190.00")
    assert cash(database, "ACC1")[1] == held
    assert ledger_violations(database) == []

    # The order still works under its original ids: it can be canceled.
    again = runner.one(CancelOrder(account="ACC1", cl_ord_id="C2", orig_cl_ord_id="B1"))
    assert again.outcome is Outcome.ACCEPTED


def test_venue_rejection_releases_the_whole_reservation(database: Database) -> None:
    runner = executor(database, WITH_FEES)
    placed = runner.one(buy("ACC1", "B1", "10", "190.00"))
    assert placed.venue_cl_ord_id is not None

    rejected = runner.one(report(placed.venue_cl_ord_id, ExecType.REJECTED, OrderStatus.REJECTED, text="venue says no"))
    assert rejected.outcome is Outcome.APPLIED and rejected.order is not None
    assert rejected.order.status is OrderStatus.REJECTED
    assert cash(database, "ACC1") == (START, D(0), D(0))
    assert count_rows(database, "reservations", "WHERE status = 'pending'") == 0
    assert count_rows(database, "reservations", "WHERE status = 'voided'") == 1  # nothing consumed
    assert ledger_violations(database) == []


def test_a_reservation_released_without_any_fill_is_voided_not_posted(database: Database) -> None:
    runner = executor(database, WITH_FEES)
    placed = runner.one(buy("ACC1", "B1", "10", "190.00"))
    assert placed.venue_cl_ord_id is not None
    runner.one(report(placed.venue_cl_ord_id, ExecType.REJECTED, OrderStatus.REJECTED))
    assert count_rows(database, "reservations", "WHERE status = 'voided'") == 1


def test_expiry_after_a_partial_fill_releases_what_is_left(database: Database) -> None:
    venue_id = place_working_buy(database)
    runner = executor(database, WITH_FEES)
    runner.one(fill(venue_id, "4", "190.00"))  # 760.00 + 0.38

    expired = runner.one(report(venue_id, ExecType.EXPIRED, OrderStatus.EXPIRED))
    assert expired.outcome is Outcome.APPLIED and expired.order is not None
    assert expired.order.status is OrderStatus.EXPIRED
    assert cash(database, "ACC1") == (START - D("760.38"), D(0), D(0))
    assert shares(database, "ACC1") == (D(4), D(0))
    assert count_rows(database, "reservations", "WHERE status = 'posted'") == 1
    assert ledger_violations(database) == []


def test_sell_expiry_gives_the_reserved_shares_back(database: Database) -> None:
    position_of(database, "ACC1", "AAPL", "10", "190.00")
    runner = executor(database, WITH_FEES)
    placed = runner.one(sell("ACC1", "S1", "10", "190.00"))
    assert placed.venue_cl_ord_id is not None
    runner.one(fill(placed.venue_cl_ord_id, "3", "190.00"))
    assert shares(database, "ACC1") == (D(0), D(7))

    runner.one(report(placed.venue_cl_ord_id, ExecType.EXPIRED, OrderStatus.EXPIRED))
    assert shares(database, "ACC1") == (D(7), D(0))
    assert ledger_violations(database) == []


def test_a_fill_that_carries_a_text_books_its_journal_entry_with_that_memo(database: Database) -> None:
    """The reconciliation's repaired fills name the break they settle; the journal keeps that reference."""
    runner = executor(database)
    placed = runner.one(buy("ACC1", "M1", "10", "100.00"))
    assert placed.venue_cl_ord_id is not None
    assert runner.one(fill(placed.venue_cl_ord_id, "4", "100.00", exec_id="MEMO-1", text="reconcile repair of B-7")).ok
    assert runner.one(fill(placed.venue_cl_ord_id, "6", "100.00", exec_id="MEMO-2")).ok
    with database.engine.connect() as connection:
        memos = dict(
            connection.execute(
                text("SELECT reference, memo FROM journal_entries WHERE kind = 'fill' ORDER BY reference")
            ).all()
        )
    assert memos == {"MEMO-1": "reconcile repair of B-7", "MEMO-2": None}
