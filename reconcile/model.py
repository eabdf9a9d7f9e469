"""The values reconciliation works on: both sides' trades, our orders, and the breaks found between them.

Everything here is immutable and free of I/O, so the matcher and the checks are plain functions that tests can
feed directly. Sides are normalised to ``buy``/``sell`` (our ``Side`` values); the venue writes ``BUY``/``SELL``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

ZERO = Decimal(0)
TERMINAL_STATUSES = frozenset({"filled", "canceled", "replaced", "rejected", "expired", "done_for_day"})


@dataclass(frozen=True, slots=True)
class VenueTrade:
    """One row of the venue's trade report (CSV line or TradeCaptureReport). ``line`` locates it in the source."""

    exec_id: str
    order_id: str
    cl_ord_id: str
    broker_comp_id: str
    symbol: str
    side: str
    qty: Decimal
    price: Decimal
    fee: Decimal
    transact_time: datetime
    line: int = 0

    @property
    def signed_qty(self) -> Decimal:
        return self.qty if self.side == "buy" else -self.qty

    @property
    def cash(self) -> Decimal:
        """What the trade moves in cash for the buyer or seller, before any fee (fee schedules differ per side)."""
        return -self.qty * self.price if self.side == "buy" else self.qty * self.price


@dataclass(frozen=True, slots=True)
class OurExecution:
    """One fill in our ``executions`` table, with the venue-facing ids of its order."""

    exec_id: str
    order_id: str
    account_id: str
    venue_cl_ord_id: str
    venue_order_id: str | None
    symbol: str
    side: str
    qty: Decimal
    price: Decimal
    fee: Decimal
    transact_time: datetime | None = None

    @property
    def signed_qty(self) -> Decimal:
        return self.qty if self.side == "buy" else -self.qty

    @property
    def cash(self) -> Decimal:
        return -self.qty * self.price if self.side == "buy" else self.qty * self.price

    @property
    def cash_with_fee(self) -> Decimal:
        """What the fill moved in the customer's cash: our ledger charges our fee on both sides."""
        return self.cash - self.fee


@dataclass(frozen=True, slots=True)
class OrderRef:
    """Our order as the venue knows it: enough to map a report row to an account and to judge a repair."""

    order_id: str
    account_id: str
    venue_cl_ord_id: str
    venue_order_id: str | None
    symbol: str
    side: str
    qty: Decimal
    cum_qty: Decimal
    leaves_qty: Decimal
    status: str


class BreakKind(StrEnum):
    MISSING_OURS = "missing_ours"  # the venue has the trade, we do not
    MISSING_VENUE = "missing_venue"  # we booked a trade the venue does not report
    QTY_MISMATCH = "qty_mismatch"
    PRICE_MISMATCH = "price_mismatch"
    SIDE_MISMATCH = "side_mismatch"
    SYMBOL_MISMATCH = "symbol_mismatch"
    DUPLICATE_VENUE = "duplicate_venue"  # the report lists one ExecID more than once
    DUPLICATE_OURS = "duplicate_ours"  # we booked one venue trade twice (two ExecIDs, or one ExecID twice)
    POSITION_MISMATCH = "position_mismatch"  # the day's net quantity per account and symbol differs
    CASH_MISMATCH = "cash_mismatch"  # the day's net traded cash per account and currency differs
    LEDGER_POSITION_MISMATCH = "ledger_position_mismatch"  # ledger shares differ from what our fills imply
    LEDGER_CASH_MISMATCH = "ledger_cash_mismatch"  # ledger cash differs from money in/out plus our fills


@dataclass(frozen=True, slots=True)
class Break:
    """One difference between the books, as a value. ``key`` is stable across runs (kind plus what it is about),
    so a repair can name the break it fixed and the next run can tell it is gone."""

    kind: BreakKind
    key: str
    detail: str
    exec_id: str | None = None
    account_id: str | None = None
    symbol: str | None = None
    ours: str | None = None
    venue: str | None = None
    line: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "key": self.key,
            "exec_id": self.exec_id,
            "account": self.account_id,
            "symbol": self.symbol,
            "ours": self.ours,
            "venue": self.venue,
            "line": self.line,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class Pair:
    """A venue trade and our execution recognised as the same fill; ``how`` is ``exec_id`` or ``order``."""

    venue: VenueTrade
    ours: OurExecution
    how: str


@dataclass(frozen=True, slots=True)
class Matching:
    """The matcher's result: pairs, breaks, and the unmatched rows behind the ``missing_*`` breaks."""

    pairs: tuple[Pair, ...]
    breaks: tuple[Break, ...]
    missing_ours: tuple[VenueTrade, ...]
    missing_venue: tuple[OurExecution, ...]
    venue_unique: tuple[VenueTrade, ...] = field(default=())  # the report without its repeated rows
