"""One typed settings object for the whole process, read once from ``OMS_*`` environment variables.

Why a strict loader: a mistyped variable (``OMS_DATABSE_URL``) silently falling back to the default would
send a production gateway to a SQLite file. Unknown ``OMS_*`` names and invalid values stop the process at
start with a message naming the setting.
"""

from __future__ import annotations

import math
import os
import re
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "OMS_"
DEFAULT_VAR_DIR = Path("var")
# Money and rates are written as plain decimals: "1e3" for a fee rate is a typo, not a thousand.
_PLAIN_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")  # ASCII digits: \d takes any script's
MAX_SETTLEMENT_DAYS = 30


_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_iso_day(text: str) -> date:
    """A calendar day written exactly YYYY-MM-DD; ``date.fromisoformat`` alone also takes 20261123 and 2026-W47-1."""
    if _ISO_DAY.fullmatch(text) is None:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD)") from None


class SettingsError(Exception):
    """A setting is unknown or invalid; the message names it."""


class Settings(BaseSettings):
    """Process configuration. Every field maps to ``OMS_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    database_url: str = f"sqlite:///{DEFAULT_VAR_DIR / 'oms.sqlite3'}"
    redis_url: str | None = None
    var_dir: Path = DEFAULT_VAR_DIR
    sessions_cfg: Path = Path("sessions.cfg")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"
    # Settlement cycle for sale proceeds, in business days.
    settlement_days: int = 2
    # Default per-account risk parameters given to accounts created without explicit limits.
    default_max_order_qty: Decimal = Decimal("1000000")
    default_max_order_notional: Decimal = Decimal("10000000")
    default_price_collar_pct: Decimal = Decimal("0.10")
    default_market_collar_pct: Decimal = Decimal("0.05")
    fee_rate: Decimal = Decimal("0.0005")
    fee_minimum: Decimal = Decimal("0")
    # Trading calendar: "always" (24x7, the default for the demo, the simulator and tests) or "us-equities"
    # (09:30-16:00 America/New_York, Monday to Friday, minus OMS_MARKET_HOLIDAYS).
    trading_calendar: Literal["always", "us-equities"] = "always"
    # Comma-separated ISO dates on which the market is closed (also skipped by T+N settlement).
    market_holidays: str = ""
    # Orders per second an account may place (a sliding one-second window kept in the database); an
    # account's own non-zero ``max_orders_per_second`` overrides it; 0 means no limit.
    max_orders_per_second: int = 1000
    # SQLite only: how often a background thread folds the WAL back into the database file (seconds).
    sqlite_checkpoint_interval_s: float = 1.0
    # `oms certify`: the Password (554) sent on Logon when --password is not given (kept out of argv and logs).
    certify_password: SecretStr | None = None

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql")):
            raise ValueError("must be a sqlite:/// or postgresql+psycopg:// URL")
        if value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value.removeprefix("postgresql://")
        return value

    @field_validator("redis_url")
    @classmethod
    def _known_redis(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis:// URL")
        return value

    @field_validator("market_holidays")
    @classmethod
    def _iso_dates(cls, value: str) -> str:
        for part in filter(None, (piece.strip() for piece in value.split(","))):
            parse_iso_day(part)
        return value

    @property
    def holidays(self) -> frozenset[date]:
        return frozenset(parse_iso_day(part.strip()) for part in self.market_holidays.split(",") if part.strip())

    @field_validator("sqlite_checkpoint_interval_s")
    @classmethod
    def _positive_interval(cls, value: float) -> float:
        if not value > 0:
            raise ValueError("must be a positive number of seconds")
        return value

    @field_validator("default_max_order_qty", "default_max_order_notional")
    @classmethod
    def _positive_limit(cls, value: Decimal) -> Decimal:
        if not value.is_finite() or value <= 0:
            raise ValueError("must be a positive number")
        return value

    @field_validator("default_price_collar_pct", "default_market_collar_pct")
    @classmethod
    def _fraction(cls, value: Decimal) -> Decimal:
        if not value.is_finite() or not 0 < value < 1:
            raise ValueError("must be a fraction between 0 and 1 (0.10 is 10%)")
        return value

    @field_validator("sqlite_checkpoint_interval_s")
    @classmethod
    def _finite_interval(cls, value: float) -> float:
        if math.isinf(value):
            raise ValueError("must be a finite number of seconds")
        return value

    @field_validator("fee_rate", "fee_minimum", mode="before")
    @classmethod
    def _plain_decimal(cls, value: object) -> object:
        if isinstance(value, str) and _PLAIN_DECIMAL.fullmatch(value.strip()) is None:
            raise ValueError(f"{value!r} is not a plain decimal number (such as 0.0005)")
        return value

    @field_validator("fee_rate")
    @classmethod
    def _fraction_of_notional(cls, value: Decimal) -> Decimal:
        if not Decimal(0) <= value < 1:
            raise ValueError(f"must be a fraction of the notional from 0 up to (not including) 1, got {value}")
        return value

    @field_validator("settlement_days")
    @classmethod
    def _settlement_cycle(cls, value: int) -> int:
        if not 0 <= value <= MAX_SETTLEMENT_DAYS:
            raise ValueError(f"must be a number of business days from 0 to {MAX_SETTLEMENT_DAYS}, got {value}")
        return value

    @field_validator("fee_minimum", "max_orders_per_second")
    @classmethod
    def _not_negative(cls, value: Decimal | int) -> Decimal | int:
        if value < 0:
            raise ValueError(f"must not be negative, got {value}")
        return value


# Names that were settings once but configured nothing: refused with where the thing is configured instead.
RETIRED = {
    "OMS_GROUP_COMMIT_MAX_BATCH": "the gateway's commands per commit are [GATEWAY] MaxBatch in sessions.cfg",
    "OMS_GROUP_COMMIT_MAX_WAIT_MS": "the gateway commits what its queue holds without waiting for company",
}


def _unknown_names(environ: dict[str, str]) -> list[str]:
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    return sorted(name for name in environ if name.startswith(ENV_PREFIX) and name not in known)


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Build settings from ``environ`` (default: the process environment), refusing unknown names."""
    env = dict(os.environ if environ is None else environ)
    retired = sorted(name for name in RETIRED if name in env)
    if retired:
        raise SettingsError(f"{retired[0]} is no longer a setting (it configured nothing): {RETIRED[retired[0]]}")
    unknown = _unknown_names(env)
    if unknown:
        raise SettingsError(f"unknown setting {', '.join(unknown)} (known: {_known_list()})")
    values = {
        name: env[ENV_PREFIX + name.upper()]
        for name in Settings.model_fields
        if ENV_PREFIX + name.upper() in env
    }
    try:
        return Settings.model_validate(values)
    except ValidationError as error:
        first = error.errors()[0]
        name = ENV_PREFIX + str(first["loc"][0]).upper() if first["loc"] else "settings"
        reason = first.get("ctx", {}).get("error") if first["type"] == "value_error" else None
        raise SettingsError(f"invalid {name}: {reason or first['msg']}") from None


def _known_list() -> str:
    return ", ".join(ENV_PREFIX + name.upper() for name in Settings.model_fields)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, loaded on first use."""
    return load_settings()
