"""The worker's after-commit thread: actions run in the order they were queued, one failure does not stop
the rest, waiting for it means everything queued has run, and after stop nothing is dropped."""

from __future__ import annotations

import threading

from oms.gateway.after_commit import AfterCommit


def test_actions_run_in_order_and_a_failure_does_not_stop_the_rest() -> None:
    done: list[int] = []
    after = AfterCommit()
    after.start()
    try:
        for number in range(200):
            if number == 50:
                after.put(lambda: 1 / 0)
            after.put(lambda number=number: done.append(number))  # type: ignore[misc]
        assert after.wait_empty(5)
        assert done == list(range(200))
    finally:
        after.stop()


def test_waiting_covers_an_action_that_is_still_running() -> None:
    release = threading.Event()
    finished: list[str] = []
    after = AfterCommit()
    after.start()
    try:
        after.put(lambda: (release.wait(5), finished.append("slow")))
        assert not after.wait_empty(0.1)  # taken off the queue but not finished: not empty yet
        release.set()
        assert after.wait_empty(5) and finished == ["slow"]
    finally:
        after.stop()


def test_after_stop_actions_run_on_the_callers_thread_after_the_queued_ones() -> None:
    done: list[str] = []
    after = AfterCommit()
    after.start()
    after.put(lambda: done.append("queued"))
    after.stop()
    after.put(lambda: done.append(threading.current_thread().name))
    assert done == ["queued", threading.current_thread().name]
