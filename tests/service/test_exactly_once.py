"""Exactly-once: resubmitted orders and replayed execution reports never book twice; unbookable reports are quarantined."""

from __future__ import annotations

from decimal import Decimal

from oms.domain.commands import CancelOrder, ReplaceOrder
from oms.domain.enums import ExecType, OrderStatus
from oms.domain.risk import ReasonCode
from oms.service.orders import Outcome
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
    report,
    shares,
)

D = Decimal


def test_identical_resubmission_returns_duplicate_with_the_same_order_and_books_nothing(database: Database) -> None:
    runner = executor(database, WITH_FEES)
    first = runner.one(buy("ACC1", "B1", "10", "190.00"))
    after_first = cash(database, "ACC1")
    entries = count_rows(database, "journal_entries")

    again = runner.one(buy("ACC1", "B1", "10", "190.00"))

    assert first.outcome is Outcome.ACCEPTED and again.outcome is Outcome.DUPLICATE
    assert again.order is not None and first.order is not None
    assert again.order.order_id == first.order.order_id
    assert again.venue_cl_ord_id == first.venue_cl_ord_id
    assert cash(database, "ACC1") == after_first
    assert count_rows(database, "journal_entries") == entries
    assert count_rows(database, "orders") == 1
    assert count_rows(database, "outbox") == 1


def test_identical_resubmission_in_the_same_batch_is_a_duplicate_too(database: Database) -> None:
    results = executor(database, WITH_FEES).execute([buy("ACC1", "B1", "10", "190.00"), buy("ACC1", "B1", "10", "190.00")])
    assert [r.outcome for r in results] == [Outcome.ACCEPTED, Outcome.DUPLICATE]
    assert cash(database, "ACC1")[1] == D("1900.95")
    assert count_rows(database, "orders") == 1


def test_same_cl_ord_id_with_different_content_is_denied_duplicate_cl_ord_id(database: Database) -> None:
    runner = executor(database, WITH_FEES)
    runner.one(buy("ACC1", "B1", "10", "190.00"))
    before = cash(database, "ACC1")

    conflict = runner.one(buy("ACC1", "B1", "11", "190.00"))

    assert conflict.outcome is Outcome.DENIED and conflict.denial is not None
    assert conflict.denial.reason is ReasonCode.DUPLICATE_CL_ORD_ID
    assert str(conflict.denial) == "DUPLICATE_CL_ORD_ID: account=ACC1, cl_ord_id=B1"
    assert cash(database, "ACC1") == before
    assert count_rows(database, "orders") == 1


def test_the_same_exec_id_applied_twice_is_ignored_the_second_time(database: Database) -> None:
    runner = executor(database, WITH_FEES)
    placed = runner.one(buy("ACC1", "B1", "10", "190.00"))
    assert placed.venue_cl_ord_id is not None
    report_ = fill(placed.venue_cl_ord_id, "4", "190.00", exec_id="EXEC-1")

    first = runner.one(report_)
    after_first = (cash(database, "ACC1"), shares(database, "ACC1"))
    second = runner.one(report_)

    assert first.outcome is Outcome.APPLIED
    assert second.outcome is Outcome.IGNORED
    assert (cash(database, "ACC1"), shares(database, "ACC1")) == after_first
    assert shares(database, "ACC1") == (D(4), D(0))
    assert count_rows(database, "executions", "WHERE venue_exec_id = 'EXEC-1'") == 1
    assert ledger_violations(database) == []


def test_the_same_exec_id_twice_in_one_batch_books_once(database: Database) -> None:
    runner = executor(database, WITH_FEES)
    placed = runner.one(buy("ACC1", "B1", "10", "190.00"))
    assert placed.venue_cl_ord_id is not None
    report_ = fill(placed.venue_cl_ord_id, "4", "190.00", exec_id="EXEC-1")

    results = runner.execute([report_, report_])

    assert [r.outcome for r in results] == [Outcome.APPLIED, Outcome.IGNORED]
    assert shares(database, "ACC1") == (D(4), D(0))
    assert ledger_violations(database) == []


def test_the_clordid_of_a_cancel_or_replace_cannot_be_taken_by_another_request(database: Database) -> None:
    runner = executor(database, WITH_FEES)
    first, second = runner.one(buy("ACC1", "B1", "10", "190.00")), runner.one(buy("ACC1", "B2", "10", "190.00"))
    assert first.venue_cl_ord_id is not None and second.venue_cl_ord_id is not None
    for placed in (first, second):
        runner.one(new_ack(placed.venue_cl_ord_id))
    replacing = runner.one(ReplaceOrder(account="ACC1", cl_ord_id="R1", orig_cl_ord_id="B1", qty=D("6"), limit_price=D("190.00")))
    canceling = runner.one(CancelOrder(account="ACC1", cl_ord_id="C2", orig_cl_ord_id="B2"))
    assert replacing.outcome is canceling.outcome is Outcome.ACCEPTED

    taken = [runner.one(buy("ACC1", "R1", "1", "190.00")), runner.one(buy("ACC1", "C2", "1", "190.00"))]
    taken += runner.execute([CancelOrder(account="ACC1", cl_ord_id="R1", orig_cl_ord_id="B2"),
                             buy("ACC1", "C2", "2", "190.00")])  # in one batch with other work too  # fmt: skip
    assert [result.outcome for result in taken] == [Outcome.DENIED] * 4
    assert all(result.denial.reason is ReasonCode.DUPLICATE_CL_ORD_ID for result in taken)  # type: ignore[union-attr]

    # So the venue's confirmation still finds R1 free for the replacing order.
    assert replacing.venue_cl_ord_id is not None
    replaced = runner.one(report(replacing.venue_cl_ord_id, ExecType.REPLACED, OrderStatus.NEW,
                                 orig_cl_ord_id=first.venue_cl_ord_id, venue_order_id="V-" + first.venue_cl_ord_id[-12:]))  # fmt: skip
    assert replaced.outcome is Outcome.APPLIED and str(replaced.order.cl_ord_id) == "R1"  # type: ignore[union-attr]
    # And a ClOrdID stays taken once its request is done (FIX: unique for the day).
    assert canceling.venue_cl_ord_id is not None
    done = runner.one(report(canceling.venue_cl_ord_id, ExecType.CANCELED, OrderStatus.CANCELED,
                             orig_cl_ord_id=second.venue_cl_ord_id))  # fmt: skip
    assert done.outcome is Outcome.APPLIED
    again = runner.one(buy("ACC1", "C2", "1", "190.00"))
    assert again.outcome is Outcome.DENIED and again.denial.reason is ReasonCode.DUPLICATE_CL_ORD_ID  # type: ignore[union-attr]
    assert ledger_violations(database) == []


def test_an_exec_id_reused_for_a_different_report_is_quarantined_not_dropped_unseen(database: Database) -> None:
    runner = executor(database, WITH_FEES)
    first, other = runner.one(buy("ACC1", "B1", "10", "190.00")), runner.one(buy("ACC1", "B2", "10", "190.00"))
    assert first.venue_cl_ord_id is not None and other.venue_cl_ord_id is not None
    assert runner.one(fill(first.venue_cl_ord_id, "4", "190.00", exec_id="EXEC-1")).outcome is Outcome.APPLIED
    quarantined = count_rows(database, "quarantined_executions")

    # A venue whose ExecIDs restarted: the same id, now a Canceled report for another order, and a fill.
    canceled = runner.one(report(other.venue_cl_ord_id, ExecType.CANCELED, OrderStatus.CANCELED, exec_id="EXEC-1"))
    refill = runner.one(fill(first.venue_cl_ord_id, "6", "190.00", exec_id="EXEC-1"))

    assert [canceled.outcome, refill.outcome] == [Outcome.QUARANTINED, Outcome.QUARANTINED]
    assert canceled.detail is not None and canceled.detail.startswith("EXEC_ID_REUSED")
    assert count_rows(database, "quarantined_executions") == quarantined + 2
    assert shares(database, "ACC1") == (D(4), D(0))  # nothing booked from either
    assert ledger_violations(database) == []


def test_an_exec_id_reused_later_in_the_same_batch_is_quarantined_too(database: Database) -> None:
    runner = executor(database, WITH_FEES)
    first, other = runner.one(buy("ACC1", "B1", "10", "190.00")), runner.one(buy("ACC1", "B2", "10", "190.00"))
    assert first.venue_cl_ord_id is not None and other.venue_cl_ord_id is not None
    results = runner.execute([
        fill(first.venue_cl_ord_id, "4", "190.00", exec_id="EXEC-1"),
        report(other.venue_cl_ord_id, ExecType.CANCELED, OrderStatus.CANCELED, exec_id="EXEC-1"),
        fill(first.venue_cl_ord_id, "4", "190.00", exec_id="EXEC-1"),  # a true resend: ignored
    ])  # fmt: skip
    assert [result.outcome for result in results] == [Outcome.APPLIED, Outcome.QUARANTINED, Outcome.IGNORED]
    assert results[1].detail is not None and results[1].detail.startswith("EXEC_ID_REUSED")
    assert shares(database, "ACC1") == (D(4), D(0))
    assert ledger_violations(database) == []


def test_a_fill_for_an_unknown_venue_cl_ord_id_is_quarantined_and_books_nothing(database: Database) -> None:
    entries = count_rows(database, "journal_entries")
    result = executor(database, WITH_FEES).one(fill("NOT-OURS", "5", "190.00", exec_id="EXEC-X"))

    assert result.outcome is Outcome.QUARANTINED
    assert result.detail is not None and result.detail.startswith("UNKNOWN_ORDER")
    assert count_rows(database, "quarantined_executions", "WHERE venue_exec_id = 'EXEC-X'") == 1
    assert count_rows(database, "journal_entries") == entries
    assert count_rows(database, "executions") == 0
    assert shares(database, "ACC1") == (D(0), D(0))


def test_an_overfill_beyond_leaves_qty_is_quarantined_and_books_nothing(database: Database) -> None:
    runner = executor(database, WITH_FEES)
    placed = runner.one(buy("ACC1", "B1", "10", "190.00"))
    assert placed.venue_cl_ord_id is not None
    runner.one(new_ack(placed.venue_cl_ord_id))
    runner.one(fill(placed.venue_cl_ord_id, "6", "190.00"))
    before = (cash(database, "ACC1"), shares(database, "ACC1"))
    entries = count_rows(database, "journal_entries")

    result = runner.one(report(placed.venue_cl_ord_id, ExecType.TRADE, OrderStatus.FILLED, last_qty="5", last_px="190.00", exec_id="OVER"))

    assert result.outcome is Outcome.QUARANTINED
    assert count_rows(database, "quarantined_executions", "WHERE venue_exec_id = 'OVER'") == 1
    assert (cash(database, "ACC1"), shares(database, "ACC1")) == before
    assert count_rows(database, "journal_entries") == entries
    assert ledger_violations(database) == []
