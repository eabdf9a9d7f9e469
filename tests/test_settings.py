"""Settings are read once, strictly: unknown or invalid OMS_* variables stop the process with a named error."""

from __future__ import annotations

import pytest

from oms.settings import SettingsError, load_settings


def test_defaults_use_the_embedded_sqlite_database_and_in_process_events() -> None:
    settings = load_settings({})
    assert settings.database_url.startswith("sqlite:///")
    assert settings.redis_url is None


def test_plain_postgresql_urls_get_the_psycopg_driver() -> None:
    settings = load_settings({"OMS_DATABASE_URL": "postgresql://postgres@127.0.0.1/oms"})
    assert settings.database_url == "postgresql+psycopg://postgres@127.0.0.1/oms"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"OMS_DATABSE_URL": "sqlite:///x"}, "unknown setting OMS_DATABSE_URL"),
        ({"OMS_DATABASE_URL": "mysql://x"}, "invalid OMS_DATABASE_URL"),
        ({"OMS_REDIS_URL": "http://x"}, "invalid OMS_REDIS_URL"),
        ({"OMS_SETTLEMENT_DAYS": "two"}, "invalid OMS_SETTLEMENT_DAYS"),
        ({"OMS_LOG_LEVEL": "loud"}, "invalid OMS_LOG_LEVEL"),
        ({"OMS_TRADING_CALENDAR": "nyse"}, "invalid OMS_TRADING_CALENDAR"),
        ({"OMS_MARKET_HOLIDAYS": "2026-12-25,xmas"}, "invalid OMS_MARKET_HOLIDAYS: .*'xmas' is not a date"),
        ({"OMS_MAX_ORDERS_PER_SECOND": "-1"}, "invalid OMS_MAX_ORDERS_PER_SECOND"),
        ({"OMS_SQLITE_CHECKPOINT_INTERVAL_S": "0"}, "invalid OMS_SQLITE_CHECKPOINT_INTERVAL_S"),
        ({"OMS_SQLITE_CHECKPOINT_INTERVAL_S": "inf"}, "invalid OMS_SQLITE_CHECKPOINT_INTERVAL_S: must be a finite"),
        ({"OMS_FEE_RATE": "-0.1"}, "invalid OMS_FEE_RATE: must be a fraction of the notional"),
        ({"OMS_FEE_RATE": "1"}, "invalid OMS_FEE_RATE: must be a fraction of the notional"),
        ({"OMS_FEE_RATE": "1e3"}, "invalid OMS_FEE_RATE: '1e3' is not a plain decimal number"),
        ({"OMS_FEE_RATE": "5e-4"}, "invalid OMS_FEE_RATE: '5e-4' is not a plain decimal number"),
        ({"OMS_FEE_MINIMUM": "-1"}, "invalid OMS_FEE_MINIMUM: must not be negative"),
        ({"OMS_FEE_MINIMUM": "1E2"}, "invalid OMS_FEE_MINIMUM: '1E2' is not a plain decimal number"),
        ({"OMS_SETTLEMENT_DAYS": "-1"}, "invalid OMS_SETTLEMENT_DAYS: must be a number of business days from 0 to 30"),
        ({"OMS_SETTLEMENT_DAYS": "1000000000"}, "invalid OMS_SETTLEMENT_DAYS: must be a number of business days"),
    ],
)
def test_unknown_or_invalid_settings_are_refused_by_name(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(environ)


def test_risk_defaults_keep_the_demo_trading_around_the_clock_with_a_per_account_order_rate() -> None:
    settings = load_settings({})
    assert settings.trading_calendar == "always"
    assert settings.max_orders_per_second == 1000
    assert settings.holidays == frozenset()


def test_market_holidays_are_a_comma_separated_list_of_dates() -> None:
    from datetime import date

    settings = load_settings({"OMS_TRADING_CALENDAR": "us-equities", "OMS_MARKET_HOLIDAYS": "2026-12-25, 2027-01-01"})
    assert settings.holidays == frozenset({date(2026, 12, 25), date(2027, 1, 1)})


def test_fees_are_plain_decimals_a_rate_below_one_and_a_minimum_of_at_least_zero() -> None:
    from decimal import Decimal

    settings = load_settings({"OMS_FEE_RATE": "0", "OMS_FEE_MINIMUM": "1.50", "OMS_SETTLEMENT_DAYS": "0"})
    assert (settings.fee_rate, settings.fee_minimum, settings.settlement_days) == (Decimal(0), Decimal("1.50"), 0)
    assert load_settings({"OMS_FEE_RATE": "0.9999"}).fee_rate == Decimal("0.9999")


def test_the_certification_password_is_a_known_setting_kept_out_of_reprs() -> None:
    settings = load_settings({"OMS_CERTIFY_PASSWORD": "s3cret"})
    assert settings.certify_password is not None and settings.certify_password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)
    assert load_settings({}).certify_password is None


@pytest.mark.parametrize(("name", "hint"), [("OMS_GROUP_COMMIT_MAX_BATCH", r"\[GATEWAY\] MaxBatch in sessions.cfg"),
                                            ("OMS_GROUP_COMMIT_MAX_WAIT_MS", "without waiting")])
def test_group_commit_variables_that_configured_nothing_are_refused_with_where_it_is_configured(name: str, hint: str) -> None:
    with pytest.raises(SettingsError, match=f"{name} is no longer a setting .*{hint}"):
        load_settings({name: "256"})


@pytest.mark.parametrize(("name", "value"), [("OMS_FEE_RATE", "\u0660.\u0660\u0660\u0661"),
                                             ("OMS_MARKET_HOLIDAYS", "\uff12\uff10\uff12\uff16-12-25")])
def test_numbers_and_dates_in_settings_take_ascii_digits_only(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings({name: value})
