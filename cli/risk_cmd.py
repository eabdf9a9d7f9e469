"""``oms risk``: the operator's brakes.

    oms risk kill-switch on|off [--account A]    halt or resume new orders, for everyone or one account
    oms risk status [--account A] [--json]       the switches, the trading calendar and each account's order rate

The switches are rows in the database, so every gateway process obeys them on its next transaction.
"""

from __future__ import annotations

import json

import click

from cli.main import friendly_errors, open_database
from oms.service.orders import ServiceConfig
from oms.service.risk_controls import risk_status, set_kill_switch
from oms.settings import get_settings


@click.group()
def risk() -> None:
    """Kill switches and the risk controls in force."""


@risk.command("kill-switch")
@click.argument("state", type=click.Choice(["on", "off"]))
@click.option("--account", help="Halt or resume only this account (default: every account).")
@friendly_errors
def kill_switch(state: str, account: str | None) -> None:
    """Turn the kill switch on (deny every new order with KILL_SWITCH) or off."""
    set_kill_switch(open_database(), state == "on", account=account)
    scope = f"account {account}" if account else "all accounts"
    click.echo(f"kill switch {state} for {scope}")


@risk.command("status")
@click.option("--account", help="Show only this account.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@friendly_errors
def status(account: str | None, as_json: bool) -> None:
    """The global kill switch, the trading calendar, and each account's switch and order-rate limit."""
    settings = get_settings()
    current = risk_status(open_database(), ServiceConfig.from_settings(settings), settings.trading_calendar, account=account)
    if as_json:
        click.echo(json.dumps({
            "global_kill_switch": current.global_kill_switch,
            "trading_calendar": current.trading_calendar,
            "accounts": [
                {"account": a.account, "status": a.status, "kill_switch": a.kill_switch,
                 "max_orders_per_second": a.max_orders_per_second}
                for a in current.accounts
            ],
        }, indent=2))  # fmt: skip
        return
    click.echo(f"global kill switch: {'ON' if current.global_kill_switch else 'off'}")
    click.echo(f"trading calendar:   {current.trading_calendar}")
    click.echo(f"{'account':<20}{'status':<12}{'kill switch':<13}{'max orders/s':>12}")
    for a in current.accounts:
        rate = str(a.max_orders_per_second) if a.max_orders_per_second else "unlimited"
        click.echo(f"{a.account:<20}{a.status:<12}{'ON' if a.kill_switch else 'off':<13}{rate:>12}")
