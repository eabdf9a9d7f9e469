"""SQLite checkpoints run off the order path: a background thread folds the WAL back while writers go on.

The engine turns automatic checkpoints off (no commit pays for one), so without the checkpointer the WAL
would grow without limit. These tests are SQLite-only by nature: PostgreSQL has no WAL file of ours.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from oms.db.engine import WAL_SIZE_LIMIT_BYTES, WalCheckpointer, checkpoint, make_engine
from oms.db.migrate import upgrade
from oms.service.accounts import upsert_instruments
from oms.service.orders import Outcome
from oms.service.uow import Database
from tests.service.factories import INSTRUMENTS, NO_FEES, buy, count_rows, executor, funded_account, ledger_violations


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "wal.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    yield path


def wal_size(path: Path) -> int:
    wal = Path(f"{path}-wal")
    return wal.stat().st_size if wal.exists() else 0


def wait_for(condition, timeout_s: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_the_engine_never_checkpoints_by_itself_and_bounds_the_wal_file(sqlite_file: Path) -> None:
    engine = make_engine(f"sqlite:///{sqlite_file}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
            assert connection.exec_driver_sql("PRAGMA journal_size_limit").scalar() == WAL_SIZE_LIMIT_BYTES
    finally:
        engine.dispose()


def test_checkpoint_works_despite_the_begin_immediate_hook_and_truncate_empties_the_wal(sqlite_file: Path) -> None:
    database = Database(make_engine(f"sqlite:///{sqlite_file}"))
    try:
        upsert_instruments(database, INSTRUMENTS)
        funded_account(database, "ACC1", "100000")
        assert wal_size(sqlite_file) > 0
        result = checkpoint(database.engine, "PASSIVE")
        assert result is not None and result.caught_up and result.wal_frames > 0
        truncated = checkpoint(database.engine, "TRUNCATE")
        assert truncated is not None and not truncated.busy
        assert wal_size(sqlite_file) == 0
        with pytest.raises(ValueError, match="unknown checkpoint mode"):
            checkpoint(database.engine, "SOMETIMES")
    finally:
        database.dispose()


def test_the_background_checkpointer_keeps_up_while_concurrent_writers_are_unaffected(sqlite_file: Path) -> None:
    database = Database(make_engine(f"sqlite:///{sqlite_file}"), checkpoint_interval_s=0.02)
    checkpointer = database.checkpointer
    assert checkpointer is not None and checkpointer.running
    try:
        upsert_instruments(database, INSTRUMENTS)
        accounts = [funded_account(database, f"W{i}", "1000000") for i in range(4)]
        failures: list[BaseException] = []
        outcomes: list[Outcome] = []
        lock = threading.Lock()

        def writer(account: str) -> None:
            runner = executor(database, NO_FEES)
            try:
                for batch in range(15):
                    results = runner.execute([buy(account, f"{account}-{batch}-{i}", "1", "190.00") for i in range(10)])
                    with lock:
                        outcomes.extend(r.outcome for r in results)
            except BaseException as error:  # noqa: BLE001
                failures.append(error)

        threads = [threading.Thread(target=writer, args=(account,)) for account in accounts]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert failures == []
        assert outcomes == [Outcome.ACCEPTED] * 600
        assert count_rows(database, "orders") == 600
        assert wait_for(lambda: checkpointer.checkpoints >= 3)
        # Once writers stop, the next PASSIVE checkpoint has copied every frame back.
        assert wait_for(lambda: checkpointer.last is not None and checkpointer.last.caught_up)
        assert checkpointer.errors == 0
        assert ledger_violations(database) == []
    finally:
        database.dispose()
    assert not checkpointer.running


def test_postgres_databases_get_no_checkpointer(postgres_url: str) -> None:
    database = Database.from_url(postgres_url)
    try:
        assert database.checkpointer is None
        assert checkpoint(database.engine) is None
    finally:
        database.dispose()


def test_a_checkpointer_survives_its_database_file_disappearing(tmp_path: Path) -> None:
    path = tmp_path / "gone.sqlite3"
    engine: Engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    checkpointer = WalCheckpointer(engine, 0.01)
    try:
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(f"{path}{suffix}"):
                os.remove(f"{path}{suffix}")
        os.rmdir(tmp_path)
        assert wait_for(lambda: checkpointer.errors + checkpointer.checkpoints >= 2)
        assert checkpointer.running
    finally:
        checkpointer.stop()
        engine.dispose()


def test_a_read_only_connection_reads_while_a_writer_holds_the_lock_and_sees_only_committed_rows(
        sqlite_file: Path) -> None:
    from sqlalchemy import text

    from oms.db.engine import read_only

    engine = make_engine(f"sqlite:///{sqlite_file}")
    try:
        with engine.begin() as setup:
            setup.execute(text("CREATE TABLE scratch (x INTEGER)"))
        with engine.begin() as writer:  # BEGIN IMMEDIATE: the write lock is held until the block ends
            writer.execute(text("INSERT INTO scratch VALUES (1)"))
            started = time.monotonic()
            with read_only(engine) as reader:
                seen = reader.execute(text("SELECT count(*) FROM scratch")).scalar_one()
            assert time.monotonic() - started < 1.0  # did not wait for the writer (busy timeout is 30 s)
            assert seen == 0  # a snapshot of what is committed
        with read_only(engine) as reader:
            assert reader.execute(text("SELECT count(*) FROM scratch")).scalar_one() == 1
    finally:
        engine.dispose()
