"""Transactions whose commit does not wait for the disk, for records that can be rebuilt after a crash.

Every order, reservation and fill commits durably. A few bookkeeping writes need not: a lost "sent" mark on
an outbox row only makes the next start send the row again with PossResend=Y, and a lost reference price
comes back with the next market-data update. Letting those commits skip the fsync keeps them from queueing
behind (and, on SQLite, holding the write lock through) a disk flush on the order path.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine

from oms.db.engine import is_sqlite


@contextmanager
def relaxed_commit(engine: Engine) -> Iterator[Connection]:
    """One transaction (committed on a clean exit, rolled back on an exception) that is atomic but whose
    commit does not wait for the disk: `synchronous_commit = off` on PostgreSQL; on SQLite the connection's
    `synchronous` drops to NORMAL for it (in WAL mode the commit is then synced with the next durable one)."""
    with engine.connect() as connection:
        if not is_sqlite(engine):
            with connection.begin():
                connection.exec_driver_sql("SET LOCAL synchronous_commit = off")
                yield connection
            return
        raw = connection.connection.dbapi_connection  # no autobegin: SQLite refuses the pragma in a transaction
        assert raw is not None
        raw.execute("PRAGMA synchronous=NORMAL")
        try:
            with connection.begin():
                yield connection
        finally:
            raw.execute("PRAGMA synchronous=FULL")
