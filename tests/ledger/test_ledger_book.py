"""The ledger book refuses entries that would break an invariant, and money movements are idempotent and validated."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from oms.ledger.book import InsufficientBalance, Leg, OwnerNotLoaded, UnbalancedEntry, transfer
from oms.ledger.chart import BANK, BROKER, CASH_AVAILABLE, CASH_RESERVED
from oms.service.accounts import AccountError, balances, deposit, withdraw
from oms.service.uow import Database, UnitOfWork
from tests.service.factories import count_rows, funded_account, ledger_violations, setup_database

D = Decimal
NOW = datetime(2026, 11, 20, tzinfo=UTC)


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    database = setup_database(database_url)
    funded_account(database, "ACC1", "100")
    yield database
    database.dispose()


def available(database: Database) -> Decimal:
    return balances(database, "ACC1").in_currency("USD").available


def test_an_unbalanced_entry_is_refused_and_nothing_is_booked(database: Database) -> None:
    entries = count_rows(database, "journal_entries")
    with UnitOfWork(database) as uow:
        uow.lock_accounts(["ACC1"])
        legs = [Leg("ACC1", CASH_AVAILABLE, "USD", D("-10")), Leg("ACC1", CASH_RESERVED, "USD", D("9.99"))]
        with pytest.raises(UnbalancedEntry, match="does not balance: USD=-0.01"):
            uow.ledger.post("test", "r1", legs, account_id="ACC1", created_at=NOW)
        assert uow.ledger.pending_entries == 0
        assert uow.ledger.balance("ACC1", CASH_AVAILABLE, "USD") == D(100)
        uow.commit()
    assert count_rows(database, "journal_entries") == entries
    assert available(database) == D(100)


def test_an_entry_balanced_in_total_but_not_per_asset_is_refused(database: Database) -> None:
    with UnitOfWork(database) as uow:
        uow.lock_accounts(["ACC1"])
        legs = [Leg("ACC1", CASH_AVAILABLE, "USD", D("-10")), Leg("ACC1", CASH_RESERVED, "EUR", D("10"))]
        with pytest.raises(UnbalancedEntry):
            uow.ledger.post("test", "r1", legs, account_id="ACC1", created_at=NOW)


@pytest.mark.parametrize("amount", [D("NaN"), D("Infinity")])
def test_a_leg_with_a_non_finite_amount_is_refused(database: Database, amount: Decimal) -> None:
    with UnitOfWork(database) as uow:
        uow.lock_accounts(["ACC1"])
        with pytest.raises(UnbalancedEntry, match="finite"):
            uow.ledger.post("test", "r1", [Leg("ACC1", CASH_AVAILABLE, "USD", amount)], account_id="ACC1", created_at=NOW)


def test_an_entry_that_would_make_available_cash_negative_is_refused_and_nothing_is_booked(database: Database) -> None:
    entries = count_rows(database, "journal_entries")
    with UnitOfWork(database) as uow:
        uow.lock_accounts(["ACC1"])
        legs = list(transfer(("ACC1", CASH_AVAILABLE), ("ACC1", CASH_RESERVED), "USD", D("100.01")))
        with pytest.raises(InsufficientBalance) as refused:
            uow.ledger.post("reserve", "r1", legs, account_id="ACC1", created_at=NOW)
        assert refused.value.key == "ACC1/cash:available/USD"
        assert refused.value.balance == D(100) and refused.value.change == D("-100.01")
        assert uow.ledger.balance("ACC1", CASH_AVAILABLE, "USD") == D(100)
        assert uow.ledger.balance("ACC1", CASH_RESERVED, "USD") == D(0)
        # Exactly all of it is fine.
        uow.ledger.post("reserve", "r2", list(transfer(("ACC1", CASH_AVAILABLE), ("ACC1", CASH_RESERVED), "USD", D(100))), account_id="ACC1", created_at=NOW)
        uow.commit()
    assert count_rows(database, "journal_entries") == entries + 1
    assert balances(database, "ACC1").in_currency("USD").reserved == D(100)


def test_posting_to_an_account_whose_ledger_is_not_locked_is_refused(database: Database) -> None:
    with UnitOfWork(database) as uow:
        with pytest.raises(OwnerNotLoaded):
            uow.ledger.post("deposit", "r1", list(transfer((BROKER, BANK), ("ACC1", CASH_AVAILABLE), "USD", D(1))), account_id="ACC1", created_at=NOW)


def test_withdrawing_more_than_withdrawable_is_refused_and_nothing_is_booked(database: Database) -> None:
    entries = count_rows(database, "journal_entries")
    with pytest.raises(AccountError, match=r"INSUFFICIENT_FUNDS: requested=100.01, withdrawable=100"):
        withdraw(database, "ACC1", D("100.01"))
    assert count_rows(database, "journal_entries") == entries
    assert available(database) == D(100)

    withdraw(database, "ACC1", "100")
    assert available(database) == D(0)
    assert ledger_violations(database) == []


def test_a_deposit_with_the_same_reference_books_once(database: Database) -> None:
    first = deposit(database, "ACC1", "50", reference="WIRE-1")
    second = deposit(database, "ACC1", "50", reference="WIRE-1")
    assert first == second
    assert available(database) == D(150)
    assert count_rows(database, "journal_entries", "WHERE reference = 'WIRE-1'") == 1
    deposit(database, "ACC1", "50", reference="WIRE-2")
    assert available(database) == D(200)


def test_a_withdrawal_with_the_same_reference_books_once(database: Database) -> None:
    withdraw(database, "ACC1", "30", reference="OUT-1")
    withdraw(database, "ACC1", "30", reference="OUT-1")
    assert available(database) == D(70)


BAD_AMOUNTS = ["abc", "-5", "NaN", "0", "", " 5", "Infinity", "1e999999", D("NaN"), D("-0.01"), D(0)]


def test_bad_amounts_are_refused_for_deposit_and_withdraw(database: Database) -> None:
    entries = count_rows(database, "journal_entries")
    for bad in BAD_AMOUNTS:
        with pytest.raises(AccountError):
            deposit(database, "ACC1", bad)
        with pytest.raises(AccountError):
            withdraw(database, "ACC1", bad)
    assert count_rows(database, "journal_entries") == entries
    assert available(database) == D(100)


def test_money_movements_on_an_unknown_account_are_refused(database: Database) -> None:
    with pytest.raises(AccountError, match="unknown account"):
        deposit(database, "NOBODY", "5")
    with pytest.raises(AccountError, match="unknown account"):
        balances(database, "NOBODY")


def test_flushing_twice_in_one_transaction_books_everything_once(database: Database) -> None:
    """Entries and postings go out as tuples; a broker account created by the first flush is not inserted again,
    and a balance changed after a flush is written by the next one."""
    entries, postings = count_rows(database, "journal_entries"), count_rows(database, "postings")
    with UnitOfWork(database) as uow:
        uow.lock_accounts(["ACC1"])
        for reference in ("w1", "w2"):
            legs = list(transfer(("ACC1", CASH_AVAILABLE), (BROKER, "test:flush"), "USD", D("10")))
            uow.ledger.post("test", reference, legs, account_id="ACC1", created_at=NOW)
            uow.ledger.flush()
        uow.commit()
    assert count_rows(database, "journal_entries") == entries + 2
    assert count_rows(database, "postings") == postings + 4
    assert count_rows(database, "ledger_accounts", "WHERE key = '@broker/test:flush/USD'") == 1
    assert available(database) == D(80)
    assert ledger_violations(database) == []
