"""Unique ids: time-ordered ones for the rows the order path creates, fully random ones for everything else.

Fully random 128-bit ids (``uuid4().hex``) as primary keys scatter every insert over the whole primary-key
index and every index that refers to it (``postings.entry_id``, ``executions.order_id``, ...): each insert
touches a random leaf page, so a batch of 500 orders dirties, logs (WAL) and fsyncs hundreds of pages per
index, and the working set outgrows the page cache as the tables grow. :func:`new_row_id` keeps the same
shape (32 hex digits, 128 bits) and the same guarantee (no counter shared between gateway processes), but
starts with the time in milliseconds, like UUIDv7 and ULID, so consecutive inserts land on the same few pages.

:func:`random_id` is the old kind, for ids whose every part must be random (callers that use a prefix of one
as a short unique tag, say).

Randomness comes from ``os.urandom``, drawn 4 KiB at a time per thread (one system call per ~200 ids instead
of one per id); a forked child drops the buffer, so parent and child never hand out the same bits.
"""

from __future__ import annotations

import os
import threading
import time

__all__ = ["new_row_id", "random_id"]

_BUFFER_BYTES = 4096


class _Randomness(threading.local):
    """Per-thread hex digits from ``os.urandom``, each handed out once."""

    def __init__(self) -> None:
        self.digits = ""
        self.position = 0
        self.millisecond = -1
        self.prefix = ""  # the current millisecond as 12 hex digits (formatted once per millisecond)

    def take(self, count: int) -> str:
        position = self.position
        end = position + count
        if end > len(self.digits):
            self.digits = os.urandom(_BUFFER_BYTES).hex()
            position, end = 0, count
        self.position = end
        return self.digits[position:end]


_random = _Randomness()


def _forget_after_fork() -> None:
    global _random
    _random = _Randomness()


os.register_at_fork(after_in_child=_forget_after_fork)


def new_row_id() -> str:
    """A new time-ordered id: 12 hex digits of milliseconds since the epoch, then 80 random bits."""
    state = _random
    random_part = state.take(20)
    millisecond = time.time_ns() // 1_000_000
    if millisecond != state.millisecond:
        state.millisecond = millisecond
        state.prefix = f"{millisecond:012x}"
    return state.prefix + random_part


def random_id() -> str:
    """A new id of 128 random bits as 32 hex digits, like ``uuid4().hex``."""
    return _random.take(32)
