"""``oms demo``: the whole product in one command, on the embedded default (SQLite, no servers).

It starts the simulated exchange, the FIX gateway and the REST API in-process on free loopback ports, then
plays both kinds of customer: an institutional client over FIX (a fill, a market order, a replace, a cancel
and a denial by the buying-power check) and a retail backend over REST (an order with an Idempotency-Key,
replayed, and followed until the venue fills it). It ends with the account's balances and `ledger verify`.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from cli.demo_client import FINAL_EXEC_TYPES, DemoFixClient, fix_time
from cli.demo_stack import DEMO_CLIENT, DemoStack
from cli.instruments_cmd import master_instruments
from exchange.instruments import load_instruments
from oms.db.migrate import upgrade
from oms.ledger.verify import verify_ledger
from oms.service.accounts import (
    AccountError,
    AccountLimitsConfig,
    balances,
    create_account,
    deposit,
    upsert_instruments,
)
from oms.service.uow import Database

DEMO_CASH = Decimal("1000000")
EXEC_TYPE_NAMES = {"0": "New", "4": "Canceled", "5": "Replaced", "8": "Rejected", "C": "Expired", "F": "Trade",
                   "I": "Status"}
REST_FILL_TIMEOUT_S = 15.0


def run_demo(database: Database, work_dir: Path) -> None:
    upgrade(database.engine)
    seed_demo_book(database)
    api_key = _api_key(database)
    stack = DemoStack(work_dir, database)
    click.echo("starting the simulated exchange, the FIX gateway and the REST API ...")
    stack.start()
    client: DemoFixClient | None = None
    try:
        click.echo(f"exchange on :{stack.venue_port}, gateway clients on :{stack.client_port}, "
                   f"REST on {stack.api_url}")
        client = DemoFixClient(stack.client_port, work_dir / "client-store", DEMO_CLIENT).start()
        _fix_session(client)
        _rest_session(stack.api_url, api_key)
    finally:
        if client is not None:
            client.stop()
        stack.stop()
    _summary(database)


def seed_demo_book(database: Database) -> None:
    """The venue's instruments, and CLIENT1 with 1,000,000 USD (a second run reuses the account)."""
    upsert_instruments(database, master_instruments(load_instruments()))
    try:
        create_account(database, DEMO_CLIENT, limits=AccountLimitsConfig(max_order_qty=Decimal("1000000"),
                                                                         max_order_notional=Decimal("10000000")))
        deposit(database, DEMO_CLIENT, DEMO_CASH, reference="demo-funding")
        click.echo(f"created {DEMO_CLIENT} and deposited {DEMO_CASH} USD")
    except AccountError:
        click.echo(f"{DEMO_CLIENT} exists; reusing it")


def _api_key(database: Database) -> str:
    from oms.api.keys import Scope, create_api_key

    return create_api_key(database, [DEMO_CLIENT], [Scope.READ, Scope.TRADE], label="oms demo")


# ---------------------------------------------------------------------------------------------- FIX
def _fix_session(client: DemoFixClient) -> None:
    click.echo(f"\n== FIX: {DEMO_CLIENT} over FIX.4.4")
    stamp = datetime.now(UTC).strftime("%H%M%S%f")[:10]
    steps: list[tuple[str, str, list[tuple[int, str]], frozenset[str]]] = [
        ("buy 100 AAPL limit 195.00 (marketable)", "D", _new(f"F{stamp}-1", "AAPL", "100", "195.00"),
         frozenset({"F"}) | FINAL_EXEC_TYPES),
        ("buy 10 MSFT at market", "D", _new(f"F{stamp}-2", "MSFT", "10", None), frozenset({"F"}) | FINAL_EXEC_TYPES),
        ("buy 100 AAPL limit 150.00 (rests)", "D", _new(f"F{stamp}-3", "AAPL", "100", "150.00"),
         frozenset({"0"}) | FINAL_EXEC_TYPES),
        ("replace it: 200 @ 151.00", "G", _replace(f"F{stamp}-4", f"F{stamp}-3", "200", "151.00"), FINAL_EXEC_TYPES),
        ("cancel it", "F", _cancel(f"F{stamp}-5", f"F{stamp}-4"), FINAL_EXEC_TYPES),
        ("buy 10,000 SPY limit 500.00 (more than the account can pay)", "D",
         _new(f"F{stamp}-6", "SPY", "10000", "500.00"), FINAL_EXEC_TYPES),
    ]
    for label, msg_type, fields, until in steps:
        click.echo(f"> {label}")
        client.send(msg_type, fields)
        for report in client.wait_for(dict(fields)[11], until):
            click.echo(_describe(report))


def _new(cl_ord_id: str, symbol: str, qty: str, price: str | None) -> list[tuple[int, str]]:
    fields = [(11, cl_ord_id), (1, DEMO_CLIENT), (21, "1"), (55, symbol), (54, "1"), (60, fix_time()), (38, qty),
              (40, "2" if price else "1"), (59, "0")]
    return fields + ([(44, price)] if price else [])


def _replace(cl_ord_id: str, orig: str, qty: str, price: str) -> list[tuple[int, str]]:
    return [(11, cl_ord_id), (41, orig), (1, DEMO_CLIENT), (21, "1"), (55, "AAPL"), (54, "1"), (60, fix_time()),
            (38, qty), (40, "2"), (44, price)]


def _cancel(cl_ord_id: str, orig: str) -> list[tuple[int, str]]:
    return [(11, cl_ord_id), (41, orig), (1, DEMO_CLIENT), (55, "AAPL"), (54, "1"), (60, fix_time())]


def _describe(report: dict[int, str]) -> str:
    if report.get(35) == "9":
        return f"  <- OrderCancelReject {report.get(11)}: {report.get(58, '')}"
    kind = EXEC_TYPE_NAMES.get(report.get(150, ""), report.get(150, "?"))
    text = f"  <- ExecutionReport {kind} {report.get(11)} cum={report.get(14)} leaves={report.get(151)}"
    if report.get(150) == "F":
        text += f" last={report.get(32)}@{report.get(31)}"
    if report.get(58):
        text += f" | {report.get(58)}"
    return text


# ---------------------------------------------------------------------------------------------- REST
def _rest_session(base_url: str, api_key: str) -> None:
    import httpx

    click.echo(f"\n== REST: a retail backend for {DEMO_CLIENT}")
    headers = {"Authorization": f"Bearer {api_key}"}
    body = {"account": DEMO_CLIENT, "symbol": "GOOG", "side": "buy", "type": "market", "qty": "5",
            "time_in_force": "day"}
    key = str(uuid.uuid4())
    with httpx.Client(base_url=base_url, headers=headers, timeout=10) as http:
        first = http.post("/v1/orders", json=body, headers={"Idempotency-Key": key})
        click.echo(f"> POST /v1/orders market buy 5 GOOG: {first.status_code} {_order_line(first.json())}")
        replay = http.post("/v1/orders", json=body, headers={"Idempotency-Key": key})
        same = replay.json().get("id") == first.json().get("id")
        click.echo(f"> the same request again (same Idempotency-Key): {replay.status_code}, "
                   f"{'the same order' if same else 'A DIFFERENT ORDER'}")
        order = _wait_filled(http, first.json().get("id"))
        click.echo(f"  GET /v1/orders/{order.get('id')}: {_order_line(order)}")
        positions = http.get(f"/v1/accounts/{DEMO_CLIENT}/positions")
        for position in positions.json() if positions.is_success else []:
            click.echo(f"  GET positions {position['symbol']}: {position['qty']} avg cost {position['average_cost']}"
                       f", market value {position['market_value']}, unrealized P&L {position['unrealized_pnl']}")


def _wait_filled(http: Any, order_id: str | None) -> dict[str, Any]:
    deadline = time.monotonic() + REST_FILL_TIMEOUT_S
    order: dict[str, Any] = {}
    while order_id and time.monotonic() < deadline:
        order = http.get(f"/v1/orders/{order_id}").json()
        if order.get("status") in ("filled", "rejected", "canceled", "expired"):
            break
        time.sleep(0.1)
    return order


def _order_line(order: dict[str, Any]) -> str:
    if "status" not in order:
        return str(order.get("detail") or order)
    return (f"{order.get('status')}, filled {order.get('filled_qty')} avg {order.get('filled_avg_price')} "
            f"(client_order_id {order.get('client_order_id')})")


# ---------------------------------------------------------------------------------------------- end
def _summary(database: Database) -> None:
    snapshot = balances(database, DEMO_CLIENT)
    cash = snapshot.in_currency("USD")
    click.echo(f"\n{DEMO_CLIENT}: available {cash.available} USD, reserved {cash.reserved}, "
               f"unsettled {cash.unsettled}")
    for symbol, position in snapshot.positions.items():
        click.echo(f"  {symbol}: {position.total} shares")
    with database.engine.connect() as connection:
        violations = verify_ledger(connection)
    click.echo("ledger verify: ok" if not violations else "\n".join(map(str, violations)))
