"""What the worker does after a commit, in order, on a thread of its own.

Once a batch has committed, its client reports still have to be built and handed to QuickFIX, and the
applied-sequence marks written after them. Doing that here lets the worker start its next batch (and wait on
the database) while the last batch's reports go out. One FIFO keeps every client report in commit order, and
a mark queued after a batch's reports is written only once they are in QuickFIX's store, so a crash never
leaves a mark claiming a report was relayed when it was not.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

import structlog

log = structlog.get_logger(__name__)

Action = Callable[[], object]


class AfterCommit:
    """A FIFO of actions run by one thread; `put` never blocks on the actions themselves."""

    def __init__(self) -> None:
        self._actions: deque[Action] = deque()
        self._changed = threading.Condition()
        self._running = 0  # actions taken off the queue and not finished yet
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="gateway-after-commit", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def put(self, action: Action) -> None:
        with self._changed:
            if not self._stopping:
                self._actions.append(action)
                self._changed.notify_all()
                return
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=10)  # what was queued before goes first
        self._run(action)  # stopped: the caller's thread does it (nothing is dropped)

    def wait_empty(self, timeout_s: float) -> bool:
        """True once every action put so far has run."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._actions and not self._running, timeout_s)

    def stop(self) -> None:
        """Run what is queued, then end the thread; later actions run on the caller's thread."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._actions or self._stopping)
                if not self._actions:
                    return
                batch = list(self._actions)
                self._actions.clear()
                self._running = len(batch)
            for action in batch:
                self._run(action)
            with self._changed:
                self._running = 0
                self._changed.notify_all()

    @staticmethod
    def _run(action: Action) -> None:
        try:
            action()
        except Exception:  # one failed send must not stop the reports and marks behind it
            log.exception("after_commit_action_failed")
