"""Small stub factories for service tests: an account with cash or shares, the usual instruments, commands."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import text

from oms.domain.commands import ApplyExecution, PlaceOrder
from oms.domain.enums import ExecType, OrderSource, OrderStatus, OrderType, Side, TimeInForce
from oms.domain.instruments import Instrument
from oms.domain.risk import FeeSchedule
from oms.ledger.verify import verify_ledger
from oms.service.accounts import balances, create_account, deposit, upsert_instruments
from oms.service.executor import CommandExecutor
from oms.service.orders import ServiceConfig
from oms.service.uow import Database

INSTRUMENTS = [
    Instrument(symbol="AAPL", currency="USD", tick_size=Decimal("0.01"), reference_price=Decimal("190.00")),
    Instrument(symbol="MSFT", currency="USD", tick_size=Decimal("0.01"), reference_price=Decimal("410.00")),
    Instrument(
        symbol="BTCX", currency="USD", tick_size=Decimal("0.01"), fractional=True, qty_decimals=4,
        reference_price=Decimal("100.00"),
    ),
]  # fmt: skip
NO_FEES = ServiceConfig(fee_schedule=FeeSchedule(rate=Decimal(0)))
WITH_FEES = ServiceConfig(fee_schedule=FeeSchedule(rate=Decimal("0.0005")))


def setup_database(url: str) -> Database:
    database = Database.from_url(url)
    upsert_instruments(database, INSTRUMENTS)
    return database


def funded_account(database: Database, account: str = "ACC1", cash: str = "100000") -> str:
    create_account(database, account)
    if Decimal(cash):
        deposit(database, account, Decimal(cash))
    return account


@contextmanager
def funded_database(url: str, accounts: Iterable[str], cash: str = "100000") -> Iterator[Database]:
    """The database at ``url`` with the usual instruments and each of ``accounts`` holding ``cash``; disposed after."""
    database = setup_database(url)
    try:
        for account in accounts:
            funded_account(database, account, cash)
        yield database
    finally:
        database.dispose()


def buy(account: str, cl_ord_id: str, qty: str, price: str | None = "100.00", symbol: str = "AAPL", **kw: object) -> PlaceOrder:
    return PlaceOrder(
        account=account, cl_ord_id=cl_ord_id, symbol=symbol, side=Side.BUY,
        order_type=OrderType.LIMIT if price else OrderType.MARKET, qty=Decimal(qty),
        limit_price=Decimal(price) if price else None, tif=kw.pop("tif", TimeInForce.DAY), source=OrderSource.REST,  # type: ignore[arg-type]
    )  # fmt: skip


def sell(account: str, cl_ord_id: str, qty: str, price: str | None = "100.00", symbol: str = "AAPL") -> PlaceOrder:
    return PlaceOrder(
        account=account, cl_ord_id=cl_ord_id, symbol=symbol, side=Side.SELL,
        order_type=OrderType.LIMIT if price else OrderType.MARKET, qty=Decimal(qty),
        limit_price=Decimal(price) if price else None,
    )  # fmt: skip


_exec_seq = iter(range(1, 10**9))


def report(venue_cl_ord_id: str, exec_type: ExecType, status: OrderStatus, **kw: object) -> ApplyExecution:
    """An ExecutionReport from the venue, as the FIX layer would translate it."""
    return ApplyExecution(
        venue_exec_id=str(kw.pop("exec_id", f"E{next(_exec_seq)}")),
        cl_ord_id=venue_cl_ord_id,  # type: ignore[arg-type]
        venue_order_id=kw.pop("venue_order_id", "V-" + venue_cl_ord_id[-12:]),  # type: ignore[arg-type]
        exec_type=exec_type,
        ord_status=status,
        transact_time=kw.pop("transact_time", None) or datetime.now(UTC),  # type: ignore[arg-type]
        **{k: Decimal(str(v)) if k in ("last_qty", "last_px", "cum_qty", "leaves_qty") else v for k, v in kw.items()},  # type: ignore[arg-type]
    )


def fill(venue_cl_ord_id: str, qty: str, px: str, **kw: object) -> ApplyExecution:
    return report(venue_cl_ord_id, ExecType.TRADE, OrderStatus.PARTIALLY_FILLED, last_qty=qty, last_px=px, **kw)


def executor(database: Database, config: ServiceConfig = NO_FEES) -> CommandExecutor:
    return CommandExecutor(database, config)


def new_ack(venue_cl_ord_id: str, **kw: object) -> ApplyExecution:
    """The venue acknowledges the order (ExecType=New)."""
    return report(venue_cl_ord_id, ExecType.NEW, OrderStatus.NEW, **kw)


def cash(database: Database, account: str, currency: str = "USD") -> tuple[Decimal, Decimal, Decimal]:
    """(available, reserved, unsettled) cash of an account."""
    balance = balances(database, account).in_currency(currency)
    return balance.available, balance.reserved, balance.unsettled


def shares(database: Database, account: str, symbol: str = "AAPL") -> tuple[Decimal, Decimal]:
    """(available, reserved) shares of a position."""
    position = balances(database, account).position(symbol)
    return position.available, position.reserved


def ledger_violations(database: Database) -> list[str]:
    with database.engine.connect() as connection:
        return [str(violation) for violation in verify_ledger(connection)]


def count_rows(database: Database, table: str, where: str = "") -> int:
    with database.engine.connect() as connection:
        return int(connection.execute(text(f"SELECT COUNT(*) FROM {table} {where}")).scalar_one())


def execute_sql(database: Database, statement: str, **params: object) -> None:
    with database.engine.begin() as connection:
        connection.execute(text(statement), params)


def position_of(database: Database, account: str, symbol: str, qty: str, px: str = "100.00") -> None:
    """Give ``account`` ``qty`` shares by buying and filling them (no fees) through the order path."""
    runner = executor(database, NO_FEES)
    placed = runner.one(buy(account, f"SEED-{symbol}-{next(_exec_seq)}", qty, px, symbol=symbol))
    assert placed.outcome.value == "accepted", placed
    assert placed.venue_cl_ord_id is not None
    filled = runner.one(report(placed.venue_cl_ord_id, ExecType.TRADE, OrderStatus.FILLED, last_qty=qty, last_px=px))
    assert filled.outcome.value == "applied", filled
