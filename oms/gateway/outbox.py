"""The outbox sender: committed venue messages out to the venue session, oldest first.

Runs on its own thread, woken by the worker after a commit that queued messages; on PostgreSQL also by
any process's commit that did (``NOTIFY oms_outbox``, :mod:`oms.db.outbox_signal`), so the REST API's
orders go out at once; and every `poll_ms` anyway, which picks up other processes' rows on SQLite and
anything a reconnecting listener missed. Nothing is committed between the worker's commit of a row and
its send, so the send waits for no disk; the row is marked sent afterwards, without waiting for the disk
either. A row found unsent when the sender starts may have gone out just before a
crash: it is counted as attempted, and a new order goes out again with PossResend=Y, which the venue
answers with the order's status instead of booking it twice. The same holds for rows whose send could not
be recorded because the database went away meanwhile.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

import structlog

from fix.wire import Outbound
from oms.db.errors import database_unavailable, first_line
from oms.db.outbox_signal import OutboxListener
from oms.gateway import crash, queries
from oms.gateway import translate as tr
from oms.service.uow import Database

log = structlog.get_logger(__name__)
BATCH = 500


class OutboxSender:
    def __init__(self, database: Database, begin_string: str, send: Callable[[Outbound], bool],
                 venue_up: Callable[[], bool], poll_ms: int) -> None:
        self._database = database
        self._begin_string = begin_string
        self._send = send
        self._venue_up = venue_up
        self._poll_s = poll_ms / 1000
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.sent = 0
        self._database_down = False
        self._started = False  # rows left unsent (by an earlier run, or a lost record) are counted as attempted
        self._thread = threading.Thread(target=self._loop, name="gateway-outbox", daemon=True)
        self._listener = OutboxListener(database.engine, self.wake) if database.is_postgres else None

    def start(self) -> None:
        try:
            self._count_possibly_sent()
        except Exception as error:  # the loop tries again before its first send
            log.error("outbox_start_deferred", error=first_line(error))
        self._thread.start()
        if self._listener is not None:
            self._listener.start()

    def _count_possibly_sent(self) -> None:
        log.info("outbox_started", possibly_sent=queries.mark_possibly_sent(self._database))
        self._started = True

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.stop()
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)

    def wake(self) -> None:
        self._wake.set()

    def listening(self, timeout_s: float) -> bool:
        """Whether another process's commit wakes this sender (PostgreSQL, once its listener is connected)."""
        return self._listener is not None and self._listener.listening.wait(timeout_s)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._poll_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                if not self._started:  # before the first send of this run
                    self._count_possibly_sent()
                while self._venue_up() and self._flush() == BATCH:
                    pass
                if self._database_down:
                    self._database_down = False
                    log.info("outbox_database_back")
            except Exception as error:  # keep sending after a database outage; rows stay unsent and are retried
                if not database_unavailable(error):
                    log.exception("outbox_flush_failed")
                elif not self._database_down:  # one line per outage, not a traceback per poll
                    self._database_down = True
                    log.error("outbox_database_unavailable", error=first_line(error))

    def _flush(self) -> int:
        rows = queries.unsent_outbox(self._database, BATCH)
        sent: list[int] = []
        for row in rows:
            now = datetime.now(UTC)
            message = tr.VENUE_MESSAGES[row.kind]
            if row.kind == "new":
                outbound = message(row.payload, self._begin_string, now, poss_resend=row.attempts > 0)
            else:
                outbound = message(row.payload, self._begin_string, now)
            if not self._send(outbound):
                log.warning("outbox_send_failed", order_id=row.order_id, kind=row.kind)
                break
            sent.append(row.id)
            if row.kind == "new":
                crash.at("after_send_before_ack")
            log.debug("outbox_sent", order_id=row.order_id, kind=row.kind, cl_ord_id=row.payload.get("cl_ord_id"))
        try:
            queries.mark_sent(self._database, sent, datetime.now(UTC))
        except Exception:
            # Sent, but not recorded: these rows stay unsent like the ones a crash leaves, so before anything
            # goes out again they are counted as attempted, and a new order is resent with PossResend=Y.
            self._started = False
            raise
        self.sent += len(sent)
        return len(rows)
