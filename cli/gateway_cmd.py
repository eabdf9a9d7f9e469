"""`oms gateway`: run the FIX gateway (client sessions + venue session + outbox), or hash a client password.

    oms gateway                       same as `oms gateway run`
    oms gateway run [--config sessions.cfg] [--tls-port P --tls-cert CERT --tls-key KEY [--tls-host H]]
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
@click.option("--tls-port", type=click.IntRange(1, 65535), default=None,
              help="also accept client sessions over TLS on this port (stunnel in front of the client acceptor)")
@click.option("--tls-cert", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="PEM certificate the TLS port presents")
@click.option("--tls-key", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="PEM private key of that certificate")
@click.option("--tls-host", default="0.0.0.0", show_default=True, help="address the TLS port binds")
def run(config_path: Path = Path(DEFAULT_CONFIG), tls_port: int | None = None, tls_cert: Path | None = None,
        tls_key: Path | None = None, tls_host: str = "0.0.0.0") -> None:
    """Start the gateway on the configured database and serve until SIGINT/SIGTERM.

    With --tls-port, stunnel terminates TLS for client sessions for as long as the gateway runs and forwards
    them to the client acceptor's plaintext port; give the client sessions AllowedRemoteAddresses=127.0.0.1 so
    that port takes connections from this host (stunnel) only."""
    from sqlalchemy.exc import SQLAlchemyError

    from fix.tls_front import StunnelFront, TlsFrontConfig, TlsFrontError
    from oms.db.migrate import upgrade
    from oms.gateway.config import ConfigError, load_gateway_settings
    from oms.gateway.gateway import Gateway
    from oms.logging import configure_logging
    from oms.service.uow import Database
    from oms.settings import SettingsError, get_settings

    if tls_port is not None and (tls_cert is None or tls_key is None):
        raise click.UsageError("--tls-port needs --tls-cert and --tls-key")
    if tls_port is None and (tls_cert is not None or tls_key is not None):
        raise click.UsageError("--tls-cert and --tls-key need --tls-port")
    front: StunnelFront | None = None
    try:
        settings = get_settings()
        configure_logging(settings.log_level, settings.log_format)
        gateway_settings = load_gateway_settings(config_path)
        if tls_port is not None:
            assert tls_cert is not None and tls_key is not None
            ports = gateway_settings.client_accept_ports()
            if len(ports) != 1:
                raise click.ClickException(f"--tls-port needs the client sessions on one SocketAcceptPort, "
                                           f"found {sorted(ports)}")
            front = StunnelFront(TlsFrontConfig(accept_port=tls_port, connect_port=next(iter(ports)),
                                                cert_file=tls_cert, key_file=tls_key, accept_host=tls_host))
            front.check()  # before the database is touched
        database = Database.from_url(settings.database_url)
        upgrade(database.engine)
        from oms.service.orders import ServiceConfig

        if front is not None:
            front.start_supervised()
            click.echo(f"TLS for client sessions on {tls_host}:{tls_port} (stunnel log: {front.log_file})",
                       err=True)
        Gateway(gateway_settings, database, ServiceConfig.from_settings(settings),
                redis_url=settings.redis_url).run_forever()
    except (ConfigError, SettingsError, TlsFrontError) as error:
        raise click.ClickException(str(error)) from None
    except SQLAlchemyError as error:
        raise click.ClickException(f"database error: {type(error).__name__}: {getattr(error, 'orig', error)}") from None
    finally:
        if front is not None:
            front.stop()


def _not_empty(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    if not value:
        raise click.BadParameter("an empty password would let anyone log on as the session")
    return value


@gateway.command("hash-password")
@click.password_option(prompt="Client password", callback=_not_empty)
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

    from cli.main import existing_database
    from oms.gateway.queries import unresolved_orders
    from oms.service.uow import Database
    from oms.settings import SettingsError, get_settings

    try:
        database = Database.from_url(existing_database(get_settings().database_url))
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
