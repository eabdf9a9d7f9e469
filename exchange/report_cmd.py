"""Offline trade report: rebuild the engine from the journal (read-only) and list broker executions.

Used by `oms exchange report`; needs no running venue, and never writes the journal (a running venue may
be appending to it). Like a venue's start, it begins from the last end-of-day snapshot when there is a
usable one (``exchange.snapshot``) and replays only the journal after it.
"""

from __future__ import annotations

from datetime import date

from exchange.config import RESERVED_OWNER, VenueConfig
from exchange.faults import load_omitted_exec_ids
from exchange.trade_report import TradeRow, broker_rows
from exchange.venue import rebuild


def offline_rows(config: VenueConfig, trade_date: date) -> list[TradeRow]:
    engine, index, _, _ = rebuild(config, journal=None)
    omitted = frozenset(config.faults.omitted_exec_ids | load_omitted_exec_ids(config.fault_state_file))
    return broker_rows(engine.trades(trade_date=trade_date), index, lambda owner: owner != RESERVED_OWNER, omitted)
