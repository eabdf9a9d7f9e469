"""``oms instruments``: the instrument master is loaded from the CLI, and a running service sees it without a restart."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli.main import main
from oms.service import uow as uow_module
from oms.service.uow import Database
from oms.settings import get_settings


@pytest.fixture
def database_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "instruments.sqlite3"
    monkeypatch.setenv("OMS_DATABASE_URL", f"sqlite:///{path}")
    monkeypatch.setenv("OMS_LOG_LEVEL", "warning")
    get_settings.cache_clear()
    assert oms("db", "upgrade").exit_code == 0
    yield path
    get_settings.cache_clear()


def oms(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def listed(*args: str) -> list[dict[str, object]]:
    result = oms("instruments", "list", "--json", *args)
    assert result.exit_code == 0, result.output
    return list(json.loads(result.output))


def test_the_venues_instruments_load_by_default_and_list_with_their_reference_prices(database_file: Path) -> None:
    assert listed() == []
    loaded = oms("instruments", "load")
    assert loaded.exit_code == 0, loaded.output
    symbols = {str(row["symbol"]): row for row in listed()}
    assert {"AAPL", "MSFT", "GOOG", "TSLA", "SPY"} <= set(symbols)
    assert symbols["AAPL"]["tick_size"] == "0.01" and symbols["AAPL"]["reference_price"] is not None
    assert oms("instruments", "load").exit_code == 0  # a second load refreshes, it does not duplicate
    assert len(listed()) == len(symbols)


def test_a_file_adds_its_instruments_and_leaves_the_others(database_file: Path, tmp_path: Path) -> None:
    assert oms("instruments", "load").exit_code == 0
    before = len(listed())
    extra = tmp_path / "extra.csv"
    extra.write_text("symbol,currency,tick_size,lot_size,reference_price,fee_rate\nIBM,USD,0.01,1,171.25,\n")
    result = oms("instruments", "load", str(extra))
    assert result.exit_code == 0 and "IBM" in result.output
    symbols = {str(row["symbol"]): row for row in listed()}
    assert len(symbols) == before + 1 and symbols["IBM"]["reference_price"] == "171.25"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        ("symbol,currency\nAAPL,USD\n", "not an instruments file"),
        ("symbol,currency,tick_size,lot_size,reference_price\nAAPL,USD,0.01,1,abc\n", "not an instruments file"),
        ("symbol,currency,tick_size,lot_size,reference_price\n", "no instruments"),
    ],
)
def test_a_bad_file_is_one_line_exit_2_and_loads_nothing(
    database_file: Path, tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "instruments.csv"
    if content is not None:
        path.write_text(content)
    result = oms("instruments", "load", str(path))
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert listed() == []


def test_a_running_service_sees_a_load_without_a_restart(database_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    database = Database.from_url(f"sqlite:///{database_file}")  # a service's long-lived handle
    try:
        with database.engine.connect() as connection:
            assert database.instruments(connection) == {}  # cached empty
        assert oms("instruments", "load").exit_code == 0  # another process: no invalidation reaches us
        monkeypatch.setattr(uow_module, "INSTRUMENTS_TTL_S", 0.0)  # the cache's time limit has passed
        with database.engine.connect() as connection:
            assert "AAPL" in database.instruments(connection)
    finally:
        database.dispose()
