"""Offline trade report: rebuild the engine from the journal (read-only) and list broker executions.

Used by `oms exchange report`; needs no running venue, and never writes the journal (a running venue may
be appending to it). Like a venue's start, it begins from the last end-of-day snapshot when there is a
usable one (``exchange.snapshot``) and replays only the journal after it.
"""

from __future__ import annotations

from datetime import date

from exchange import snapshot
from exchange.config import RESERVED_OWNER, VenueConfig
from exchange.faults import load_omitted_exec_ids
from exchange.trade_report import ExecIdIndex, TradeRow, broker_rows
from exchange.venue import new_engine, replay


def offline_rows(config: VenueConfig, trade_date: date) -> list[TradeRow]:
    engine = new_engine(config)
    index = ExecIdIndex()
    last_snapshot = snapshot.load(snapshot.snapshot_path(config.journal_path), config.journal_path, engine)
    if last_snapshot is not None:
        engine, index = last_snapshot.engine, last_snapshot.index
    replay(config, engine, index, journal=None, after=last_snapshot)
    omitted = frozenset(config.faults.omitted_exec_ids | load_omitted_exec_ids(config.fault_state_file))
    return broker_rows(engine.trades(trade_date=trade_date), index, lambda owner: owner != RESERVED_OWNER, omitted)
