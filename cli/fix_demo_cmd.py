"""`oms demo-fix` and `oms demo-client`: the whole FIX path on one machine in a minute.

    oms demo-fix        the simulated exchange + the gateway from sessions.cfg, CLIENT1 funded; Ctrl-C stops
    oms demo-client     connects as CLIENT1 (127.0.0.1:9878, FIX.4.4, OMS), sends a handful of orders and
                        prints every ExecutionReport / OrderCancelReject as it arrives
"""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import FrameType

import click

DEFAULT_CONFIG = os.environ.get("OMS_SESSIONS_CFG", "sessions.cfg")
DEMO_ACCOUNT = "CLIENT1"
DEMO_CASH = Decimal("1000000")
config_option = click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
                             default=DEFAULT_CONFIG, show_default=True, help="sessions.cfg (venue and gateway sections)")


@click.command("demo-fix")
@config_option
def demo_fix(config_path: Path) -> None:
    """Run the simulated exchange and the FIX gateway with a funded demo account until Ctrl-C."""
    from cli.demo import seed_demo_book
    from exchange.config import ConfigError as VenueConfigError
    from exchange.config import load_venue_config
    from exchange.venue import Venue
    from oms.db.migrate import upgrade
    from oms.gateway.config import ConfigError, load_gateway_settings
    from oms.gateway.gateway import Gateway
    from oms.logging import configure_logging
    from oms.service.uow import Database
    from oms.settings import get_settings

    settings = get_settings()
    configure_logging("warning", settings.log_format)
    try:
        venue_config = load_venue_config(config_path)
        gateway_settings = load_gateway_settings(config_path)
    except (ConfigError, VenueConfigError) as error:
        raise click.ClickException(str(error)) from None
    database = Database.from_url(settings.database_url)
    upgrade(database.engine)
    seed_demo_book(database)
    venue = Venue(venue_config)
    venue.start()
    gateway = Gateway(gateway_settings, database)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        gateway.start()
        if not gateway.wait_venue(15):
            raise click.ClickException("the gateway could not log on to the simulated exchange")
        client = gateway_settings.client("FIX.4.4:OMS->CLIENT1")
        port = client.settings.get("SocketAcceptPort") if client else "?"
        click.echo(f"exchange on 127.0.0.1:{venue_config.accept_port}, gateway up; database {settings.database_url}")
        click.echo(f"connect a FIX.4.4 client to 127.0.0.1:{port}: SenderCompID=CLIENT1, TargetCompID=OMS, "
                   f"Account={DEMO_ACCOUNT} (or run `oms demo-client` in another terminal); Ctrl-C stops")
        while not stop.wait(1.0):
            pass
    finally:
        gateway.stop()
        venue.stop()
        click.echo("stopped")


@click.command("demo-client")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=9878, show_default=True, type=int)
@click.option("--store", default="var/demo-client", show_default=True, type=click.Path(path_type=Path))
def demo_client(host: str, port: int, store: Path) -> None:
    """Send a handful of orders as CLIENT1 and print each report as it arrives."""
    from cli.demo_client import DemoFixClient

    client = DemoFixClient(port, store, DEMO_ACCOUNT, host=host, on_report=lambda report: click.echo(_describe(report)))
    try:
        try:
            client.start(timeout_s=10)
        except RuntimeError:
            raise click.ClickException(f"no logon at {host}:{port} (is `oms demo-fix` running?)") from None
        stamp = datetime.now(UTC).strftime("%H%M%S")
        steps: list[tuple[str, str, list[tuple[int, str]]]] = [
            ("limit buy 100 AAPL @ 195.00 (marketable: fills)", "D", _new(f"{stamp}-1", "AAPL", "1", "100", "195.00")),
            ("market buy 10 MSFT", "D", _new(f"{stamp}-2", "MSFT", "1", "10", None)),
            ("limit buy 100 AAPL @ 150.00 (rests)", "D", _new(f"{stamp}-3", "AAPL", "1", "100", "150.00")),
            ("replace it: 200 @ 151.00", "G", _replace(f"{stamp}-4", f"{stamp}-3", "200", "151.00")),
            ("cancel it", "F", _cancel(f"{stamp}-5", f"{stamp}-4")),
            ("limit buy 10,000 SPY @ 500.00 (more than the account can pay: denied)", "D",
             _new(f"{stamp}-6", "SPY", "1", "10000", "500.00")),
        ]
        for label, msg_type, fields in steps:
            click.echo(f"\n> {label}")
            client.send(msg_type, fields)
            time.sleep(1.0)  # a human-paced demo: each step's reports print before the next step
        time.sleep(1.0)
    finally:
        client.stop()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]


def _new(cl_ord_id: str, symbol: str, side: str, qty: str, price: str | None) -> list[tuple[int, str]]:
    fields = [(11, cl_ord_id), (1, DEMO_ACCOUNT), (21, "1"), (55, symbol), (54, side), (60, _now()), (38, qty),
              (40, "2" if price else "1"), (59, "0")]
    return fields + ([(44, price)] if price else [])


def _replace(cl_ord_id: str, orig: str, qty: str, price: str) -> list[tuple[int, str]]:
    return [(11, cl_ord_id), (41, orig), (1, DEMO_ACCOUNT), (21, "1"), (55, "AAPL"), (54, "1"), (60, _now()),
            (38, qty), (40, "2"), (44, price)]


def _cancel(cl_ord_id: str, orig: str) -> list[tuple[int, str]]:
    return [(11, cl_ord_id), (41, orig), (1, DEMO_ACCOUNT), (55, "AAPL"), (54, "1"), (60, _now())]


_EXEC_TYPES = {"0": "New", "4": "Canceled", "5": "Replaced", "8": "Rejected", "C": "Expired", "F": "Trade",
               "I": "Status", "6": "PendingCancel", "E": "PendingReplace"}


def _describe(pairs: dict[int, str]) -> str:
    if pairs.get(35) == "9":
        return f"  <- OrderCancelReject ClOrdID={pairs.get(11)} OrigClOrdID={pairs.get(41)}: {pairs.get(58, '')}"
    text = f"  <- ExecutionReport {_EXEC_TYPES.get(pairs.get(150, ''), pairs.get(150))} ClOrdID={pairs.get(11)}"
    if pairs.get(41):
        text += f" OrigClOrdID={pairs.get(41)}"
    text += f" {pairs.get(55)} qty={pairs.get(38)} cum={pairs.get(14)} leaves={pairs.get(151)}"
    if pairs.get(150) == "F":
        text += f" last={pairs.get(32)}@{pairs.get(31)} avg={pairs.get(6)}"
    if pairs.get(58):
        text += f" | {pairs.get(58)}"
    return text
