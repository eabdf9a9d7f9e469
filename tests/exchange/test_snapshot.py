"""End-of-day snapshots: a restart loads the state at the last end of day and replays only the journal after it.

The journal stays the record. A snapshot must rebuild exactly what a full replay rebuilds (book, orders,
trades, counters, ExecIDs), and one that cannot be trusted is ignored, with a warning, for a full replay.
"""

from __future__ import annotations

import logging
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from bench.engine_bench import generate
from exchange import report_cmd, snapshot
from exchange import venue as venue_module
from exchange.config import VenueConfig
from exchange.engine import EndOfDay, MatchingEngine
from exchange.journal import Journal, JournaledEngine
from exchange.market_maker import MarketMaker
from exchange.trade_report import ExecIdIndex
from exchange.venue import Replayed, new_engine, replay

sys.path.insert(0, str(Path(__file__).parent))

from fixclient import FixClient, is_er, new_order  # noqa: E402

TRADE_DATE = date(2024, 1, 2)


def run_a_day_and_a_half(config: VenueConfig) -> tuple[MatchingEngine, int]:
    """Journal a trading day of client orders and market-maker quotes, its end of day (snapshotted as the venue
    does), then part of the next day. Returns the live engine and the number of commands after the snapshot."""
    live = JournaledEngine(new_engine(config), Journal(config.journal_path, sync="batch"))
    index = ExecIdIndex()
    maker = MarketMaker(live.engine.instruments, seed=3)
    symbols = sorted(live.engine.instruments)[:5]
    flow = generate(6_000, 11, symbols, {s: live.engine.instruments[s].reference_price for s in symbols})
    after_snapshot = 0
    for n, command in enumerate(flow):
        batch = [command, *(maker.step(command.timestamp) if n % 50 == 0 else [])]
        for each in batch:
            events = live.process(each)
            index.observe(events)
            maker.on_events(events)
            after_snapshot += n >= 4_000
        if n == 3_999:
            day_end = EndOfDay(TRADE_DATE, command.timestamp + timedelta(microseconds=1))
            index.observe(live.process(day_end))
            snapshot.take(live.journal, day_end, live.engine, index)
    live.close()
    return live.engine, after_snapshot


def exec_ids(engine: MatchingEngine, index: ExecIdIndex) -> list[tuple[str | None, str | None]]:
    return [(index.exec_id(t.trade_id, t.buy_order_id), index.exec_id(t.trade_id, t.sell_order_id))
            for t in engine.trades()]


def full_replay(config: VenueConfig) -> tuple[MatchingEngine, ExecIdIndex, Replayed]:
    engine, index = new_engine(config), ExecIdIndex()
    return engine, index, replay(config, engine, index, Journal(config.journal_path))


def test_a_restart_from_the_snapshot_rebuilds_exactly_what_a_full_replay_does(venue_config: VenueConfig) -> None:
    config = venue_config
    live, after_snapshot = run_a_day_and_a_half(config)
    engine, index, full = full_replay(config)

    loaded = snapshot.load(snapshot.snapshot_path(config.journal_path), config.journal_path, new_engine(config))
    assert loaded is not None
    tail = replay(config, loaded.engine, loaded.index, Journal(config.journal_path), after=loaded)

    assert tail.commands == after_snapshot < full.commands
    assert (tail.last_command_at, tail.last_closed) == (full.last_command_at, full.last_closed)
    assert full.last_closed == TRADE_DATE
    assert loaded.engine.state_digest() == engine.state_digest() == live.state_digest()
    assert loaded.engine.last_seq == engine.last_seq == live.last_seq
    assert loaded.engine.trades() == engine.trades() and len(engine.trades()) > 100
    assert exec_ids(loaded.engine, loaded.index) == exec_ids(engine, index)
    assert loaded.engine.orders("MM", working_only=True) == engine.orders("MM", working_only=True) != []


def test_the_offline_trade_report_starts_from_the_snapshot_and_lists_the_same_rows(
    venue_config: VenueConfig, monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, after_snapshot = run_a_day_and_a_half(venue_config)
    replayed: list[int] = []

    def counting_replay(*args, **kwargs) -> Replayed:  # type: ignore[no-untyped-def]
        result = replay(*args, **kwargs)
        replayed.append(result.commands)
        return result

    monkeypatch.setattr(venue_module, "replay", counting_replay)
    from_snapshot = report_cmd.offline_rows(venue_config, TRADE_DATE)
    snapshot.snapshot_path(venue_config.journal_path).unlink()
    from_the_start = report_cmd.offline_rows(venue_config, TRADE_DATE)
    assert replayed[0] == after_snapshot < replayed[1]
    assert from_snapshot == from_the_start and len(from_snapshot) > 100


def _corrupt(config: VenueConfig, path: Path) -> None:
    path.write_bytes(b"not a pickle")


def _journal_replaced(config: VenueConfig, path: Path) -> None:
    config.journal_path.write_bytes(b"")


def _mid_line(config: VenueConfig, path: Path) -> None:
    loaded = snapshot.load(path, config.journal_path, new_engine(config))
    assert loaded is not None
    snapshot.save(path, snapshot.Snapshot(loaded.journal_bytes - 5, loaded.journal_check, loaded.last_command_at,
                                          loaded.last_closed, loaded.engine, loaded.index))


def _another_journal(config: VenueConfig, path: Path) -> None:
    """The journal deleted and started again, and grown past the old mark with a line ending right there."""
    loaded = snapshot.load(path, config.journal_path, new_engine(config))
    assert loaded is not None
    line = b'{"type":"EndOfDay","trade_date":"2030-01-01","timestamp":"2030-01-01T00:00:00"}\n'
    filler = b"\n" * (loaded.journal_bytes - len(line))
    config.journal_path.write_bytes(line + filler + line)


@pytest.mark.parametrize(("spoil", "reason"), [
    (_corrupt, "unreadable"),
    (_journal_replaced, "the journal has 0 bytes"),
    (_mid_line, "does not end a line"),
    (_another_journal, "not the ones the snapshot saw"),
])  # fmt: skip
def test_a_snapshot_that_cannot_be_trusted_is_ignored_with_a_warning(
    venue_config: VenueConfig, caplog: pytest.LogCaptureFixture, spoil, reason: str,  # type: ignore[no-untyped-def]
) -> None:
    config = venue_config
    run_a_day_and_a_half(config)
    path = snapshot.snapshot_path(config.journal_path)
    spoil(config, path)
    with caplog.at_level(logging.WARNING, logger="exchange.snapshot"):
        assert snapshot.load(path, config.journal_path, new_engine(config)) is None
    assert "not used, replaying the whole journal" in caplog.text and reason in caplog.text


def test_a_snapshot_from_other_engine_code_or_other_settings_is_not_used(
    venue_config: VenueConfig, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    config = venue_config
    run_a_day_and_a_half(config)
    path = snapshot.snapshot_path(config.journal_path)
    other_fees = MatchingEngine(new_engine(config).instruments, fee_rate=new_engine(config).fee_rate * 2)
    with caplog.at_level(logging.WARNING, logger="exchange.snapshot"):
        assert snapshot.load(path, config.journal_path, other_fees) is None
        monkeypatch.setattr(snapshot, "code_fingerprint", lambda: "an older engine")
        assert snapshot.load(path, config.journal_path, new_engine(config)) is None
    assert "other instruments or fee rate" in caplog.text and "different engine code" in caplog.text


def test_a_venue_restarted_after_an_end_of_day_starts_from_its_snapshot(  # type: ignore[no-untyped-def]
    venue_factory, client_factory, caplog: pytest.LogCaptureFixture,
) -> None:
    venue = venue_factory()
    client: FixClient = client_factory(venue)
    client.send("D", new_order("SN-GTC", symbol="MSFT", side="1", qty="30", price="100.00", tif="1"))
    accepted = client.wait_for(is_er("SN-GTC", "0"))
    assert venue.control(command="end-of-day")["ok"]
    assert snapshot.snapshot_path(venue.config.journal_path).exists()

    with caplog.at_level(logging.INFO, logger="exchange.venue"):
        venue.restart()
    assert "after the snapshot of byte" in caplog.text
    client.wait_logon(timeout_s=8)
    client.send("H", [(11, "SN-GTC"), (55, "MSFT"), (54, "1")])
    status = client.wait_for(is_er("SN-GTC", "I"), timeout_s=8)
    assert (status[37], status[39], status[151]) == (accepted[37], "0", "30")
    client.send("D", new_order("SN-SELL", symbol="MSFT", side="2", qty="10", price="100.00"))
    fill = client.wait_for(is_er("SN-GTC", "F"))
    assert fill[37] == accepted[37] and fill[14] == "10" and int(fill[17]) > int(accepted[17])
