"""``oms instruments``: load and show the instrument master (what can be traded, ticks, lots, reference prices).

Why a command: orders for a symbol the OMS does not know are refused ``UNKNOWN_SYMBOL``, and before this only
``oms demo`` and ``oms demo-fix`` filled the master, so the services started one by one could not trade.
Running services see a load within ``INSTRUMENTS_TTL_S`` seconds (no restart).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from pathlib import Path

import click

from cli.main import EXIT_USAGE, CliError, friendly_errors, open_database
from exchange.instruments import DEFAULT_INSTRUMENTS_CSV, load_instruments
from exchange.instruments import Instrument as VenueInstrument
from oms.domain.instruments import Instrument
from oms.domain.values import Symbol
from oms.service.accounts import upsert_instruments
from oms.service.uow import INSTRUMENTS_TTL_S


class BadInstrumentsFile(CliError):
    exit_code = EXIT_USAGE


def master_instruments(listed: Mapping[str, VenueInstrument]) -> list[Instrument]:
    """The OMS's instrument master entries for a venue's instrument list (reference prices included)."""
    return [Instrument(symbol=Symbol(item.symbol), currency=item.currency, tick_size=item.tick_size,
                       lot_size=item.lot_size, reference_price=item.reference_price)
            for item in listed.values()]  # fmt: skip


@click.group()
def instruments() -> None:
    """The instrument master: symbols, tick and lot sizes, reference prices."""


@instruments.command("load")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@friendly_errors
def instruments_load(file: Path | None) -> None:
    """Add or refresh instruments from FILE, a CSV with the header
    ``symbol,currency,tick_size,lot_size,reference_price[,fee_rate]`` (default: the simulated exchange's own
    list, so the OMS trades what the bundled venue lists). Instruments not in FILE are left as they are."""
    path = file or DEFAULT_INSTRUMENTS_CSV
    try:
        listed = load_instruments(path)
    except OSError as error:
        raise BadInstrumentsFile(f"cannot read {path}: {error.strerror or error}") from None
    except (ValueError, KeyError, ArithmeticError, AttributeError, csv.Error) as error:
        raise BadInstrumentsFile(f"{path}: not an instruments file ({type(error).__name__}: {error})") from None
    if not listed:
        raise BadInstrumentsFile(f"{path}: no instruments in it")
    count = upsert_instruments(open_database(), master_instruments(listed))
    click.echo(f"{count} instruments loaded from {path}: {', '.join(sorted(listed))} "
               f"(running services see them within {INSTRUMENTS_TTL_S:g} s)")  # fmt: skip


@instruments.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@friendly_errors
def instruments_list(as_json: bool) -> None:
    """Every instrument the OMS knows, by symbol."""
    database = open_database()
    with database.engine.connect() as connection:
        known = database.instruments(connection)
    rows = [{"symbol": str(item.symbol), "currency": item.currency, "tick_size": str(item.tick_size),
             "lot_size": str(item.lot_size), "fractional": item.fractional, "tradable": item.tradable,
             "reference_price": None if item.reference_price is None else str(item.reference_price)}
            for item in sorted(known.values(), key=lambda item: str(item.symbol))]  # fmt: skip
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no instruments: load them with `oms instruments load`")
        return
    click.echo(f"{'symbol':<10} {'ccy':<4} {'tick':>8} {'lot':>6} {'reference':>12} tradable")
    for row in rows:
        click.echo(f"{row['symbol']:<10} {row['currency']:<4} {row['tick_size']:>8} {row['lot_size']:>6} "
                   f"{row['reference_price'] or '-':>12} {'yes' if row['tradable'] else 'no'}")  # fmt: skip
