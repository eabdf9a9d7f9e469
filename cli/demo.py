"""``oms demo``: the whole order path on the embedded default, in one command.

Until the FIX gateway runs the venue session, the demo plays the venue's part with the bundled matching
engine in-process: each accepted order from the outbox is matched against a seeded market maker, and the
engine's fills come back through the same ``ApplyExecution`` path a FIX ExecutionReport will take.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import click

from exchange.engine import MatchingEngine, OrderFilled, SubmitOrder
from exchange.engine import OrderType as VenueOrderType
from exchange.engine import Side as VenueSide
from exchange.engine import TimeInForce as VenueTif
from exchange.instruments import load_instruments
from exchange.market_maker import MarketMaker
from oms.db.migrate import upgrade
from oms.domain.commands import ApplyExecution, PlaceOrder
from oms.domain.enums import ExecType, OrderStatus, OrderType, Side, TimeInForce
from oms.domain.instruments import Instrument
from oms.ledger.verify import verify_ledger
from oms.service.accounts import AccountError, balances, create_account, deposit, upsert_instruments
from oms.service.executor import CommandExecutor
from oms.service.orders import OrderResult, Outcome
from oms.service.uow import Database

DEMO_ACCOUNT = "CLIENT1"
DEMO_CASH = Decimal("1000000")

_SIDES = {Side.BUY: VenueSide.BUY, Side.SELL: VenueSide.SELL}
_TYPES = {OrderType.LIMIT: VenueOrderType.LIMIT, OrderType.MARKET: VenueOrderType.MARKET}


def run_demo(database: Database) -> None:
    upgrade(database.engine)
    venue_instruments = load_instruments()
    upsert_instruments(
        database,
        [
            Instrument(symbol=i.symbol, currency=i.currency, tick_size=i.tick_size, lot_size=i.lot_size, reference_price=i.reference_price)
            for i in venue_instruments.values()
        ],
    )
    try:
        create_account(database, DEMO_ACCOUNT)
        deposit(database, DEMO_ACCOUNT, DEMO_CASH, reference="demo-funding")
        click.echo(f"created {DEMO_ACCOUNT} and deposited {DEMO_CASH} USD")
    except AccountError:
        click.echo(f"{DEMO_ACCOUNT} exists; reusing it")
    engine = MatchingEngine(venue_instruments)
    maker = MarketMaker(venue_instruments, seed=7)
    now = datetime.now(UTC)
    for command in maker.step(now):
        maker.on_events(engine.process(command))
    executor = CommandExecutor(database)
    stamp = now.strftime("%H%M%S")
    orders = [
        ("buy 100 AAPL at market", _order(f"demo-{stamp}-1", Side.BUY, "AAPL", "100", None)),
        ("buy 50 MSFT limit 430.00", _order(f"demo-{stamp}-2", Side.BUY, "MSFT", "50", "430.00")),
        ("sell 40 AAPL at market", _order(f"demo-{stamp}-3", Side.SELL, "AAPL", "40", None)),
        ("buy 10,000 SPY limit 500.00 (more than the account can pay)", _order(f"demo-{stamp}-4", Side.BUY, "SPY", "10000", "500.00")),
    ]
    for label, command in orders:
        result = executor.one(command)
        click.echo(f"\n> {label}: {_describe(result)}")
        if result.outcome is Outcome.ACCEPTED and result.venue_cl_ord_id:
            _route(engine, executor, command, result.venue_cl_ord_id)
    snapshot = balances(database, DEMO_ACCOUNT)
    cash = snapshot.in_currency("USD")
    click.echo(f"\n{DEMO_ACCOUNT}: available {cash.available} USD, reserved {cash.reserved}, unsettled {cash.unsettled}")
    for symbol, position in snapshot.positions.items():
        click.echo(f"  {symbol}: {position.total} shares")
    with database.engine.connect() as connection:
        violations = verify_ledger(connection)
    click.echo("ledger verify: ok" if not violations else "\n".join(map(str, violations)))


def _order(cl_ord_id: str, side: Side, symbol: str, qty: str, price: str | None) -> PlaceOrder:
    return PlaceOrder(
        account=DEMO_ACCOUNT,
        cl_ord_id=cl_ord_id,
        symbol=symbol,
        side=side,
        order_type=OrderType.LIMIT if price else OrderType.MARKET,
        qty=Decimal(qty),
        limit_price=Decimal(price) if price else None,
        tif=TimeInForce.DAY,
    )


def _route(engine: MatchingEngine, executor: CommandExecutor, command: PlaceOrder, venue_cl_ord_id: str) -> None:
    """Play the venue: match the order and feed each fill back as an execution report."""
    events = engine.process(
        SubmitOrder(
            owner="OMS",
            cl_ord_id=venue_cl_ord_id,
            symbol=command.symbol,
            side=_SIDES[command.side],
            order_type=_TYPES[command.order_type],
            qty=command.qty,
            limit_price=command.limit_price,
            stop_price=None,
            tif=VenueTif.DAY,
            expire_date=None,
            timestamp=datetime.now(UTC),
        )
    )
    accepted = executor.one(_report(events[0].order.order_id, venue_cl_ord_id, ExecType.NEW, f"demo-ack-{venue_cl_ord_id}"))
    click.echo(f"  venue ack: {accepted.order.status.value if accepted.order else accepted.outcome}")
    for event in events:
        if isinstance(event, OrderFilled) and event.order.cl_ord_id == venue_cl_ord_id:
            fill = _report(event.order.order_id, venue_cl_ord_id, ExecType.TRADE, f"demo-fill-{event.seq}", event.last_qty, event.last_px)
            result = executor.one(fill)
            assert result.order is not None
            click.echo(f"  fill {event.last_qty} @ {event.last_px}: {result.order.status.value}, avg {result.order.avg_px}")


def _report(venue_order_id: str, cl_ord_id: str, exec_type: ExecType, exec_id: str, qty: Decimal = Decimal(0), px: Decimal = Decimal(0)) -> ApplyExecution:
    return ApplyExecution(
        venue_exec_id=exec_id,
        cl_ord_id=cl_ord_id,
        venue_order_id=venue_order_id,
        exec_type=exec_type,
        ord_status=OrderStatus.NEW,
        last_qty=qty,
        last_px=px,
        transact_time=datetime.now(UTC),
    )


def _describe(result: OrderResult) -> str:
    if result.denial is not None:
        return f"denied — {result.denial}"
    assert result.order is not None
    return f"{result.outcome.value}, order {result.order.order_id} {result.order.status.value}"
