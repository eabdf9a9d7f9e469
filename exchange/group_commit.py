"""Group commit for the venue: one journal fsync covers every command processed since the last one.

The service journals each command and hands its reports here instead of to QuickFIX. A single thread takes
everything queued so far, makes the journal durable up to that point (`JournaledEngine.sync`), then sends
the reports in the order they were queued. So no report leaves before the command behind it is on disk
(a crash can lose only commands nobody was told about), and a pipelined session pays one fsync per group
instead of one per order, while the QuickFIX thread goes on matching during the fsync.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from exchange.journal import JournaledEngine
from exchange.service import SessionKey
from exchange.translate import Outbound

log = logging.getLogger(__name__)

Send = Callable[[SessionKey, Outbound], None]
Disconnect = Callable[[SessionKey], None]
IDLE_SYNC_S = 0.2  # commands with no report (market-maker quotes) reach the disk within this bound


class GroupCommitSender:
    """Queue reports (and fault disconnects, to keep their place in the order); send each group after one
    fsync. `send` and `disconnect` are the service's sender and disconnector; call them from any thread."""

    def __init__(self, engine: JournaledEngine, send: Send, disconnect: Disconnect) -> None:
        self._engine = engine
        self._deliver = send
        self._disconnect_now = disconnect
        self._pending: list[tuple[SessionKey, Outbound | None]] = []
        self._ready = threading.Condition()
        self._stopping = False
        self.groups = 0  # how many fsync groups went out (tests and benchmarks)
        self._thread = threading.Thread(target=self._loop, name="venue-group-commit", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Send what is queued (after its fsync) and end the thread; later reports (a venue shutting down
        still answers the last requests) go out one fsync each, on the caller's thread."""
        with self._ready:
            self._stopping = True
            self._ready.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def send(self, session: SessionKey, outbound: Outbound) -> None:
        self._queue(session, outbound)

    def disconnect(self, session: SessionKey) -> None:
        self._queue(session, None)

    def _queue(self, session: SessionKey, outbound: Outbound | None) -> None:
        with self._ready:
            if not self._stopping:
                self._pending.append((session, outbound))
                self._ready.notify()
                return
        self._thread.join(timeout=10)  # whatever the thread still holds goes first
        self._engine.sync()
        self._send_all([(session, outbound)])

    def _loop(self) -> None:
        while True:
            with self._ready:
                if not self._pending and not self._stopping:
                    self._ready.wait(IDLE_SYNC_S)
                group, self._pending = self._pending, []
                stopping = self._stopping
            try:
                self._engine.sync()
            except Exception:  # a failed fsync must not let reports out: they would claim what is not durable
                log.exception("journal sync failed: %d reports held", len(group))
                with self._ready:
                    self._pending[:0] = group
                if stopping:
                    return
                time.sleep(IDLE_SYNC_S)
                continue
            if group:
                self.groups += 1
                self._send_all(group)
            if stopping and not group:
                return

    def _send_all(self, group: list[tuple[SessionKey, Outbound | None]]) -> None:
        for session, outbound in group:
            try:
                if outbound is None:
                    self._disconnect_now(session)
                else:
                    self._deliver(session, outbound)
            except Exception:  # one failed send must not stop the reports behind it
                log.exception("send to %s failed", session)
