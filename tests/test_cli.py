"""The ops CLI: each command works on a real database and every operator mistake is one line and a non-zero exit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import main
from oms.settings import get_settings


@pytest.fixture
def cli(cli_sqlite_url: str) -> CliRunner:
    return CliRunner()


def test_accounts_are_created_funded_and_shown(cli: CliRunner) -> None:
    assert cli.invoke(main, ["accounts", "create", "C1", "--cash", "1000.50"]).exit_code == 0
    assert cli.invoke(main, ["accounts", "withdraw", "C1", "0.50"]).exit_code == 0
    shown = cli.invoke(main, ["accounts", "show", "C1", "--json"])
    assert shown.exit_code == 0
    assert json.loads(shown.output)["cash"]["USD"]["withdrawable"] == "1000.00"
    assert cli.invoke(main, ["ledger", "verify"]).output.strip() == "ledger verify: ok"


@pytest.mark.parametrize(
    ("args", "exit_code", "message"),
    [
        (["accounts", "withdraw", "C1", "5000"], 1, "INSUFFICIENT_FUNDS"),
        (["accounts", "deposit", "C1", "abc"], 2, "not a decimal number"),
        (["accounts", "deposit", "C1", "--", "-5"], 2, "amount"),
        (["accounts", "deposit", "NOPE", "5"], 1, "unknown account NOPE"),
        (["accounts", "show", "NOPE"], 1, "unknown account NOPE"),
        (["ledger", "statement", "NOPE"], 1, "unknown account NOPE"),
        (["accounts", "create", "C1"], 1, "already exists"),
        (["accounts", "create", "bad name"], 2, "account id 'bad name' has characters outside"),
        (["accounts", "bogus"], 2, "No such command 'bogus'. (see '"),
        (["accounts", "create"], 2, "Missing argument 'ACCOUNT'."),
        (["orders", "list", "--limit", "0"], 2, "Invalid value for '--limit'"),
        (["--bogus"], 2, "No such option '--bogus'"),
        (["exchange", "fault", "bust"], 2, "give exactly one of --trade-id / --exec-id"),
        (["ledger", "settle", "--date", "2026-13-01"], 2, "is not a date"),
        (["orders", "list", "--status", "bogus"], 2, "unknown status"),
    ],
)
def test_operator_mistakes_are_one_line_and_a_nonzero_exit(cli: CliRunner, args: list[str], exit_code: int, message: str) -> None:
    cli.invoke(main, ["accounts", "create", "C1", "--cash", "100"])
    result = cli.invoke(main, args)
    assert result.exit_code == exit_code
    assert result.output.strip().splitlines() == [result.output.strip()]  # one line: no Usage/Try lines
    assert result.output.startswith("Error: ") and message in result.output


def test_demo_runs_the_order_path_and_leaves_a_clean_ledger(cli: CliRunner) -> None:
    result = cli.invoke(main, ["demo"])
    assert result.exit_code == 0, result.output
    assert "ExecutionReport Trade" in result.output  # the FIX client's marketable orders fill at the venue
    assert "ExecutionReport Replaced" in result.output and "ExecutionReport Canceled" in result.output
    assert "INSUFFICIENT_BUYING_POWER" in result.output
    assert "(same Idempotency-Key): 201, the same order" in result.output
    assert ": filled, filled 5 " in result.output  # the REST order, followed until the venue filled it
    assert result.output.strip().endswith("ledger verify: ok")


@pytest.fixture
def fixture_db_cli(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    """The CLI on the shared fixture database (fresh, migrated; SQLite and PostgreSQL)."""
    monkeypatch.setenv("OMS_DATABASE_URL", database_url)
    monkeypatch.setenv("OMS_LOG_LEVEL", "warning")
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_risk_kill_switch_halts_new_orders_globally_and_per_account_and_status_shows_it(fixture_db_cli: CliRunner) -> None:
    cli = fixture_db_cli
    from oms.domain.risk import ReasonCode
    from oms.service.accounts import upsert_instruments
    from oms.service.orders import ServiceConfig
    from oms.service.uow import Database
    from tests.service.factories import INSTRUMENTS, buy, executor

    assert cli.invoke(main, ["accounts", "create", "C1", "--cash", "10000"]).exit_code == 0
    assert cli.invoke(main, ["accounts", "create", "C2", "--cash", "10000"]).exit_code == 0
    on = cli.invoke(main, ["risk", "kill-switch", "on", "--account", "C1"])
    assert (on.exit_code, on.output.strip()) == (0, "kill switch on for account C1")
    assert cli.invoke(main, ["risk", "kill-switch", "on"]).output.strip() == "kill switch on for all accounts"
    status = json.loads(cli.invoke(main, ["risk", "status", "--json"]).output)
    assert status["global_kill_switch"] is True
    assert status["trading_calendar"] == "always"
    assert [(a["account"], a["kill_switch"]) for a in status["accounts"]] == [("C1", True), ("C2", False)]
    assert "global kill switch: ON" in cli.invoke(main, ["risk", "status"]).output

    database = Database.from_url(get_settings().database_url, checkpoint_interval_s=None)
    try:
        upsert_instruments(database, INSTRUMENTS)
        runner = executor(database, ServiceConfig())
        assert str(runner.one(buy("C2", "O1", "1", "190.00")).denial) == "KILL_SWITCH: scope=all"
        assert cli.invoke(main, ["risk", "kill-switch", "off"]).exit_code == 0
        assert runner.one(buy("C2", "O2", "1", "190.00")).outcome.value == "accepted"
        denied = runner.one(buy("C1", "O3", "1", "190.00")).denial
        assert denied is not None and denied.reason is ReasonCode.KILL_SWITCH
        assert cli.invoke(main, ["risk", "kill-switch", "off", "--account", "C1"]).exit_code == 0
        assert runner.one(buy("C1", "O4", "1", "190.00")).outcome.value == "accepted"
    finally:
        database.dispose()
    table = cli.invoke(main, ["risk", "status", "--account", "C1"]).output
    assert "global kill switch: off" in table and "C1" in table and "C2" not in table


@pytest.mark.parametrize(
    ("args", "exit_code", "message"),
    [
        (["risk", "kill-switch", "on", "--account", "NOPE"], 1, "unknown account NOPE"),
        (["risk", "kill-switch", "maybe"], 2, "'maybe' is not one of"),
        (["risk", "status", "--account", "NOPE"], 1, "unknown account NOPE"),
    ],
)
def test_risk_command_mistakes_are_one_line_and_a_nonzero_exit(
    fixture_db_cli: CliRunner, args: list[str], exit_code: int, message: str
) -> None:
    result = fixture_db_cli.invoke(main, args)
    assert (result.exit_code, message in result.output, "Traceback" in result.output) == (exit_code, True, False), result.output


REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("target", ["no/such/dir/trades.csv", "/proc/trades.csv"])
def test_an_exchange_report_that_cannot_be_written_is_refused_before_the_journal_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    import exchange.report_cmd

    def no_replay(*_args: object) -> None:
        raise AssertionError("the journal was replayed for a report that cannot be written")

    monkeypatch.setattr(exchange.report_cmd, "offline_rows", no_replay)
    output = tmp_path / target
    result = CliRunner().invoke(main, ["exchange", "report", "--config", str(REPO / "sessions.cfg"),
                                       "--date", "2026-11-23", "--output", str(output)])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [f"Error: --output {output}: cannot write there (No such file or directory)"]


@pytest.mark.parametrize("args", [["reconcile", "--date", "2026-11-23", "--report", "trades.csv"], ["api"],
                                  ["accounts", "show", "C1"]])
def test_an_invalid_setting_stops_any_command_with_one_line_naming_it(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    monkeypatch.setenv("OMS_FEE_RATE", "-0.1")
    get_settings.cache_clear()
    result = cli.invoke(main, args)
    assert result.exit_code == 2  # bad input, from the environment
    assert result.output.strip().splitlines() == [
        "Error: invalid OMS_FEE_RATE: must be a fraction of the notional from 0 up to (not including) 1, got -0.1"]


def test_the_certification_password_setting_is_sent_on_logon_and_trips_no_other_command(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli import certify_cmd

    targets = []
    monkeypatch.setattr(certify_cmd, "run_all", lambda scripts, target: targets.append(target) or [])
    monkeypatch.setenv("OMS_CERTIFY_PASSWORD", "s3cret")
    get_settings.cache_clear()
    assert cli.invoke(main, ["accounts", "create", "C1"]).exit_code == 0
    assert cli.invoke(main, ["certify", "--only", "1S-a"]).exit_code == 0
    assert cli.invoke(main, ["certify", "--only", "1S-a", "--password", "given"]).exit_code == 0
    assert [dict(target.logon_fields).get(554) for target in targets] == ["s3cret", "given"]


@pytest.mark.parametrize(
    ("args", "exit_code"),
    [
        (["accounts", "show", "CLIENT1"], 1),
        (["accounts", "deposit", "CLIENT1", "5"], 1),
        (["orders", "list"], 1),
        (["ledger", "verify"], 1),
        (["ledger", "statement", "CLIENT1"], 1),
        (["risk", "status"], 1),
        (["api-keys", "revoke", "k1"], 1),
        (["gateway", "unresolved"], 1),
        (["api"], 1),
        (["reconcile", "--date", "2026-11-23", "--report", "trades.csv"], 2),  # 2: the run could not be done
    ],
)
def test_a_command_on_a_missing_sqlite_file_refuses_instead_of_creating_an_empty_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], exit_code: int
) -> None:
    import uvicorn

    def no_serving(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the API was started on a database that does not exist")

    monkeypatch.setattr(uvicorn, "run", no_serving)
    missing = tmp_path / "no" / "such" / "oms.sqlite3"
    monkeypatch.setenv("OMS_DATABASE_URL", f"sqlite:///{missing}")
    monkeypatch.setenv("OMS_LOG_LEVEL", "warning")
    get_settings.cache_clear()
    result = CliRunner().invoke(main, args)
    get_settings.cache_clear()
    assert result.exit_code == exit_code, result.output
    assert result.output.strip().splitlines() == [
        f"Error: no database at {missing} (OMS_DATABASE_URL): create it with `oms db upgrade`"]
    assert not (tmp_path / "no").exists()


def test_db_upgrade_creates_a_missing_sqlite_database_and_its_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = tmp_path / "var" / "oms.sqlite3"
    monkeypatch.setenv("OMS_DATABASE_URL", f"sqlite:///{fresh}")
    get_settings.cache_clear()
    assert CliRunner().invoke(main, ["db", "upgrade"]).exit_code == 0
    assert CliRunner().invoke(main, ["orders", "list"]).output.strip().endswith("0 order(s)")
    get_settings.cache_clear()
    assert fresh.is_file()


@pytest.mark.parametrize("day", ["20261123", "2026-W47-1", "2026-1-5", "2026-11-23T00:00", "2026-11-31", " 2026-11-23"])
@pytest.mark.parametrize(
    "command",
    [
        ["ledger", "settle"],
        ["reconcile", "--report", "trades.csv"],
        ["exchange", "report", "--config", str(REPO / "sessions.cfg")],
    ],
)
def test_every_date_option_takes_exactly_yyyy_mm_dd(cli: CliRunner, command: list[str], day: str) -> None:
    result = cli.invoke(main, [*command, "--date", day])
    assert result.exit_code == 2, result.output
    assert f"{day!r} is not a date (YYYY-MM-DD)" in result.output and "Traceback" not in result.output


def test_market_holidays_are_exactly_yyyy_mm_dd_too() -> None:
    from oms.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match="invalid OMS_MARKET_HOLIDAYS: '20261225' is not a date"):
        load_settings({"OMS_MARKET_HOLIDAYS": "20261225"})


def test_hash_password_refuses_an_empty_password() -> None:
    result = CliRunner().invoke(main, ["gateway", "hash-password", "--password", ""])  # the prompt asks again itself
    assert result.exit_code == 2, result.output
    assert "empty password" in result.output and "PasswordHash=" not in result.output


def test_hash_password_prints_a_scrypt_hash_line() -> None:
    result = CliRunner().invoke(main, ["gateway", "hash-password", "--password", "s3cret"])
    assert result.exit_code == 0 and result.output.startswith("PasswordHash=scrypt$")
