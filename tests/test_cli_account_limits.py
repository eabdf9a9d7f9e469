"""Accounts opened from the CLI get the limits the operator configured (``OMS_DEFAULT_*``), and the broker-wide
order rate (``OMS_MAX_ORDERS_PER_SECOND``) governs them until an account gets a rate of its own."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, select

from cli.main import main
from oms.db.models import Account
from oms.settings import get_settings


@pytest.fixture
def database_url(cli_sqlite_url: str) -> str:
    return cli_sqlite_url


def stored_limits(url: str, account: str) -> tuple[object, ...]:
    table = Account.__table__.c
    engine = create_engine(url)
    with engine.connect() as connection:
        row = connection.execute(select(table.max_order_qty, table.max_order_notional, table.price_collar_pct,
                                        table.market_collar_pct, table.max_orders_per_second)
                                 .where(table.id == account)).one()  # fmt: skip
    engine.dispose()
    return tuple(str(value) for value in row)


def test_a_new_account_takes_the_configured_defaults_and_no_rate_of_its_own(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {"OMS_DEFAULT_MAX_ORDER_QTY": "500", "OMS_DEFAULT_MAX_ORDER_NOTIONAL": "20000",
                        "OMS_DEFAULT_PRICE_COLLAR_PCT": "0.02", "OMS_DEFAULT_MARKET_COLLAR_PCT": "0.03"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    assert CliRunner().invoke(main, ["accounts", "create", "LIM1"]).exit_code == 0
    assert stored_limits(database_url, "LIM1") == ("500", "20000", "0.02", "0.03", "0")


@pytest.mark.parametrize(
    ("name", "value"),
    [("OMS_DEFAULT_MAX_ORDER_QTY", "-5"), ("OMS_DEFAULT_MAX_ORDER_NOTIONAL", "0"),
     ("OMS_DEFAULT_PRICE_COLLAR_PCT", "5"), ("OMS_DEFAULT_MARKET_COLLAR_PCT", "0")],
)  # fmt: skip
def test_a_default_limit_that_makes_no_sense_stops_the_command_naming_it(
    database_url: str, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    result = CliRunner().invoke(main, ["accounts", "create", "LIM2"])
    assert result.exit_code != 0 and name in result.output and "Traceback" not in result.output
