"""``oms``: the operations command line. Every failure is one clear line on stderr and a non-zero exit."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy import make_url, select
from sqlalchemy.exc import SQLAlchemyError

from cli.dates import parse_day
from oms.db.migrate import upgrade
from oms.db.models import Account, Order
from oms.domain.errors import DomainError, InvalidValue
from oms.logging import configure_logging
from oms.service.accounts import AccountError, AccountLimitsConfig, balances, create_account, deposit, settle, withdraw
from oms.service.uow import Database
from oms.settings import SettingsError, get_settings

F = TypeVar("F", bound=Callable[..., Any])

EXIT_FAILURE = 1
EXIT_USAGE = 2


class CliError(click.ClickException):
    """An expected failure: printed as ``error: ...`` without a traceback."""

    exit_code = EXIT_FAILURE

    def format_message(self) -> str:
        return self.message


class BadInput(CliError):
    """Bad input from the operator (an argument, an option, a file named on the command line): exit 2."""

    exit_code = EXIT_USAGE


@contextmanager
def _usage_errors_on_one_line() -> Iterator[None]:
    try:
        yield
    except click.exceptions.NoArgsIsHelpError:  # `oms accounts` alone: the help is the answer
        raise
    except click.UsageError as error:
        hint = f" (see '{error.ctx.command_path} --help')" if error.ctx is not None else ""
        raise BadInput(error.format_message() + hint) from None


class OneLineUsageGroup(click.Group):
    """``oms``: a usage error anywhere below it is one ``Error: ...`` line and exit 2, where click prints four
    (usage, hint, blank line, error). It wraps parsing of the top level and the invocation of everything under it,
    which is where subcommands parse their own options and arguments."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        with _usage_errors_on_one_line():
            return super().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        with _usage_errors_on_one_line():
            return super().invoke(ctx)


def friendly_errors(function: F) -> F:
    """Turn the errors an operator can cause (bad settings, bad amounts, unreachable database) into one line.

    A value the domain refuses on construction (an account id with a space, a NaN) is bad input: exit 2."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except SettingsError as error:
            raise BadInput(str(error)) from None
        except InvalidValue as error:
            raise BadInput(str(error)) from None
        except (AccountError, DomainError) as error:
            raise CliError(str(error)) from None
        except SQLAlchemyError as error:
            raise CliError(f"database error: {type(error).__name__}: {getattr(error, 'orig', error)}") from None

    return wrapper  # type: ignore[return-value]


def existing_database(url: str) -> str:
    """``url``, refused when it names a SQLite file that does not exist.

    Opening SQLite creates the file (and its directory): a read or a booking against a mistyped path would
    leave an empty database behind and fail with "no such table". Only the commands that migrate the schema
    themselves (``oms db upgrade``, the services and demos that run the migration) may create one.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database
        if path and path != ":memory:" and not parsed.query.get("mode") and not Path(path).exists():
            raise CliError(f"no database at {path} (OMS_DATABASE_URL): create it with `oms db upgrade`")
    return url


def open_database(*, create: bool = False) -> Database:
    """The configured database; unless ``create``, a missing SQLite file is refused instead of made."""
    url = get_settings().database_url
    return Database.from_url(url if create else existing_database(url))


def parse_amount(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Decimal | None:
    if value is None:
        return None
    from oms.domain.values import parse_decimal

    try:
        return parse_decimal(value, "amount", allow_negative=False, allow_zero=False)
    except DomainError as error:
        raise click.BadParameter(str(error)) from None


@click.group(cls=OneLineUsageGroup)
@click.version_option(package_name="fix-oms")
def main() -> None:
    """FIX gateway and order management system: services, accounts, orders, ledger and reconciliation."""
    try:
        settings = get_settings()
    except SettingsError as error:  # bad input from the environment: exit 2, as for a bad option
        raise BadInput(str(error)) from None
    configure_logging(settings.log_level, settings.log_format)


# -- database -----------------------------------------------------------------------------------------------------------
@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@friendly_errors
def db_upgrade() -> None:
    """Create or migrate the schema to the newest revision (OMS_DATABASE_URL)."""
    database = open_database(create=True)
    upgrade(database.engine)
    click.echo(f"database at {database.engine.url.render_as_string(hide_password=True)} is up to date")


# -- accounts -----------------------------------------------------------------------------------------------------------
@main.group()
def accounts() -> None:
    """Customer accounts and their money."""


@accounts.command("create")
@click.argument("account")
@click.option("--cash", callback=parse_amount, help="Deposit this much right away.")
@friendly_errors
def accounts_create(account: str, cash: Decimal | None) -> None:
    """Open ACCOUNT (optionally funded with --cash)."""
    database = open_database()
    create_account(database, account, limits=AccountLimitsConfig.from_settings(get_settings()))
    if cash:
        deposit(database, account, cash)
    click.echo(f"account {account} created" + (f" with {cash} deposited" if cash else ""))


@accounts.command("deposit")
@click.argument("account")
@click.argument("amount", callback=parse_amount)
@click.option("--reference", help="Idempotency reference: the same reference books once.")
@friendly_errors
def accounts_deposit(account: str, amount: Decimal, reference: str | None) -> None:
    """Credit AMOUNT from the bank to ACCOUNT."""
    entry = deposit(open_database(), account, amount, reference=reference)
    click.echo(f"deposited {amount} to {account} (entry {entry})")


@accounts.command("withdraw")
@click.argument("account")
@click.argument("amount", callback=parse_amount)
@click.option("--reference", help="Idempotency reference: the same reference books once.")
@friendly_errors
def accounts_withdraw(account: str, amount: Decimal, reference: str | None) -> None:
    """Pay AMOUNT of ACCOUNT's withdrawable cash out to the bank."""
    entry = withdraw(open_database(), account, amount, reference=reference)
    click.echo(f"withdrew {amount} from {account} (entry {entry})")


@accounts.command("show")
@click.argument("account")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@friendly_errors
def accounts_show(account: str, as_json: bool) -> None:
    """Balances and positions of ACCOUNT."""
    result = balances(open_database(), account)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "account": account,
                    "cash": {
                        cur: {
                            "available": str(c.available),
                            "reserved": str(c.reserved),
                            "unsettled": str(c.unsettled),
                            "withdrawable": str(c.withdrawable),
                            "total": str(c.total),
                        }
                        for cur, c in result.cash.items()
                    },
                    "positions": {
                        sym: {"available": str(p.available), "reserved": str(p.reserved), "total": str(p.total)}
                        for sym, p in result.positions.items()
                    },
                },
                indent=2,
            )
        )
        return
    click.echo(f"account {account}")
    click.echo(f"{'currency':<10}{'available':>16}{'reserved':>16}{'unsettled':>16}{'withdrawable':>16}{'total':>16}")
    for cur, c in result.cash.items():
        click.echo(f"{cur:<10}{c.available:>16}{c.reserved:>16}{c.unsettled:>16}{c.withdrawable:>16}{c.total:>16}")
    if result.positions:
        click.echo(f"\n{'symbol':<10}{'available':>16}{'reserved':>16}{'total':>16}")
        for sym, p in result.positions.items():
            click.echo(f"{sym:<10}{p.available:>16}{p.reserved:>16}{p.total:>16}")
    else:
        click.echo("\nno positions")


# -- orders -------------------------------------------------------------------------------------------------------------
@main.group()
def orders() -> None:
    """Orders in the OMS."""


@orders.command("list")
@click.option("--account", help="Only this account's orders.")
@click.option("--status", help="Only orders in this status (e.g. new, filled, canceled).")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100_000))
@friendly_errors
def orders_list(account: str | None, status: str | None, limit: int) -> None:
    """List orders, newest first."""
    from oms.domain.enums import OrderStatus

    if status is not None and status not in {s.value for s in OrderStatus}:
        raise click.BadParameter(f"unknown status {status!r}", param_hint="--status")
    table = Order.__table__
    query = select(
        table.c.id, table.c.account_id, table.c.cl_ord_id, table.c.symbol, table.c.side, table.c.order_type,
        table.c.qty, table.c.limit_price, table.c.status, table.c.cum_qty, table.c.created_at,
    ).order_by(table.c.created_at.desc()).limit(limit)  # fmt: skip
    if account:
        query = query.where(table.c.account_id == account)
    if status:
        query = query.where(table.c.status == status)
    with open_database().engine.connect() as connection:
        rows = connection.execute(query).all()
    click.echo(f"{'order id':<34}{'account':<12}{'cl_ord_id':<20}{'symbol':<8}{'side':<6}{'type':<11}{'qty':>10}{'price':>12}{'filled':>10}  status")
    for row in rows:
        price = "" if row.limit_price is None else str(row.limit_price)
        click.echo(
            f"{row.id:<34}{row.account_id:<12}{row.cl_ord_id:<20}{row.symbol:<8}{row.side:<6}{row.order_type:<11}"
            f"{row.qty:>10}{price:>12}{row.cum_qty:>10}  {row.status}"
        )
    click.echo(f"{len(rows)} order(s)")


# -- ledger -------------------------------------------------------------------------------------------------------------
@main.group()
def ledger() -> None:
    """The double-entry ledger."""


@ledger.command("verify")
@friendly_errors
def ledger_verify() -> None:
    """Check every ledger invariant; exits 1 naming each violation."""
    from oms.ledger.verify import verify_ledger

    with open_database().engine.connect() as connection:
        violations = verify_ledger(connection)
    if violations:
        for violation in violations:
            click.echo(str(violation), err=True)
        click.echo(f"ledger verify: {len(violations)} violation(s)", err=True)
        sys.exit(EXIT_FAILURE)
    click.echo("ledger verify: ok")


@ledger.command("settle")
@click.option("--date", "through", callback=parse_day,
              help="Settle everything due on or before this date, not after today (default today in the market's calendar).")
@friendly_errors
def ledger_settle(through: date | None) -> None:
    """Move sale proceeds whose settlement date has come from unsettled to available cash."""
    from oms.service.orders import ServiceConfig

    today = ServiceConfig.from_settings(get_settings()).calendar.local_date(datetime.now(UTC))
    day = through or today
    count = settle(open_database(), day, today=today)
    click.echo(f"settled {count} sale(s) due on or before {day.isoformat()}")


@ledger.command("statement")
@click.argument("account")
@click.option("--limit", default=200, show_default=True, type=click.IntRange(1, 100_000))
@friendly_errors
def ledger_statement(account: str, limit: int) -> None:
    """ACCOUNT's postings in booking order, with the journal entry each belongs to."""
    from oms.ledger.balances import statement

    with open_database().engine.connect() as connection:
        accounts_table = Account.__table__
        if connection.execute(select(accounts_table.c.id).where(accounts_table.c.id == account)).first() is None:
            raise CliError(f"unknown account {account}")  # as every other command says, not an empty table
        lines = list(statement(connection, account, limit=limit))
    click.echo(f"{'time':<27}{'kind':<12}{'reference':<34}{'ledger account':<44}{'amount':>16}")
    for line in lines:
        click.echo(
            f"{line.created_at.isoformat(timespec='seconds'):<27}{line.kind:<12}{line.reference[:33]:<34}"
            f"{line.ledger_account:<44}{line.amount:>16} {line.asset}"
        )


@main.command("demo")
@friendly_errors
def demo() -> None:
    """The whole product end to end: exchange, FIX gateway and REST API in-process, a FIX client and a REST
    client placing orders, then balances and ledger verify (default database: SQLite under var/)."""
    from cli.demo import run_demo

    settings = get_settings()
    if settings.log_level == "info":  # the demo's story is on stdout; routine service logs would drown it
        configure_logging("warning", settings.log_format)
    run_demo(open_database(create=True), settings.var_dir / "demo")  # it migrates: a fresh clone gets var/


def _register_command_groups() -> None:
    """Attach the command groups that live in their own modules (imported late: they import this module)."""
    from cli.certify_cmd import certify
    from cli.exchange_cmd import exchange
    from cli.instruments_cmd import instruments
    from cli.reconcile_cmd import reconcile
    from cli.risk_cmd import risk

    main.add_command(certify)
    main.add_command(exchange)
    main.add_command(instruments)
    main.add_command(reconcile)
    main.add_command(risk)
    from cli.api_cmd import api, api_keys

    main.add_command(api)
    main.add_command(api_keys)
    from cli.fix_demo_cmd import demo_client, demo_fix
    from cli.gateway_cmd import gateway

    main.add_command(gateway)
    main.add_command(demo_fix)
    main.add_command(demo_client)


_register_command_groups()

if __name__ == "__main__":
    main()
