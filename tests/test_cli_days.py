"""Dates given to the ops CLI: a settlement or a reconciliation is of a day that has come, never of a future one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from click.testing import CliRunner

from cli.main import main
from oms.domain.enums import ExecType, OrderStatus
from oms.service.executor import CommandExecutor
from oms.service.orders import Outcome
from tests.service.factories import (
    NO_FEES,
    cash,
    funded_account,
    position_of,
    report,
    sell,
    setup_database,
)


@pytest.fixture
def url(cli_sqlite_url: str) -> str:
    return cli_sqlite_url


def sale(url: str, cl_ord_id: str, traded: datetime) -> None:
    """ACC1 sells 10 AAPL, filled at ``traded`` (its trade date)."""
    database = setup_database(url)
    try:
        runner = CommandExecutor(database, NO_FEES, clock=lambda: traded)
        placed = runner.one(sell("ACC1", cl_ord_id, "10", "190.00"))
        assert placed.outcome is Outcome.ACCEPTED and placed.venue_cl_ord_id is not None
        filled = runner.one(report(placed.venue_cl_ord_id, ExecType.TRADE, OrderStatus.FILLED, last_qty="10",
                                   last_px="190.00", transact_time=traded))  # fmt: skip
        assert filled.outcome is Outcome.APPLIED
    finally:
        database.dispose()


def unsettled(url: str) -> Decimal:
    database = setup_database(url)
    try:
        return cash(database, "ACC1")[2]
    finally:
        database.dispose()


def test_settle_refuses_a_future_date_and_by_default_settles_only_what_is_due(url: str) -> None:
    """A future --date would make sale proceeds withdrawable before the money arrives (an operator's typo of
    2027 for 2026 would release every unsettled sale at once); it is refused and books nothing."""
    database = setup_database(url)
    funded_account(database, "ACC1", "3800")
    position_of(database, "ACC1", "AAPL", "20", "190.00")
    database.dispose()
    now = datetime.now(UTC)
    sale(url, "OLD", now - timedelta(days=14))  # due long ago
    sale(url, "NEW", now)  # due in two business days
    assert unsettled(url) == Decimal("3800.00")

    far = (now + timedelta(days=400)).date().isoformat()
    refused = CliRunner().invoke(main, ["ledger", "settle", "--date", far])
    assert refused.exit_code == 1, refused.output
    assert refused.output.startswith("Error: ") and "in the future" in refused.output
    assert unsettled(url) == Decimal("3800.00")

    settled = CliRunner().invoke(main, ["ledger", "settle"])
    assert settled.exit_code == 0, settled.output
    assert settled.output.startswith("settled 1 sale(s)")
    assert unsettled(url) == Decimal("1900.00")
