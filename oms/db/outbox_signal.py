"""PostgreSQL: a commit that queues venue messages wakes the outbox sender of another process at once.

The REST API and the gateway are separate processes. Without a signal, an order placed over REST waited in
the outbox for the gateway's next poll (``OutboxPollMs``, 200 ms by default), and polling faster costs a
query per poll in both processes. In a process that turns ``Database.notify_outbox`` on (the REST API), a
transaction that writes outbox rows sends ``NOTIFY oms_outbox``; PostgreSQL delivers it when, and only if,
the transaction commits. The gateway LISTENs on its own connection and wakes its sender; the poll stays
as the fallback (a listener reconnecting may have missed a notification). SQLite has no such signal: there
the poll alone picks up another process's rows.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import structlog
from sqlalchemy import Engine

from oms.db.errors import first_line

log = structlog.get_logger(__name__)

CHANNEL = "oms_outbox"
NOTIFY_SQL = "NOTIFY " + CHANNEL
RECONNECT_S = 1.0


class OutboxListener:
    """Calls ``on_signal`` for every commit that queued outbox rows, from a thread of its own."""

    def __init__(self, engine: Engine, on_signal: Callable[[], None], wait_s: float = 1.0) -> None:
        self._engine = engine
        self._on_signal = on_signal
        self._wait_s = wait_s  # how long one wait lasts: also how soon stop() is noticed
        self._stop = threading.Event()
        self.listening = threading.Event()
        self._down = False
        self._thread = threading.Thread(target=self._run, name="outbox-listener", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self._wait_s + 5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except Exception as error:  # noqa: BLE001 - the database went away: the poll covers the gap
                if not self._down:  # one line per outage
                    log.warning("outbox_listener_down", error=first_line(error))
                self._down = True
                self._stop.wait(RECONNECT_S)

    def _listen(self) -> None:
        pooled = self._engine.raw_connection()
        connection: Any = pooled.driver_connection
        pooled.detach()  # a connection of its own for as long as it listens, never handed back to the pool
        try:
            connection.rollback()
            connection.autocommit = True
            connection.execute("LISTEN " + CHANNEL)
            if self._down:
                log.info("outbox_listener_back")
                self._down = False
            self.listening.set()
            self._on_signal()  # rows may have been committed while nobody listened
            while not self._stop.is_set():
                if any(True for _ in connection.notifies(timeout=self._wait_s, stop_after=1)):
                    self._on_signal()
        finally:
            self.listening.clear()
            connection.close()
