"""A command that raises inside a batch gets a FAILED result of its own; its neighbours keep theirs.

The failure is real: a database trigger refuses orders with ClOrdID 'BAD' (SQLite: RAISE(ABORT), an
IntegrityError; PostgreSQL: RAISE EXCEPTION, an InternalError), so the batch's commit fails and the
executor has to isolate the culprit.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from oms.service.executor import CommandExecutor, GroupCommitter
from oms.service.orders import Outcome
from oms.service.uow import Database
from tests.service.factories import (
    NO_FEES,
    buy,
    count_rows,
    execute_sql,
    funded_account,
    ledger_violations,
    setup_database,
)


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    database = setup_database(database_url)
    funded_account(database, "ACC1", "100000")
    if database.is_postgres:
        execute_sql(
            database,
            "CREATE FUNCTION refuse_bad() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF NEW.cl_ord_id = 'BAD' THEN RAISE EXCEPTION 'refused by test trigger'; END IF; RETURN NEW; END $$",
        )
        execute_sql(database, "CREATE TRIGGER refuse_bad BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION refuse_bad()")
    else:
        execute_sql(
            database,
            "CREATE TRIGGER refuse_bad BEFORE INSERT ON orders WHEN NEW.cl_ord_id = 'BAD' "
            "BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END",
        )
    yield database
    database.dispose()


def test_the_failing_command_gets_failed_and_the_others_commit_with_their_results(database: Database) -> None:
    results = CommandExecutor(database, NO_FEES).execute(
        [buy("ACC1", "OK1", "1", "100.00"), buy("ACC1", "BAD", "1", "100.00"), buy("ACC1", "OK2", "1", "100.00")]
    )
    assert [r.outcome for r in results] == [Outcome.ACCEPTED, Outcome.FAILED, Outcome.ACCEPTED]
    failed = results[1]
    assert not failed.ok
    assert failed.order is None and failed.detail is not None and "refused by test trigger" in failed.detail
    assert count_rows(database, "orders") == 2
    assert count_rows(database, "orders", "WHERE cl_ord_id = 'BAD'") == 0
    assert count_rows(database, "reservations") == 2
    assert ledger_violations(database) == []


def test_a_failing_command_alone_is_failed_not_raised(database: Database) -> None:
    result = CommandExecutor(database, NO_FEES).one(buy("ACC1", "BAD", "1", "100.00"))
    assert result.outcome is Outcome.FAILED
    assert count_rows(database, "orders") == 0
    assert count_rows(database, "journal_entries", "WHERE kind = 'reserve'") == 0


def test_group_commit_hands_the_failure_to_its_own_caller_only(database: Database) -> None:
    committer = GroupCommitter(CommandExecutor(database, NO_FEES), max_batch=8, max_wait_s=0.05)
    try:
        futures = [committer.submit(buy("ACC1", cl, "1", "100.00")) for cl in ("G1", "BAD", "G2")]
        outcomes = [future.result(30).outcome for future in futures]
    finally:
        committer.close()
    assert outcomes == [Outcome.ACCEPTED, Outcome.FAILED, Outcome.ACCEPTED]
    assert count_rows(database, "orders") == 2
