"""`oms gateway`: run the FIX gateway (client sessions + venue session + outbox), or hash a client password.

    oms gateway                       same as `oms gateway run`
    oms gateway run [--config sessions.cfg]
    oms gateway hash-password         prints a PasswordHash= value for a client [SESSION]
    oms gateway sessions              each session's persisted sequence numbers
    oms gateway unresolved            orders whose outcome at the venue stayed unknown (reservations held)
"""

from __future__ import annotations

import os
from pathlib import Path

import click

DEFAULT_CONFIG = os.environ.get("OMS_SESSIONS_CFG", "sessions.cfg")


@click.group(invoke_without_command=True)
@click.pass_context
def gateway(ctx: click.Context) -> None:
    """FIX gateway. Without a subcommand: run it."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(run)


@gateway.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=DEFAULT_CONFIG,
              show_default=True, help="sessions.cfg holding the gateway's sections")
def run(config_path: Path = Path(DEFAULT_CONFIG)) -> None:
    """Start the gateway on the configured database and serve until SIGINT/SIGTERM."""
    from sqlalchemy.exc import SQLAlchemyError

    from oms.db.migrate import upgrade
    from oms.gateway.config import ConfigError, load_gateway_settings
    from oms.gateway.gateway import Gateway
    from oms.logging import configure_logging
    from oms.service.uow import Database
    from oms.settings import SettingsError, get_settings

    try:
        settings = get_settings()
        configure_logging(settings.log_level, settings.log_format)
        gateway_settings = load_gateway_settings(config_path)
        database = Database.from_url(settings.database_url)
        upgrade(database.engine)
        from oms.service.orders import ServiceConfig

        Gateway(gateway_settings, database, ServiceConfig.from_settings(settings),
                redis_url=settings.redis_url).run_forever()
    except (ConfigError, SettingsError) as error:
        raise click.ClickException(str(error)) from None
    except SQLAlchemyError as error:
        raise click.ClickException(f"database error: {type(error).__name__}: {getattr(error, 'orig', error)}") from None


@gateway.command("hash-password")
@click.password_option(prompt="Client password")
def hash_password_command(password: str) -> None:
    """Print the PasswordHash= line for a client session (the password itself is stored nowhere)."""
    from oms.gateway.credentials import hash_password

    click.echo(f"PasswordHash={hash_password(password)}")


@gateway.command("sessions")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=DEFAULT_CONFIG,
              show_default=True, help="sessions.cfg holding the gateway's sections")
def sessions(config_path: Path) -> None:
    """Each gateway session with its persisted next sequence numbers (from the file store)."""
    from oms.gateway.config import ConfigError, load_gateway_settings
    from oms.gateway.session_status import session_statuses

    try:
        settings = load_gateway_settings(config_path)
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"{'session':<28}{'role':<8}{'next out':>10}{'next in':>10}  accounts")
    for status in session_statuses(settings):
        out = "-" if status.next_sender_seq is None else str(status.next_sender_seq)
        incoming = "-" if status.next_target_seq is None else str(status.next_target_seq)
        click.echo(f"{status.key:<28}{status.role:<8}{out:>10}{incoming:>10}  {','.join(status.accounts)}")


@gateway.command("unresolved")
@click.option("--older-than", "older_than_s", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="seconds an order must have been waiting for the venue")
def unresolved(older_than_s: float) -> None:
    """Orders whose outcome at the venue is unknown (pending past the bound): each keeps its reservation
    until the venue answers or a human settles it. Exit code 1 when there are any."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy.exc import SQLAlchemyError

    from oms.gateway.queries import unresolved_orders
    from oms.service.uow import Database
    from oms.settings import SettingsError, get_settings

    try:
        database = Database.from_url(get_settings().database_url)
        try:
            found = unresolved_orders(database, datetime.now(UTC) - timedelta(seconds=older_than_s))
        finally:
            database.dispose()
    except SettingsError as error:
        raise click.ClickException(str(error)) from None
    except SQLAlchemyError as error:
        raise click.ClickException(f"database error: {type(error).__name__}: {getattr(error, 'orig', error)}") from None
    if not found:
        click.echo("no unresolved orders")
        return
    click.echo(f"{'order id':<34}{'account':<12}{'ClOrdID':<24}{'venue ClOrdID':<34}{'status':<16}{'since':<22}reserved")
    for item in found:
        record = item.record
        held = ", ".join(f"{asset} {amount}" for asset, amount in sorted(item.reserved.items())) or "-"
        asked = record.pending_venue_cl_ord_id or record.venue_cl_ord_id
        click.echo(f"{record.id:<34}{record.account_id:<12}{str(record.order.cl_ord_id):<24}{asked:<34}"
                   f"{record.order.status.value:<16}{item.updated_at:%Y-%m-%d %H:%M:%S}  {held}")
    raise SystemExit(1)
