"""Draining a work queue into batches: the shape every group-commit loop here shares.

A lone item may wait a moment for company (more items per durable commit); once a second one is there,
only what is already queued joins, so a busy queue never waits. `None` on the queue is the stop signal.
"""

from __future__ import annotations

import queue
from typing import TypeVar

T = TypeVar("T")


def collect_batch(source: queue.Queue[T | None], first: T, max_batch: int,
                  max_wait_s: float = 0.0) -> tuple[list[T], bool]:
    """`first` plus what else `source` holds, up to `max_batch` items, and whether the stop signal came."""
    batch = [first]
    while len(batch) < max_batch:
        try:
            if len(batch) == 1 and max_wait_s > 0:
                more = source.get(timeout=max_wait_s)
            else:
                more = source.get_nowait()
        except queue.Empty:
            break
        if more is None:
            return batch, True
        batch.append(more)
    return batch, False
