"""``oms accounts deposit|withdraw``: a reference books once, for one account and one amount; no fraction of a cent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli.main import main
from oms.settings import get_settings


@pytest.fixture(autouse=True)
def books(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("OMS_DATABASE_URL", f"sqlite:///{tmp_path / 'money.sqlite3'}")
    monkeypatch.setenv("OMS_LOG_LEVEL", "warning")
    get_settings.cache_clear()
    for args in (["db", "upgrade"], ["accounts", "create", "ALICE"], ["accounts", "create", "BOB"]):
        assert oms(*args).exit_code == 0
    yield
    get_settings.cache_clear()


def oms(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def available(account: str) -> str:
    return str(json.loads(oms("accounts", "show", account, "--json").output)["cash"]["USD"]["available"])


def test_a_reference_repeated_with_the_same_account_and_amount_books_once() -> None:
    first, again = oms("accounts", "deposit", "ALICE", "100", "--reference", "R1"), oms("accounts", "deposit", "ALICE", "100.00", "--reference", "R1")
    assert first.exit_code == again.exit_code == 0 and first.output == again.output.replace("100.00", "100")
    assert available("ALICE") == "100"


@pytest.mark.parametrize(("account", "amount"), [("ALICE", "999"), ("BOB", "100")])
def test_a_reference_reused_for_another_account_or_amount_is_refused(account: str, amount: str) -> None:
    assert oms("accounts", "deposit", "ALICE", "100", "--reference", "R1").exit_code == 0
    result = oms("accounts", "deposit", account, amount, "--reference", "R1")
    assert result.exit_code == 1 and "already used for 100 to ALICE" in result.output
    assert (available("ALICE"), available("BOB")) == ("100", "0")


@pytest.mark.parametrize("command", ["deposit", "withdraw"])
def test_a_fraction_of_a_cent_is_refused(command: str) -> None:
    assert oms("accounts", "deposit", "ALICE", "10").exit_code == 0
    result = oms("accounts", command, "ALICE", "1.234567891234")
    assert result.exit_code == 2 and "INVALID_AMOUNT" in result.output and "Traceback" not in result.output
    assert available("ALICE") == "10"
