"""`oms exchange`: run the simulated exchange, print its end-of-day trade report, inject faults.

    oms exchange                      same as `oms exchange run`
    oms exchange run [--config sessions.cfg]
    oms exchange report --date 2024-05-17 [--output trades.csv]
    oms exchange fault reject --count 2          (also: drop, delay --delay-ms, duplicate, disconnect)
    oms exchange fault omit-trade EXEC_ID | bust --trade-id T | correct --trade-id T --qty Q --price P
    oms exchange fault status | clear | step | end-of-day

The report reads the journal offline (the venue may be running or not).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import date
from pathlib import Path
from typing import Any

import click

from cli.dates import parse_day

DEFAULT_CONFIG = os.environ.get("OMS_SESSIONS_CFG", "sessions.cfg")
config_option = click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
                             default=DEFAULT_CONFIG, show_default=True, help="sessions.cfg holding the venue's sections")


def _load(config_path: Path):  # type: ignore[no-untyped-def]
    from exchange.config import ConfigError, load_venue_config
    try:
        return load_venue_config(config_path)
    except ConfigError as error:
        raise click.ClickException(str(error)) from error


@click.group(invoke_without_command=True)
@click.pass_context
def exchange(ctx: click.Context) -> None:
    """Simulated exchange (FIX venue). Without a subcommand: run it."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(run)


@exchange.command()
@config_option
@click.option("--log-level", default="INFO", show_default=True)
def run(config_path: Path = Path(DEFAULT_CONFIG), log_level: str = "INFO") -> None:
    """Start the venue and serve until SIGINT/SIGTERM."""
    from exchange.venue import Venue
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    Venue(_load(config_path)).run_forever()


@exchange.command()
@config_option
@click.option("--date", "trade_date", required=True, callback=parse_day, help="trade date (UTC), YYYY-MM-DD")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="CSV file to write (default: stdout)")
def report(config_path: Path, trade_date: date, output: Path | None) -> None:
    """End-of-day trade report (CSV) of every broker execution on a trade date."""
    from cli.output_files import cannot_write
    from exchange.report_cmd import offline_rows
    from exchange.trade_report import write_csv
    config = _load(config_path)
    if output is None:
        write_csv(offline_rows(config, trade_date), sys.stdout)
        return
    temp = output.with_suffix(output.suffix + ".tmp")
    try:  # opened before the journal is replayed: an unwritable --output is refused before any work
        handle = temp.open("w", encoding="utf-8", newline="")
    except OSError as error:
        raise cannot_write("--output", output, error) from None
    try:
        with handle:
            rows = offline_rows(config, trade_date)
            try:
                write_csv(rows, handle)
                handle.flush()
            except OSError as error:
                raise cannot_write("--output", output, error) from None
        try:
            temp.replace(output)
        except OSError as error:
            raise cannot_write("--output", output, error) from None
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    click.echo(f"{len(rows)} executions written to {output}", err=True)


def _control(config_path: Path, request: dict[str, Any]) -> None:
    from exchange.control import send_control
    config = _load(config_path)
    if config.control_port <= 0:
        raise click.ClickException("ControlPort is not set to a fixed port in [EXCHANGE]")
    try:
        reply = send_control(config.control_host, config.control_port, request)
    except OSError as error:
        raise click.ClickException(f"venue control endpoint unreachable: {error}") from error
    if not reply.get("ok"):  # a refusal is one line on stderr, like every other command's
        raise click.ClickException(f"venue refused {request['command']}: {reply.get('error', 'no reason given')}")
    click.echo(json.dumps(reply, indent=2))


@exchange.group()
def fault() -> None:
    """Inject faults into a running venue (through its loopback control endpoint)."""


def _knob(name: str, help_text: str) -> None:
    @fault.command(name=name, help=help_text)
    @config_option
    @click.option("--count", default=1, show_default=True, type=click.IntRange(0, 1_000_000))
    @click.option("--delay-ms", type=click.IntRange(0, 3_600_000), default=None, help="delay (delay knob only)")
    def command(config_path: Path, count: int, delay_ms: int | None) -> None:
        request: dict[str, Any] = {"command": name, "count": count}
        if delay_ms is not None:
            request["delay_ms"] = delay_ms
        _control(config_path, request)


_knob("reject", "Reject the next N orders (ExecType=Rejected).")
_knob("drop", "Drop the next N ExecutionReports.")
_knob("delay", "Delay the next N ExecutionReports by --delay-ms.")
_knob("duplicate", "Send each of the next N ExecutionReports twice.")
_knob("disconnect", "Disconnect the session right after each of the next N orders.")


@fault.command("omit-trade")
@config_option
@click.argument("exec_id")
def omit_trade(config_path: Path, exec_id: str) -> None:
    """Leave an execution (by ExecID) out of trade reports (CSV and TradeCaptureReport)."""
    _control(config_path, {"command": "omit-trade", "exec_id": exec_id})


def _trade_ref(trade_id: str | None, exec_id: str | None) -> dict[str, str]:
    if bool(trade_id) == bool(exec_id):
        raise click.UsageError("give exactly one of --trade-id / --exec-id")
    return {"trade_id": trade_id} if trade_id else {"exec_id": exec_id}  # type: ignore[dict-item]


@fault.command()
@config_option
@click.option("--trade-id")
@click.option("--exec-id")
def bust(config_path: Path, trade_id: str | None, exec_id: str | None) -> None:
    """Bust a trade: both sides get ExecutionReport ExecType=H (trade cancel)."""
    _control(config_path, {"command": "bust", **_trade_ref(trade_id, exec_id)})


@fault.command()
@config_option
@click.option("--trade-id")
@click.option("--exec-id")
@click.option("--qty", required=True)
@click.option("--price", required=True)
def correct(config_path: Path, trade_id: str | None, exec_id: str | None, qty: str, price: str) -> None:
    """Correct a trade's quantity (down only) and price: ExecType=G (trade correct)."""
    _control(config_path, {"command": "correct", "qty": qty, "price": price, **_trade_ref(trade_id, exec_id)})


def _simple(name: str, help_text: str) -> None:
    @fault.command(name=name, help=help_text)
    @config_option
    def command(config_path: Path) -> None:
        _control(config_path, {"command": name})


_simple("status", "Show armed faults and omitted executions.")
_simple("clear", "Disarm all fault counters.")
_simple("step", "Step the market maker once.")
_simple("end-of-day", "Expire DAY/GTD orders now.")
