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
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("OMS_DATABASE_URL", f"sqlite:///{tmp_path / 'oms.sqlite3'}")
    monkeypatch.setenv("OMS_LOG_LEVEL", "warning")
    get_settings.cache_clear()
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0
    yield runner
    get_settings.cache_clear()


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
        (["accounts", "create", "C1"], 1, "already exists"),
        (["ledger", "settle", "--date", "2026-13-01"], 2, "is not a date"),
        (["orders", "list", "--status", "bogus"], 2, "unknown status"),
    ],
)
def test_operator_mistakes_are_one_line_and_a_nonzero_exit(cli: CliRunner, args: list[str], exit_code: int, message: str) -> None:
    cli.invoke(main, ["accounts", "create", "C1", "--cash", "100"])
    result = cli.invoke(main, args)
    assert result.exit_code == exit_code
    assert message in result.output
    assert "Traceback" not in result.output


def test_demo_runs_the_order_path_and_leaves_a_clean_ledger(cli: CliRunner) -> None:
    result = cli.invoke(main, ["demo"])
    assert result.exit_code == 0, result.output
    assert "INSUFFICIENT_BUYING_POWER" in result.output
    assert result.output.strip().endswith("ledger verify: ok")
