"""Pre-trade checks: every refusal is DENIED with its reason code and reserves nothing."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from oms.domain.commands import PlaceOrder, ReplaceOrder
from oms.domain.risk import ReasonCode
from oms.service.accounts import AccountLimitsConfig, create_account
from oms.service.orders import Outcome
from oms.service.uow import Database
from tests.service.factories import (
    WITH_FEES,
    buy,
    cash,
    count_rows,
    execute_sql,
    executor,
    funded_account,
    ledger_violations,
    sell,
    setup_database,
    shares,
)

D = Decimal


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    database = setup_database(database_url)
    funded_account(database, "ACC1", "1000")
    yield database
    database.dispose()


def assert_denied_and_nothing_reserved(database: Database, command: PlaceOrder, reason: ReasonCode) -> str:
    result = executor(database, WITH_FEES).one(command)
    assert result.outcome is Outcome.DENIED, result
    assert result.denial is not None and result.denial.reason is reason, result.denial
    assert cash(database, "ACC1") == (D(1000), D(0), D(0))
    assert count_rows(database, "reservations") == 0
    assert count_rows(database, "outbox") == 0
    assert ledger_violations(database) == []
    return str(result.denial)


def test_buy_beyond_available_cash_is_denied_insufficient_buying_power_with_amounts(database: Database) -> None:
    text = assert_denied_and_nothing_reserved(database, buy("ACC1", "B1", "10", "190.00"), ReasonCode.INSUFFICIENT_BUYING_POWER)
    assert text == "INSUFFICIENT_BUYING_POWER: required=1900.95, available=1000.00"


def test_buy_costing_exactly_the_available_cash_including_fee_is_accepted(database: Database) -> None:
    # 5 x 199.90 = 999.50 + fee 0.49975 -> 0.50 = 1000.00 exactly.
    result = executor(database, WITH_FEES).one(buy("ACC1", "B1", "5", "199.90", symbol="AAPL"))
    assert result.outcome is Outcome.ACCEPTED
    assert cash(database, "ACC1") == (D(0), D(1000), D(0))


def test_sell_without_shares_is_denied_insufficient_position(database: Database) -> None:
    text = assert_denied_and_nothing_reserved(database, sell("ACC1", "S1", "5", "190.00"), ReasonCode.INSUFFICIENT_POSITION)
    assert text == "INSUFFICIENT_POSITION: required=5, available=0"
    assert shares(database, "ACC1") == (D(0), D(0))


def test_unknown_symbol_is_denied(database: Database) -> None:
    assert_denied_and_nothing_reserved(database, buy("ACC1", "B1", "1", "1.00", symbol="ZZZZ"), ReasonCode.UNKNOWN_SYMBOL)


def test_unknown_account_is_denied(database: Database) -> None:
    result = executor(database, WITH_FEES).one(buy("NOBODY", "B1", "1", "190.00"))
    assert result.outcome is Outcome.DENIED and result.denial is not None
    assert result.denial.reason is ReasonCode.UNKNOWN_ACCOUNT
    assert count_rows(database, "orders") == 0
    assert count_rows(database, "reservations") == 0


def test_buy_limit_above_the_collar_is_denied_price_outside_collar(database: Database) -> None:
    # AAPL reference 190.00, collar 10 %: anything above 209.00 is a fat finger.
    text = assert_denied_and_nothing_reserved(database, buy("ACC1", "B1", "1", "209.01"), ReasonCode.PRICE_OUTSIDE_COLLAR)
    assert text.startswith("PRICE_OUTSIDE_COLLAR: limit_price=209.01")


def test_quantity_above_the_account_maximum_is_denied_max_order_qty(database: Database) -> None:
    execute_sql(database, "UPDATE accounts SET max_order_qty = 3 WHERE id = 'ACC1'")
    assert_denied_and_nothing_reserved(database, buy("ACC1", "B1", "4", "1.00"), ReasonCode.MAX_ORDER_QTY)


def test_max_order_qty_from_account_limits_config(database: Database) -> None:
    create_account(database, "ACC2", limits=AccountLimitsConfig(max_order_qty=D("100")))
    result = executor(database, WITH_FEES).one(buy("ACC2", "B1", "101", "1.00"))
    assert result.denial is not None and result.denial.reason is ReasonCode.MAX_ORDER_QTY


def test_price_off_tick_is_denied_invalid_price(database: Database) -> None:
    assert_denied_and_nothing_reserved(database, buy("ACC1", "B1", "1", "190.005"), ReasonCode.INVALID_PRICE)


def test_fractional_quantity_on_a_whole_share_instrument_is_denied_invalid_quantity(database: Database) -> None:
    assert_denied_and_nothing_reserved(database, buy("ACC1", "B1", "1.5", "190.00"), ReasonCode.INVALID_QUANTITY)


def test_account_kill_switch_denies_with_kill_switch(database: Database) -> None:
    execute_sql(database, "UPDATE accounts SET kill_switch = :on WHERE id = 'ACC1'", on=True)
    text = assert_denied_and_nothing_reserved(database, buy("ACC1", "B1", "1", "190.00"), ReasonCode.KILL_SWITCH)
    assert text == "KILL_SWITCH: scope=account, account=ACC1"


def test_suspended_account_is_denied_account_not_active(database: Database) -> None:
    execute_sql(database, "UPDATE accounts SET status = 'suspended' WHERE id = 'ACC1'")
    assert_denied_and_nothing_reserved(database, buy("ACC1", "B1", "1", "190.00"), ReasonCode.ACCOUNT_NOT_ACTIVE)


def test_fractional_quantity_is_accepted_on_a_fractional_instrument(database: Database) -> None:
    # BTCX allows 4 decimals: 0.1234 x 100.00 = 12.34 + fee 0.00617 -> 0.01 = 12.35 reserved.
    result = executor(database, WITH_FEES).one(buy("ACC1", "B1", "0.1234", "100.00", symbol="BTCX"))
    assert result.outcome is Outcome.ACCEPTED
    assert cash(database, "ACC1") == (D("987.65"), D("12.35"), D(0))
    assert ledger_violations(database) == []


def test_too_many_decimals_on_a_fractional_instrument_is_denied_invalid_quantity(database: Database) -> None:
    assert_denied_and_nothing_reserved(database, buy("ACC1", "B1", "0.12345", "100.00", symbol="BTCX"), ReasonCode.INVALID_QUANTITY)


@pytest.mark.parametrize("qty", ["0", "-1", "NaN", "Infinity", "-Infinity", "sNaN"])
def test_a_quantity_that_is_not_a_positive_number_is_denied_invalid_quantity_and_stores_nothing(
    database: Database, qty: str
) -> None:
    assert_denied_and_nothing_reserved(database, buy("ACC1", "Q1", qty, "100.00"), ReasonCode.INVALID_QUANTITY)
    assert count_rows(database, "orders") == 0
    assert count_rows(database, "order_events") == 0


@pytest.mark.parametrize("price", ["0", "-100.00", "NaN", "Infinity", "sNaN"])
def test_a_limit_price_that_is_not_a_positive_number_is_denied_invalid_price_and_stores_nothing(
    database: Database, price: str
) -> None:
    assert_denied_and_nothing_reserved(database, buy("ACC1", "P1", "1", price), ReasonCode.INVALID_PRICE)
    assert count_rows(database, "orders") == 0


def test_a_zero_quantity_in_a_batch_is_denied_and_its_neighbours_are_accepted(database: Database) -> None:
    results = executor(database, WITH_FEES).execute([buy("ACC1", "OK1", "1", "100.00"), buy("ACC1", "Z1", "0", "100.00")])
    assert [r.outcome for r in results] == [Outcome.ACCEPTED, Outcome.DENIED]
    assert results[1].denial is not None and results[1].denial.reason is ReasonCode.INVALID_QUANTITY
    assert count_rows(database, "orders") == 1


@pytest.mark.parametrize("qty", ["0", "-5", "NaN"])
def test_a_replace_to_a_quantity_that_is_not_a_positive_number_is_denied_and_changes_nothing(
    database: Database, qty: str
) -> None:
    runner = executor(database, WITH_FEES)
    assert runner.one(buy("ACC1", "R1", "1", "100.00")).outcome is Outcome.ACCEPTED
    before = cash(database, "ACC1")
    result = runner.one(
        ReplaceOrder(account="ACC1", cl_ord_id="R2", orig_cl_ord_id="R1", qty=D(qty), limit_price=D("100.00"))
    )
    assert result.outcome is Outcome.DENIED
    assert result.denial is not None and result.denial.reason is ReasonCode.INVALID_QUANTITY
    assert cash(database, "ACC1") == before
    assert count_rows(database, "outbox") == 1
    assert ledger_violations(database) == []
