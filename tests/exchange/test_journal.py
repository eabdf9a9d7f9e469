"""Journal durability: exact replay after a restart and tolerance of a torn tail."""

from __future__ import annotations

import logging
import threading
from datetime import date, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest

from exchange.engine import (
    BustTrade,
    CancelOrder,
    CorrectTrade,
    EndOfDay,
    MatchingEngine,
    OrderType,
    ReplaceOrder,
    Side,
    SubmitOrder,
    TimeInForce,
    typed_events,
)
from exchange.instruments import load_instruments
from exchange.journal import Journal, JournalCorruptError, JournaledEngine, decode_command, encode_command
from exchange.market_maker import MarketMaker

T0 = datetime(2024, 1, 2, 14, 30)


def workload(n: int = 200) -> list:
    """Mixed, deterministic commands touching every command type."""
    mm = MarketMaker(load_instruments(), seed=3)
    cmds: list = []
    for i in range(n):
        ts = T0 + timedelta(seconds=i)
        if i % 10 == 0:
            cmds.extend(mm.step(ts))
        side = Side.BUY if i % 2 else Side.SELL
        sym = "AAPL" if i % 3 else "MSFT"
        if i % 7 == 0:
            cmds.append(SubmitOrder("B", f"m{i}", sym, side, OrderType.MARKET, D(5), None, None, TimeInForce.IOC, None, ts))
        elif i % 11 == 0:
            cmds.append(SubmitOrder("B", f"s{i}", sym, side, OrderType.STOP_LIMIT, D(3), D("189.00"), D("189.50"),
                                    TimeInForce.GTD, date(2024, 1, 5), ts))
        elif i % 13 == 0:
            cmds.append(CancelOrder("B", f"c{i}", f"l{i - 1}", ts))
        elif i % 17 == 0:
            cmds.append(ReplaceOrder("B", f"r{i}", f"l{i - 2}", D(7), D("189.40"), None, ts))
        else:
            cmds.append(SubmitOrder("B", f"l{i}", "AAPL", side, OrderType.LIMIT, D(4), D("189.45"), None,
                                    TimeInForce.DAY, None, ts))
    cmds.append(BustTrade("T1", T0))
    cmds.append(CorrectTrade("T2", D(1), D("189.50"), T0))
    cmds.append(EndOfDay(date(2024, 1, 2), T0))
    return cmds


def test_encode_decode_roundtrip() -> None:
    for cmd in workload(60):
        assert decode_command(encode_command(cmd)) == cmd


def test_replay_restores_identical_state_and_sequences_continue(tmp_path: Path) -> None:
    path = tmp_path / "venue.journal"
    cmds = workload()
    live = JournaledEngine.open(MatchingEngine(load_instruments()), path)
    for cmd in cmds[:-40]:
        live.process(cmd)
    live.close()

    restored = JournaledEngine.open(MatchingEngine(load_instruments()), path)
    assert restored.engine.state_digest() == live.engine.state_digest()
    assert restored.engine.trades() and restored.trades() == live.trades()

    # after the restart both continue identically: same ids and seqs
    tail_live = [ev for cmd in cmds[-40:] for ev in typed_events(live.engine.process(cmd))]
    tail_restored = [ev for cmd in cmds[-40:] for ev in typed_events(restored.process(cmd))]
    assert tail_live == tail_restored
    assert tail_restored[0].seq == live.engine.last_seq - len(tail_live) + 1
    restored.close()

    # and a second restart sees the full history
    again = JournaledEngine.open(MatchingEngine(load_instruments()), path)
    assert again.engine.state_digest() == restored.engine.state_digest()


def test_torn_last_line_is_ignored_and_truncated(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "venue.journal"
    cmds = workload(50)
    journal = Journal(path, sync="batch")
    reference = MatchingEngine(load_instruments())
    for cmd in cmds:
        journal.append(cmd)
        reference.process(cmd)
    journal.close()
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(encode_command(cmds[0])[:25])  # crash mid-write

    engine = MatchingEngine(load_instruments())
    with caplog.at_level(logging.WARNING, logger="exchange.journal"):
        assert Journal(path).replay(engine) == len(cmds)
    assert "torn" in caplog.text
    assert engine.state_digest() == reference.state_digest()
    # appending after recovery starts on a clean line
    j2 = Journal(path)
    j2.append(EndOfDay(date(2024, 1, 3), T0))
    j2.close()
    assert Journal(path).replay(MatchingEngine(load_instruments())) == len(cmds) + 1


def test_a_last_record_without_its_newline_is_kept_and_the_newline_added(tmp_path: Path) -> None:
    path = tmp_path / "venue.journal"
    first, second = EndOfDay(date(2024, 1, 2), T0), EndOfDay(date(2024, 1, 3), T0)
    path.write_text(encode_command(first) + "\n" + encode_command(second), encoding="utf-8")
    assert list(Journal(path).commands()) == [first, second]
    assert path.read_text(encoding="utf-8").endswith(encode_command(second) + "\n")


def test_commands_can_be_read_from_a_line_start_on(tmp_path: Path) -> None:
    path = tmp_path / "venue.journal"
    first, second = EndOfDay(date(2024, 1, 2), T0), EndOfDay(date(2024, 1, 3), T0)
    path.write_text(encode_command(first) + "\n" + encode_command(second) + "\n", encoding="utf-8")
    assert list(Journal(path).commands(start=len(encode_command(first)) + 1)) == [second]


def test_corrupt_middle_line_raises(tmp_path: Path) -> None:
    path = tmp_path / "venue.journal"
    good = encode_command(EndOfDay(date(2024, 1, 2), T0))
    path.write_text(good + "\n{garbage\n" + good + "\n", encoding="utf-8")
    with pytest.raises(JournalCorruptError):
        Journal(path).replay(MatchingEngine(load_instruments()))


def test_missing_journal_replays_nothing(tmp_path: Path) -> None:
    assert Journal(tmp_path / "none.journal").replay(MatchingEngine(load_instruments())) == 0


def test_journaled_engine_is_thread_safe(tmp_path: Path) -> None:
    path = tmp_path / "venue.journal"
    venue = JournaledEngine.open(MatchingEngine(load_instruments()), path, sync="batch")

    def client(owner: str) -> None:
        for i in range(200):
            side = Side.BUY if i % 2 else Side.SELL
            venue.process(SubmitOrder(owner, f"{owner}{i}", "AAPL", side, OrderType.LIMIT, D(1), D("189.50"),
                                      None, TimeInForce.DAY, None, T0))

    threads = [threading.Thread(target=client, args=(f"C{k}",)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    venue.close()
    replayed = MatchingEngine(load_instruments())
    assert Journal(path).replay(replayed) == 800
    assert replayed.state_digest() == venue.engine.state_digest()


def test_prices_in_ticks_replay_as_ticks(tmp_path: Path) -> None:
    """Int prices are ticks (engine API); the journal must not turn them into Decimal dollars."""
    path = tmp_path / "venue.journal"
    cmds = [
        SubmitOrder("B", "t1", "AAPL", Side.SELL, OrderType.LIMIT, D(5), 18950, None, TimeInForce.DAY, None, T0),
        SubmitOrder("B", "t2", "AAPL", Side.BUY, OrderType.STOP_LIMIT, D(5), 18960, 18955, TimeInForce.GTC, None, T0),
        ReplaceOrder("B", "t3", "t1", D(4), 18951, None, T0),
        SubmitOrder("B", "t4", "AAPL", Side.BUY, OrderType.LIMIT, D(2), 0, None, TimeInForce.DAY, None, T0),
        SubmitOrder("B", "t5", "AAPL", Side.BUY, OrderType.LIMIT, D(2), D("189.51"), None, TimeInForce.DAY, None, T0),
    ]
    for cmd in cmds:
        assert decode_command(encode_command(cmd)) == cmd
        assert type(decode_command(encode_command(cmd)).qty) is D
    live = JournaledEngine.open(MatchingEngine(load_instruments()), path)
    for cmd in cmds:
        live.process(cmd)
    live.close()
    assert live.engine.order_by_cl_ord_id("B", "t3").limit_price == D("189.51")
    replayed = MatchingEngine(load_instruments())
    assert Journal(path).replay(replayed) == len(cmds)
    assert replayed.state_digest() == live.engine.state_digest()
