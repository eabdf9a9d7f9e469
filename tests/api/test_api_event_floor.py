"""How far back each stream poll re-reads: the grace window for late PostgreSQL commits, bounded in a burst."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from oms.api.events import GRACE, MAX_UNSETTLED, advance_floor


def test_recent_events_stay_re_readable_and_old_ones_move_the_floor() -> None:
    now = datetime.now(UTC)
    sent = {5: now - GRACE - timedelta(seconds=1), 7: now, 9: now}
    assert advance_floor(sent, 0) == 5
    assert set(sent) == {7, 9}


def test_a_burst_keeps_at_most_max_unsettled_ids_to_re_read() -> None:
    now = datetime.now(UTC)
    sent = {sequence: now for sequence in range(1, MAX_UNSETTLED + 501)}
    floor = advance_floor(sent, 0)
    assert len(sent) == MAX_UNSETTLED
    assert floor == 500 and min(sent) == 501
