"""Positions with average cost and P&L, derived from the account's fills and the reference prices.

Average-cost method: a buy adds its notional plus its fee to the cost basis; a sell removes the
proportional share of the cost basis and realizes ``proceeds - fee - removed cost``. Unrealized P&L is
``qty x reference price - cost basis``. Quantities come from the ledger (the source of truth);
``average_cost`` is shown to 8 decimal places, P&L exactly.

Trades are folded in booking order (``created_at``), trades booked together (one batch shares a
``created_at``) in the venue's order (``transact_time``, then execution id), starting from the account's
position checkpoint (:mod:`oms.api.position_checkpoints`) rather than its first trade ever, so a read costs
the trades since the checkpoint, not the account's whole history. A checkpoint covers every trade booked at
or before its ``created_at``, never part of a batch. The read moves it forward once at least
``CHECKPOINT_EVERY`` trades older than ``CHECKPOINT_LAG`` lie beyond it: the lag keeps a transaction still
committing (its rows stamped a moment before they become visible) out of any checkpoint. If the folded
quantity of a symbol disagrees with the ledger's, the books are folded again from the first trade, so a bad
checkpoint can cost time but never a wrong quantity; that fold's checkpoint replaces it when it agrees.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, select

from oms.api import position_checkpoints
from oms.api.position_checkpoints import Cursor, SavedBook
from oms.api.render import text
from oms.db.models import Execution, Instrument
from oms.ledger.balances import Balances

ZERO = Decimal(0)
COST_PLACES = Decimal("0.00000001")
CHECKPOINT_LAG = timedelta(minutes=5)  # far longer than any order transaction stays open
CHECKPOINT_EVERY = 200  # trades beyond the checkpoint (and older than the lag) before it is moved


@dataclass(slots=True)
class _Book:
    qty: Decimal = ZERO
    cost: Decimal = ZERO
    realized: Decimal = ZERO
    seen: bool = field(default=False)

    def buy(self, qty: Decimal, price: Decimal, fee: Decimal) -> None:
        self.qty += qty
        self.cost += qty * price + fee
        self.seen = True

    def sell(self, qty: Decimal, price: Decimal, fee: Decimal) -> None:
        removed = (self.cost * qty / self.qty).quantize(COST_PLACES) if self.qty > 0 else ZERO
        removed = min(removed, self.cost)
        self.realized += qty * price - fee - removed
        self.cost -= removed
        self.qty -= qty
        if self.qty <= 0:
            self.qty, self.cost = ZERO, ZERO
        self.seen = True


def _trades(connection: Connection, account_id: str, after: Cursor | None) -> Any:
    """The account's trades booked after ``after`` in fold order: an index range of
    ``ix_executions_account_created`` (only trades booked in one batch are sorted among themselves)."""
    columns = Execution.__table__.c
    condition = (columns.account_id == account_id) & (columns.exec_type == "trade")
    if after is not None:
        condition = condition & (columns.created_at > after.created_at)
    return connection.execute(
        select(columns.symbol, columns.side, columns.last_qty, columns.last_px, columns.fee, columns.created_at,
               columns.id).where(condition).order_by(columns.created_at, columns.transact_time, columns.id)
    )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)  # SQLite keeps naive UTC


def _saved(books: dict[str, _Book]) -> dict[str, SavedBook]:
    return {symbol: SavedBook(book.qty, book.cost, book.realized) for symbol, book in books.items() if book.seen}


@dataclass(slots=True)
class _Fold:
    """Books folded from a checkpoint (or the first trade), and the checkpoint this fold could save."""

    books: dict[str, _Book]
    from_checkpoint: bool
    save: tuple[dict[str, SavedBook], Cursor] | None = None


def _fold(connection: Connection, account_id: str, now: datetime, use_checkpoint: bool) -> _Fold:
    saved, cursor = position_checkpoints.load(connection, account_id) if use_checkpoint else ({}, None)
    books = {symbol: _Book(book.qty, book.cost, book.realized, True) for symbol, book in saved.items()}
    fold = _Fold(books, cursor is not None)
    horizon = now - CHECKPOINT_LAG
    settled = 0  # trades folded here that are older than the lag
    last_settled: Cursor | None = None
    for symbol, side, qty, price, fee, created_at, execution_id in _trades(connection, account_id, cursor):
        if _aware(created_at) < horizon:
            settled += 1
            last_settled = Cursor(created_at, execution_id)
        elif fold.save is None and settled >= CHECKPOINT_EVERY and last_settled is not None:
            fold.save = _saved(books), last_settled  # every trade booked up to last_settled came before this one
        book = books.setdefault(symbol, _Book())
        (book.buy if side == "buy" else book.sell)(qty, price, fee)
    if fold.save is None and settled >= CHECKPOINT_EVERY and last_settled is not None:
        fold.save = _saved(books), last_settled  # every trade folded is older than the lag
    return fold


def _agrees(books: dict[str, _Book], balances: Balances) -> bool:
    """Whether the folded quantity of every symbol is the ledger's (the source of truth for quantities)."""
    return all(books.get(symbol, _Book()).qty == balances.position(symbol).total
               for symbol in set(books) | set(balances.positions))  # fmt: skip


def _books(connection: Connection, account_id: str, balances: Balances, now: datetime) -> dict[str, _Book]:
    fold = _fold(connection, account_id, now, use_checkpoint=True)
    if fold.from_checkpoint and not _agrees(fold.books, balances):
        fold = _fold(connection, account_id, now, use_checkpoint=False)
        if not _agrees(fold.books, balances):
            fold.save = None  # a mismatch from the first trade too is the ledger's (shares not bought here)
    if fold.save is not None:
        position_checkpoints.save(connection, account_id, *fold.save)
    return fold.books


def positions(
    connection: Connection, account_id: str, balances: Balances, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Every symbol the account holds or has traded; may move the account's position checkpoint (and commit)."""
    books = _books(connection, account_id, balances, now or datetime.now(UTC))
    table = Instrument.__table__
    prices: dict[str, Decimal] = {symbol: price for symbol, price in connection.execute(select(table.c.symbol, table.c.reference_price))}
    symbols = sorted(set(balances.positions) | {symbol for symbol, book in books.items() if book.seen})
    result = []
    for symbol in symbols:
        held = balances.position(symbol)
        book = books.get(symbol, _Book())
        qty = held.total
        cost = book.cost if book.qty == qty else (book.cost * qty / book.qty if book.qty else ZERO)
        average = (cost / qty).quantize(COST_PLACES) if qty else None
        price = prices.get(symbol)
        market_value = qty * price if price is not None else None
        result.append(
            {
                "symbol": symbol,
                "qty": text(qty),
                "available_qty": text(held.available),
                "reserved_qty": text(held.reserved),
                "average_cost": text(average),
                "reference_price": text(price),
                "market_value": text(market_value),
                "cost_basis": text(cost),
                "unrealized_pnl": text(market_value - cost) if market_value is not None else None,
                "realized_pnl": text(book.realized),
            }
        )
    return result
