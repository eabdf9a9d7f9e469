"""How long a simulated exchange takes to start after a day of market-maker quoting, with and without its
end-of-day snapshot.

Usage: python bench/venue_restart_bench.py [--steps N] [--days D]

What it does: journals D days of the market maker's quoting (``--steps`` steps a day, one replace per quote
per step: 86,400 steps is a day at the default ``MarketMakerIntervalMs=1000``), each day closed by an end of
day and snapshotted as the venue does (``exchange/snapshot.py``); then rebuilds the venue's state twice, as
``Venue.start`` does: once from the whole journal, once from the snapshot plus the journal after it (empty
here: the last command is the end of day). It prints the journal and snapshot sizes and both times, and
checks that both give the same engine state.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exchange import snapshot  # noqa: E402
from exchange.engine import EndOfDay, MatchingEngine  # noqa: E402
from exchange.instruments import load_instruments  # noqa: E402
from exchange.journal import Journal, JournaledEngine  # noqa: E402
from exchange.market_maker import MarketMaker  # noqa: E402
from exchange.trade_report import ExecIdIndex  # noqa: E402
from exchange.venue import read_journal  # noqa: E402


def journal_days(journal_path: Path, steps: int, days: int) -> int:
    """Write ``days`` days of quoting, each closed and snapshotted; return the number of commands."""
    live = JournaledEngine(MatchingEngine(load_instruments()), Journal(journal_path, sync="batch"))
    maker = MarketMaker(live.engine.instruments, seed=1)
    index = ExecIdIndex()
    start = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
    commands = 0
    for day in range(days):
        for step in range(steps):
            for command in maker.step(start + timedelta(days=day, seconds=step * 86_400 / steps)):
                maker.on_events(live.process(command))
                commands += 1
        day_end = EndOfDay(date(2026, 11, 2) + timedelta(days=day), start + timedelta(days=day + 1))
        index.observe(live.process(day_end))
        commands += 1
        snapshot.take(live.journal, day_end, live.engine, index)
    live.close()
    return commands


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=86_400, help="market-maker steps per day")
    parser.add_argument("--days", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="venue_restart_") as directory:
        journal_path = Path(directory) / "commands.jsonl"
        began = time.perf_counter()
        commands = journal_days(journal_path, args.steps, args.days)
        print(f"journaled {commands:,} commands over {args.days} day(s) in {time.perf_counter() - began:.1f} s; "
              f"journal {journal_path.stat().st_size / 1e6:,.0f} MB, snapshot "
              f"{snapshot.snapshot_path(journal_path).stat().st_size / 1e6:,.2f} MB")

        began = time.perf_counter()
        full, index = MatchingEngine(load_instruments()), ExecIdIndex()
        for command in read_journal(journal_path):
            index.observe(full.process(command))
        full_s = time.perf_counter() - began

        began = time.perf_counter()
        loaded = snapshot.load(snapshot.snapshot_path(journal_path), journal_path, MatchingEngine(load_instruments()))
        assert loaded is not None, "the snapshot was not usable"
        tail = 0
        for command in read_journal(journal_path, loaded.journal_bytes):
            loaded.index.observe(loaded.engine.process(command))
            tail += 1
        snapshot_s = time.perf_counter() - began

        assert loaded.engine.state_digest() == full.state_digest(), "the two starts disagree"
        print(f"start from the whole journal: {full_s:.2f} s ({commands / full_s:,.0f} commands/s)")
        print(f"start from the snapshot: {snapshot_s:.3f} s (then {tail} commands of journal)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
