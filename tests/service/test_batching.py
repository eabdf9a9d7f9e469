"""Draining a queue into batches: what a group-commit loop takes at once, and how it learns to stop."""

from __future__ import annotations

import queue

from oms.service.batching import collect_batch


def _queue_of(*items: int | None) -> queue.Queue[int | None]:
    source: queue.Queue[int | None] = queue.Queue()
    for item in items:
        source.put(item)
    return source


def test_a_batch_takes_what_is_queued_up_to_its_limit() -> None:
    source = _queue_of(2, 3, 4, 5)
    assert collect_batch(source, 1, max_batch=3) == ([1, 2, 3], False)
    assert source.qsize() == 2


def test_an_empty_queue_gives_a_batch_of_one_without_waiting_when_no_wait_is_asked() -> None:
    assert collect_batch(_queue_of(), 1, max_batch=8) == ([1], False)


def test_a_lone_item_waits_for_company_at_most_the_given_time() -> None:
    assert collect_batch(_queue_of(), 1, max_batch=8, max_wait_s=0.01) == ([1], False)


def test_the_stop_signal_ends_the_batch_and_is_reported() -> None:
    source = _queue_of(2, None, 3)
    assert collect_batch(source, 1, max_batch=8) == ([1, 2], True)
    assert source.get_nowait() == 3
