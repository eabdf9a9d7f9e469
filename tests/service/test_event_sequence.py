"""Order events are numbered per account, 1, 2, 3, ... with no gap, and handed to an on_commit hook once durable."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from oms.db.engine import make_engine
from oms.db.migrate import upgrade
from oms.service.executor import CommandExecutor
from oms.service.orders import Outcome
from oms.service.uow import Database
from tests.service.factories import NO_FEES, buy, fill, funded_account, setup_database


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    database = setup_database(database_url)
    funded_account(database, "A1", "100000")
    funded_account(database, "A2", "100000")
    yield database
    database.dispose()


def _sequences(database: Database) -> dict[str, list[int]]:
    with database.engine.connect() as connection:
        rows = connection.execute(text("SELECT account_id, account_seq FROM order_events ORDER BY account_id, id")).all()
        counters = dict(connection.execute(text("SELECT id, event_seq FROM accounts")).all())
    found: dict[str, list[int]] = {}
    for account, seq in rows:
        found.setdefault(account, []).append(int(seq))
    for account, seqs in found.items():
        assert int(counters[account]) == seqs[-1], (account, counters[account], seqs[-1])
    return found


def test_each_accounts_events_are_numbered_from_one_without_gaps_in_commit_order(database: Database) -> None:
    runner = CommandExecutor(database, NO_FEES)
    placed = runner.execute([buy("A1", "C1", "1"), buy("A2", "C1", "1"), buy("A1", "C2", "1"), buy("A1", "Z", "0")])
    assert [r.outcome for r in placed] == [Outcome.ACCEPTED, Outcome.ACCEPTED, Outcome.ACCEPTED, Outcome.DENIED]
    runner.execute([fill(r.venue_cl_ord_id, "1", "100.00") for r in placed[:3]])  # type: ignore[arg-type]
    assert runner.one(buy("A2", "C1", "1")).outcome is Outcome.DUPLICATE  # writes no event
    sequences = _sequences(database)
    assert sequences["A1"] == [1, 2, 3, 4]  # two placed, two filled
    assert sequences["A2"] == [1, 2]


def test_on_commit_gets_the_events_with_their_ids_after_they_are_durable(database: Database) -> None:
    seen: list[list[dict[str, Any]]] = []
    visible: list[int] = []

    def hook(rows: list[dict[str, Any]]) -> None:
        seen.append(rows)
        with database.engine.connect() as connection:  # another connection already sees them: committed
            visible.append(int(connection.execute(text("SELECT COUNT(*) FROM order_events")).scalar_one()))

    runner = CommandExecutor(database, NO_FEES, on_commit=hook)
    results = runner.execute([buy("A1", "C1", "1"), buy("A2", "C1", "1")])
    runner.one(fill(results[0].venue_cl_ord_id, "1", "100.00"))  # type: ignore[arg-type]
    assert runner.one(buy("A1", "C1", "1")).outcome is Outcome.DUPLICATE  # nothing written, no call
    assert len(seen) == 2 and visible == [2, 3]
    with database.engine.connect() as connection:
        stored = {
            int(row.id): (row.account_id, int(row.account_seq), row.kind)
            for row in connection.execute(text("SELECT id, account_id, account_seq, kind FROM order_events"))
        }
    handed = {row["id"]: (row["account_id"], row["account_seq"], row["kind"]) for rows in seen for row in rows}
    assert handed == stored
    assert [row["kind"] for row in seen[1]] == ["order.filled"]
    assert seen[1][0]["payload"]["cum_qty"] == "1"


def test_a_failing_on_commit_hook_does_not_undo_or_fail_the_commit(database: Database) -> None:
    def hook(rows: list[dict[str, Any]]) -> None:
        raise RuntimeError("redis is down")

    result = CommandExecutor(database, NO_FEES, on_commit=hook).one(buy("A1", "C1", "1"))
    assert result.outcome is Outcome.ACCEPTED
    assert _sequences(database) == {"A1": [1]}


def test_concurrent_writers_on_one_account_never_share_or_skip_a_number(database: Database) -> None:
    errors: list[BaseException] = []

    def client(prefix: str) -> None:
        runner = CommandExecutor(database, NO_FEES)
        try:
            for n in range(15):
                assert runner.one(buy("A1", f"{prefix}{n}", "1")).outcome is Outcome.ACCEPTED
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=client, args=(p,)) for p in ("X", "Y", "Z")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert _sequences(database)["A1"] == list(range(1, 46))


def test_the_migration_numbers_existing_events_per_account_in_id_order(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    upgrade(engine, "0002_rest")
    with engine.begin() as connection:
        for account in ("B", "A"):
            connection.execute(
                text(
                    "INSERT INTO accounts (id, status, currency, max_order_qty, max_order_notional, price_collar_pct,"
                    " market_collar_pct, max_orders_per_second, kill_switch, created_at)"
                    " VALUES (:id, 'active', 'USD', '1', '1', '1', '1', 0, 0, '2026-01-01 00:00:00.000000')"
                ),
                {"id": account},
            )
        for account in ("A", "B", "A", "A", "B"):
            connection.execute(
                text(
                    "INSERT INTO order_events (account_id, kind, order_id, payload, created_at)"
                    " VALUES (:a, 'k', NULL, '{}', '2026-01-01 00:00:00.000000')"
                ),
                {"a": account},
            )
    upgrade(engine)
    with engine.connect() as connection:
        numbered = connection.execute(text("SELECT account_id, account_seq FROM order_events ORDER BY id")).all()
        counters = dict(connection.execute(text("SELECT id, event_seq FROM accounts")).all())
    engine.dispose()
    assert [(a, int(s)) for a, s in numbered] == [("A", 1), ("B", 1), ("A", 2), ("A", 3), ("B", 2)]
    assert counters == {"A": 3, "B": 2}
