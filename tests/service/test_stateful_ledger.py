"""A Hypothesis state machine drives money and orders through the service and checks the books after every step.

Each example runs in a database of its own, cloned from the test's freshly migrated one, so the whole-ledger check
after every step reads only that example's books (with one database shared by all examples, the long profile's
2,000 examples made every check slower than the last). A plain model keeps what the account should hold. After
every step ``verify_ledger`` must be clean and the stored balances must equal the model.
"""

from __future__ import annotations

import itertools
import shutil
import uuid
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, ROUND_UP, Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from oms.domain.commands import CancelOrder
from oms.domain.enums import ExecType, OrderStatus
from oms.domain.risk import ReasonCode
from oms.service.accounts import AccountError, create_account, deposit, settle, withdraw
from oms.service.orders import Outcome
from oms.service.uow import Database
from tests.conftest import pg_url
from tests.service.factories import (
    WITH_FEES,
    buy,
    cash,
    executor,
    ledger_violations,
    report,
    sell,
    setup_database,
    shares,
)

D = Decimal
CENT = D("0.01")
RATE = D("0.0005")
ZERO = D(0)
BUY_PRICES = [D("180.00"), D("185.50"), D("190.00"), D("199.99")]
SELL_PRICES = [D("175.00"), D("190.00"), D("200.01")]
FAR_FUTURE = date(2100, 1, 1)
_accounts = itertools.count(1)


def fee(notional: Decimal) -> Decimal:
    return (notional * RATE).quantize(CENT, rounding=ROUND_HALF_UP) if notional > 0 else ZERO


def reservation_for(qty: int, price: Decimal) -> Decimal:
    notional = qty * price
    return (notional + fee(notional)).quantize(CENT, rounding=ROUND_UP)


@dataclass
class ModelOrder:
    cl_ord_id: str
    venue_cl_ord_id: str
    side: str
    qty: int
    price: Decimal
    held: Decimal  # what its reservation still holds (cash for a buy, shares for a sell)
    acked: bool = False
    cum_qty: int = 0
    cum_notional: Decimal = ZERO

    @property
    def leaves(self) -> int:
        return self.qty - self.cum_qty


def money_amounts() -> st.SearchStrategy[Decimal]:
    return st.decimals(min_value=D("0.01"), max_value=D("20000"), places=2)


class ExampleDatabases:
    """A new migrated database per example: a copy of an untouched migrated one (file copy, or PostgreSQL TEMPLATE)."""

    def __init__(self, template_url: str, pg_admin: Engine | None, directory: Path) -> None:
        self.template_url = template_url
        self.pg_admin = pg_admin
        self.directory = directory

    def new(self) -> tuple[Database, str]:
        name = f"example_{uuid.uuid4().hex[:12]}"
        if self.pg_admin is None:
            path = self.directory / f"{name}.sqlite3"
            shutil.copyfile(make_url(self.template_url).database or "", path)
            return setup_database(f"sqlite:///{path}"), name
        template = make_url(self.template_url).database
        with self.pg_admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        return setup_database(pg_url(name)), name

    def drop(self, database: Database, name: str) -> None:
        database.dispose()
        if self.pg_admin is None:
            for suffix in ("", "-wal", "-shm"):
                (self.directory / f"{name}.sqlite3{suffix}").unlink(missing_ok=True)
            return
        with self.pg_admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def make_machine(databases: ExampleDatabases) -> type[RuleBasedStateMachine]:

    class LedgerMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.database, self.database_name = databases.new()
            self.account = f"SM{next(_accounts)}"
            create_account(self.database, self.account)
            self.runner = executor(self.database, WITH_FEES)
            self.available = ZERO
            self.reserved = ZERO
            self.unsettled = ZERO
            self.shares_available = 0
            self.shares_reserved = 0
            self.orders: list[ModelOrder] = []
            self.ids = itertools.count(1)

        # -- money -------------------------------------------------------------------------------------
        @rule(amount=money_amounts())
        def deposit(self, amount: Decimal) -> None:
            deposit(self.database, self.account, amount)
            self.available += amount

        @rule(amount=money_amounts())
        def withdraw(self, amount: Decimal) -> None:
            if amount > self.available:
                with pytest.raises(AccountError, match="INSUFFICIENT_FUNDS"):
                    withdraw(self.database, self.account, amount)
            else:
                withdraw(self.database, self.account, amount)
                self.available -= amount

        @rule()
        def settle(self) -> None:
            settle(self.database, FAR_FUTURE)
            self.available += self.unsettled
            self.unsettled = ZERO

        # -- orders ------------------------------------------------------------------------------------
        @rule(qty=st.integers(1, 60), price=st.sampled_from(BUY_PRICES))
        def place_buy(self, qty: int, price: Decimal) -> None:
            cl_ord_id = f"B{next(self.ids)}"
            result = self.runner.one(buy(self.account, cl_ord_id, str(qty), str(price)))
            needed = reservation_for(qty, price)
            if needed > self.available:
                assert result.outcome is Outcome.DENIED and result.denial is not None
                assert result.denial.reason is ReasonCode.INSUFFICIENT_BUYING_POWER
                return
            assert result.outcome is Outcome.ACCEPTED, result
            assert result.venue_cl_ord_id is not None
            self.available -= needed
            self.reserved += needed
            self.orders.append(ModelOrder(cl_ord_id, result.venue_cl_ord_id, "buy", qty, price, needed))

        @rule(qty=st.integers(1, 30), price=st.sampled_from(SELL_PRICES))
        def place_sell(self, qty: int, price: Decimal) -> None:
            cl_ord_id = f"S{next(self.ids)}"
            result = self.runner.one(sell(self.account, cl_ord_id, str(qty), str(price)))
            if qty > self.shares_available:
                assert result.outcome is Outcome.DENIED and result.denial is not None
                assert result.denial.reason is ReasonCode.INSUFFICIENT_POSITION
                return
            assert result.outcome is Outcome.ACCEPTED, result
            assert result.venue_cl_ord_id is not None
            self.shares_available -= qty
            self.shares_reserved += qty
            self.orders.append(ModelOrder(cl_ord_id, result.venue_cl_ord_id, "sell", qty, price, D(qty)))

        def _pick(self, index: int, *, unacked: bool = False, min_leaves: int = 1) -> ModelOrder:
            candidates = [o for o in self.orders if o.leaves >= min_leaves and (not unacked or not o.acked)]
            return candidates[index % len(candidates)]

        @precondition(lambda self: any(not o.acked for o in self.orders))
        @rule(index=st.integers(0, 100))
        def venue_new(self, index: int) -> None:
            order = self._pick(index, unacked=True)
            result = self.runner.one(report(order.venue_cl_ord_id, ExecType.NEW, OrderStatus.NEW))
            assert result.outcome is Outcome.APPLIED and result.order is not None
            assert result.order.status is OrderStatus.NEW
            order.acked = True

        def _fill(self, order: ModelOrder, qty: int, better: bool) -> None:
            px = order.price - D("0.50") if (better and order.side == "buy") else order.price
            notional = qty * px
            charge = fee(order.cum_notional + notional) - fee(order.cum_notional)
            status = OrderStatus.FILLED if qty == order.leaves else OrderStatus.PARTIALLY_FILLED
            result = self.runner.one(report(order.venue_cl_ord_id, ExecType.TRADE, status, last_qty=str(qty), last_px=str(px)))
            assert result.outcome is Outcome.APPLIED, result
            assert result.order is not None and result.order.status is status
            order.cum_qty += qty
            order.cum_notional += notional
            order.acked = True
            if order.side == "buy":
                order.held -= notional + charge
                self.reserved -= notional + charge
                self.shares_available += qty
            else:
                order.held -= qty
                self.shares_reserved -= qty
                self.unsettled += notional - charge
            if order.leaves == 0:
                self._finish(order)

        def _finish(self, order: ModelOrder) -> None:
            """The order is done: whatever its reservation still holds comes back."""
            if order.side == "buy":
                self.reserved -= order.held
                self.available += order.held
            else:
                self.shares_reserved -= int(order.held)
                self.shares_available += int(order.held)
            order.held = ZERO
            self.orders.remove(order)

        @precondition(lambda self: any(o.leaves >= 2 for o in self.orders))
        @rule(index=st.integers(0, 100), part=st.integers(1, 100), better=st.booleans())
        def partial_fill(self, index: int, part: int, better: bool) -> None:
            order = self._pick(index, min_leaves=2)
            self._fill(order, 1 + part % (order.leaves - 1), better)

        @precondition(lambda self: bool(self.orders))
        @rule(index=st.integers(0, 100), better=st.booleans())
        def full_fill(self, index: int, better: bool) -> None:
            order = self._pick(index)
            self._fill(order, order.leaves, better)

        @precondition(lambda self: bool(self.orders))
        @rule(index=st.integers(0, 100))
        def cancel(self, index: int) -> None:
            order = self._pick(index)
            requested = self.runner.one(CancelOrder(account=self.account, cl_ord_id=f"C{next(self.ids)}", orig_cl_ord_id=order.cl_ord_id))
            assert requested.outcome is Outcome.ACCEPTED, requested
            assert requested.order is not None and requested.order.status is OrderStatus.PENDING_CANCEL
            assert requested.venue_cl_ord_id is not None
            done = self.runner.one(
                report(requested.venue_cl_ord_id, ExecType.CANCELED, OrderStatus.CANCELED, orig_cl_ord_id=order.venue_cl_ord_id)
            )
            assert done.order is not None and done.order.status is OrderStatus.CANCELED
            self._finish(order)

        @precondition(lambda self: bool(self.orders))
        @rule(index=st.integers(0, 100))
        def expire(self, index: int) -> None:
            order = self._pick(index)
            done = self.runner.one(report(order.venue_cl_ord_id, ExecType.EXPIRED, OrderStatus.EXPIRED))
            assert done.order is not None and done.order.status is OrderStatus.EXPIRED
            self._finish(order)

        # -- the books ---------------------------------------------------------------------------------
        @invariant()
        def books_are_sound_and_match_the_model(self) -> None:
            assert ledger_violations(self.database) == []
            available, reserved, unsettled = cash(self.database, self.account)
            assert (available, reserved, unsettled) == (self.available, self.reserved, self.unsettled)
            assert available + reserved + unsettled == self.available + self.reserved + self.unsettled
            shares_available, shares_reserved = shares(self.database, self.account)
            assert shares_available >= 0 and shares_reserved >= 0
            assert (shares_available, shares_reserved) == (self.shares_available, self.shares_reserved)
            assert sum(o.held for o in self.orders if o.side == "buy") == self.reserved

        def teardown(self) -> None:
            databases.drop(self.database, self.database_name)

    return LedgerMachine


def test_random_deposits_withdrawals_orders_and_reports_keep_the_books_sound(
    database_url: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    pg_admin = request.getfixturevalue("pg_admin") if database_url.startswith("postgresql") else None
    machine = make_machine(ExampleDatabases(database_url, pg_admin, tmp_path))
    profile_examples = settings().max_examples
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=15 if profile_examples <= 60 else profile_examples,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
