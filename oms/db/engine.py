"""Database engines for the two supported backends, tuned for durable group commit.

SQLite: WAL with ``synchronous=FULL`` (a commit survives power loss), ``BEGIN IMMEDIATE`` so a writer takes
the write lock before it reads what it will change (serialized writes keep invariants), and automatic
checkpoints off: a committing writer would otherwise copy the WAL into the database file inside its own
commit. :class:`WalCheckpointer` runs them from a background thread instead, off the order path, and
``journal_size_limit`` truncates the WAL file once a checkpoint has caught up, so the WAL stays bounded.
PostgreSQL: psycopg 3; invariants are kept by row locks taken in a fixed order.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url

WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024
READ_ONLY_OPTION = "oms_read_only"
# Seconds a PostgreSQL connect may take (libpq ``connect_timeout``) unless the URL sets its own.
PG_CONNECT_TIMEOUT_S = 5


def make_engine(url: str, *, pool_size: int = 8) -> Engine:
    """Create the engine for ``url`` with the pragmas and locking the OMS relies on."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
        connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S  # a stalled server must not hang a connect
    return create_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, connect_args=connect_args
    )


def _sqlite_engine(url: str) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 30, "isolation_level": None},
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Any) -> None:
        if connection.get_execution_options().get(READ_ONLY_OPTION):
            connection.exec_driver_sql("BEGIN")  # deferred: a WAL snapshot that neither takes nor waits for the lock
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def read_only(engine: Engine) -> Connection:
    """A connection for reads that change nothing: on SQLite its transactions read a WAL snapshot instead of
    taking the write lock (so a read never queues behind a writer's fsync, nor holds a writer up)."""
    return engine.connect().execution_options(**{READ_ONLY_OPTION: True})


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


@dataclass(frozen=True, slots=True)
class CheckpointResult:
    """What ``PRAGMA wal_checkpoint`` reports: whether it was blocked, WAL frames, frames copied back."""

    busy: bool
    wal_frames: int
    checkpointed_frames: int

    @property
    def caught_up(self) -> bool:
        return not self.busy and self.wal_frames == self.checkpointed_frames


def checkpoint(engine: Engine, mode: str = "PASSIVE") -> CheckpointResult | None:
    """Fold the SQLite WAL back into the database file; None on PostgreSQL.

    Runs on a raw DBAPI connection in autocommit: ``engine.connect()`` would fire the ``BEGIN IMMEDIATE``
    hook first, and SQLite refuses a checkpoint inside a transaction. PASSIVE never waits for writers;
    TRUNCATE waits for them (busy timeout) and empties the WAL file, so use it when the system is idle.
    """
    if not is_sqlite(engine):
        return None
    if mode not in ("PASSIVE", "FULL", "RESTART", "TRUNCATE"):
        raise ValueError(f"unknown checkpoint mode {mode!r}")
    raw = engine.raw_connection()
    try:
        row = raw.driver_connection.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()  # type: ignore[union-attr]
    finally:
        raw.close()
    busy, frames, copied = row if row is not None else (0, 0, 0)
    return CheckpointResult(busy=bool(busy), wal_frames=int(frames), checkpointed_frames=int(copied))


class WalCheckpointer:
    """A daemon thread that checkpoints a SQLite database every ``interval_s`` seconds (PASSIVE).

    A no-op for PostgreSQL. Writers never wait for it: a PASSIVE checkpoint copies what it can without
    taking the write lock. Errors (a database file removed under it, say) are counted and retried, never
    raised into the order path.
    """

    def __init__(self, engine: Engine, interval_s: float = 1.0) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self._engine = engine
        self._interval_s = interval_s
        self._stop = threading.Event()
        self.checkpoints = 0
        self.errors = 0
        self.seconds = 0.0
        self.last: CheckpointResult | None = None
        self._thread: threading.Thread | None = None
        if is_sqlite(engine):
            self._thread = threading.Thread(target=self._loop, name="wal-checkpoint", daemon=True)
            self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            started = time.perf_counter()
            try:
                self.last = checkpoint(self._engine, "PASSIVE")
                self.checkpoints += 1
            except Exception:  # noqa: BLE001 - a background chore must not die on one failure
                self.errors += 1
            self.seconds += time.perf_counter() - started

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)


def ping(engine: Engine) -> None:
    """Raise if the database cannot be reached."""
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
