"""verify_ledger: silent after a normal lifecycle, loud after anyone edits the books by hand."""

from __future__ import annotations

import pytest

from oms.domain.commands import CancelOrder
from oms.domain.enums import ExecType, OrderStatus
from oms.service.accounts import settle, withdraw
from oms.service.orders import Outcome
from oms.service.uow import Database
from tests.service.factories import (
    WITH_FEES,
    buy,
    execute_sql,
    executor,
    fill,
    ledger_violations,
    new_ack,
    report,
    sell,
)


def normal_day(database: Database) -> str:
    """Buy, partially fill, fill; sell part and settle; cancel a working order. Returns a working order's venue id."""
    runner = executor(database, WITH_FEES)
    bought = runner.one(buy("ACC1", "B1", "10", "190.00"))
    assert bought.venue_cl_ord_id is not None
    runner.one(new_ack(bought.venue_cl_ord_id))
    runner.one(fill(bought.venue_cl_ord_id, "3", "189.99"))
    runner.one(report(bought.venue_cl_ord_id, ExecType.TRADE, OrderStatus.FILLED, last_qty="7", last_px="190.00"))
    sold = runner.one(sell("ACC1", "S1", "4", "191.00"))
    assert sold.venue_cl_ord_id is not None
    runner.one(report(sold.venue_cl_ord_id, ExecType.TRADE, OrderStatus.FILLED, last_qty="4", last_px="191.00"))
    settle(database, __import__("datetime").date(2100, 1, 1))
    to_cancel = runner.one(buy("ACC1", "B2", "5", "180.00"))
    cancel = runner.one(CancelOrder(account="ACC1", cl_ord_id="C2", orig_cl_ord_id="B2"))
    assert to_cancel.venue_cl_ord_id is not None and cancel.venue_cl_ord_id is not None
    runner.one(report(cancel.venue_cl_ord_id, ExecType.CANCELED, OrderStatus.CANCELED, orig_cl_ord_id=to_cancel.venue_cl_ord_id))
    working = runner.one(buy("ACC1", "B3", "2", "185.00"))
    assert working.outcome is Outcome.ACCEPTED and working.venue_cl_ord_id is not None
    withdraw(database, "ACC1", "1000")
    return working.venue_cl_ord_id


def codes(database: Database) -> set[str]:
    return {violation.split(":", 1)[0] for violation in ledger_violations(database)}


def test_the_ledger_verifies_clean_after_a_normal_lifecycle(database: Database) -> None:
    normal_day(database)
    assert ledger_violations(database) == []


def test_a_hand_edited_posting_shows_as_an_unbalanced_entry_and_a_balance_mismatch(database: Database) -> None:
    normal_day(database)
    execute_sql(
        database,
        "UPDATE postings SET amount = amount + 1 WHERE id = "
        "(SELECT MIN(id) FROM postings WHERE ledger_account = 'ACC1/cash:available/USD')",
    )
    violations = ledger_violations(database)
    assert {"UNBALANCED_ENTRY", "BALANCE_MISMATCH"} <= codes(database), violations
    assert any(v.startswith("BALANCE_MISMATCH: ACC1/cash:available/USD") for v in violations)


def test_a_hand_edited_stored_balance_shows_as_a_balance_mismatch(database: Database) -> None:
    normal_day(database)
    execute_sql(database, "UPDATE ledger_accounts SET balance = balance + 1 WHERE key = 'ACC1/shares:available/AAPL'")
    assert codes(database) == {"BALANCE_MISMATCH"}
    assert ledger_violations(database)[0].startswith("BALANCE_MISMATCH: ACC1/shares:available/AAPL stores 7")


def test_a_reservation_left_pending_on_a_finished_order_is_reported(database: Database) -> None:
    normal_day(database)
    execute_sql(database, "UPDATE orders SET status = 'canceled' WHERE cl_ord_id = 'B3'")
    violations = ledger_violations(database)
    assert codes(database) == {"RESERVATION_ON_FINISHED_ORDER"}, violations
    assert "is canceled but reservation" in violations[0]


def test_a_reservation_row_that_no_longer_matches_the_reserved_balance_is_reported(database: Database) -> None:
    normal_day(database)
    execute_sql(database, "UPDATE reservations SET status = 'voided' WHERE status = 'pending'")
    assert codes(database) == {"RESERVATION_MISMATCH"}


@pytest.mark.parametrize(("change", "code", "text"), [
    ("entry_id = 'no-such-entry'", "POSTING_WITHOUT_ENTRY", "missing entry no-such-entry"),
    ("ledger_account = 'NOBODY/cash:available/USD'", "POSTING_WITHOUT_ACCOUNT",
     "missing ledger account NOBODY/cash:available/USD"),
], ids=["entry gone", "ledger account unknown"])
def test_a_posting_whose_entry_or_ledger_account_is_gone_is_reported(database: Database, change: str, code: str,
                                                                     text: str) -> None:
    """The schema does not check a posting's entry or ledger account row by row (migration 0004_postings_fk):
    verify does."""
    normal_day(database)
    execute_sql(database, f"UPDATE postings SET {change} WHERE id = (SELECT MIN(id) FROM postings)")
    violations = ledger_violations(database)
    assert code in codes(database), violations
    assert any(text in v for v in violations)
