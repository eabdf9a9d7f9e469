"""The venue's group commit: no report leaves before the journal entry behind it is on disk, reports keep
their order (fault disconnects included), one fsync covers a whole group, and nothing is lost at stop."""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from exchange import journal as journal_module
from exchange.engine import MatchingEngine, OrderType, Side, SubmitOrder, TimeInForce
from exchange.group_commit import GroupCommitSender
from exchange.instruments import load_instruments
from exchange.journal import Journal, JournaledEngine
from exchange.service import SessionKey
from fix.wire import Outbound

SESSION = SessionKey("FIX.4.4", "EXCH", "OMS")
T0 = datetime(2024, 1, 2, 14, 30)


class Trace:
    """What happened, in order: journal appends, fsyncs and sends (the disk itself is real)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.steps: list[str] = []

    def add(self, step: str) -> None:
        with self.lock:
            self.steps.append(step)

    def snapshot(self) -> list[str]:
        with self.lock:
            return list(self.steps)


@pytest.fixture
def trace(monkeypatch: pytest.MonkeyPatch) -> Trace:
    trace = Trace()
    real_fsync = os.fsync

    def traced_fsync(descriptor: int) -> None:
        real_fsync(descriptor)
        trace.add("fsync")

    monkeypatch.setattr(journal_module.os, "fsync", traced_fsync)
    return trace


def order(number: int) -> SubmitOrder:
    return SubmitOrder("OMS", f"C{number}", "AAPL", Side.BUY, OrderType.LIMIT, Decimal(1), Decimal("100.00"), None,
                       TimeInForce.DAY, None, T0)


def report(number: int) -> Outbound:
    return Outbound("8", ((11, f"C{number}"),))


def start(tmp_path: Path, trace: Trace) -> tuple[JournaledEngine, GroupCommitSender]:
    engine = JournaledEngine(MatchingEngine(load_instruments()), Journal(tmp_path / "venue.journal", sync="batch"))
    sender = GroupCommitSender(engine, lambda session, outbound: trace.add(f"send {outbound.get(11)}"),
                               lambda session: trace.add("disconnect"))
    sender.start()
    return engine, sender


def wait_for(condition, timeout_s: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return False


def test_each_report_leaves_only_after_an_fsync_that_follows_its_command(tmp_path: Path, trace: Trace) -> None:
    engine, sender = start(tmp_path, trace)
    try:
        for number in range(1, 51):
            with engine.lock:  # as the service does: journal and process, then hand over the report
                engine.process(order(number))
                trace.add(f"append C{number}")
                sender.send(SESSION, report(number))
        assert wait_for(lambda: sum(step.startswith("send") for step in trace.snapshot()) == 50)
    finally:
        sender.stop()
        engine.close()
    steps = trace.snapshot()
    for number in range(1, 51):
        appended, sent = steps.index(f"append C{number}"), steps.index(f"send C{number}")
        assert "fsync" in steps[appended:sent], f"C{number} was reported before its journal entry was synced"
    assert [step for step in steps if step.startswith("send")] == [f"send C{n}" for n in range(1, 51)]
    assert 1 <= sender.groups <= 50
    assert len(list(Journal(tmp_path / "venue.journal").commands())) == 50


def test_a_fault_disconnect_keeps_its_place_among_the_reports(tmp_path: Path, trace: Trace) -> None:
    engine, sender = start(tmp_path, trace)
    try:
        sender.send(SESSION, report(1))
        sender.disconnect(SESSION)
        sender.send(SESSION, report(2))
        assert wait_for(lambda: "send C2" in trace.snapshot())
    finally:
        sender.stop()
        engine.close()
    assert [step for step in trace.snapshot() if step != "fsync"] == ["send C1", "disconnect", "send C2"]


def test_reports_queued_at_stop_still_go_out_and_later_ones_go_out_at_once(tmp_path: Path, trace: Trace) -> None:
    engine, sender = start(tmp_path, trace)
    for number in range(1, 4):
        sender.send(SESSION, report(number))
    sender.stop()
    assert [step for step in trace.snapshot() if step != "fsync"] == ["send C1", "send C2", "send C3"]
    with engine.lock:
        engine.process(order(4))
        sender.send(SESSION, report(4))  # a venue shutting down still answers: inline, after its own fsync
    steps = trace.snapshot()
    assert steps[-2:] == ["fsync", "send C4"]
    engine.close()


def test_the_sync_does_not_wait_for_the_engine_lock(tmp_path: Path, trace: Trace) -> None:
    """A QuickFIX thread holds the engine lock while it hands over reports; the group-commit thread must be
    able to sync and send meanwhile, or a shutdown that waits for it under that lock would stall."""
    engine, sender = start(tmp_path, trace)
    try:
        with engine.lock:
            engine.process(order(1))
            sender.send(SESSION, report(1))
            assert wait_for(lambda: "send C1" in trace.snapshot(), timeout_s=2.0)
    finally:
        sender.stop()
        engine.close()
