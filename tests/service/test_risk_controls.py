"""Operator and venue-time controls on new orders: order rate per account, market hours, kill switches.

Each is checked inside the placing transaction from state in the database (never from process memory), so
several gateway processes enforce the same limit: the rate tests use two ``Database`` objects to stand in
for two processes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from oms.domain.risk import ReasonCode
from oms.service.executor import CommandExecutor
from oms.service.orders import Outcome, ServiceConfig, place_order
from oms.service.risk_controls import risk_status, set_kill_switch
from oms.service.uow import Database, UnitOfWork
from oms.settings import load_settings
from tests.service.factories import (
    NO_FEES,
    buy,
    cash,
    count_rows,
    execute_sql,
    funded_account,
    funded_database,
    ledger_violations,
    new_ack,
)

D = Decimal
MONDAY_NOON_NEW_YORK = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)  # 12:00 EST


def at(database: Database, now: datetime, config: ServiceConfig = NO_FEES) -> CommandExecutor:
    return CommandExecutor(database, config, clock=lambda: now)


def reasons(results: list) -> list[str]:  # type: ignore[type-arg]
    return [r.outcome.value if r.denial is None else r.denial.reason.name for r in results]


# --- order rate ---------------------------------------------------------------------------------------------------


def test_an_account_limit_of_three_per_second_denies_the_fourth_order_and_recovers_a_second_later(database: Database) -> None:
    execute_sql(database, "UPDATE accounts SET max_orders_per_second = 3 WHERE id = 'ACC1'")
    now = MONDAY_NOON_NEW_YORK
    first = at(database, now).execute([buy("ACC1", f"R{i}", "1", "190.00") for i in range(4)])
    assert reasons(first) == ["accepted", "accepted", "accepted", "RATE_LIMITED"]
    assert str(first[3].denial) == "RATE_LIMITED: max_per_second=3"
    assert at(database, now + timedelta(milliseconds=500)).one(buy("ACC1", "R4", "1", "190.00")).denial.reason is ReasonCode.RATE_LIMITED  # type: ignore[union-attr]
    later = at(database, now + timedelta(seconds=1, milliseconds=1)).execute([buy("ACC1", f"L{i}", "1", "190.00") for i in range(4)])
    assert reasons(later) == ["accepted", "accepted", "accepted", "RATE_LIMITED"]
    assert count_rows(database, "reservations") == 6  # nothing reserved for the denied ones
    assert ledger_violations(database) == []


def test_rate_limited_denials_do_not_use_up_the_window(database: Database) -> None:
    execute_sql(database, "UPDATE accounts SET max_orders_per_second = 2 WHERE id = 'ACC1'")
    now = MONDAY_NOON_NEW_YORK
    assert reasons(at(database, now).execute([buy("ACC1", f"A{i}", "1", "190.00") for i in range(5)])) == [
        "accepted", "accepted", "RATE_LIMITED", "RATE_LIMITED", "RATE_LIMITED",
    ]  # fmt: skip
    assert count_rows(database, "orders", "WHERE cl_ord_id IN ('A2', 'A3', 'A4')") == 0  # refused "not now": nothing kept
    # 0.9 s later the two accepted orders fall out of the window only after 1 s: still denied...
    assert reasons([at(database, now + timedelta(milliseconds=900)).one(buy("ACC1", "B0", "1", "190.00"))]) == ["RATE_LIMITED"]
    # ...and at 1.001 s both tokens are back although five denials happened in between.
    later = at(database, now + timedelta(seconds=1, milliseconds=1)).execute([buy("ACC1", f"C{i}", "1", "190.00") for i in range(3)])
    assert reasons(later) == ["accepted", "accepted", "RATE_LIMITED"]
    # A ClOrdID refused for the rate is free: sent again once the window has moved, it is placed.
    assert reasons([at(database, now + timedelta(seconds=3)).one(buy("ACC1", "A2", "1", "190.00"))]) == ["accepted"]


def test_the_broker_default_applies_to_accounts_without_their_own_limit(database: Database) -> None:
    execute_sql(database, "UPDATE accounts SET max_orders_per_second = 0 WHERE id = 'ACC1'")
    config = ServiceConfig.from_settings(load_settings({"OMS_MAX_ORDERS_PER_SECOND": "2", "OMS_FEE_RATE": "0"}))
    assert config.max_orders_per_second == 2
    results = at(database, MONDAY_NOON_NEW_YORK, config).execute([buy("ACC1", f"D{i}", "1", "190.00") for i in range(3)])
    assert reasons(results) == ["accepted", "accepted", "RATE_LIMITED"]
    unlimited = ServiceConfig.from_settings(load_settings({"OMS_MAX_ORDERS_PER_SECOND": "0"}))
    many = at(database, MONDAY_NOON_NEW_YORK, unlimited).execute([buy("ACC1", f"U{i}", "1", "190.00") for i in range(20)])
    assert set(reasons(many)) == {"accepted"}


def test_two_processes_share_one_window_because_it_lives_in_the_database(database: Database, database_url: str) -> None:
    execute_sql(database, "UPDATE accounts SET max_orders_per_second = 3 WHERE id = 'ACC1'")
    other_process = Database.from_url(database_url, checkpoint_interval_s=None)
    try:
        now = MONDAY_NOON_NEW_YORK
        assert reasons(at(database, now).execute([buy("ACC1", f"P{i}", "1", "190.00") for i in range(2)])) == ["accepted"] * 2
        assert reasons(at(other_process, now).execute([buy("ACC1", f"Q{i}", "1", "190.00") for i in range(2)])) == [
            "accepted", "RATE_LIMITED",
        ]  # fmt: skip
    finally:
        other_process.dispose()


def test_the_handler_counts_its_own_transaction_without_the_executor_prefetch(database: Database) -> None:
    execute_sql(database, "UPDATE accounts SET max_orders_per_second = 1 WHERE id = 'ACC1'")
    with UnitOfWork(database) as uow:
        first = place_order(uow, buy("ACC1", "H1", "1", "190.00"), NO_FEES, MONDAY_NOON_NEW_YORK)
        second = place_order(uow, buy("ACC1", "H2", "1", "190.00"), NO_FEES, MONDAY_NOON_NEW_YORK)
        uow.commit()
    assert first.outcome is Outcome.ACCEPTED
    assert second.denial is not None and second.denial.reason is ReasonCode.RATE_LIMITED


def test_on_postgresql_the_rate_count_keeps_one_generic_plan_instead_of_planning_every_call(postgres_url: str) -> None:
    """The count runs in every placing transaction; planning it each time cost more than running it."""
    with funded_database(postgres_url, ["ACC1"], "1000") as database:
        # a day of older orders, analysed: a window one second long now looks very selective to the planner
        execute_sql(database, (
            "INSERT INTO orders (id, account_id, cl_ord_id, source, symbol, side, order_type, time_in_force, qty, "
            "status, cum_qty, leaves_qty, cum_notional, cum_fees, venue_cl_ord_id, fingerprint, created_at, updated_at) "
            "SELECT 'O' || i, 'ACC1', 'C' || i, 'rest', 'AAPL', 'buy', 'limit', 'day', 1, 'filled', 1, 0, 190, 0, "
            "'V' || i, 'f', TIMESTAMPTZ '2026-03-01 17:00Z' + i * INTERVAL '8 s', TIMESTAMPTZ '2026-03-02 17:00Z' "
            "FROM generate_series(1, 10000) AS i"
        ))
        execute_sql(database, "ANALYZE orders")
        with UnitOfWork(database) as uow:
            for step in range(16):  # psycopg prepares on the 6th use; PostgreSQL weighs a generic plan from the 6th run
                since = MONDAY_NOON_NEW_YORK - timedelta(seconds=1, microseconds=step)
                uow.prefetch_recent_order_counts(["ACC1"], since)
                assert uow.recent_order_count("ACC1", since) == 0
            generic, custom = uow.connection.execute(text(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                "WHERE statement LIKE '%COUNT(*) FROM orders%'"
            )).one()
        assert generic >= 1 and custom <= 5, (generic, custom)


# --- market hours -------------------------------------------------------------------------------------------------

US_EQUITIES = ServiceConfig.from_settings(
    load_settings({"OMS_TRADING_CALENDAR": "us-equities", "OMS_MARKET_HOLIDAYS": "2026-04-03", "OMS_FEE_RATE": "0"})
)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2026, 3, 2, 14, 30, tzinfo=UTC), "accepted"),  # Monday 09:30 EST: the open is inclusive
        (datetime(2026, 3, 2, 14, 29, 59, tzinfo=UTC), "MARKET_CLOSED"),  # a second before the open
        (datetime(2026, 3, 2, 21, 0, tzinfo=UTC), "MARKET_CLOSED"),  # 16:00 EST: the close is exclusive
        (datetime(2026, 3, 9, 13, 30, tzinfo=UTC), "accepted"),  # 09:30 EDT after the clocks changed
        (datetime(2026, 3, 7, 17, 0, tzinfo=UTC), "MARKET_CLOSED"),  # Saturday
        (datetime(2026, 4, 3, 15, 0, tzinfo=UTC), "MARKET_CLOSED"),  # a configured holiday (a Friday)
    ],
)
def test_the_us_equities_calendar_denies_orders_outside_its_sessions(database: Database, now: datetime, expected: str) -> None:
    result = at(database, now, US_EQUITIES).one(buy("ACC1", "M1", "1", "190.00"))
    assert reasons([result]) == [expected]
    if expected == "MARKET_CLOSED":
        assert cash(database, "ACC1") == (D(100000), D(0), D(0))
        assert count_rows(database, "outbox") == 0


def test_the_default_calendar_is_always_open_for_the_simulator_and_the_demo(database: Database) -> None:
    default = ServiceConfig.from_settings(load_settings({}))
    assert default.calendar.always_open
    sunday_night = datetime(2026, 3, 8, 3, 0, tzinfo=UTC)
    assert at(database, sunday_night, default).one(buy("ACC1", "S1", "1", "190.00")).outcome is Outcome.ACCEPTED


# --- kill switches ------------------------------------------------------------------------------------------------


def test_the_global_kill_switch_denies_every_account_until_it_is_turned_off(database: Database) -> None:
    funded_account(database, "ACC2", "100000")
    set_kill_switch(database, True)
    halted = at(database, MONDAY_NOON_NEW_YORK).execute([buy("ACC1", "K1", "1", "190.00"), buy("ACC2", "K2", "1", "190.00")])
    assert [str(r.denial) for r in halted] == ["KILL_SWITCH: scope=all"] * 2
    assert count_rows(database, "reservations") == 0
    set_kill_switch(database, False)
    resumed = at(database, MONDAY_NOON_NEW_YORK).execute([buy("ACC1", "K3", "1", "190.00"), buy("ACC2", "K4", "1", "190.00")])
    assert reasons(resumed) == ["accepted", "accepted"]


def test_an_account_kill_switch_halts_only_that_account_and_cancels_still_work(database: Database) -> None:
    from oms.domain.commands import CancelOrder

    funded_account(database, "ACC2", "100000")
    runner = at(database, MONDAY_NOON_NEW_YORK)
    assert runner.one(buy("ACC1", "W1", "1", "190.00")).outcome is Outcome.ACCEPTED
    set_kill_switch(database, True, account="ACC1")
    results = runner.execute([buy("ACC1", "W2", "1", "190.00"), buy("ACC2", "W3", "1", "190.00")])
    assert [str(r.denial) if r.denial else r.outcome.value for r in results] == [
        "KILL_SWITCH: scope=account, account=ACC1", "accepted",
    ]  # fmt: skip
    cancel = runner.one(CancelOrder(account="ACC1", cl_ord_id="W1-C", orig_cl_ord_id="W1"))  # type: ignore[arg-type]
    assert cancel.outcome is Outcome.ACCEPTED
    status = risk_status(database, NO_FEES, "always")
    assert status.halted_accounts == ("ACC1",)
    assert not status.global_kill_switch


@pytest.mark.parametrize("scope", ["all", "account"])
def test_a_replace_is_new_risk_so_a_kill_switch_refuses_it_while_cancels_still_work(database: Database, scope: str) -> None:
    """A replace can raise an order's quantity or move its price through the market: under a halt it is refused
    like a new order, and the order and its reservation stay as they were."""
    from oms.domain.commands import CancelOrder, ReplaceOrder

    runner = at(database, MONDAY_NOON_NEW_YORK)
    placed = runner.one(buy("ACC1", "R1", "10", "190.00"))
    assert placed.outcome is Outcome.ACCEPTED and placed.venue_cl_ord_id is not None
    assert runner.one(new_ack(placed.venue_cl_ord_id)).outcome is Outcome.APPLIED
    reserved_before = cash(database, "ACC1")
    set_kill_switch(database, True, account="ACC1" if scope == "account" else None)
    bigger = ReplaceOrder(account="ACC1", cl_ord_id="R1-R", orig_cl_ord_id="R1", qty=D("400"), limit_price=D("190.00"))  # type: ignore[arg-type]
    result = runner.one(bigger)
    assert result.denial is not None and result.denial.reason is ReasonCode.KILL_SWITCH
    assert str(result.denial).startswith(f"KILL_SWITCH: scope={scope}")
    assert cash(database, "ACC1") == reserved_before
    assert count_rows(database, "outbox") == 1  # the order's NewOrderSingle only
    cancel = runner.one(CancelOrder(account="ACC1", cl_ord_id="R1-C", orig_cl_ord_id="R1"))  # type: ignore[arg-type]
    assert cancel.outcome is Outcome.ACCEPTED
    assert ledger_violations(database) == []
